"""One-call measurements of how a machine learns (Rabinowitz 2019 §3–5).

Each front door samples episodes from a task, runs the machine (:func:`~trajprobe.rollout`
or :func:`~trajprobe.rollout.rollout_env`), probes it at every step
(:func:`~trajprobe.probe`) and applies the pure estimators of :mod:`trajprobe.probes`.
The result is an ``xarray.Dataset`` with dims ``episode, t, mode|context`` that holds
the targets too, with the configuration and ``trajprobe_version`` in ``attrs``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import xarray as xr

from trajprobe import machine as sm
from trajprobe.dynamics import order_contexts
from trajprobe.probe import DEFAULT_MEMORY_BUDGET, probe
from trajprobe.probes.fourier import fourier_coefficients, fourier_projection, spectral_energy_ratio
from trajprobe.probes.linear import effective_map, effective_spectrum, spectrum_ratio
from trajprobe.probes.policy import (
    correct_action_probability,
    expected_context_reward,
    expected_reward,
    policy_probabilities,
)
from trajprobe.rollout import Trace, rollout, rollout_env
from trajprobe.tasks.bandits import ContextualBandit
from trajprobe.tasks.base import Episodes, Seed, make_generator
from trajprobe.tasks.fourier import FourierRegression
from trajprobe.tasks.regression import LinearRegression
from trajprobe.validation import check_positive_int

__all__ = ["context_dynamics", "effective_spectra", "fourier_spectra"]


def effective_spectra(
    machine: sm.StateMachine,
    task: LinearRegression,
    n_episodes: int = 100,
    n_steps: int = 20,
    *,
    n_probes: int = 100,
    spectrum: torch.Tensor | np.ndarray | list[float] | None = None,
    episodes: Episodes | None = None,
    seed: Seed = 0,
    fit_intercept: bool = True,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool | None = None,
) -> xr.Dataset:
    """Effective spectra ŝ_k(t) and proportions q_k(t) = ŝ_k(t)/s_k of a machine (eq. 3, 5).

    For every episode and step t, the machine's state after t-1 real observations is
    probed with N fresh x ~ N(0, I) (keeping y_{t-1}); Ŵ_t is the least-squares map from
    those x to the outputs; ŝ_t = diag(Uᵀ Ŵ_t V) with the episode's W = U diag(s) Vᵀ.

    Args:
        machine: a machine taking ``[B, 2*dim]`` inputs and returning ``[B, dim]``.
        task: the :class:`~trajprobe.tasks.LinearRegression` task.
        n_episodes, n_steps: E and T (ignored when ``episodes`` is given).
        n_probes: N probe points per (episode, step) (paper: 100).
        spectrum: target singular values ``[dim]`` or ``[E, dim]`` with Haar-random
            singular vectors (§3.2.3); None draws W from the task's prior.
        episodes: pre-sampled episodes (e.g. shared with another machine); they need
            ``params`` ``"W", "U", "s", "V"``.
        seed: one generator draws the episodes, then the probe points.
        fit_intercept: fit ŷ ≈ Ŵx + b rather than ŷ ≈ Ŵx (see :func:`effective_map`).
        memory_budget, progress: passed to :func:`~trajprobe.probe`.

    Returns:
        Dataset with ``s_hat, q (episode, t, mode)``, ``s (episode, mode)``,
        ``W_hat (episode, t, row, col)``, ``W (episode, row, col)``, ``loss (episode, t)``
        (squared error of the real prediction, eq. 4's summand) and ``probe_loss
        (episode, t)`` (mean squared error on the probe set against the noise-free W x).
        Modes are numbered 1..dim.
    """
    _check_task(task, LinearRegression, "LinearRegression")
    check_positive_int(n_probes, "n_probes")
    device, dtype = _check_machine(machine, task)
    gen = make_generator(seed, device)
    if episodes is None:
        episodes = task.sample(n_episodes, n_steps, seed=gen, device=device, dtype=dtype,
                               spectrum=spectrum)
    _check_episodes(episodes, task, ("W", "U", "s", "V"))
    trace = rollout(machine, episodes.inputs)
    probe_inputs = task.probe_inputs(trace.inputs, n_probes, seed=gen)
    outputs = probe(machine, trace, probe_inputs, memory_budget=memory_budget, progress=progress)
    x = task.probe_points(probe_inputs)
    params = {k: v.to(device=outputs.device, dtype=outputs.dtype)
              for k, v in episodes.params.items()}
    w_hat = effective_map(x, outputs, fit_intercept=fit_intercept)
    s_hat = effective_spectrum(w_hat, params["U"][:, None], params["V"][:, None])
    q = spectrum_ratio(s_hat, params["s"][:, None])
    targets = episodes.targets.to(device=outputs.device, dtype=outputs.dtype)
    loss = (trace.outputs - targets).square().sum(-1)
    clean = torch.einsum("eij,etnj->etni", params["W"], x)
    probe_loss = (outputs - clean).square().sum(-1).mean(-1)
    n_ep, n_t = trace.n_episodes, trace.n_steps
    coords = _coords(n_ep, n_t) | {"mode": np.arange(1, task.dim + 1)}
    ds = xr.Dataset(
        {
            "s_hat": (("episode", "t", "mode"), _np(s_hat)),
            "q": (("episode", "t", "mode"), _np(q)),
            "s": (("episode", "mode"), _np(params["s"])),
            "W_hat": (("episode", "t", "row", "col"), _np(w_hat)),
            "W": (("episode", "row", "col"), _np(params["W"])),
            "loss": (("episode", "t"), _np(loss)),
            "probe_loss": (("episode", "t"), _np(probe_loss)),
        },
        coords=coords,
        attrs=_attrs("effective_spectra", task, n_episodes=n_ep, n_steps=n_t,
                     n_probes=n_probes, seed=seed, fit_intercept=fit_intercept,
                     spectrum=spectrum, machine=type(machine).__name__),
    )
    _describe(ds, {
        "s_hat": "effective spectrum diag(U^T W_hat V), eq. 5",
        "q": "proportion of target singular value learned, s_hat / s (eq. 3)",
        "s": "target singular values",
        "loss": "squared error of the prediction of y_t (eq. 4 summand)",
        "probe_loss": "mean squared error on the probe set against W x",
    })
    return ds


def fourier_spectra(
    machine: sm.StateMachine,
    task: FourierRegression,
    n_episodes: int = 100,
    n_steps: int = 40,
    *,
    episodes: Episodes | None = None,
    seed: Seed = 0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool | None = None,
) -> xr.Dataset:
    """Fourier projections q_k(t) of the function a machine computes at every step (eq. 10).

    The state after t-1 observations is probed on the paper's 40-point grid (footnote 1,
    keeping y_{t-1}); the DFT of the outputs gives ĝ_{k,t}, projected on the episode's
    true coefficients g_k.

    Args:
        machine: a machine taking ``[B, 2]`` inputs and returning ``[B, 1]``.
        task: the :class:`~trajprobe.tasks.FourierRegression` task.
        n_episodes, n_steps: E and T (paper: T = 40); ignored when ``episodes`` is given.
        episodes: pre-sampled episodes with ``params`` ``"phases", "amplitudes"``.
        seed: an int, a generator or None.

    Returns:
        Dataset with ``q (episode, t, mode)`` (eq. 10), ``energy_ratio (episode, t, mode)``
        (footnote 2), ``amplitude_hat (episode, t, mode)`` (|ĝ_k| in units of a_k, i.e.
        2|DFT|/N), ``amplitudes, phases (episode, mode)``, ``function (episode, t, x)``
        (the probed outputs), ``target_function (episode, x)`` and ``loss (episode, t)``.
        The ``mode`` coordinate is the frequency k = 1..K. Stop-band modes (a_k = 0)
        give NaN/inf in ``q`` and ``energy_ratio``.
    """
    _check_task(task, FourierRegression, "FourierRegression")
    device, dtype = _check_machine(machine, task)
    gen = make_generator(seed, device)
    if episodes is None:
        episodes = task.sample(n_episodes, n_steps, seed=gen, device=device, dtype=dtype)
    _check_episodes(episodes, task, ("phases", "amplitudes"))
    trace = rollout(machine, episodes.inputs)
    probe_inputs = task.probe_inputs(trace.inputs)
    values = probe(machine, trace, probe_inputs, memory_budget=memory_budget,
                   progress=progress)[..., 0]
    params = {k: v.to(device=values.device, dtype=values.dtype)
              for k, v in episodes.params.items()}
    coef = fourier_coefficients(values, task.n_modes)
    target = task.target_coefficients(params)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = fourier_projection(coef, target)
        energy = spectral_energy_ratio(coef, target)
    grid = task.grid(dtype=values.dtype, device=values.device)
    target_values = task.function(params, grid.expand(trace.n_episodes, -1))
    targets = episodes.targets.to(device=values.device, dtype=values.dtype)
    loss = (trace.outputs - targets).square().sum(-1)
    n_ep, n_t = trace.n_episodes, trace.n_steps
    coords = _coords(n_ep, n_t) | {"mode": np.arange(1, task.n_modes + 1), "x": _np(grid)}
    ds = xr.Dataset(
        {
            "q": (("episode", "t", "mode"), _np(q)),
            "energy_ratio": (("episode", "t", "mode"), _np(energy)),
            "amplitude_hat": (("episode", "t", "mode"), _np(2 * coef.abs() / task.n_points)),
            "amplitudes": (("episode", "mode"), _np(params["amplitudes"])),
            "phases": (("episode", "mode"), _np(params["phases"])),
            "function": (("episode", "t", "x"), _np(values)),
            "target_function": (("episode", "x"), _np(target_values)),
            "loss": (("episode", "t"), _np(loss)),
        },
        coords=coords,
        attrs=_attrs("fourier_spectra", task, n_episodes=n_ep, n_steps=n_t, seed=seed,
                     machine=type(machine).__name__),
    )
    ds["mode"].attrs["long_name"] = "frequency k"
    _describe(ds, {
        "q": "Re<g_hat_k, g_k> / |g_k|^2 (eq. 10)",
        "energy_ratio": "|g_hat_k|^2 / |g_k|^2 (footnote 2)",
        "loss": "squared error of the prediction of y_t",
    })
    return ds


def context_dynamics(
    machine: sm.StateMachine,
    task: ContextualBandit,
    n_episodes: int = 100,
    n_steps: int = 100,
    *,
    trace: Trace | None = None,
    seed: Seed = 0,
    policy: Callable[[torch.Tensor], torch.distributions.Distribution] | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool | None = None,
) -> xr.Dataset:
    """Per-context policies q_c(t) = π_t(a*(c)|c) and their ranking (§5.2.2, eq. 12–14).

    Runs the machine closed-loop in the bandit (:func:`~trajprobe.rollout.rollout_env`),
    or replays a recorded closed-loop ``trace`` open-loop through it so that two machines
    are measured on exactly the same history. At every step the state after t-1
    observations is probed with every context (keeping a_{t-1}, r_{t-1}).

    Args:
        machine: a machine taking ``[B, C + A + 1]`` inputs and returning ``[B, A]``.
        task: the :class:`~trajprobe.tasks.ContextualBandit` task.
        n_episodes, n_steps: E and T; ignored when ``trace`` is given.
        trace: a closed-loop trace (from :func:`rollout_env`, any machine) to replay.
        seed: seeds the closed-loop run.
        policy: outputs to a categorical distribution; default ``machine.distribution``
            if defined, else softmax of the outputs as logits.

    Returns:
        Dataset with ``q (episode, t, context)``, ``policy (episode, t, context, action)``,
        ``expected_reward_context (episode, t, context)`` (eq. 12), ``expected_reward
        (episode, t)`` (eq. 13), ``return_score (episode, context)`` (R_c, eq. 14),
        ``q_ordered (episode, t, rank)`` and ``context_order (episode, rank)`` (rank k = the
        k-th learned context), ``correct (episode, context)``, and the realised
        ``action_taken, reward, context_shown (episode, t)``.
    """
    _check_task(task, ContextualBandit, "ContextualBandit")
    _check_machine(machine, task)
    if policy is None:
        custom = getattr(machine, "distribution", None)
        policy = custom if callable(custom) else None
    replayed = trace is not None
    if trace is None:
        trace = rollout_env(machine, task, n_episodes, n_steps, seed=seed, policy=policy)
    else:
        if not isinstance(trace, Trace) or trace.params is None or "correct" not in trace.params:
            raise ValueError(
                "trace: expected a closed-loop Trace from rollout_env with params['correct'], "
                f"got {type(trace).__name__} with params "
                f"{None if not isinstance(trace, Trace) else trace.params}"
            )
        closed = trace
        trace = rollout(machine, closed.inputs)
        trace = dataclasses.replace(trace, actions=closed.actions, rewards=closed.rewards,
                                    contexts=closed.contexts, params=closed.params)
    probe_inputs = task.probe_inputs(trace.inputs)
    outputs = probe(machine, trace, probe_inputs, memory_budget=memory_budget, progress=progress)
    probs = policy_probabilities(outputs, policy).to(torch.float64)
    correct = trace.params["correct"].to(probs.device)
    q = correct_action_probability(probs, correct)
    r_context = expected_context_reward(q, task.p_correct, task.p_incorrect)
    r_mean = expected_reward(q, task.p_correct, task.p_incorrect)
    n_ep, n_t = trace.n_episodes, trace.n_steps
    coords = _coords(n_ep, n_t) | {
        "context": np.arange(task.n_contexts), "action": np.arange(task.n_actions)
    }
    ds = xr.Dataset(
        {
            "q": (("episode", "t", "context"), _np(q)),
            "policy": (("episode", "t", "context", "action"), _np(probs)),
            "expected_reward_context": (("episode", "t", "context"), _np(r_context)),
            "expected_reward": (("episode", "t"), _np(r_mean)),
            "correct": (("episode", "context"), _np(correct)),
            "action_taken": (("episode", "t"), _np(trace.actions)),
            "reward": (("episode", "t"), _np(trace.rewards)),
        },
        coords=coords,
    )
    if trace.contexts is not None:
        ds["context_shown"] = (("episode", "t"), _np(trace.contexts))
    ds["return_score"] = ds["expected_reward_context"].mean("t")
    ordered, order = order_contexts(ds["q"], score=ds["return_score"])
    ds["q_ordered"] = ordered
    ds["context_order"] = order
    ds.attrs = _attrs("context_dynamics", task, n_episodes=n_ep, n_steps=n_t, seed=seed,
                      replayed=replayed, machine=type(machine).__name__)
    _describe(ds, {
        "q": "probability of the correct action when shown context c (q_c(t))",
        "expected_reward_context": "E[r_c(t)] (eq. 12)",
        "expected_reward": "E[r(t)] (eq. 13)",
        "return_score": "R_c = E_t E[r_c(t)] (eq. 14)",
        "q_ordered": "q of the k-th learned context (ranked by R_c)",
        "context_order": "original context index at each rank",
    })
    return ds


# --- helpers -------------------------------------------------------------------------------


def _check_task(task: Any, cls: type, name: str) -> None:
    if not isinstance(task, cls):
        raise TypeError(f"task: expected a {name}, got {type(task).__name__}")


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
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (1, task.output_size):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(
            f"machine: expected outputs of shape [batch, {task.output_size}] for "
            f"{type(task).__name__}, got {shape} for a batch of 1"
        )
    return device, dtype


def _check_episodes(episodes: Episodes, task: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(episodes, Episodes):
        raise TypeError(f"episodes: expected Episodes, got {type(episodes).__name__}")
    if episodes.inputs.dim() != 3 or episodes.inputs.shape[-1] != task.input_size:
        raise ValueError(
            f"episodes: expected inputs [E, T, {task.input_size}], "
            f"got {tuple(episodes.inputs.shape)}"
        )
    missing = [k for k in keys if k not in episodes.params]
    if missing:
        raise ValueError(
            f"episodes: expected params {list(keys)}, missing {missing} "
            f"(got {sorted(episodes.params)})"
        )


def _coords(n_episodes: int, n_steps: int) -> dict[str, np.ndarray]:
    return {"episode": np.arange(n_episodes), "t": np.arange(1, n_steps + 1)}


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def _attr_value(value: Any) -> Any:
    """A netCDF-storable attribute: str, int, float or a list of numbers."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, torch.Generator):
        return "torch.Generator"
    if isinstance(value, torch.Tensor | np.ndarray | list | tuple):
        arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
        if arr.dtype.kind in "biuf":
            return arr.astype(float).ravel().tolist()
    return repr(value)


def _attrs(measure: str, task: Any, **config: Any) -> dict[str, Any]:
    from trajprobe import __version__

    attrs: dict[str, Any] = {"measure": measure, "trajprobe_version": __version__,
                             "task": type(task).__name__}
    for f in dataclasses.fields(task):
        attrs[f"task_{f.name}"] = _attr_value(getattr(task, f.name))
    for key, value in config.items():
        attrs[key] = _attr_value(value)
    return attrs


def _describe(ds: xr.Dataset, descriptions: dict[str, str]) -> None:
    for name, text in descriptions.items():
        ds[name].attrs["description"] = text

