"""Effective linear maps and spectra (Rabinowitz 2019 §3, eq. 3 and 5).

Pure functions on tensors: the probe set may come from a meta-learner probed at step t
(x = counterfactual inputs, y = its outputs) or from an SGD learner's minibatch.
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["effective_map", "effective_spectrum", "spectrum_ratio"]


def effective_map(
    x: torch.Tensor, y: torch.Tensor, *, fit_intercept: bool = True
) -> torch.Tensor:
    """Least-squares effective map Ŵ with y ≈ Ŵ x (+ b) over a probe set (§3.2.3).

    Solves every leading batch independently, in one batched ``torch.linalg.lstsq``.

    Args:
        x: ``[..., N, dx]`` probe inputs (N probe points).
        y: ``[..., N, dy]`` the outputs on them (leading axes as ``x``, or broadcastable).
        fit_intercept: also fit an offset b (not returned). The paper fits ŷ ≈ Ŵx; with
            an intercept a constant output bias does not leak into Ŵ. Either way an exactly
            linear map is recovered exactly.

    Returns:
        Ŵ ``[..., dy, dx]``.

    Raises:
        ValueError: shapes that do not match, or fewer probes than unknowns per output
            (N < dx, or N < dx + 1 with an intercept), or a rank-deficient probe set.
    """
    if x.dim() < 2 or y.dim() < 2:
        raise ValueError(
            f"x, y: expected shapes [..., N, dx] and [..., N, dy], "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.shape[-2] != y.shape[-2]:
        raise ValueError(
            f"y: expected the same number of probes N = {x.shape[-2]} as x, "
            f"got shape {tuple(y.shape)} for x {tuple(x.shape)}"
        )
    n_probes, dx = x.shape[-2:]
    if fit_intercept:
        x = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
    unknowns = x.shape[-1]
    if n_probes < unknowns:
        raise ValueError(
            f"x: a probe set of N = {n_probes} points cannot determine a fit with {unknowns} "
            f"unknowns per output (dx = {dx}{' + intercept' if fit_intercept else ''}); "
            f"use at least {unknowns} probes"
        )
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    y = y.to(x.dtype)
    batch = torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    x = x.expand(*batch, *x.shape[-2:])
    y = y.expand(*batch, *y.shape[-2:])
    if x.device.type == "cpu":
        sol = torch.linalg.lstsq(x, y, driver="gelsd")
        if sol.rank.numel() and bool((sol.rank < unknowns).any()):
            raise ValueError(
                f"x: the probe set is rank-deficient (rank {int(sol.rank.min())} < {unknowns} "
                "unknowns) for at least one fit; use distinct, spread-out probe points"
            )
        w = sol.solution
    else:
        w = torch.linalg.lstsq(x, y).solution
    if not bool(torch.isfinite(w).all()):
        warnings.warn("effective_map: the fit produced NaN or inf", RuntimeWarning, stacklevel=2)
    return w[..., :dx, :].mT


def effective_spectrum(
    w_hat: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """ŝ = diag(Uᵀ Ŵ V): Ŵ projected on the target's singular modes (eq. 3, 5).

    Args:
        w_hat: ``[..., dy, dx]`` effective maps.
        u: ``[..., dy, K]`` left singular vectors of the target (columns), broadcast
            against ``w_hat``'s leading axes (e.g. ``[E, 1, dy, K]`` for ``[E, T, dy, dx]``).
        v: ``[..., dx, K]`` right singular vectors (columns).

    Returns:
        ŝ ``[..., K]``: ŝ_k = u_kᵀ Ŵ v_k. Off-diagonal terms are ignored, as in the paper.
    """
    if w_hat.dim() < 2 or u.shape[-2] != w_hat.shape[-2] or v.shape[-2] != w_hat.shape[-1]:
        raise ValueError(
            f"u, v: expected [..., {w_hat.shape[-2] if w_hat.dim() >= 2 else 'dy'}, K] and "
            f"[..., {w_hat.shape[-1] if w_hat.dim() >= 2 else 'dx'}, K] for w_hat "
            f"{tuple(w_hat.shape)}, got {tuple(u.shape)} and {tuple(v.shape)}"
        )
    if u.shape[-1] != v.shape[-1]:
        raise ValueError(
            f"v: expected K = {u.shape[-1]} columns like u, got shape {tuple(v.shape)}"
        )
    return torch.einsum("...ik,...ij,...jk->...k", u.to(w_hat.dtype), w_hat, v.to(w_hat.dtype))


def spectrum_ratio(s_hat: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """q_k = ŝ_k / s_k, the proportion of each target singular value learned (§3.1.3).

    ``s`` broadcasts against ``s_hat`` (``[E, 1, K]`` against ``[E, T, K]``). A zero
    singular value gives NaN or ±inf.
    """
    return s_hat / s.to(s_hat.dtype)
