"""A learner against the exact posterior, in bits: the Bayesian wind tunnels' measure.

Agarwal, Dalal & Misra (2025) score a learner on a task with a closed-form posterior by
its entropy error per position, |H(machine) − H(Bayes)|. That error can be near 0 while
the predictive is wrong (any permutation of the right probabilities has the right
entropy), so :func:`posterior_error` reports the KL divergence from the Bayes predictive
beside it:

    KL_t = KL(π_t^Bayes ‖ π_t^machine) / ln 2        (bits; Mikulik et al. 2020, eq. 2's summand)
    ΔH_t = |H(π_t^machine) − H(π_t^Bayes)| / ln 2     (bits; the paper's entropy error)

per episode and position t (the prediction after t − 1 observations), then mean ± s.e.
over episodes (:func:`trajprobe.dynamics.mean_sem`). Both machines see the same episodes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch.distributions import Distribution

from trajprobe import machine as sm
from trajprobe._version import __version__
from trajprobe.dynamics import mean_sem
from trajprobe.labelled import Label, describe, to_numpy
from trajprobe.randomness import Seed
from trajprobe.task_protocol import Episodes
from trajprobe.traces import histories, rollout

__all__ = ["posterior_error"]

_LN2 = math.log(2.0)


def posterior_error(
    machine: sm.StateMachine,
    task: Any,
    *,
    episodes: int | Episodes = 100,
    steps: int = 20,
    seed: Seed = 0,
    bayes: sm.StateMachine | None = None,
    device: torch.device | str | None = None,
) -> xr.Dataset:
    """KL(Bayes ‖ machine) and the entropy error, in bits, at every position (module doc).

    Args:
        machine: any machine with ``distribution(y)`` (its predictive distribution).
        task: an open-loop task; it supplies the Bayes machine (``task.bayes_machine``,
            as the wind tunnels of :mod:`trajprobe.tasks.wind_tunnels` do) unless
            ``bayes`` is given.
        episodes: E, episodes to draw from ``task``, or given :class:`Episodes`.
        steps: T, positions per episode (ignored for given episodes).
        seed: draws the episodes (same seed, same numbers).
        bayes: the exact Bayes machine (default: ``task.bayes_machine(device=device)``);
            it must read the same inputs as ``machine`` and have ``distribution``.
        device: where the episodes are drawn and the Bayes machine of the task runs
            (default: the machine's device for the episodes, the CPU for the Bayes machine).

    Returns:
        Dataset with dims ``episode, t`` (t = 1..T): ``kl``, ``entropy_error``,
        ``entropy`` (the machine's) and ``bayes_entropy`` ``(episode, t)``, all in bits;
        ``kl_mean``/``kl_sem``, ``entropy_error_mean``/``entropy_error_sem``,
        ``entropy_mean`` and ``bayes_entropy_mean`` ``(t)`` over episodes; and
        ``average_kl``, ``average_entropy_error`` ``()`` with their ``_sem``: every
        episode's mean over positions, then mean ± s.e. over episodes. The KL is 0 iff
        the predictives agree, ``inf`` where the machine gives probability 0 to what Bayes
        allows; ``entropy`` is NaN for a distribution without ``entropy()``.

    Raises:
        ValueError: ``machine`` or ``bayes`` has no ``distribution``; the task supplies
            no Bayes machine and none is given; the task is an environment.
    """
    _check_has_distribution(machine, "machine")
    if bayes is None:
        bayes = _bayes_of(task, device)
    _check_has_distribution(bayes, "bayes")
    run, trace = histories(machine, task, episodes=episodes, steps=steps, seed=seed,
                           device=device)
    if run.targets is None:
        raise ValueError(f"task: posterior_error needs an open-loop task (the same inputs for "
                         f"both machines), got the environment {type(task).__name__}")
    reference = rollout(bayes, run.inputs)
    kl, h_machine, h_bayes = _per_position(bayes, reference.outputs, machine, trace.outputs)
    return _dataset(kl, h_machine, h_bayes, machine, bayes, task, seed)


def _check_has_distribution(machine: Any, name: str) -> None:
    if not callable(getattr(machine, "distribution", None)):
        raise ValueError(f"{name}: expected a machine with distribution(y) -> torch."
                         f"distributions.Distribution (its predictive), got "
                         f"{type(machine).__name__}; wrap a network with distribution=... "
                         "(trajprobe.adapters.wrap, trajprobe.heads)")


def _bayes_of(task: Any, device: torch.device | str | None) -> sm.StateMachine:
    make = getattr(task, "bayes_machine", None)
    if not callable(make):
        raise ValueError(f"bayes: {type(task).__name__} supplies no Bayes machine (it has no "
                         "bayes_machine()); pass bayes=<the exact Bayes machine>, e.g. "
                         "BayesianLinearRegression.from_task(task)")
    return make(device=device)


def _distribution(machine: Any, y: torch.Tensor, name: str) -> Distribution:
    dist = machine.distribution(y.detach().to(torch.float64).flatten(0, 1))
    if not isinstance(dist, Distribution) or tuple(dist.batch_shape) != (y.shape[0] * y.shape[1],):
        raise ValueError(f"{name}: distribution(y) must return a torch.distributions."
                         f"Distribution with one prediction per (episode, t), got "
                         f"{type(dist).__name__} with batch shape "
                         f"{tuple(getattr(dist, 'batch_shape', ()))}")
    return dist


def _entropy(dist: Distribution) -> torch.Tensor:
    try:
        return dist.entropy()
    except NotImplementedError:
        return torch.full(dist.batch_shape, math.nan, dtype=torch.float64)


def _per_position(bayes: Any, y_bayes: torch.Tensor, machine: Any, y_machine: torch.Tensor
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KL(Bayes ‖ machine), H(machine), H(Bayes) ``[E, T]`` in bits (float64)."""
    from trajprobe.compare.behaviour import kl  # the closed forms, else quadrature

    shape = tuple(y_machine.shape[:2])
    p = _distribution(bayes, y_bayes.cpu(), "bayes")
    q = _distribution(machine, y_machine.cpu(), "machine")
    bits = [kl(p, q).clamp_min(0.0), _entropy(q), _entropy(p)]
    return tuple(to_numpy(b.reshape(shape)).astype(np.float64) / _LN2 for b in bits)


def _dataset(kl: np.ndarray, h_machine: np.ndarray, h_bayes: np.ndarray, machine: Any,
             bayes: Any, task: Any, seed: Seed) -> xr.Dataset:
    n_episodes, n_steps = kl.shape
    dims = ("episode", "t")
    ds = xr.Dataset(
        {"kl": (dims, kl), "entropy_error": (dims, np.abs(h_machine - h_bayes)),
         "entropy": (dims, h_machine), "bayes_entropy": (dims, h_bayes)},
        coords={"episode": np.arange(n_episodes), "t": np.arange(1, n_steps + 1)})
    for name in ("kl", "entropy_error"):
        ds[f"{name}_mean"], ds[f"{name}_sem"] = mean_sem(ds[name], "episode")
        ds[f"average_{name}"], ds[f"average_{name}_sem"] = mean_sem(ds[name].mean("t"),
                                                                    "episode")
    for name in ("entropy", "bayes_entropy"):
        ds[f"{name}_mean"] = ds[name].mean("episode")
    ds.attrs = {"measure": "posterior_error: KL(Bayes || machine) and |H(machine) - H(Bayes)|"
                           " in bits (Agarwal, Dalal & Misra 2025)",
                "task": repr(task), "machine": type(machine).__name__, "bayes": repr(bayes),
                "seed": seed if isinstance(seed, int) else repr(seed),
                "trajprobe_version": __version__}
    return describe(ds, _LABELS)


_KL = Label("KL(Bayes ‖ machine)", "bit", "KL(pi_t^Bayes || pi_t^machine) / ln 2")
_DH = Label("entropy error |H(machine) − H(Bayes)|", "bit",
            "|H(pi_t^machine) - H(pi_t^Bayes)| / ln 2 (Agarwal et al. 2025)")
_LABELS = {
    "kl": _KL, "entropy_error": _DH,
    "entropy": Label("entropy of the machine's predictive", "bit"),
    "bayes_entropy": Label("entropy of the Bayes predictive", "bit"),
    "kl_mean": Label("KL(Bayes ‖ machine), mean over episodes", "bit"),
    "kl_sem": Label("KL(Bayes ‖ machine), s.e. over episodes", "bit"),
    "entropy_error_mean": Label("entropy error, mean over episodes", "bit"),
    "entropy_error_sem": Label("entropy error, s.e. over episodes", "bit"),
    "entropy_mean": Label("entropy of the machine's predictive, mean over episodes", "bit"),
    "bayes_entropy_mean": Label("entropy of the Bayes predictive, mean over episodes", "bit"),
    "average_kl": Label("KL(Bayes ‖ machine) per position, mean over episodes", "bit"),
    "average_kl_sem": Label("KL(Bayes ‖ machine) per position, s.e. over episodes", "bit"),
    "average_entropy_error": Label("entropy error per position, mean over episodes", "bit"),
    "average_entropy_error_sem": Label("entropy error per position, s.e. over episodes", "bit"),
}
