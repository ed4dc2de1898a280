"""Fourier projections of a probed function (Rabinowitz 2019 §4.1.2, eq. 10, footnotes 1–2).

Pure functions on tensors: they apply equally to a meta-learner probed at step t and to
an SGD learner probed after t updates.
"""

from __future__ import annotations

import torch

from trajprobe.validation import check_positive_int

__all__ = ["fourier_coefficients", "fourier_grid", "fourier_projection", "spectral_energy_ratio"]


def fourier_grid(
    n_points: int = 40,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The paper's probe grid ``[n_points]`` on [-0.5, 0.5] (footnote 1).

    ``n_points + 1`` equispaced points over [-0.5, 0.5], the last dropped (so the grid is
    one period of a 1-periodic function), then centred to zero mean. For 40 points:
    -0.4875, -0.4625, ..., 0.4875.
    """
    check_positive_int(n_points, "n_points")
    x = torch.linspace(-0.5, 0.5, n_points + 1, dtype=torch.float64)[:-1]
    return (x - x.mean()).to(dtype=dtype, device=device)


def fourier_coefficients(values: torch.Tensor, n_modes: int) -> torch.Tensor:
    """Complex Fourier coefficients of frequencies k = 1..K from values on the grid.

    Args:
        values: ``[..., N]`` a function's values on :func:`fourier_grid` (N points).
        n_modes: K; needs K < N / 2 so no mode aliases.

    Returns:
        ``[..., K]`` complex: the DFT ``Σ_n values_n e^{-2πi k n / N}`` for k = 1..K.
    """
    check_positive_int(n_modes, "n_modes")
    n_points = values.shape[-1]
    if 2 * n_modes >= n_points:
        raise ValueError(
            f"n_modes: expected K < N/2 = {n_points / 2} for {n_points} grid points, got {n_modes}"
        )
    return torch.fft.rfft(values, dim=-1)[..., 1 : n_modes + 1]


def fourier_projection(coefficients: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """q_k = Re⟨ĝ_k, g_k⟩ / |g_k|² with ⟨f, g⟩ = f g* (eq. 10).

    Equals 1 when amplitude and phase of mode k match the target's. Both coefficient
    sets must come from the same grid (any common phase factor cancels). A target mode
    with zero energy (a stop band) gives NaN or ±inf.

    Args:
        coefficients: ``[..., K]`` complex, the probed function's ĝ_k.
        target: ``[..., K]`` complex, the ground truth g_k (broadcast against the first).
    """
    return (coefficients * target.conj()).real / target.abs().square()


def spectral_energy_ratio(coefficients: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|ĝ_k|² / |g_k|², the phase-blind variant of eq. 10 (footnote 2)."""
    return coefficients.abs().square() / target.abs().square()
