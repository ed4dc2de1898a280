"""One front door to every measurement: :func:`measure` (Rabinowitz 2019 §3–5).

``measure(machine, task)`` takes the machine's history from :func:`~trajprobe.histories`
(episodes sampled from the task and rolled out, or the machine run in the task's
environment with :func:`~trajprobe.interact`), builds the task's counterfactual probe
inputs, probes every state s_{t-1} with them (:func:`~trajprobe.probe`) and lets the task
summarise the probe outputs into its labelled measurement
(:class:`~trajprobe.tasks.Measured`). The result is
an ``xarray.Dataset`` with dims ``episode, t`` (+ the task's own, e.g. ``mode`` or
``context``), with the configuration and ``trajprobe_version`` in ``attrs``.

:func:`effective_spectra`, :func:`fourier_spectra` and :func:`context_dynamics` are thin
aliases with the papers' names and defaults.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np
import torch
import xarray as xr

from trajprobe import machine as sm
from trajprobe import resources
from trajprobe import task_checks as checks
from trajprobe._version import __version__
from trajprobe.guard import eval_mode
from trajprobe.labelled import label_steps
from trajprobe.machine import Policy, default_policy
from trajprobe.probing import DEFAULT_MEMORY_BUDGET, probe
from trajprobe.randomness import Seed, make_generator
from trajprobe.task_protocol import Episodes, Measured, Probed, output_size
from trajprobe.traces import Trace, histories
from trajprobe.validation import check_positive_int, renamed_arguments

# Probed lives in trajprobe.task_protocol (the task protocol); importable from here too.
__all__ = ["Probed", "context_dynamics", "effective_spectra", "fourier_spectra", "measure"]


def measure(
    machine: sm.StateMachine,
    task: Measured,
    *,
    episodes: int | Episodes | Trace = 100,
    steps: int = 20,
    probes: int | None = None,
    seed: Seed = 0,
    policy: Policy | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool | None = None,
) -> xr.Dataset:
    """Measure how ``machine`` learns ``task``: the task's own measurement at every step t.

    Args:
        machine: any :class:`~trajprobe.StateMachine` taking ``[B, task.input_size]``.
        task: a task with ``probe_inputs`` and ``summarise`` (:class:`~trajprobe.tasks.Measured`)
            and either ``sample`` (open loop) or the environment methods (closed loop).
        episodes: E, the number of episodes to draw; or pre-sampled :class:`Episodes`
            (open loop, e.g. shared with another machine); or a closed-loop
            :class:`~trajprobe.Trace` from :func:`~trajprobe.interact` to replay open-loop,
            so that two machines are measured on exactly the same history.
        steps: T, steps per episode (ignored when episodes are given).
        probes: N probe inputs per (episode, step); None: the task's default.
        seed: one generator draws the episodes (or runs the environment), then the probes.
        policy: closed loop only: outputs → action distribution (default
            :func:`~trajprobe.machine.default_policy`).
        memory_budget, progress: passed to :func:`~trajprobe.probe`.

    Returns:
        The task's Dataset (dims ``episode, t`` and the task's own), with ``attrs``
        ``measure`` (the task's class), ``trajprobe_version``, the task's fields
        (``task_<field>``), ``n_episodes, n_steps, n_probes, seed`` and ``machine``.

    Raises:
        TypeError: ``task`` has no measurement, or ``machine`` is not a machine.
        ValueError: the machine does not accept the task's inputs, or a bad size.
    """
    checks.check_methods(task, checks.MEASURED_METHODS, "a task with a measurement")
    if not isinstance(task, Measured):
        raise TypeError(
            f"task: expected a task with a measurement (probe_inputs and summarise, see "
            f"trajprobe.tasks.Measured), got {type(task).__name__}"
        )
    if probes is not None:
        check_positive_int(probes, "probes")
    with eval_mode(machine):  # dropout / batch-norm off; modes restored (trajprobe.guard)
        device, dtype = _check_machine(machine, task)
        if isinstance(episodes, numbers.Integral) and isinstance(steps, numbers.Integral):
            resources.check_measure(machine, task, int(episodes), int(steps), probes)
        gen = make_generator(seed, device)
        run, trace = histories(machine, task, episodes=episodes, steps=steps, seed=gen,
                               policy=policy, device=device, dtype=dtype)
        probe_inputs = checks.probe_inputs(task, task.probe_inputs(run, probes, seed=gen),
                                           trace.n_episodes, trace.n_steps, probes)
        outputs = None
        if probe_inputs is not None:
            outputs = probe(machine, trace, probe_inputs, memory_budget=memory_budget,
                            progress=progress)
        ds = task.summarise(Probed(machine, run, trace, probe_inputs, outputs,
                                   policy or default_policy(machine)))
        ds = checks.summary(task, ds, trace.n_episodes, trace.n_steps)
    missing = {"episode", "t"} - set(ds.dims)
    if missing:
        raise ValueError(f"task: summarise must return dims episode and t, missing {missing}")
    ds = label_steps(ds.assign_coords(episode=np.arange(trace.n_episodes),
                                      t=np.arange(1, trace.n_steps + 1)))
    ds.attrs = {**_attrs(task), **ds.attrs, "n_episodes": trace.n_episodes,
                "n_steps": trace.n_steps,
                "n_probes": 0 if outputs is None else int(outputs.shape[2]),
                "seed": _attr_value(seed), "machine": type(machine).__name__}
    return ds


@renamed_arguments(n_episodes="episodes", n_steps="steps", n_probes="probes")
def effective_spectra(
    machine: sm.StateMachine,
    task: Any,
    episodes: int | Episodes = 100,
    steps: int = 20,
    *,
    probes: int = 100,
    spectrum: torch.Tensor | np.ndarray | list[float] | None = None,
    seed: Seed = 0,
    fit_intercept: bool = True,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool | None = None,
) -> xr.Dataset:
    """Effective spectra ŝ_k(t) and q_k(t) = ŝ_k(t)/s_k on linear regression (eqs. 3, 5).

    :func:`measure` on a :class:`~trajprobe.tasks.LinearRegression` (see its ``summarise``
    for the variables), with W drawn with the given ``spectrum`` (singular values
    ``[dim]`` or ``[E, dim]``, Haar-random singular vectors, §3.2.3) and
    ``fit_intercept`` set on the task. ``episodes``: E to draw, or given
    :class:`~trajprobe.tasks.Episodes`; ``steps``: T; ``probes``: N probe points per step.
    The old names ``n_episodes``, ``n_steps``, ``n_probes`` still work (deprecated).
    """
    from trajprobe.tasks.regression import LinearRegression

    if not isinstance(task, LinearRegression):
        raise TypeError(f"task: expected a LinearRegression, got {type(task).__name__}")
    task = dataclasses.replace(task, fit_intercept=fit_intercept)
    if spectrum is not None and bool((torch.as_tensor(np.asarray(spectrum, dtype=float)) == 0)
                                     .any()):
        raise ValueError(f"spectrum: q_k = ŝ_k / s_k needs positive singular values, got a zero "
                         f"in {np.asarray(spectrum).tolist()}; give every mode a positive s_k")
    device, dtype = _check_machine(machine, task)
    gen = make_generator(seed, device)
    if not isinstance(episodes, Episodes):
        check_positive_int(episodes, "episodes")
        check_positive_int(steps, "steps")
        episodes = task.sample(episodes, steps, seed=gen, device=device, dtype=dtype,
                               spectrum=spectrum)
    ds = measure(machine, task, episodes=episodes, probes=probes, seed=gen,
                 memory_budget=memory_budget, progress=progress)
    ds.attrs.update(seed=_attr_value(seed), spectrum=_attr_value(spectrum))
    return ds


@renamed_arguments(n_episodes="episodes", n_steps="steps")
def fourier_spectra(
    machine: sm.StateMachine,
    task: Any,
    episodes: int | Episodes = 100,
    steps: int = 40,
    *,
    probes: int | None = None,
    seed: Seed = 0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool | None = None,
) -> xr.Dataset:
    """Fourier projections q_k(t) on nonlinear regression (eq. 10): :func:`measure` on a
    :class:`~trajprobe.tasks.FourierRegression` (paper: T = 40). ``episodes``: E to draw,
    or given :class:`~trajprobe.tasks.Episodes`; ``probes``: N grid points (None: the
    task's). The old names ``n_episodes``, ``n_steps`` still work (deprecated)."""
    from trajprobe.tasks.fourier import FourierRegression

    if not isinstance(task, FourierRegression):
        raise TypeError(f"task: expected a FourierRegression, got {type(task).__name__}")
    return measure(machine, task, episodes=episodes, steps=steps, probes=probes, seed=seed,
                   memory_budget=memory_budget, progress=progress)


@renamed_arguments(n_episodes="episodes", n_steps="steps", trace="episodes")
def context_dynamics(
    machine: sm.StateMachine,
    task: Any,
    episodes: int | Trace = 100,
    steps: int = 100,
    *,
    seed: Seed = 0,
    policy: Policy | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool | None = None,
) -> xr.Dataset:
    """Per-context policies q_c(t) = π_t(a*(c)|c) and their ranking (§5.2.2, eqs. 12–14):
    :func:`measure` on a :class:`~trajprobe.tasks.ContextualBandit`, closed loop
    (``episodes`` = E) or replaying a recorded :class:`~trajprobe.Trace` (``episodes`` =
    the trace). The old names ``n_episodes``, ``n_steps`` and ``trace`` still work
    (deprecated)."""
    from trajprobe.tasks.bandits import ContextualBandit

    if not isinstance(task, ContextualBandit):
        raise TypeError(f"task: expected a ContextualBandit, got {type(task).__name__}")
    ds = measure(machine, task, episodes=episodes, steps=steps, seed=seed, policy=policy,
                 memory_budget=memory_budget, progress=progress)
    ds.attrs["replayed"] = int(isinstance(episodes, Trace))
    return ds


# --- helpers -------------------------------------------------------------------------------


def _check_machine(machine: sm.StateMachine, task: Any) -> tuple[torch.device, torch.dtype]:
    """The machine must accept ``[B, task.input_size]`` and return ``[B, task.output_size]``."""
    if not isinstance(machine, sm.StateMachine):
        raise TypeError(
            "machine: expected a StateMachine (initial_state(batch_size) and step(x, state)), "
            f"got {type(machine).__name__}"
        )
    with torch.inference_mode():
        state = machine.initial_state(1)
        device = sm.tree_leaves(state)[0].device
        dtype = sm.machine_dtype(machine)
        x = torch.zeros(1, task.input_size, dtype=dtype, device=device)
        try:
            y, _ = machine.step(x, state)
        except (RuntimeError, ValueError) as err:
            raise ValueError(
                f"machine: does not accept {type(task).__name__} inputs of shape "
                f"[batch, {task.input_size}]: {err}"
            ) from err
    size = output_size(task)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (1, size):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(
            f"machine: expected outputs of shape [batch, {size}] for "
            f"{type(task).__name__}, got {shape} for a batch of 1"
        )
    return device, dtype


def _attr_value(value: Any) -> Any:
    """A netCDF-storable attribute: str, int, float or a list of numbers."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):  # Python or numpy
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.Generator):
        return "torch.Generator"
    if isinstance(value, torch.Tensor | np.ndarray | list | tuple):
        arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
        if arr.dtype.kind in "biuf":
            return arr.astype(float).ravel().tolist()
    return repr(value)


def _attrs(task: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {"measure": type(task).__name__, "trajprobe_version": __version__,
                             "task": type(task).__name__}
    if dataclasses.is_dataclass(task):
        for f in dataclasses.fields(task):
            if f.init:
                attrs[f"task_{f.name}"] = _attr_value(getattr(task, f.name))
    return attrs
