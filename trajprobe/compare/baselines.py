"""Familiar representational-similarity measures, reported beside the simulation map.

Both compare two sets of state vectors recorded on the same inputs, row i of ``x`` and
row i of ``y`` being the two machines' states after the same history.

* Linear CKA (Kornblith et al. 2019): ‖Yᶜᵀ Xᶜ‖²_F / (‖Xᶜᵀ Xᶜ‖_F ‖Yᶜᵀ Yᶜ‖_F) with Xᶜ, Yᶜ the
  column-centred sets. 1 for sets equal up to an orthogonal transform, isotropic scaling
  and translation; in [0, 1].
* Orthogonal Procrustes distance (Williams et al. 2021, "generalized shape metrics"):
  with Xᶜ, Yᶜ centred, scaled to unit Frobenius norm and the narrower zero-padded to the
  wider, min over orthogonal Q of ‖Xᶜ − Yᶜ Q‖_F = sqrt(2 − 2 ‖Xᶜᵀ Yᶜ‖_*) (‖·‖_* the
  nuclear norm). 0 for sets equal up to rotation/reflection, isotropic scaling and
  translation; at most √2. A metric on those equivalence classes.

Neither is invariant to a general invertible linear map, which the learned simulation
map is; that is why they sit beside D_s and D_o rather than replace them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import xarray as xr

from trajprobe.validation import as_tensor

__all__ = ["linear_cka", "procrustes_distance"]


def _pair(
    x: torch.Tensor | np.ndarray | xr.DataArray, y: torch.Tensor | np.ndarray | xr.DataArray
) -> tuple[torch.Tensor, torch.Tensor]:
    xs = as_tensor(x, "x").detach().to("cpu", torch.float64)
    ys = as_tensor(y, "y").detach().to("cpu", torch.float64)
    if xs.dim() != 2:
        raise ValueError(f"x: expected state vectors [sample, feature], got {tuple(xs.shape)}")
    if ys.dim() != 2:
        raise ValueError(f"y: expected state vectors [sample, feature], got {tuple(ys.shape)}")
    if xs.shape[0] != ys.shape[0]:
        raise ValueError(
            f"y: expected {xs.shape[0]} samples (as x, one per shared history), got {ys.shape[0]}"
        )
    if xs.shape[0] < 2:
        raise ValueError(f"x: expected at least 2 samples, got {xs.shape[0]}")
    for name, value in (("x", xs), ("y", ys)):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name}: expected finite state vectors, got NaN or inf")
    return xs - xs.mean(0), ys - ys.mean(0)


def linear_cka(
    x: torch.Tensor | np.ndarray | xr.DataArray, y: torch.Tensor | np.ndarray | xr.DataArray
) -> float:
    """Linear centred kernel alignment between state sets ``x`` ``[N, S_x]`` and ``y`` ``[N, S_y]``.

    Returns:
        CKA in [0, 1]; NaN if either set is constant.
    """
    xc, yc = _pair(x, y)
    cross = torch.linalg.matrix_norm(yc.T @ xc) ** 2
    norm = torch.linalg.matrix_norm(xc.T @ xc) * torch.linalg.matrix_norm(yc.T @ yc)
    if float(norm) == 0.0:
        return math.nan
    return float((cross / norm).clamp(0.0, 1.0))


def procrustes_distance(
    x: torch.Tensor | np.ndarray | xr.DataArray, y: torch.Tensor | np.ndarray | xr.DataArray
) -> float:
    """Orthogonal Procrustes distance between ``x`` ``[N, S_x]`` and ``y`` ``[N, S_y]``.

    Returns:
        sqrt(2 − 2‖Xᶜᵀ Yᶜ‖_*) in [0, √2] for unit-norm centred sets (module docstring);
        NaN if either set is constant.
    """
    xc, yc = _pair(x, y)
    nx, ny = torch.linalg.matrix_norm(xc), torch.linalg.matrix_norm(yc)
    if float(nx) == 0.0 or float(ny) == 0.0:
        return math.nan
    xc, yc = xc / nx, yc / ny
    width = max(xc.shape[1], yc.shape[1])
    xc = torch.nn.functional.pad(xc, (0, width - xc.shape[1]))
    yc = torch.nn.functional.pad(yc, (0, width - yc.shape[1]))
    nuclear = torch.linalg.matrix_norm(xc.T @ yc, ord="nuc")
    return float(torch.sqrt((2.0 - 2.0 * nuclear).clamp_min(0.0)))
