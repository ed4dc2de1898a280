"""Aligned traces: two machines driven by exactly the same input history.

Comparing two machines (Mikulik et al. 2020 §3.2, §4.3) is only meaningful when both saw
precisely the same inputs x_1..x_T. For open-loop (prediction) tasks both machines are
rolled out on the same inputs; for closed-loop (bandit) tasks one machine's recorded
stream — its inputs encode the actions it chose and the rewards it got — is *replayed*
open-loop through the other. Traces whose inputs differ are a ``ValueError``, never
silently compared.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from trajprobe import machine as sm
from trajprobe.traces import Trace, rollout

__all__ = ["AlignedTraces", "aligned_rollout", "check_aligned", "replay"]


def _comparison_dtype(a: torch.Tensor, b: torch.Tensor) -> torch.dtype:
    """The less precise of two floating dtypes (inputs are cast to a machine's dtype)."""
    if a.is_floating_point() and b.is_floating_point():
        return a.dtype if torch.finfo(a.dtype).bits <= torch.finfo(b.dtype).bits else b.dtype
    return torch.promote_types(a.dtype, b.dtype)


def check_aligned(trace_a: Trace, trace_b: Trace, names: tuple[str, str] = ("a", "b")) -> None:
    """Raise ValueError unless both traces were driven by the same inputs ``[E, T, ...]``.

    Inputs must have the same shape and be exactly equal after casting both to the less
    precise of their floating dtypes (``rollout`` casts inputs to each machine's dtype, so
    a float32 and a float64 machine on the same inputs are aligned). No tolerance is
    applied: any other difference means the two histories differ.
    """
    for name, trace in zip(names, (trace_a, trace_b), strict=True):
        if not isinstance(trace, Trace):
            raise TypeError(f"trace_{name}: expected a trajprobe.Trace, got {type(trace).__name__}")
    xa, xb = trace_a.inputs, trace_b.inputs
    if tuple(xa.shape) != tuple(xb.shape):
        raise ValueError(
            f"trace_{names[1]}: misaligned traces — expected inputs of shape {tuple(xa.shape)} "
            f"(as trace_{names[0]}), got {tuple(xb.shape)}"
        )
    dtype = _comparison_dtype(xa, xb)
    xa = xa.detach().to(device="cpu", dtype=dtype)
    xb = xb.detach().to(device="cpu", dtype=dtype)
    if not torch.equal(xa, xb):
        differ = (xa != xb).reshape(xa.shape[0], xa.shape[1], -1).any(-1)
        episode, step = (int(i) for i in differ.nonzero()[0])
        n_bad = int(differ.any(1).sum())
        raise ValueError(
            f"trace_{names[1]}: misaligned traces — expected the same inputs as "
            f"trace_{names[0]}, got different inputs in {n_bad} of {xa.shape[0]} episodes "
            f"(first at episode {episode}, t={step + 1}); roll both machines out on the same "
            "inputs, or replay one machine's stream through the other with "
            "trajprobe.compare.replay"
        )


@dataclass(frozen=True)
class AlignedTraces:
    """Traces of machines ``a`` and ``b`` on one input history; checked on construction.

    Attributes:
        a: trace of machine a; inputs ``[E, T, ...]``, states ``[E, T+1, ...]`` per leaf.
        b: trace of machine b on the same inputs.
        same_inputs: False when each machine read the same episodes in its own encoding
            (:func:`aligned_rollout` with ``encode``): then only ``[E, T]`` must agree, and
            step t of a and step t of b are the same moment of the episode (see there).
    """

    a: Trace
    b: Trace
    same_inputs: bool = True

    def __post_init__(self) -> None:
        if self.same_inputs:
            check_aligned(self.a, self.b)
            return
        for name, trace in (("a", self.a), ("b", self.b)):
            if not isinstance(trace, Trace):
                raise TypeError(f"{name}: expected a trajprobe.Trace, got {type(trace).__name__}")
        if self.a.inputs.shape[:2] != self.b.inputs.shape[:2]:
            raise ValueError(
                "b: misaligned traces — expected per-machine inputs with the same [episode, t] "
                f"as a's, {tuple(self.a.inputs.shape[:2])}, got {tuple(self.b.inputs.shape[:2])}")

    @property
    def inputs(self) -> torch.Tensor:
        """The shared inputs ``[E, T, ...]`` (as machine a received them)."""
        return self.a.inputs

    @property
    def n_episodes(self) -> int:
        """E, the number of episodes."""
        return self.a.n_episodes

    @property
    def n_steps(self) -> int:
        """T, the number of steps per episode."""
        return self.a.n_steps


def replay(machine: sm.StateMachine, trace: Trace) -> Trace:
    """Feed another machine's recorded input stream, open-loop, through ``machine``.

    For a closed-loop (bandit) trace the inputs at step t encode the previous action and
    reward *of the machine that generated the stream*; replaying them gives ``machine``
    exactly the same history (Mikulik et al. 2020 §4.3). ``machine``'s own outputs are
    recorded but do not choose actions. Fields of ``trace`` beyond inputs/outputs/states
    (e.g. recorded ``actions`` and ``rewards``) are copied, since they describe the
    shared history; ``attrs["replayed"]`` is set to True.

    Args:
        machine: the machine to drive.
        trace: the recorded stream; inputs ``[E, T, ...]``.

    Returns:
        ``machine``'s :class:`~trajprobe.Trace` on ``trace.inputs``.
    """
    if not isinstance(trace, Trace):
        raise TypeError(f"trace: expected a trajprobe.Trace, got {type(trace).__name__}")
    replayed = rollout(machine, trace.inputs)
    shared = {
        f.name: getattr(trace, f.name)
        for f in dataclasses.fields(trace)
        if f.name not in ("inputs", "outputs", "states", "attrs")
    }
    return dataclasses.replace(replayed, **shared, attrs={**trace.attrs, "replayed": True})


def aligned_rollout(
    a: sm.StateMachine,
    b: sm.StateMachine,
    inputs: torch.Tensor | np.ndarray | xr.DataArray | Trace | AlignedTraces | dict,
    *,
    encode: tuple[Callable | None, Callable | None] | None = None,
) -> AlignedTraces:
    """Both machines on one input history, in one encoding or each in its own.

    **Time alignment.** Step t of ``a`` and step t of ``b`` are the same moment: the
    states compared are s_{t−1} of each (the states before reading their step-t inputs)
    and the outputs compared are y_t of each. With per-machine encodings the caller makes
    the two step-t inputs describe the same moment, e.g. a predictor that reads x_t and
    predicts x_{t+1} against a conjugate machine that reads [x_{t−1}, flag] and predicts
    x_t: give the conjugate machine [x_t, 1] at step t (docs/tutorials/compare-agents.md).

    Args:
        a, b: the machines.
        inputs: ``[E, T, ...]`` open-loop inputs (both machines are rolled out on them);
            or ``{"a": inputs_a, "b": inputs_b}``, each machine's own encoding of the same
            episodes (``[E, T, ...]`` each, same E and T); or a recorded
            :class:`~trajprobe.Trace` of machine ``a`` (e.g. a closed-loop bandit run),
            kept as a's trace and replayed through ``b``; or an :class:`AlignedTraces`,
            returned as is.
        encode: ``(encode_a, encode_b)``: each a callable taking ``inputs`` (any object
            the callable understands, e.g. raw observations ``[E, T]``) and returning that
            machine's inputs ``[E, T, ...]``; None in a slot: that machine reads
            ``inputs`` as given.

    Returns:
        :class:`AlignedTraces` with ``a`` and ``b`` (``same_inputs=False`` when the
        encodings differ).
    """
    if encode is not None:
        if not (isinstance(encode, tuple) and len(encode) == 2
                and all(e is None or callable(e) for e in encode)):
            raise TypeError(f"encode: expected a pair (encode_a, encode_b) of callables or "
                            f"None, got {encode!r}")
        inputs = {name: inputs if fn is None else fn(inputs)
                  for name, fn in zip("ab", encode, strict=True)}
    if isinstance(inputs, dict):
        if set(inputs) != {"a", "b"}:
            raise ValueError(f"inputs: expected a dict with keys 'a' and 'b', got "
                             f"{sorted(inputs)}")
        return AlignedTraces(a=_named_rollout(rollout, a, inputs["a"], "a"),
                             b=_named_rollout(rollout, b, inputs["b"], "b"), same_inputs=False)
    if isinstance(inputs, AlignedTraces):
        return inputs
    if isinstance(inputs, Trace):
        return AlignedTraces(a=inputs, b=_named_rollout(replay, b, inputs, "b"))
    return AlignedTraces(a=_named_rollout(rollout, a, inputs, "a"),
                         b=_named_rollout(rollout, b, inputs, "b"))


def _named_rollout(run: Callable, machine: sm.StateMachine, inputs: Any, name: str) -> Trace:
    """``run(machine, inputs)``; a refusal (e.g. inputs of another width than the machine
    reads) says which machine of the pair refused, ``a`` or ``b``."""
    try:
        return run(machine, inputs)
    except (ValueError, TypeError) as err:
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(f"{name}: machine {name} ({type(machine).__name__}) refused its "
                   f"inputs: {err}") from err
