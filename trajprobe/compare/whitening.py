"""Whitening of state vectors: PCA to the numerical rank, unit variance per component.

Each machine's state vectors s ``[S]`` (fitted on training episodes): principal
components of the centred states, every component whose variance is above
``rank_tolerance`` × the largest kept (the numerical rank r; the others are null
directions), each scaled to unit variance, z = (s − μ) Vᵀ / √λ ``[r]``. The first k ≤ r
components, the fewest that explain ``explained_variance`` of the variance, are the
*reported* coordinates on which D_s is measured (the embedding dimension).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["Whitening", "as_states", "check_fraction"]


def check_fraction(value: float, name: str, *, closed_right: bool = False) -> float:
    """``value`` as a float in (0, 1) (or (0, 1] with ``closed_right``); else ValueError."""
    ok = 0 < value <= 1 if closed_right else 0 < value < 1
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok:
        bounds = "(0, 1]" if closed_right else "(0, 1)"
        raise ValueError(f"{name}: expected a number in {bounds}, got {value!r}")
    return float(value)


def as_states(states, name: str) -> np.ndarray:
    """``[E, T, S]`` (or ``[N, S]``) float64 array, finite."""
    if isinstance(states, torch.Tensor):
        states = states.detach().to("cpu", torch.float64).numpy()
    out = np.asarray(states, dtype=np.float64)
    if out.ndim not in (2, 3):
        raise ValueError(f"{name}: expected shape [episode, t, S] or [N, S], got {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: state vectors contain NaN or inf")
    return out


class Whitening:
    """PCA to the numerical rank, then unit variance per component (module docstring).

    Args:
        explained_variance: the reported components are the fewest k whose variances sum
            to at least this share of the total (1 = all r).
        rank_tolerance: components with variance ≤ this × the largest are null directions
            (dropped; mapped back at their mean).

    Fitted attributes:
        mean_ ``[S]``, components_ ``[r, S]`` (orthonormal rows), variance_ ``[r]``,
        explained_variance_ratio_ ``[r]``, rank_ (r), n_components_ (k),
        condition_number_ (√(λ_1/λ_r); inf when r = 0), total_variance_.
    """

    def __init__(self, *, explained_variance: float = 0.99, rank_tolerance: float = 1e-8):
        self.explained_variance = check_fraction(explained_variance, "explained_variance",
                                                 closed_right=True)
        self.rank_tolerance = check_fraction(rank_tolerance, "rank_tolerance")

    def fit(self, states) -> Whitening:
        """Fit on ``states`` ``[N, S]`` (or ``[E, T, S]``, flattened)."""
        x = as_states(states, "states")
        x = x.reshape(-1, x.shape[-1])
        if x.shape[0] < 2:
            raise ValueError(f"states: expected at least 2 states to whiten, got {x.shape[0]}")
        self.mean_ = x.mean(0)
        # Eigenvectors of the S × S covariance (torch: its thread setting is respected, and
        # an S × S problem is far cheaper than the SVD of the N × S data).
        xc = torch.as_tensor(x - self.mean_)
        evals, evecs = torch.linalg.eigh(xc.T @ xc / (x.shape[0] - 1))
        variance = evals.flip(0).clamp_min(0.0).numpy()
        vt = evecs.flip(1).T.numpy()
        self.total_variance_ = float(variance.sum())
        top = float(variance[0]) if variance.size else 0.0
        keep = variance > self.rank_tolerance * top if top > 0 else np.zeros_like(variance, bool)
        self.rank_ = int(keep.sum())
        self.components_ = vt[: self.rank_]
        self.variance_ = variance[: self.rank_]
        ratio = self.variance_ / self.total_variance_ if self.rank_ else self.variance_
        self.explained_variance_ratio_ = ratio
        cumulative = np.cumsum(ratio)
        k = int(np.searchsorted(cumulative, self.explained_variance * (1 - 1e-12)) + 1)
        self.n_components_ = min(k, self.rank_)
        self.condition_number_ = (math.sqrt(self.variance_[0] / self.variance_[-1])
                                  if self.rank_ else math.inf)
        return self

    def transform(self, states) -> np.ndarray:
        """States ``[..., S]`` → whitened coordinates ``[..., r]``."""
        x = torch.as_tensor(np.asarray(states, dtype=np.float64) - self.mean_)
        return (x @ torch.as_tensor(self.components_.T / np.sqrt(self.variance_))).numpy()

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """Whitened coordinates ``[..., r]`` → states ``[..., S]`` (null directions at the mean)."""
        back = torch.as_tensor(np.sqrt(self.variance_)[:, None] * self.components_)
        return (torch.as_tensor(np.asarray(z, dtype=np.float64)) @ back).numpy() + self.mean_
