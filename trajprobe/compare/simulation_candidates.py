"""The candidate maps of :class:`~.simulation_map.SimulationMap` and how one is chosen.

A simulation map is selected from a family of closed-form candidates (steps 2-4 of
:mod:`trajprobe.compare.simulation_map`): every :class:`Candidate` is an affine map
z_M ≈ z_N A + c between one coordinate option of each machine, either a point of the ridge
path (:func:`ridge_path`: the penalty λ‖β‖² on the source's unwhitened principal
coefficients, solved for every finite strength at once; λ = ∞ is the constant map to the
target's mean) or a constant map to a searched target state. Candidates are scored per
validation episode (:func:`per_episode`: NaN and ±inf count as +inf), and φ_o is chosen by
the one-standard-error rule (:func:`one_standard_error`): the most regularised candidate
whose mean loss is within one standard error of the paired differences
(:func:`selection_margin`) of the lowest, unless the lowest is already exact (≤
:data:`EXACT`). Nothing here knows about machines or outputs: losses come in as arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from trajprobe.dynamics import mean_sem

__all__ = [
    "EXACT",
    "Candidate",
    "RidgeSource",
    "one_standard_error",
    "per_episode",
    "ridge_path",
    "ridge_source",
    "selection_margin",
]

EXACT = 1e-12
"""A validation loss at or below this is exact: no MLP residual is tried."""


@dataclass
class Candidate:
    """A closed-form map: source option, target option, coefficients and intercept."""

    source: int
    target: int
    coef: np.ndarray  # [r_N, r_M]
    intercept: np.ndarray  # [r_M]
    strength: float  # relative ridge; inf for a constant
    state: np.ndarray | None = None  # [S_M] a constant's full target state (not projected)


@dataclass
class RidgeSource:
    """The source's half of a ridge path (:func:`ridge_source`): reused for every target
    fitted on the same source states (the time-shuffled null's)."""

    mean: np.ndarray  # [r_N]
    centred: torch.Tensor | None  # [N, r_N]; None when r_N = 0
    grams: torch.Tensor | None  # [L_finite, r_N, r_N] penalised Gram matrices
    finite: list[int]  # indices of the finite strengths
    n_strengths: int


def ridge_source(zs: np.ndarray, variance: np.ndarray, strengths: tuple[float, ...]
                 ) -> RidgeSource:
    """The centred whitened source ``zs`` ``[N, r_N]`` and its penalised Gram matrices
    Z_cᵀZ_c + (N − 1) s λ_1 diag(1 / λ_i), one per finite strength s (:func:`ridge_path`)."""
    ms, r_s = zs.mean(0), zs.shape[1]
    finite = [i for i, s in enumerate(strengths) if math.isfinite(s)]
    if not r_s or not finite:
        return RidgeSource(ms, None, None, finite, len(strengths))
    xs = torch.as_tensor(zs - ms)
    gram = xs.T @ xs
    scale = (zs.shape[0] - 1) * variance[0] / torch.as_tensor(variance)
    grams = torch.stack([gram + torch.diag(strengths[i] * scale) for i in finite])
    return RidgeSource(ms, xs, grams, finite, len(strengths))


def ridge_path(source: RidgeSource, zt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``[L, r_N, r_M]`` and intercepts ``[L, r_M]`` of the ridge path.

    Minimises ‖Z_c W − Y_c‖² + (N − 1) s λ_1 Σ_i ‖W_i‖² / λ_i over whitened source
    coordinates z_i = p_i / √λ_i, i.e. the ridge penalty on the unwhitened principal
    coefficients; s = ∞ gives W = 0 (the mean). ``source``: :func:`ridge_source` of the
    whitened source, computed once for every target ``zt`` ``[N, r_M]`` fitted on it.
    """
    ms, mt = source.mean, zt.mean(0)
    coef = np.zeros((source.n_strengths, ms.shape[0], zt.shape[1]))
    if source.centred is not None:
        rhs = source.centred.T @ torch.as_tensor(zt - mt)
        coef[source.finite] = torch.linalg.solve(
            source.grams, rhs.expand(len(source.finite), -1, -1)).numpy()
    return coef, mt - np.einsum("s,lst->lt", ms, coef)


def per_episode(values, n_candidates: int) -> np.ndarray:
    """Losses ``[C, V]`` (``[C]`` read as one column), NaN and ±inf mapped to +inf."""
    out = np.asarray(values, dtype=np.float64).reshape(n_candidates, -1)
    return np.where(np.isfinite(out), out, np.inf)


def selection_margin(values: np.ndarray) -> float:
    """One standard error of the mean of the paired differences ``values`` ``[V]``, the
    selection margin: :func:`trajprobe.dynamics.mean_sem`'s s.e., with its rules — NaN
    where a value is not finite, so every comparison against the margin fails and the
    candidate is not preferred — except for one value, where it is 0: one validation
    episode has no spread to allow for (mean_sem's NaN would exclude even the best)."""
    if values.size < 2:
        return 0.0
    return float(mean_sem(values)[1])


def one_standard_error(per: np.ndarray, candidates: list[Candidate]) -> int:
    """The most regularised candidate whose mean loss is within one standard error (over
    validation episodes, paired with the best) of the lowest: a constant map before any
    finite ridge, larger strengths before smaller; ties by loss. With heavy-tailed
    losses the noise is large and the choice falls back towards the constant map. An
    exact best (loss ≤ :data:`EXACT`) is kept as is."""
    mean = per.mean(1)
    best = int(np.argmin(mean))
    if not np.isfinite(mean[best]) or mean[best] <= EXACT:  # exact: no noise to guard
        return best
    within = [c for c in range(len(candidates)) if np.isfinite(mean[c])
              and mean[c] <= mean[best] + selection_margin(per[c] - per[best])]
    return max(within, key=lambda c: (candidates[c].strength, -mean[c]))
