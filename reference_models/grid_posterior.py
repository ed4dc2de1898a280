"""Tabular Bayes posterior over Fourier-series functions (Rabinowitz 2019 §4.2.5).

Functions g_φ(x) = Σ_{k=1..K} a_k sin(2πkx + φ_k) (eq. 9) with known amplitudes a_k and
unknown phases φ; the prior is uniform over a grid of B bins per phase (bin centres
φ = 2π(j + ½)/B, j = 0..B-1), G = B^K functions (the paper: 16^5 ≈ 10^6). Observations
y = g_φ(x) + ε, ε ~ N(0, σ²), σ the assumed noise.

Sufficient statistics. Writing g_φ(x) = c(φ)ᵀ f(x) with
f(x) = [sin 2πkx, cos 2πkx]_{k=1..K} and c(φ) = [a_k cos φ_k, a_k sin φ_k]_k (2K each),
the log-likelihood of pairs (x_n, y_n) is, up to a constant in φ,

    log p(y | x, φ) = (c(φ)ᵀ s - ½ c(φ)ᵀ S c(φ)) / σ²,   s = Σ y_n f(x_n),  S = Σ f(x_n) f(x_n)ᵀ

so the posterior needs only s ``[2K]`` and S ``[2K, 2K]``. The posterior-mean function is
ḡ(x) = E[c | data]ᵀ f(x). The grid is split into outer phases (the first K - 2
frequencies) × inner phases (the last 2): per episode, the whole table of G
log-likelihoods is then one batched matrix product ``[G_O, 6] @ [6, G_I]`` (6
multiply-adds per grid function rather than the 2K + K(2K+1) of the plain quadratic form),
followed by a streaming (blocked, max-shifted) softmax; nothing of size G × episodes is
held in memory at once, and blocks are sized to stay in cache. The cost, ~G exponentials
per (episode, step), is what dominates (benchmarks/grid_posterior.py). Identical
statistics within a batch (e.g. the N forks of one state in :func:`trajprobe.probe`) are
evaluated once. :meth:`FourierGridPosterior.log_posterior` gives the full table for small
grids.

Input encoding (the ``FourierRegression`` task's): at step t the input is
``[x_t, y_{t-1}]`` ``[B, 2]`` with y_0 = 0; the output is ḡ_t(x_t) ``[B, 1]`` from the t-1
completed pairs. The state keeps the pending x_t until y_t arrives:

    state = (s [B, 2K], S [B, 2K, 2K], pending x [B, 1], steps [B])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from trajprobe.devices import resolve_device
from trajprobe.validation import check_finite_tensor, check_positive, check_positive_int

__all__ = ["FourierGridPosterior", "FourierGridState", "fourier_features"]

_LOG_TINY_FRACTION = 0.4
"""Log-weights (relative to the maximum) are clamped to this fraction of log(smallest
normal number): -283 in float64 (exp ≈ 1e-123), -35 in float32 (exp ≈ 6e-16). The bias is
at most G·exp(clamp) relative, and no subnormal numbers arise, which are ~10-20x slower
in ``exp`` and in the matrix products that follow."""

DEFAULT_MEMORY_BUDGET = 2**20
"""Bytes of one block of logits. About a core's L2 cache: each block is swept several
times (max, exp, sums), so blocks that stay in cache run ~2x faster on CPU than large
ones (benchmarks/grid_posterior.py). Raise it on a GPU."""


class FourierGridState(NamedTuple):
    """Sufficient statistics of the Fourier grid posterior; every leaf batch-leading."""

    s: torch.Tensor
    """``[B, 2K]`` Σ y f(x) over completed pairs."""
    S: torch.Tensor
    """``[B, 2K, 2K]`` Σ f(x) f(x)ᵀ over completed pairs."""
    pending: torch.Tensor
    """``[B, 1]`` the last x, whose y arrives with the next input."""
    steps: torch.Tensor
    """``[B]`` the number of inputs seen."""


def fourier_features(x: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """f(x) = [sin 2πkx, cos 2πkx] for k = 1..K, interleaved: ``[...]`` -> ``[..., 2K]``."""
    k = torch.arange(1, n_freqs + 1, dtype=x.dtype, device=x.device)
    angle = 2 * math.pi * x.unsqueeze(-1) * k
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).flatten(-2)


class FourierGridPosterior:
    """Bayes posterior over phases on a B^K grid, as a state machine.

    Args:
        amplitudes: a_1..a_K, known (the paper: all ones, K = 5).
        noise_std: σ, the assumed observation noise (> 0).
        n_bins: B, grid bins per phase.
        memory_budget: bytes for one block of logits of the streaming softmax.
        dtype, device: float64 by default.
    """

    def __init__(
        self,
        amplitudes: Sequence[float] = (1.0, 1.0, 1.0, 1.0, 1.0),
        *,
        noise_std: float,
        n_bins: int = 16,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        amps = tuple(float(a) for a in amplitudes)
        if not amps or not all(math.isfinite(a) for a in amps):
            raise ValueError(f"amplitudes: expected a non-empty sequence of finite numbers, "
                             f"got {amplitudes!r}")
        check_positive(noise_std, "noise_std")
        check_positive_int(n_bins, "n_bins")
        check_positive_int(memory_budget, "memory_budget")
        if not dtype.is_floating_point:
            raise TypeError(f"dtype: expected a floating dtype, got {dtype}")
        self.amplitudes = amps
        self.noise_std = float(noise_std)
        self.n_bins = n_bins
        self.memory_budget = memory_budget
        self.dtype = dtype
        self.device = resolve_device(device)
        k2 = 2 * self.n_freqs
        rows, cols = torch.triu_indices(k2, k2, device=self.device)
        self._pairs = (rows, cols)
        # per-frequency lookup of c_k over the bins: [K, B, 2]
        phases = self.bin_phases()
        amp = torch.tensor(amps, dtype=dtype, device=self.device)[:, None]
        self._table = torch.stack([amp * torch.cos(phases), amp * torch.sin(phases)], dim=-1)
        # grid = outer phases (first K - m frequencies) × inner phases (last m), see _expected_c
        self._n_inner = min(2, self.n_freqs)
        n_outer = self.n_freqs - self._n_inner
        self._c_outer = self._grid_c(0, n_bins**n_outer, n_outer)
        self._c_inner = self._grid_c(0, n_bins**self._n_inner, self._n_inner, first=n_outer)

    @classmethod
    def from_task(cls, task, **kwargs) -> FourierGridPosterior:
        """The grid posterior for a ``FourierRegression`` task (its K, amplitudes, noise).

        ``kwargs`` (``n_bins``, ``memory_budget``, ``dtype``, ``device``, or ``noise_std`` to
        override the task's) are passed on. Amplitudes drawn per episode (``"uniform"``)
        are not known to the grid and raise ValueError; a noiseless task needs an explicit
        ``noise_std`` > 0.
        """
        if isinstance(task.amplitudes, str):
            raise ValueError(f"task: expected fixed amplitudes for a phase-grid posterior, "
                             f"got amplitudes={task.amplitudes!r}")
        amps = (1.0,) * task.n_modes if task.amplitudes is None else tuple(task.amplitudes)
        noise_std = kwargs.pop("noise_std", task.noise_std)
        return cls(amps, noise_std=noise_std, **kwargs)

    def __repr__(self) -> str:
        return (f"FourierGridPosterior(amplitudes={self.amplitudes}, "
                f"noise_std={self.noise_std}, n_bins={self.n_bins})")

    # -- sizes -------------------------------------------------------------------------
    @property
    def n_freqs(self) -> int:
        """K."""
        return len(self.amplitudes)

    @property
    def grid_size(self) -> int:
        """G = B^K."""
        return self.n_bins**self.n_freqs

    @property
    def input_size(self) -> int:
        """2: [x_t, y_{t-1}]."""
        return 2

    @property
    def output_size(self) -> int:
        """1: ḡ_t(x_t)."""
        return 1

    def bin_phases(self) -> torch.Tensor:
        """Phase of every bin centre, 2π(j + ½)/B, for every frequency: ``[K, B]``."""
        j = torch.arange(self.n_bins, dtype=self.dtype, device=self.device)
        return (2 * math.pi * (j + 0.5) / self.n_bins).expand(self.n_freqs, -1)

    def grid_phases(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Phases of grid functions ``start..stop-1`` ``[G', K]`` (first frequency slowest)."""
        idx = self._digits(start, self.grid_size if stop is None else stop)
        return torch.gather(self.bin_phases(), 1, idx.T).T

    # -- protocol ----------------------------------------------------------------------
    def initial_state(self, batch_size: int) -> FourierGridState:
        """No data: zero statistics, ``steps = 0``."""
        check_positive_int(batch_size, "batch_size")
        kw = {"dtype": self.dtype, "device": self.device}
        k2 = 2 * self.n_freqs
        return FourierGridState(torch.zeros(batch_size, k2, **kw),
                                torch.zeros(batch_size, k2, k2, **kw),
                                torch.zeros(batch_size, 1, **kw), torch.zeros(batch_size, **kw))

    def step(self, x: torch.Tensor, state: FourierGridState
             ) -> tuple[torch.Tensor, FourierGridState]:
        """Absorb (pending x, y_{t-1}), then predict ḡ_t(x_t).

        Args:
            x: ``[B, 2]`` = [x_t, y_{t-1}].
            state: s_{t-1}.

        Returns:
            ``(ḡ_t(x_t) [B, 1], s_t)``.
        """
        state = self._check_state(state)
        x = self._check_input(x, state.s.shape[0])
        new = self._absorb(state, x[:, 0:1], x[:, 1])
        coef = self.coefficients(new)
        feats = fourier_features(x[:, 0], self.n_freqs)
        return (coef * feats).sum(-1, keepdim=True), new

    def output(self, x: torch.Tensor, state: FourierGridState) -> torch.Tensor:
        """The output function alone: ḡ_t(x_t) ``[B, 1]``."""
        return self.step(x, state)[0]

    # -- the posterior -----------------------------------------------------------------
    def coefficients(self, state: FourierGridState) -> torch.Tensor:
        """E[c(φ) | completed pairs] ``[B, 2K]``: ḡ(x) = E[c]ᵀ f(x)."""
        state = self._check_state(state)
        b, k2 = state.s.shape
        packed = torch.cat([state.s, state.S.reshape(b, -1)], dim=1)
        unique, inverse = torch.unique(packed, dim=0, return_inverse=True)
        coef = self._expected_c(unique[:, k2:].reshape(-1, k2, k2), unique[:, :k2])
        return coef[inverse]

    def mean_function(self, state: FourierGridState, xs: torch.Tensor) -> torch.Tensor:
        """The posterior-mean function at points ``xs`` ``[N]``: ``[B, N]``."""
        feats = fourier_features(xs.to(device=self.device, dtype=self.dtype), self.n_freqs)
        return self.coefficients(state) @ feats.T

    def log_posterior(self, state: FourierGridState) -> torch.Tensor:
        """Normalised log posterior over the whole grid ``[B, G]`` (small grids only)."""
        state = self._check_state(state)
        feats = self._grid_features(0, self.grid_size)
        return torch.log_softmax(self._statistics(state) @ feats.T, dim=1)

    def state_vector(self, state: FourierGridState) -> torch.Tensor:
        """``[B, 2K + 4K² + 2]``: s, S, pending x and steps, flattened."""
        state = self._check_state(state)
        b = state.s.shape[0]
        return torch.cat([state.s, state.S.reshape(b, -1), state.pending, state.steps[:, None]],
                         dim=1)

    def state_from_vector(self, vector: torch.Tensor) -> FourierGridState:
        """Inverse of :meth:`state_vector`, projected onto the valid domain.

        Projection: S is symmetrised and its negative eigenvalues set to zero (nearest
        positive semi-definite matrix); steps is clamped to ≥ 0.
        """
        k2 = 2 * self.n_freqs
        size = k2 + k2 * k2 + 2
        if not isinstance(vector, torch.Tensor) or vector.dim() != 2 or vector.shape[1] != size:
            shape = tuple(vector.shape) if isinstance(vector, torch.Tensor) else type(vector)
            raise ValueError(f"vector: expected shape [B, {size}], got {shape}")
        check_finite_tensor(vector, "vector")
        vector = vector.to(device=self.device, dtype=self.dtype)
        b = vector.shape[0]
        s, S, pending, steps = torch.split(vector, [k2, k2 * k2, 1, 1], dim=1)
        S = S.reshape(b, k2, k2)
        S = 0.5 * (S + S.transpose(1, 2))
        evals, evecs = torch.linalg.eigh(S)
        S = (evecs * evals.clamp(min=0).unsqueeze(1)) @ evecs.transpose(1, 2)
        return FourierGridState(s, S, pending, steps[:, 0].clamp(min=0))

    # -- internals ---------------------------------------------------------------------
    def _absorb(self, state: FourierGridState, x_t: torch.Tensor,
                y_prev: torch.Tensor) -> FourierGridState:
        w = (state.steps >= 0.5).to(self.dtype)[:, None]  # steps is a count: robust to round-off
        f = fourier_features(state.pending[:, 0], self.n_freqs) * w
        s = state.s + f * y_prev[:, None]
        S = state.S + f.unsqueeze(2) * f.unsqueeze(1)
        return FourierGridState(s, S, x_t, state.steps + 1)

    def _statistics(self, state: FourierGridState) -> torch.Tensor:
        """z ``[B, 2K + P]`` with log p(data | φ) = F(φ) · z + const (see _grid_features)."""
        rows, cols = self._pairs
        quad = state.S[:, rows, cols]
        return torch.cat([state.s, quad], dim=1) / self.noise_std**2

    def _digits(self, start: int, stop: int, n_freqs: int | None = None) -> torch.Tensor:
        """Bin indices ``[G', n_freqs]`` of grid functions start..stop-1 (first slowest)."""
        n_freqs = self.n_freqs if n_freqs is None else n_freqs
        flat = torch.arange(start, stop, device=self.device)
        powers = self.n_bins ** torch.arange(n_freqs - 1, -1, -1, device=self.device)
        return (flat[:, None] // powers) % self.n_bins

    def _grid_c(self, start: int, stop: int, n_freqs: int | None = None,
                first: int = 0) -> torch.Tensor:
        """c ``[G', 2 n_freqs]`` over the sub-grid of frequencies first..first+n_freqs-1."""
        n_freqs = self.n_freqs if n_freqs is None else n_freqs
        digits = self._digits(start, stop, n_freqs)
        k = torch.arange(first, first + n_freqs, device=self.device)
        return self._table[k, digits].flatten(1)

    def _grid_features(self, start: int, stop: int) -> torch.Tensor:
        """F(φ) ``[G', 2K + P]`` = [c, -½ c_i c_j (×2 off the diagonal)] for i ≤ j."""
        c = self._grid_c(start, stop)
        rows, cols = self._pairs
        weight = torch.where(rows == cols, -0.5, -1.0).to(self.dtype)
        return torch.cat([c, c[:, rows] * c[:, cols] * weight], dim=1)

    def _expected_c(self, S: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """E[c] ``[B, 2K]`` for statistics s ``[B, 2K]``, S ``[B, 2K, 2K]``.

        The grid factorises as outer phases O (the first K - m frequencies, G_O = B^(K-m)
        functions) × inner phases I (the last m = min(2, K), G_I = B^m). With
        c = [c_O, c_I] the log-likelihood (× σ²) is

            L_O(o) + c_I(i)ᵀ v(o) - ½ c_I(i)ᵀ S_II c_I(i),
            L_O(o) = c_Oᵀ s_O - ½ c_Oᵀ S_OO c_O,   v(o) = s_I - S_IO c_O(o),

        so the G_O × G_I table of one episode is a single batched product
        ``[G_O, 2m + 2] @ [2m + 2, G_I]``: 2m + 2 multiply-adds per grid function instead
        of the 2K + K(2K+1) of the plain quadratic form. Outer rows are streamed in chunks
        with a running max (a streaming softmax), episodes in chunks, to the memory budget.
        """
        batch, k2 = s.shape
        m, ko2 = self._n_inner, k2 - 2 * self._n_inner
        c_outer, c_inner = self._c_outer, self._c_inner             # [G_O, 2K_O], [G_I, 2m]
        g_outer, g_inner = c_outer.shape[0], c_inner.shape[0]
        kw = {"dtype": self.dtype, "device": self.device}
        s = s / self.noise_std**2
        S = S / self.noise_std**2
        # the small per-episode tables, in full precision: L_O, v, q
        l_outer = s[:, :ko2] @ c_outer.T - 0.5 * torch.einsum(
            "gi,bij,gj->bg", c_outer, S[:, :ko2, :ko2], c_outer)               # [B, G_O]
        v = s[:, None, ko2:] - c_outer @ S[:, ko2:, :ko2].transpose(1, 2)    # [B, G_O, 2m]
        q = -0.5 * torch.einsum("gi,bij,gj->bg", c_inner, S[:, ko2:, ko2:], c_inner)
        left = torch.cat([v, l_outer[..., None], torch.ones(batch, g_outer, 1, **kw)], dim=2)
        right = torch.cat([c_inner.T.expand(batch, -1, -1),
                           torch.ones(batch, 1, g_inner, **kw), q[:, None, :]], dim=1)
        c_ext = torch.cat([c_inner, torch.ones(g_inner, 1, **kw)], dim=1)    # [G_I, 2m + 1]
        # blocks of (episodes × outer rows) × G_I logits within the memory budget
        itemsize = torch.finfo(self.dtype).bits // 8
        log_tiny = _LOG_TINY_FRACTION * math.log(torch.finfo(self.dtype).tiny)
        rows_budget = max(1, self.memory_budget // (itemsize * g_inner))
        ep_chunk = max(1, min(batch, rows_budget // g_outer))
        o_chunk = max(1, min(g_outer, rows_budget // ep_chunk))
        out = torch.empty(batch, k2, **kw)
        for e0 in range(0, batch, ep_chunk):
            e1 = min(e0 + ep_chunk, batch)
            nb = e1 - e0
            run_max = torch.full((nb, 1, 1), -math.inf, **kw)
            w_outer = torch.empty(nb, g_outer, **kw)                  # Σ_i w(o, i)
            numer_inner = torch.zeros(nb, 2 * m, **kw)                # Σ_{o,i} w c_I(i)
            for o0 in range(0, g_outer, o_chunk):
                o1 = min(o0 + o_chunk, g_outer)
                logits = torch.bmm(left[e0:e1, o0:o1], right[e0:e1])   # [nb, G_O', G_I]
                new_max = torch.maximum(run_max, logits.amax(dim=(1, 2), keepdim=True))
                rescale = torch.exp(run_max - new_max)[:, :, 0]         # [nb, 1]
                weights = logits.sub_(new_max).clamp_(min=log_tiny).exp_()
                sums = weights @ c_ext                                  # [nb, G_O', 2m + 1]
                w_outer[:, :o0] *= rescale
                w_outer[:, o0:o1] = sums[..., -1]
                numer_inner = numer_inner * rescale + sums[..., :-1].sum(dim=1)
                run_max = new_max
            denom = w_outer.sum(dim=1, keepdim=True)
            numer = torch.cat([w_outer @ c_outer, numer_inner], dim=1)
            out[e0:e1] = numer / denom
        return out

    def _check_input(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape != (batch, 2):
            raise ValueError(f"x: expected shape [{batch}, 2] ([x_t, y_(t-1)]), "
                             f"got {tuple(x.shape)}")
        return x.to(device=self.device, dtype=self.dtype)

    def _check_state(self, state: FourierGridState) -> FourierGridState:
        if not isinstance(state, tuple) or len(state) != 4:
            raise TypeError(f"state: expected a FourierGridState (s, S, pending, steps), "
                            f"got {type(state).__name__}")
        state = FourierGridState(*(s.to(device=self.device, dtype=self.dtype) for s in state))
        b, k2 = state.s.shape[0], 2 * self.n_freqs
        expected = ((b, k2), (b, k2, k2), (b, 1), (b,))
        for name, leaf, shape in zip(FourierGridState._fields, state, expected, strict=True):
            if tuple(leaf.shape) != shape:
                raise ValueError(f"state.{name}: expected shape {list(shape)}, "
                                 f"got {tuple(leaf.shape)}")
        return state
