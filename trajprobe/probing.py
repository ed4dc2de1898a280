"""The probe engine: evaluate counterfactual inputs from forked states, batched and chunked."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import xarray as xr
from torch.utils import _pytree as pytree
from tqdm.auto import tqdm

from trajprobe import machine as sm
from trajprobe.labelled import feature_dims
from trajprobe.traces import Trace
from trajprobe.validation import as_tensor, check_finite_tensor, check_positive_int

__all__ = ["DEFAULT_MEMORY_BUDGET", "probe"]

DEFAULT_MEMORY_BUDGET = 64 * 2**20
"""Bytes a probe chunk may use by default (64 MiB)."""

_WORKSPACE_FACTOR = 4
"""A chunk's working memory, as a multiple of its items' state + input + output bytes."""


def probe(
    machine: sm.StateMachine,
    trace: Trace,
    probe_inputs: torch.Tensor | np.ndarray | xr.DataArray,
    *,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool | None = None,
    labelled: bool = False,
) -> torch.Tensor | xr.DataArray:
    """Outputs of step t from the forked state s_{t-1} on every probe input.

    For every episode e, step t (1..T) and probe n, returns
    ``f(probe_inputs[e, t, n], s_{t-1}[e])``: what the machine would output at step t,
    after t-1 real observations, had it been shown probe input n instead of x_t
    (Rabinowitz 2019 §3.2.3, the probe behind eq. 5). The history is never re-run:
    states s_{t-1} come from ``trace`` and are forked, never mutated.

    All E·T·N items are evaluated as a few large batches without autograd (``torch.no_grad``)
    on the trace's device, in chunks sized so a chunk needs about ``memory_budget`` bytes
    (``4 ×`` the bytes of its items' states, inputs and outputs).

    A machine with the optional method ``output_many(x [B, N, ...], state) -> [B, N, ...]``
    (``f`` for N inputs from each of B states) is given all N probes of a state at once,
    without N copies of the state, and chunks hold whole states; the work shared by the
    probes of one state (an LSTM's recurrent matmul, a transformer's key/value cache) is
    then done once. Its results equal the default path's to float rounding. Machines
    without it take the default path: states forked N times, ``output`` (or ``step``) on
    the flat batch.

    Args:
        machine: the machine that produced ``trace``.
        trace: from :func:`trajprobe.rollout`; states ``[E, T+1, ...]`` per leaf.
        probe_inputs: ``[E, T, N, ...]``, one probe set per (episode, step), or ``[N, ...]``
            shared by every episode and step; ``...`` is the machine's input shape. A
            DataArray must carry dims ``episode, t, probe`` (or ``probe``) leading.
        memory_budget: bytes for one chunk's working memory.
        progress: show a progress bar (None: only when there are several chunks and
            standard error is a terminal).
        labelled: return an ``xarray.DataArray`` with dims ``(episode, t, probe, output...)``.

    Returns:
        ``[E, T, N, ...]`` outputs (output shape ``...`` as the machine's).
    """
    probe_inputs, shared, n_probes = _check_probe_inputs(probe_inputs, trace)
    check_positive_int(memory_budget, "memory_budget")
    _check_trace_matches(machine, trace)
    n_episodes, n_steps = trace.n_episodes, trace.n_steps
    # s_{t-1} for every (episode, t): leaves [E*T, ...], row e*T + (t-1).
    prior = sm.tree_map(lambda leaf: leaf[:, :n_steps].flatten(0, 1), trace.states)
    flat_inputs = probe_inputs if shared else probe_inputs.flatten(0, 2)
    run, unit = _evaluator(machine, prior, probe_inputs, flat_inputs, shared, n_probes)
    n_items = n_episodes * n_steps * n_probes
    with torch.no_grad():
        first = run(0, unit)
        chunk = _chunk_items(prior, flat_inputs[:1], first[:1], memory_budget, unit)
        result = torch.empty((n_items, *first.shape[1:]), dtype=first.dtype, device=first.device)
        starts = range(0, n_items, chunk)
        show = len(starts) > 1 and (progress is None or progress)
        bar = tqdm(
            total=n_items, unit="probe", desc="probing", disable=None if show else True,
            leave=False,
        )
        with bar:
            for start in starts:
                stop = min(start + chunk, n_items)
                result[start:stop] = run(start, stop)
                bar.update(stop - start)
    result = result.reshape(n_episodes, n_steps, n_probes, *first.shape[1:])
    if not labelled:
        return result
    return xr.DataArray(
        result.cpu().numpy(),
        dims=("episode", "t", "probe", *feature_dims("output", result.dim() - 3)),
        coords={
            "episode": np.arange(n_episodes),
            "t": np.arange(1, n_steps + 1),
            "probe": np.arange(n_probes),
        },
        name="probe_outputs",
    )



def _check_probe_inputs(
    probe_inputs: torch.Tensor | np.ndarray | xr.DataArray, trace: Trace
) -> tuple[torch.Tensor, bool, int]:
    """``(probe_inputs as a tensor, shared by every (e, t)?, N)``; ValueError if misshaped."""
    feature_shape = tuple(trace.inputs.shape[2:])
    n_episodes, n_steps = trace.n_episodes, trace.n_steps
    shared = isinstance(probe_inputs, xr.DataArray) and "episode" not in probe_inputs.dims
    dims = ("probe",) if shared else ("episode", "t", "probe")
    probe_inputs = as_tensor(
        probe_inputs, "probe_inputs", device=trace.inputs.device, dims=dims
    )
    if probe_inputs.is_floating_point():
        probe_inputs = probe_inputs.to(trace.inputs.dtype)
    shared = probe_inputs.dim() == len(feature_shape) + 1
    if shared and tuple(probe_inputs.shape[1:]) == feature_shape:
        n_probes = probe_inputs.shape[0]
    elif (
        probe_inputs.dim() == len(feature_shape) + 3
        and tuple(probe_inputs.shape[3:]) == feature_shape
        and tuple(probe_inputs.shape[:2]) == (n_episodes, n_steps)
    ):
        n_probes = probe_inputs.shape[2]
    else:
        raise ValueError(
            f"probe_inputs: expected shape [{n_episodes}, {n_steps}, N, "
            f"{', '.join(map(str, feature_shape))}] or [N, {', '.join(map(str, feature_shape))}]"
            f" for a trace with inputs {tuple(trace.inputs.shape)}, "
            f"got {tuple(probe_inputs.shape)}"
        )
    if n_probes < 1:
        raise ValueError("probe_inputs: expected at least one probe input, got N=0")
    check_finite_tensor(probe_inputs, "probe_inputs")
    return probe_inputs, shared, n_probes


def _evaluator(
    machine: sm.StateMachine, prior: sm.State, probe_inputs: torch.Tensor,
    flat_inputs: torch.Tensor, shared: bool, n_probes: int,
) -> tuple[Callable[[int, int], torch.Tensor], int]:
    """``(run, unit)``: ``run(start, stop)`` evaluates items [start, stop) (item = e, t, n in
    row-major order); chunks are multiples of ``unit`` items (N with ``output_many``)."""
    many = getattr(machine, "output_many", None)
    if callable(many):
        # Whole states per chunk: items [start, stop) are states [start/N, stop/N).
        def run_many(start: int, stop: int) -> torch.Tensor:
            first_state, last_state = start // n_probes, stop // n_probes
            state = sm.index(prior, slice(first_state, last_state))
            if shared:
                x = flat_inputs.expand(last_state - first_state, *flat_inputs.shape)
            else:
                x = probe_inputs.flatten(0, 1)[first_state:last_state]
            y = many(x, state)
            if tuple(y.shape[:2]) != tuple(x.shape[:2]):
                raise ValueError(
                    f"machine: output_many(x, state) must return [B, N, ...] for x of shape "
                    f"{tuple(x.shape)}, got {tuple(y.shape)}"
                )
            return y.flatten(0, 1)

        return run_many, n_probes

    def run(start: int, stop: int) -> torch.Tensor:
        items = torch.arange(start, stop, device=flat_inputs.device)
        state = sm.index(prior, items // n_probes)
        x = flat_inputs[items % n_probes] if shared else flat_inputs[start:stop]
        return sm.output(machine, x, state)

    return run, 1

def _chunk_items(
    prior: sm.State, one_input: torch.Tensor, one_output: torch.Tensor, budget: int,
    unit: int = 1,
) -> int:
    """How many items fit in ``budget`` bytes, from one item's state, input and output.

    The count is a multiple of ``unit`` (the N probes of one state, when they share it).
    A shared state is not copied per item, but an item's intermediate values (an LSTM's
    gates, a transformer's attention row) are about a state's size, so the per-item
    estimate is the same either way.
    """
    per_item = sum(leaf[0].numel() * leaf.element_size() for leaf in sm.tree_leaves(prior))
    per_item += one_input.numel() * one_input.element_size()
    per_item += one_output.numel() * one_output.element_size()
    return unit * max(1, budget // (_WORKSPACE_FACTOR * per_item * unit))


def _check_trace_matches(machine: sm.StateMachine, trace: Trace) -> None:
    """The trace's states must have the machine's state structure and [E, T+1] leading axes."""
    template_leaves, template_spec = pytree.tree_flatten(machine.initial_state(1))
    leaves, spec = pytree.tree_flatten(trace.states)
    if spec != template_spec or len(leaves) != len(template_leaves):
        raise ValueError(
            "trace: its states do not have this machine's state structure; "
            "was the trace produced by another machine?"
        )
    expected = (trace.n_episodes, trace.n_steps + 1)
    for i, (leaf, tmpl) in enumerate(zip(leaves, template_leaves, strict=True)):
        if tuple(leaf.shape[:2]) != expected or leaf.shape[2:] != tmpl.shape[1:]:
            raise ValueError(
                f"trace: state leaf {i} expected shape "
                f"{(*expected, *tmpl.shape[1:])}, got {tuple(leaf.shape)}"
            )
        if leaf.is_floating_point() and not bool(torch.isfinite(leaf).all()):
            raise ValueError(f"trace: state leaf {i} holds NaN or inf")
    if math.prod(trace.outputs.shape[:2]) != trace.n_episodes * trace.n_steps:
        raise ValueError(
            f"trace: outputs {tuple(trace.outputs.shape)} do not match inputs "
            f"{tuple(trace.inputs.shape)}"
        )
