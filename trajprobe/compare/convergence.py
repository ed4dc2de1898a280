"""Convergence across training runs and checkpoints (Mikulik et al. 2020 §3.3, §4.2, Fig. 2).

Several training runs (same architecture, different seeds) are saved at the same
checkpoints. Every agent — each (run, checkpoint) plus the Bayes-optimal reference — is
compared with every other by a behavioural distance, and the distance matrix is embedded
in 2-D by metric multidimensional scaling (scikit-learn ``MDS``, precomputed
dissimilarities), so each run becomes a curve that ideally ends at the reference.

* Prediction tasks: d(i, j) = (1/K) Σ_k Σ_t JS(π_t^i ‖ π_t^j), the Jensen–Shannon
  divergence (footnote 5) between predictive distributions on K shared input histories,
  summed over steps like eq. 2 (:func:`prediction_convergence`).
* Bandit tasks: d(i, j) = |R^i − R^j|, the absolute difference of the mean cumulative
  regrets (:func:`regret_convergence`).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from sklearn.manifold import MDS

from trajprobe import machine as sm
from trajprobe._version import __version__
from trajprobe.compare.alignment import check_aligned
from trajprobe.compare.behaviour import DEFAULT_QUADRATURE_POINTS, distribution_of, js_divergence
from trajprobe.traces import rollout
from trajprobe.validation import as_tensor

__all__ = ["mds_embedding", "prediction_convergence", "regret_convergence"]


def _grid(machines: Sequence[Sequence[sm.StateMachine]]) -> tuple[int, int]:
    if isinstance(machines, sm.StateMachine) or not len(machines):
        raise ValueError("machines: expected runs × checkpoints, a non-empty list of lists")
    n_ckpt = {len(run) for run in machines}
    if len(n_ckpt) != 1 or 0 in n_ckpt:
        raise ValueError(
            "machines: expected every run to have the same (positive) number of checkpoints, "
            f"got {[len(run) for run in machines]}"
        )
    return len(machines), n_ckpt.pop()


def mds_embedding(distance: np.ndarray, *, seed: int = 0, n_init: int = 4) -> np.ndarray:
    """2-D metric MDS of a symmetric distance matrix ``[N, N]`` → ``[N, 2]`` (scikit-learn)."""
    distance = np.asarray(distance, dtype=np.float64)
    if distance.ndim != 2 or distance.shape[0] != distance.shape[1]:
        raise ValueError(f"distance: expected a square matrix [N, N], got {distance.shape}")
    if not np.allclose(distance, distance.T) or (distance < 0).any():
        raise ValueError("distance: expected a symmetric matrix of non-negative distances")
    params = inspect.signature(MDS).parameters
    if "metric_mds" in params:  # scikit-learn >= 1.8: metric= names the dissimilarity
        mds = MDS(n_components=2, metric_mds=True, metric="precomputed", init="random",
                  n_init=n_init, random_state=seed)
    else:
        mds = MDS(n_components=2, metric=True, dissimilarity="precomputed", n_init=n_init,
                  random_state=seed)
    return mds.fit_transform(distance)


def _dataset(distance: np.ndarray, n_runs: int, n_ckpt: int, checkpoints, seed: int,
             measure: str) -> xr.Dataset:
    n = n_runs * n_ckpt
    emb = mds_embedding(distance, seed=seed)
    pair = distance[:n, :n].reshape(n_runs, n_ckpt, n_runs, n_ckpt)
    ckpt = np.arange(n_ckpt) if checkpoints is None else np.asarray(checkpoints)
    if ckpt.shape != (n_ckpt,):
        raise ValueError(f"checkpoints: expected {n_ckpt} labels, got {ckpt.shape[0]}")
    return xr.Dataset(
        {
            "distance": (("run", "checkpoint", "other_run", "other_checkpoint"), pair),
            "distance_to_reference": (("run", "checkpoint"),
                                      distance[:n, n].reshape(n_runs, n_ckpt)),
            "embedding": (("run", "checkpoint", "mds_axis"), emb[:n].reshape(n_runs, n_ckpt, 2)),
            "reference_embedding": (("mds_axis",), emb[n]),
        },
        coords={
            "run": np.arange(n_runs), "checkpoint": ckpt,
            "other_run": np.arange(n_runs), "other_checkpoint": ckpt,
            "mds_axis": [0, 1],
        },
        attrs={"measure": measure, "mds_seed": seed, "trajprobe_version": __version__},
    )


def prediction_convergence(
    machines: Sequence[Sequence[sm.StateMachine]],
    reference: sm.StateMachine,
    inputs: torch.Tensor | np.ndarray | xr.DataArray,
    *,
    checkpoints: Sequence | None = None,
    seed: int = 0,
    n_points: int = DEFAULT_QUADRATURE_POINTS,
) -> xr.Dataset:
    """Pairwise Jensen–Shannon distances and their MDS embedding (prediction tasks).

    Args:
        machines: ``machines[r][c]`` is run r at checkpoint c; all with ``distribution``.
        reference: the Bayes-optimal machine (with ``distribution``).
        inputs: ``[K, T, ...]`` shared input histories.
        checkpoints: labels of the checkpoints (e.g. training steps); 0..C−1 if None.
        seed: MDS random state.
        n_points: quadrature nodes for continuous predictive distributions.

    Returns:
        Dataset with ``distance (run, checkpoint, other_run, other_checkpoint)``,
        ``distance_to_reference (run, checkpoint)``, ``embedding (run, checkpoint,
        mds_axis)`` and ``reference_embedding (mds_axis)``.
    """
    n_runs, n_ckpt = _grid(machines)
    agents = [m for run in machines for m in run] + [reference]
    traces = [rollout(m, inputs) for m in agents]
    for i, trace in enumerate(traces[1:], start=1):
        check_aligned(traces[0], trace, ("agent0", f"agent{i}"))
    dists = [
        distribution_of(m, tr.outputs.flatten(0, 1).detach().to(torch.float64), f"machines[{i}]")
        for i, (m, tr) in enumerate(zip(agents, traces, strict=True))
    ]
    n_ep = traces[0].n_episodes
    distance = np.zeros((len(agents), len(agents)))
    for i in range(len(agents)):
        for j in range(i + 1, len(agents)):
            js = js_divergence(dists[i], dists[j], n_points=n_points)
            value = float(js.reshape(n_ep, -1).sum(1).mean())
            distance[i, j] = distance[j, i] = value
    return _dataset(distance, n_runs, n_ckpt, checkpoints, seed,
                    "(1/K) sum_k sum_t JS(pi_t^i || pi_t^j)")


def regret_convergence(
    cumulative_regret: torch.Tensor | np.ndarray | xr.DataArray,
    reference_regret: float | torch.Tensor | np.ndarray,
    *,
    checkpoints: Sequence | None = None,
    seed: int = 0,
) -> xr.Dataset:
    """Pairwise |cumulative regret difference| and its MDS embedding (bandit tasks).

    Args:
        cumulative_regret: ``[run, checkpoint]`` mean cumulative regret at the end of the
            episode, or ``[run, checkpoint, episode]`` (averaged over episodes).
        reference_regret: the Bayes-optimal agent's mean cumulative regret (scalar) or
            its per-episode values ``[episode]``.
        checkpoints, seed: as in :func:`prediction_convergence`.

    Returns:
        Dataset as :func:`prediction_convergence`, with d(i, j) = |R^i − R^j|.
    """
    regrets = as_tensor(cumulative_regret, "cumulative_regret",
                        dims=("run", "checkpoint")).to("cpu", torch.float64).numpy()
    if regrets.ndim == 3:
        regrets = regrets.mean(2)
    if regrets.ndim != 2:
        raise ValueError(
            "cumulative_regret: expected shape [run, checkpoint] or [run, checkpoint, episode], "
            f"got {regrets.shape}"
        )
    ref = float(np.mean(np.asarray(reference_regret, dtype=np.float64)))
    values = np.concatenate([regrets.reshape(-1), [ref]])
    if not np.isfinite(values).all():
        raise ValueError("cumulative_regret: expected finite regrets, got NaN or inf")
    distance = np.abs(values[:, None] - values[None, :])
    return _dataset(distance, regrets.shape[0], regrets.shape[1], checkpoints, seed,
                    "|R^i - R^j|, mean cumulative regret")
