"""Linear regression y = W x + ε with a new W every episode (Rabinowitz 2019 §3; Garg et al.
2022 and Raventós et al. 2023 with a scalar y).

Encoding (shared with the Bayes reference machines; keep it): the machine's input at
step t is ``concat[x_t, y_{t-1}]`` (``dim + out_dim`` features, y_0 = 0), its output is
the prediction of y_t (``out_dim`` features). ``out_dim = dim`` (the default) is
Rabinowitz's square W; ``out_dim = 1`` is Garg's and Raventós's y = wᵀx.

Modes. For ``out_dim > 1`` a mode is a singular triple of W = U diag(s) Vᵀ (eq. 3). For
``out_dim = 1`` W has a single singular value, so the modes are the eigen-directions
e_k of the input covariance Σ = diag(``input_spectrum``): s_k = |w_k|, V = I and
U = sign(w)ᵀ (a ``[1, dim]`` row), so W = Σ_k s_k U_k V_kᵀ still holds and ŝ_k = u_kᵀ Ŵ v_k
= sign(w_k) ŵ_k is the learner's effective weight on direction k; q_k = ŝ_k / s_k.

Prior convention. The paper writes W ~ MN(0, α²I, α²I). Under the standard matrix-normal
definition (vec W ~ N(0, V ⊗ U)) that gives iid entries of variance α⁴; the paper only
uses α = 1, where every convention agrees on iid N(0, 1) entries. Here ``prior_scale`` is
the standard deviation of each entry: W_ij ~ N(0, prior_scale²) iid, i.e.
W ~ MN(0, prior_scale·I, prior_scale·I). A Bayes reference with this prior uses
prior variance ``prior_scale**2`` per entry (eq. 6–8 have prior_scale = 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr

from trajprobe.estimators.linear import effective_map, effective_spectrum, spectrum_ratio
from trajprobe.labelled import Label, describe, to_numpy
from trajprobe.task_protocol import Episodes, Seed, make_generator
from trajprobe.tasks._sampling import randn
from trajprobe.tasks.exchangeable import permute_examples
from trajprobe.validation import (
    as_tensor,
    check_finite_tensor,
    check_positive,
    check_positive_int,
)

if TYPE_CHECKING:
    from trajprobe.task_protocol import Probed

__all__ = ["LinearRegression", "haar_orthogonal"]


def haar_orthogonal(
    n_matrices: int,
    dim: int,
    *,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Haar-distributed orthogonal matrices ``[n_matrices, dim, dim]``.

    QR of a standard Gaussian matrix with the signs of R's diagonal moved into Q
    (Mezzadri 2007), which makes Q exactly Haar on O(dim).
    """
    g = randn((n_matrices, dim, dim), generator, device=device, dtype=dtype)
    q, r = torch.linalg.qr(g)
    signs = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return q * signs.unsqueeze(-2)


@dataclass(frozen=True)
class LinearRegression:
    """Episodes of y_t = W x_t + ε_t, x_t ~ N(0, Σ), ε_t ~ N(0, noise_std² I) (eq. 4 setting).

    Args:
        dim: N_x (the paper uses 2 and 5; Garg et al. 20; Raventós et al. 8).
        noise_std: σ_ε (paper: 0.01).
        prior_scale: standard deviation of each entry of W (see the module docstring for
            how this maps onto the paper's MN(0, α²I, α²I)).
        fit_intercept: the measurement fits ŷ ≈ Ŵx + b (True) or the paper's ŷ ≈ Ŵx
            (see :func:`~trajprobe.estimators.linear.effective_map`).
        out_dim: N_y (None: ``dim``, the square W of Rabinowitz; 1: Garg's y = wᵀx).
        input_spectrum: the eigenvalues λ_k of the input covariance Σ = diag(λ), i.e. the
            variance of x along e_k (None: Σ = I). Probe inputs are drawn from N(0, Σ) too.

    Episodes' ``params``: ``"W"`` ``[E, out_dim, dim]`` and its modes
    W = U diag(s) Vᵀ (module docstring): ``"U"`` ``[E, out_dim, K]``, ``"s"`` ``[E, K]``,
    ``"V"`` ``[E, dim, K]`` (mode k is column k), K = ``n_modes``. Prior samples with
    ``out_dim > 1`` have s sorted descending; with a given ``spectrum`` the modes keep
    the order given.
    """

    dim: int
    noise_std: float = 0.01
    prior_scale: float = 1.0
    fit_intercept: bool = True
    out_dim: int | None = field(default=None, metadata={"added": True})
    input_spectrum: tuple[float, ...] | None = field(default=None, metadata={"added": True})

    def __post_init__(self) -> None:
        check_positive_int(self.dim, "dim")
        check_positive(self.noise_std, "noise_std", strict=False)
        check_positive(self.prior_scale, "prior_scale")
        if self.out_dim is not None:
            check_positive_int(self.out_dim, "out_dim")
        if self.input_spectrum is not None:
            lam = tuple(float(v) for v in self.input_spectrum)
            if len(lam) != self.dim or not all(math.isfinite(v) and v > 0 for v in lam):
                raise ValueError(f"input_spectrum: expected {self.dim} positive variances "
                                 f"(one per input direction), got {self.input_spectrum!r}")
            object.__setattr__(self, "input_spectrum", lam)

    @property
    def y_dim(self) -> int:
        """N_y: ``out_dim``, or ``dim`` when it is None."""
        return self.dim if self.out_dim is None else self.out_dim

    @property
    def n_modes(self) -> int:
        """K: ``dim`` input directions for a scalar y, else min(N_y, N_x) singular modes."""
        return self.dim if self.y_dim == 1 else min(self.y_dim, self.dim)

    @property
    def input_size(self) -> int:
        """``dim + out_dim``: x_t then y_{t-1}."""
        return self.dim + self.y_dim

    @property
    def output_size(self) -> int:
        """``out_dim``: the prediction of y_t."""
        return self.y_dim

    def sample_params(
        self,
        n_episodes: int,
        *,
        spectrum: torch.Tensor | np.ndarray | list[float] | None = None,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> dict[str, torch.Tensor]:
        """Draw W per episode, from the prior or with a given spectrum.

        Args:
            n_episodes: E.
            spectrum: None to draw W from the prior (iid N(0, prior_scale²) entries).
                Otherwise the mode strengths ``[K]`` (shared) or ``[E, K]``: for
                ``out_dim > 1`` W = U diag(s) Vᵀ with U, V independent and Haar-random,
                i.e. uniquely rotated target matrices with a fixed spectrum (§3.2.3); for
                ``out_dim = 1`` w_k = ±s_k with independent random signs.
            seed: an int, a generator (consumed in place) or None.

        Returns:
            ``{"W", "U", "s", "V"}`` as in the class docstring.
        """
        check_positive_int(n_episodes, "n_episodes")
        gen = make_generator(seed, device)
        if spectrum is None:
            w = self.prior_scale * randn(
                (n_episodes, self.y_dim, self.dim), gen, device=device, dtype=dtype
            )
            return self.modes(w)
        s = self._check_spectrum(spectrum, n_episodes, dtype, device)
        if self.y_dim == 1:
            signs = 2.0 * (randn((n_episodes, self.dim), gen, device=device, dtype=dtype) >= 0)
            return self.modes((signs - 1.0)[:, None] * s[:, None])
        k = self.n_modes
        u = haar_orthogonal(n_episodes, self.y_dim, generator=gen, device=device, dtype=dtype)
        v = haar_orthogonal(n_episodes, self.dim, generator=gen, device=device, dtype=dtype)
        u, v = u[..., :k], v[..., :k]
        w = u @ torch.diag_embed(s) @ v.mT
        return {"W": w, "U": u, "s": s.clone(), "V": v}

    def modes(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"W", "U", "s", "V"}`` of given targets W ``[E, out_dim, dim]`` (class docstring).

        ``out_dim > 1``: the (reduced) SVD, s descending. ``out_dim = 1``: the input
        directions e_k, s_k = |w_k| and U = sign(w)ᵀ (a zero weight counts as +).
        """
        if w.dim() != 3 or tuple(w.shape[1:]) != (self.y_dim, self.dim):
            raise ValueError(f"w: expected shape [E, {self.y_dim}, {self.dim}], "
                             f"got {tuple(w.shape)}")
        if self.y_dim == 1:
            signs = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
            eye = torch.eye(self.dim, dtype=w.dtype, device=w.device)
            return {"W": w, "U": signs, "s": w[:, 0].abs(), "V": eye.expand(w.shape[0], -1, -1)}
        u, s, vh = torch.linalg.svd(w, full_matrices=self.y_dim == self.dim)
        return {"W": w, "U": u, "s": s, "V": vh.mT}

    def _check_spectrum(self, spectrum, n_episodes: int, dtype: torch.dtype,
                        device: torch.device | str | None) -> torch.Tensor:
        if isinstance(spectrum, list | tuple):
            spectrum = torch.tensor(spectrum, dtype=dtype)
        s = as_tensor(spectrum, "spectrum", dtype=dtype, device=device)
        if s.dim() == 1:
            s = s.expand(n_episodes, -1)
        k = self.n_modes
        if s.dim() != 2 or tuple(s.shape) != (n_episodes, k):
            raise ValueError(
                f"spectrum: expected shape [{k}] or [{n_episodes}, {k}], "
                f"got {tuple(spectrum.shape)}"
            )
        check_finite_tensor(s, "spectrum")
        if bool((s < 0).any()):
            raise ValueError("spectrum: expected non-negative singular values, got a negative one")
        return s

    def draw_x(self, shape: tuple[int, ...], generator: torch.Generator, *,
               device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Inputs x ~ N(0, Σ) of shape ``[..., dim]`` (``shape`` includes ``dim``)."""
        x = randn(shape, generator, device=device, dtype=dtype)
        if self.input_spectrum is None:
            return x
        return x * torch.tensor(self.input_spectrum, dtype=dtype, device=x.device).sqrt()

    def sample(
        self,
        n_episodes: int,
        n_steps: int,
        *,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        spectrum: torch.Tensor | np.ndarray | list[float] | None = None,
        params: dict[str, torch.Tensor] | None = None,
        active_dims: int | None = None,
    ) -> Episodes:
        """Draw episodes: inputs ``[E, T, dim + out_dim]``, targets y_t ``[E, T, out_dim]``.

        Draw order from one generator: W (or U, V), then x, then ε; same seed, same episodes.
        Given ``params`` (``"W"`` ``[E, out_dim, dim]`` at least, e.g. a fixed task's or a
        task pool's), W is not drawn. ``active_dims`` = k < dim zeroes x beyond its first k
        coordinates before y is computed (Garg et al.'s curriculum over dimensions).
        """
        check_positive_int(n_steps, "n_steps")
        gen = make_generator(seed, device)
        if params is None:
            params = self.sample_params(n_episodes, spectrum=spectrum, seed=gen,
                                         device=device, dtype=dtype)
        x = self.draw_x((n_episodes, n_steps, self.dim), gen, device=device, dtype=dtype)
        if active_dims is not None and check_positive_int(active_dims, "active_dims") < self.dim:
            x[..., active_dims:] = 0.0
        noise = randn((n_episodes, n_steps, self.y_dim), gen, device=device, dtype=dtype)
        y = torch.einsum("eij,etj->eti", params["W"], x) + self.noise_std * noise
        return Episodes(inputs=self.encode(x, y), targets=y, params=params)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Inputs ``[E, T, dim + out_dim]`` = concat[x_t, y_{t-1}] from x ``[E, T, dim]`` and
        y ``[E, T, out_dim]`` (y_0 = 0)."""
        if (x.dim() != 3 or x.shape[-1] != self.dim or y.dim() != 3
                or y.shape[-1] != self.y_dim or x.shape[:2] != y.shape[:2]):
            raise ValueError(
                f"x, y: expected shapes [E, T, {self.dim}] and [E, T, {self.y_dim}], "
                f"got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        y_prev = torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], dim=1)
        return torch.cat([x, y_prev], dim=-1)

    def probe_inputs(
        self,
        inputs: torch.Tensor | Episodes,
        n_probes: int | None = 100,
        *,
        seed: Seed = None,
    ) -> torch.Tensor:
        """Counterfactual inputs ``[E, T, N, dim + out_dim]`` for the probe at every step (§3.2.3).

        Probe n at step t replaces x_t by a fresh x ~ N(0, Σ) (independent for every
        episode and step) and keeps y_{t-1} from the history.

        Args:
            inputs: the episodes' inputs ``[E, T, dim + out_dim]`` (or the :class:`Episodes`).
            n_probes: N, at least ``dim`` (+1 when an intercept is fitted) for the
                least-squares fit to be determined; the paper uses 100 (None: 100).
            seed: an int, a generator or None; drawn on the inputs' device.
        """
        inputs = self._check_inputs(inputs)
        n_probes = 100 if n_probes is None else n_probes
        check_positive_int(n_probes, "n_probes")
        n_episodes, n_steps = inputs.shape[:2]
        gen = make_generator(seed, inputs.device)
        x = self.draw_x((n_episodes, n_steps, n_probes, self.dim), gen, device=inputs.device,
                        dtype=inputs.dtype)
        y_prev = inputs[:, :, None, self.dim:].expand(-1, -1, n_probes, -1)
        return torch.cat([x, y_prev], dim=-1)

    def permute_history(self, episodes: torch.Tensor | Episodes, t: int, *,
                        seed: Seed = None) -> torch.Tensor:
        """Inputs ``[E, T, dim + out_dim]`` whose completed examples (x_i, y_i), i < t, are
        shuffled per episode, x_t left pending: the Bayes posterior after step t is unchanged
        (:func:`~trajprobe.tasks.exchangeable.permute_examples`; the sufficiency test's hook)."""
        return permute_examples(self._check_inputs(episodes), t, self.dim, seed=seed)

    def probe_points(self, probe_inputs: torch.Tensor) -> torch.Tensor:
        """The counterfactual x ``[..., N, dim]`` of probe inputs ``[..., N, dim + out_dim]``."""
        if probe_inputs.shape[-1] != self.input_size:
            raise ValueError(
                f"probe_inputs: expected {self.input_size} trailing features, "
                f"got shape {tuple(probe_inputs.shape)}"
            )
        return probe_inputs[..., : self.dim]

    def summarise(self, probed: Probed) -> xr.Dataset:
        """Effective spectra ŝ_k(t) and proportions q_k(t) = ŝ_k(t)/s_k (eqs. 3, 5).

        For every episode and step t, the state after t-1 real observations was probed with
        N fresh x ~ N(0, Σ) (keeping y_{t-1}); Ŵ_t is the least-squares map from those x to
        the outputs; ŝ_t = diag(Uᵀ Ŵ_t V) with the episode's W = U diag(s) Vᵀ. For a scalar
        y the modes are the input directions e_k: ŝ_k = sign(w_k) ŵ_k and q_k = ŵ_k / w_k
        (module docstring).

        Returns:
            ``s_hat, q (episode, t, mode)``, ``s (episode, mode)``, ``W_hat (episode, t,
            row, col)``, ``W (episode, row, col)``, ``loss (episode, t)`` (squared error of
            the real prediction, eq. 4's summand) and ``probe_loss (episode, t)`` (mean
            squared error on the probe set against the noise-free W x). Modes 1..K
            (``n_modes``).
        """
        outputs, params = probed.outputs, probed.params
        x = self.probe_points(probed.probe_inputs)
        w_hat = effective_map(x, outputs, fit_intercept=self.fit_intercept)
        s_hat = effective_spectrum(w_hat, params["U"][:, None], params["V"][:, None])
        targets = probed.episodes.targets.to(device=outputs.device, dtype=outputs.dtype)
        clean = torch.einsum("eij,etnj->etni", params["W"], x)
        ds = xr.Dataset(
            {
                "s_hat": (("episode", "t", "mode"), to_numpy(s_hat)),
                "q": (("episode", "t", "mode"),
                      to_numpy(spectrum_ratio(s_hat, params["s"][:, None]))),
                "s": (("episode", "mode"), to_numpy(params["s"])),
                "W_hat": (("episode", "t", "row", "col"), to_numpy(w_hat)),
                "W": (("episode", "row", "col"), to_numpy(params["W"])),
                "loss": (("episode", "t"),
                         to_numpy((probed.trace.outputs - targets).square().sum(-1))),
                "probe_loss": (("episode", "t"),
                               to_numpy((outputs - clean).square().sum(-1).mean(-1))),
            },
            coords={"mode": np.arange(1, self.n_modes + 1)},
            attrs={"measure": "effective_spectra", "fit_intercept": int(self.fit_intercept)},
        )
        return describe(ds, {
            "s_hat": Label("effective singular value ŝ_k", "1",
                           "effective spectrum diag(U^T W_hat V), eq. 5"),
            "q": Label("proportion learned q_k = ŝ_k / s_k", "1",
                       "proportion of target singular value learned, s_hat / s (eq. 3)"),
            "s": Label("target singular value s_k", "1", "target singular values"),
            "W_hat": Label("effective map Ŵ_t", "1", "least-squares map from probe x to y"),
            "W": Label("target map W", "1"),
            "loss": Label("squared error of y_t", "1",
                          "squared error of the prediction of y_t (eq. 4 summand)"),
            "probe_loss": Label("probe-set squared error", "1",
                                "mean squared error on the probe set against W x"),
            "mode": Label("singular mode k", "1", "modes in descending target singular value"),
        })

    def _check_inputs(self, inputs: torch.Tensor | Episodes) -> torch.Tensor:
        if isinstance(inputs, Episodes):
            inputs = inputs.inputs
        inputs = as_tensor(inputs, "inputs")
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise ValueError(
                f"inputs: expected shape [E, T, {self.input_size}], got {tuple(inputs.shape)}"
            )
        return inputs
