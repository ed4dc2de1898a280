"""Nonlinear regression on random Fourier series (Rabinowitz 2019 §4).

g(x) = Σ_{k=1..K} a_k sin(2πkx + φ_k)  (eq. 9), φ_k ~ U[0, 2π), x ~ U[-0.5, 0.5],
y = g(x) + ε. Encoding (keep it): the input at step t is ``[x_t, y_{t-1}]`` (2 features,
y_0 = 0); the output is the prediction of y_t (1 feature).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr

from trajprobe.estimators.fourier import (
    fourier_coefficients,
    fourier_grid,
    fourier_projection,
    spectral_energy_ratio,
)
from trajprobe.labelled import Label, describe, to_numpy
from trajprobe.task_protocol import Episodes, Seed, make_generator
from trajprobe.tasks._sampling import rand, randn
from trajprobe.tasks.exchangeable import permute_examples
from trajprobe.validation import as_tensor, check_positive, check_positive_int

if TYPE_CHECKING:
    from trajprobe.task_protocol import Probed

__all__ = ["FourierRegression", "band_pass"]


def band_pass(n_modes: int, low: int, high: int) -> tuple[float, ...]:
    """Amplitudes with a_k = 1 for ``low <= k <= high`` and 0 otherwise (§4.2.4).

    ``band_pass(5, 3, 5)`` is the paper's band-pass set-up (a_3 = a_4 = a_5 = 1).
    """
    check_positive_int(n_modes, "n_modes")
    if not 1 <= low <= high <= n_modes:
        raise ValueError(f"low, high: expected 1 <= low <= high <= {n_modes}, got {low}, {high}")
    return tuple(1.0 if low <= k <= high else 0.0 for k in range(1, n_modes + 1))


@dataclass(frozen=True)
class FourierRegression:
    """Episodes of y_t = g(x_t) + ε_t with a new phase vector φ every episode.

    Args:
        n_modes: K, frequencies k = 1..K (paper: 5).
        noise_std: σ_ε.
        amplitudes: None for a_k = 1 (eq. 9); ``"uniform"`` for a_k ~ U[0, 1] drawn per
            episode (footnote 3); or K fixed non-negative amplitudes, e.g. a pass band
            from :func:`band_pass`.
        n_points: size of the probe grid (footnote 1: 40); needs K < n_points / 2.

    Episodes' ``params``: ``"phases"`` ``[E, K]`` and ``"amplitudes"`` ``[E, K]``.
    """

    n_modes: int = 5
    noise_std: float = 0.01
    amplitudes: Sequence[float] | str | None = None
    n_points: int = 40

    def __post_init__(self) -> None:
        check_positive_int(self.n_modes, "n_modes")
        check_positive(self.noise_std, "noise_std", strict=False)
        check_positive_int(self.n_points, "n_points")
        if 2 * self.n_modes >= self.n_points:
            raise ValueError(
                f"n_points: expected more than 2 * n_modes = {2 * self.n_modes} grid points, "
                f"got {self.n_points}"
            )
        amps = self.amplitudes
        if isinstance(amps, str):
            if amps != "uniform":
                raise ValueError(f"amplitudes: expected None, 'uniform' or {self.n_modes} "
                                 f"numbers, got {amps!r}")
        elif amps is not None:
            amps = tuple(float(a) for a in amps)
            if len(amps) != self.n_modes or not all(math.isfinite(a) and a >= 0 for a in amps):
                raise ValueError(
                    f"amplitudes: expected {self.n_modes} finite non-negative numbers, "
                    f"got {self.amplitudes!r}"
                )
            object.__setattr__(self, "amplitudes", amps)

    @property
    def input_size(self) -> int:
        """2: x_t and y_{t-1}."""
        return 2

    @property
    def output_size(self) -> int:
        """1: the prediction of y_t."""
        return 1

    @property
    def frequencies(self) -> torch.Tensor:
        """k = 1..K ``[K]`` (long)."""
        return torch.arange(1, self.n_modes + 1)

    def sample_params(
        self,
        n_episodes: int,
        *,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> dict[str, torch.Tensor]:
        """Phases φ ~ U[0, 2π) ``[E, K]`` then (if ``"uniform"``) amplitudes ``[E, K]``."""
        check_positive_int(n_episodes, "n_episodes")
        gen = make_generator(seed, device)
        shape = (n_episodes, self.n_modes)
        phases = 2 * math.pi * rand(shape, gen, device=device, dtype=dtype)
        if self.amplitudes == "uniform":
            amplitudes = rand(shape, gen, device=device, dtype=dtype)
        elif self.amplitudes is None:
            amplitudes = torch.ones(shape, device=phases.device, dtype=dtype)
        else:
            amplitudes = torch.tensor(self.amplitudes, device=phases.device, dtype=dtype)
            amplitudes = amplitudes.expand(shape).clone()
        return {"phases": phases, "amplitudes": amplitudes}

    def function(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """g(x) per episode (eq. 9): x ``[E, ...]`` to values ``[E, ...]``."""
        phases, amps = params["phases"], params["amplitudes"]
        if x.shape[0] != phases.shape[0]:
            raise ValueError(
                f"x: expected {phases.shape[0]} episodes leading, got shape {tuple(x.shape)}"
            )
        extra = (1,) * (x.dim() - 1)
        k = torch.arange(1, self.n_modes + 1, device=x.device, dtype=x.dtype)
        phases = phases.reshape(phases.shape[0], *extra, self.n_modes)
        amps = amps.reshape(amps.shape[0], *extra, self.n_modes)
        return (amps * torch.sin(2 * math.pi * k * x.unsqueeze(-1) + phases)).sum(-1)

    def sample(
        self,
        n_episodes: int,
        n_steps: int,
        *,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        params: dict[str, torch.Tensor] | None = None,
    ) -> Episodes:
        """Draw episodes: inputs ``[E, T, 2]``, targets y_t ``[E, T, 1]``.

        Draw order from one generator: phases, amplitudes (if random), x, ε. Given
        ``params`` (``"phases", "amplitudes"`` ``[E, K]``, e.g. a fixed task's), they are
        not drawn.
        """
        check_positive_int(n_steps, "n_steps")
        gen = make_generator(seed, device)
        if params is None:
            params = self.sample_params(n_episodes, seed=gen, device=device, dtype=dtype)
        x = rand((n_episodes, n_steps), gen, device=device, dtype=dtype) - 0.5
        noise = randn((n_episodes, n_steps), gen, device=device, dtype=dtype)
        y = self.function(params, x) + self.noise_std * noise
        return Episodes(inputs=self.encode(x, y), targets=y.unsqueeze(-1), params=params)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Inputs ``[E, T, 2]`` = [x_t, y_{t-1}] from x, y ``[E, T]`` (y_0 = 0)."""
        if x.dim() != 2 or x.shape != y.shape:
            raise ValueError(f"x, y: expected two tensors of shape [E, T], got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
        y_prev = torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], dim=1)
        return torch.stack([x, y_prev], dim=-1)

    def grid(
        self, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """The probe grid ``[n_points]`` (footnote 1)."""
        return fourier_grid(self.n_points, dtype=dtype, device=device)

    def probe_inputs(self, inputs: torch.Tensor | Episodes, n_probes: int | None = None, *,
                     seed: Seed = None) -> torch.Tensor:
        """Counterfactual inputs ``[E, T, n_points, 2]``: x_t replaced by every grid point,
        y_{t-1} kept from the history (§4.2.2). ``n_probes`` must be None or ``n_points``;
        nothing is drawn."""
        if n_probes is not None and n_probes != self.n_points:
            raise ValueError(f"n_probes: FourierRegression probes its grid of n_points = "
                             f"{self.n_points} points, got {n_probes}; set n_points instead")
        if isinstance(inputs, Episodes):
            inputs = inputs.inputs
        inputs = as_tensor(inputs, "inputs")
        if inputs.dim() != 3 or inputs.shape[-1] != 2:
            raise ValueError(f"inputs: expected shape [E, T, 2], got {tuple(inputs.shape)}")
        n_episodes, n_steps = inputs.shape[:2]
        grid = self.grid(dtype=inputs.dtype, device=inputs.device)
        x = grid.expand(n_episodes, n_steps, -1)
        y_prev = inputs[..., 1:2].expand(-1, -1, self.n_points)
        return torch.stack([x, y_prev], dim=-1)

    def permute_history(self, episodes: torch.Tensor | Episodes, t: int, *,
                        seed: Seed = None) -> torch.Tensor:
        """Inputs ``[E, T, 2]`` whose completed examples (x_i, y_i), i < t, are shuffled per
        episode, x_t left pending: the posterior after step t is unchanged
        (:func:`~trajprobe.tasks.exchangeable.permute_examples`; the sufficiency test's hook)."""
        inputs = episodes.inputs if isinstance(episodes, Episodes) else as_tensor(episodes,
                                                                                 "episodes")
        return permute_examples(inputs, t, 1, seed=seed)

    def target_coefficients(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Ground-truth g_k ``[E, K]`` (complex): the DFT of g on the probe grid, k = 1..K.

        In closed form, ``a_k N / (2i) · exp(i(2πk x_0 + φ_k))`` with x_0 the first grid
        point (exact for K < N/2), so a stop-band mode (a_k = 0) is exactly 0 rather than
        rounding noise.
        """
        phases, amps = params["phases"], params["amplitudes"]
        x0 = self.grid(dtype=phases.dtype, device=phases.device)[0]
        k = torch.arange(1, self.n_modes + 1, device=phases.device, dtype=phases.dtype)
        angle = 2 * math.pi * k * x0 + phases - math.pi / 2  # 1/i = exp(-iπ/2)
        return torch.polar(amps * self.n_points / 2, angle)

    def summarise(self, probed: Probed) -> xr.Dataset:
        """Fourier projections q_k(t) of the function computed at every step (eq. 10).

        The state after t-1 observations was probed on the paper's 40-point grid
        (footnote 1, keeping y_{t-1}); the DFT of the outputs gives ĝ_{k,t}, projected on
        the episode's true coefficients g_k.

        Returns:
            ``q (episode, t, mode)`` (eq. 10), ``energy_ratio (episode, t, mode)`` (footnote
            2), ``amplitude_hat (episode, t, mode)`` (|ĝ_k| in units of a_k, 2|DFT|/N),
            ``amplitudes, phases (episode, mode)``, ``function (episode, t, x)`` (the probed
            outputs), ``target_function (episode, x)`` and ``loss (episode, t)``. ``mode``
            is the frequency k = 1..K. Stop-band modes (a_k = 0) give NaN/inf in ``q`` and
            ``energy_ratio``.
        """
        values = probed.outputs[..., 0]
        params = probed.params
        coef = fourier_coefficients(values, self.n_modes)
        target = self.target_coefficients(params)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            q = fourier_projection(coef, target)
            energy = spectral_energy_ratio(coef, target)
        grid = self.grid(dtype=values.dtype, device=values.device)
        n_ep = values.shape[0]
        targets = probed.episodes.targets.to(device=values.device, dtype=values.dtype)
        loss = (probed.trace.outputs - targets).square().sum(-1)
        ds = xr.Dataset(
            {
                "q": (("episode", "t", "mode"), to_numpy(q)),
                "energy_ratio": (("episode", "t", "mode"), to_numpy(energy)),
                "amplitude_hat": (("episode", "t", "mode"),
                                  to_numpy(2 * coef.abs() / self.n_points)),
                "amplitudes": (("episode", "mode"), to_numpy(params["amplitudes"])),
                "phases": (("episode", "mode"), to_numpy(params["phases"])),
                "function": (("episode", "t", "x"), to_numpy(values)),
                "target_function": (("episode", "x"),
                                    to_numpy(self.function(params, grid.expand(n_ep, -1)))),
                "loss": (("episode", "t"), to_numpy(loss)),
            },
            coords={"mode": np.arange(1, self.n_modes + 1), "x": to_numpy(grid)},
            attrs={"measure": "fourier_spectra"},
        )
        return describe(ds, {
            "q": Label("Fourier projection q_k", "1", "Re<g_hat_k, g_k> / |g_k|^2 (eq. 10)"),
            "energy_ratio": Label("energy ratio |ĝ_k|² / |g_k|²", "1",
                                  "|g_hat_k|^2 / |g_k|^2 (footnote 2)"),
            "amplitude_hat": Label("amplitude |ĝ_k|", "1", "2|DFT_k| / N of the probed outputs"),
            "amplitudes": Label("target amplitude a_k", "1"),
            "phases": Label("target phase φ_k", "rad"),
            "function": Label("probed output ĝ_t(x)", "1"),
            "target_function": Label("target g(x)", "1"),
            "loss": Label("squared error of y_t", "1", "squared error of the prediction of y_t"),
            "mode": Label("frequency k", "1"),
            "x": Label("probe point x", "1"),
        })
