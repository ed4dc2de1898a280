"""Bayesian multivariate linear regression as a state machine (Rabinowitz 2019 §3.2.6).

Model: y = W x + ε, W ``[d_y, d_x]``, ε ~ N(0, σ² I), prior W_ij ~ N(0, α²) i.i.d. (the
paper's isotropic matrix-normal prior MN(0, α²I, α²I) read as element variance α², which
is what makes eq. 7's ridge term σ²/α²; at the paper's α = 1 both readings agree).
After observations X ``[n, d_x]``, Y ``[n, d_y]`` the posterior of every row of W is
Gaussian with precision matrix Λ/σ² and the posterior mean is (eqs. 6–8, with the prior
scale made explicit and W in the y = W x orientation)::

    Λ   = XᵀX + (σ²/α²) I                       (8)
    W̄ᵀ  = Λ⁻¹ XᵀY,   i.e.  W̄ = YᵀX Λ⁻¹            (7)

Input encoding (the meta-learner's, see the linear-regression task): at step t the input
is ``[x_t, y_{t-1}]`` ``[B, d_x + d_y]`` with y_0 = 0. The output y_t is the posterior
predictive mean W̄ x_t given the t-1 completed pairs. Because y_{t-1} arrives one step
after x_{t-1}, the state keeps the pending x:

    state = (XᵀX [B, d_x, d_x], XᵀY [B, d_x, d_y], pending x [B, d_x], steps [B])

``steps`` counts inputs seen; the completed observations number max(steps - 1, 0), and
the pending pair is absorbed only when steps ≥ 1. s_t therefore holds pairs 1..t-1 and
x_t, and ``posterior_mean(s_t)`` is the W̄ used for the output at t.

Output: ``output="mean"`` (default) emits the predictive mean ŷ_t = W̄ x_t ``[B, d_y]``
and the machine has no ``distribution``. ``output="predictive"`` emits
``[ŷ_t, σ_t]`` ``[B, d_y + 1]`` with σ_t² = σ² (1 + x_tᵀ Λ⁻¹ x_t) the predictive variance
(known noise, so the predictive is Gaussian, not Student-t), and ``distribution(y)`` is
that Gaussian, ``Independent(Normal(ŷ, σ), 1)`` over the d_y outputs — what KL
comparisons (:mod:`trajprobe.compare`) use.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import distributions as D

from trajprobe.devices import resolve_device
from trajprobe.validation import check_finite_tensor, check_positive, check_positive_int

__all__ = ["BayesianLinearRegression", "RegressionState"]


class RegressionState(NamedTuple):
    """Sufficient statistics of Bayesian linear regression; every leaf batch-leading."""

    xx: torch.Tensor
    """``[B, d_x, d_x]`` XᵀX over completed pairs."""
    xy: torch.Tensor
    """``[B, d_x, d_y]`` XᵀY over completed pairs."""
    pending: torch.Tensor
    """``[B, d_x]`` the last x, whose y arrives with the next input."""
    steps: torch.Tensor
    """``[B]`` the number of inputs seen."""


class BayesianLinearRegression:
    """Bayes-optimal predictor for y = W x + ε under an isotropic Gaussian prior on W.

    Args:
        x_dim: d_x.
        y_dim: d_y (default d_x).
        prior_scale: α, the prior standard deviation of every element of W (the
            ``LinearRegression`` task's ``prior_scale``).
        noise_std: σ, the observation noise standard deviation (known).
        output: ``"mean"`` (ŷ only) or ``"predictive"`` (ŷ and σ_t, with ``distribution``).
        dtype, device: of the state (float64 by default).
    """

    def __init__(
        self,
        x_dim: int,
        y_dim: int | None = None,
        *,
        prior_scale: float = 1.0,
        noise_std: float = 1.0,
        output: str = "mean",
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        y_dim = x_dim if y_dim is None else y_dim
        check_positive_int(x_dim, "x_dim")
        check_positive_int(y_dim, "y_dim")
        check_positive(prior_scale, "prior_scale")
        check_positive(noise_std, "noise_std")
        if not dtype.is_floating_point:
            raise TypeError(f"dtype: expected a floating dtype, got {dtype}")
        if output not in ("mean", "predictive"):
            raise ValueError(f"output: expected 'mean' or 'predictive', got {output!r}")
        self.output_kind = output
        if output == "predictive":
            self.distribution = self._predictive_distribution
        self.x_dim, self.y_dim = x_dim, y_dim
        self.prior_scale, self.noise_std = float(prior_scale), float(noise_std)
        self.dtype = dtype
        self.device = resolve_device(device)

    @classmethod
    def from_task(cls, task, **kwargs) -> BayesianLinearRegression:
        """The Bayes reference of a ``LinearRegression`` task (its dims, noise and prior).

        ``kwargs`` (``dtype``, ``device``, or ``noise_std`` to override the task's) are
        passed on. A noiseless task (noise_std = 0) needs an explicit ``noise_std`` > 0.
        The task's input covariance does not enter: x carries no information about W, so
        the posterior (eqs. 7–8) is the same under any Σ. Least squares is this machine
        with a vanishing ridge, e.g. ``noise_std=1e-6`` (the minimum-norm solution while
        fewer than d_x pairs are seen).
        """
        noise_std = kwargs.pop("noise_std", task.noise_std)
        y_dim = getattr(task, "y_dim", task.dim)
        return cls(task.dim, y_dim, prior_scale=task.prior_scale, noise_std=noise_std, **kwargs)

    def __repr__(self) -> str:
        return (f"BayesianLinearRegression(x_dim={self.x_dim}, y_dim={self.y_dim}, "
                f"prior_scale={self.prior_scale}, noise_std={self.noise_std}, "
                f"output={self.output_kind!r})")

    @property
    def input_size(self) -> int:
        """d_x + d_y."""
        return self.x_dim + self.y_dim

    @property
    def output_size(self) -> int:
        """d_y (``output="mean"``) or d_y + 1 (``output="predictive"``)."""
        return self.y_dim + (self.output_kind == "predictive")

    @property
    def ridge(self) -> float:
        """σ²/α², the prior's ridge term in eq. 8."""
        return (self.noise_std / self.prior_scale) ** 2

    def initial_state(self, batch_size: int) -> RegressionState:
        """Empty statistics: zeros everywhere, ``steps = 0``."""
        check_positive_int(batch_size, "batch_size")
        kw = {"dtype": self.dtype, "device": self.device}
        b, dx, dy = batch_size, self.x_dim, self.y_dim
        return RegressionState(torch.zeros(b, dx, dx, **kw), torch.zeros(b, dx, dy, **kw),
                               torch.zeros(b, dx, **kw), torch.zeros(b, **kw))

    def step(self, x: torch.Tensor, state: RegressionState) -> tuple[torch.Tensor, RegressionState]:
        """Absorb (pending x, y_{t-1}), then predict y_t = W̄_t x_t.

        Args:
            x: ``[B, d_x + d_y]`` = [x_t, y_{t-1}].
            state: s_{t-1}.

        Returns:
            ``(y_t, s_t)``: y_t = ŷ_t ``[B, d_y]``, or ``[ŷ_t, σ_t]`` ``[B, d_y + 1]`` with
            ``output="predictive"``.
        """
        state = self._check_state(state)
        x_t, y_prev = self._split_input(x, state.xx.shape[0])
        new = self._absorb(state, y_prev, x_t)
        if self.output_kind == "predictive":
            pred = self.predictive(x_t, new)
            return torch.cat([pred.mean, pred.stddev[:, :1]], dim=1), new
        return self._predict(new, x_t), new

    def output(self, x: torch.Tensor, state: RegressionState) -> torch.Tensor:
        """The output function alone: y_t as :meth:`step` emits it."""
        return self.step(x, state)[0]

    def _predictive_distribution(self, y: torch.Tensor) -> D.Distribution:
        """``Independent(Normal(ŷ, σ), 1)`` from ``y`` ``[..., d_y + 1]`` = [ŷ, σ]."""
        mean, std = y[..., : self.y_dim], y[..., self.y_dim:]
        return D.Independent(D.Normal(mean, std.expand_as(mean)), 1)

    def posterior_mean(self, state: RegressionState) -> torch.Tensor:
        """W̄ = YᵀX (XᵀX + σ²/α² I)⁻¹ ``[B, d_y, d_x]`` over the completed pairs (eq. 7)."""
        state = self._check_state(state)
        return self._solve(state).transpose(1, 2)

    def predictive(self, x_t: torch.Tensor, state: RegressionState) -> D.Normal:
        """Predictive of y for inputs ``x_t`` ``[B, d_x]`` given the completed pairs in ``state``.

        y | x ~ N(W̄ x, σ² (1 + xᵀ Λ⁻¹ x) I): a Normal with batch shape ``[B, d_y]``.
        """
        state = self._check_state(state)
        mean = self._predict(state, x_t)
        lam = self._precision(state)
        quad = (x_t * torch.linalg.solve(lam, x_t.unsqueeze(-1)).squeeze(-1)).sum(-1)
        std = self.noise_std * torch.sqrt(1 + quad)
        return D.Normal(mean, std.unsqueeze(-1).expand_as(mean))

    def state_vector(self, state: RegressionState) -> torch.Tensor:
        """``[B, d_x² + d_x d_y + d_x + 1]``: the posterior's parameters, flattened.

        (Λ = XᵀX + σ²/α² I, the posterior precision up to σ²; W̄ᵀ = Λ⁻¹ XᵀY, the posterior
        mean; pending x; steps). These, not the raw XᵀX and XᵀY, are the coordinates a
        simulation map sees: the output W̄ x is then linear in the state vector, whereas
        from XᵀY it would go through Λ⁻¹, whose condition number reaches α²/σ² (10⁴ at
        the task's σ = 0.01) early in an episode and turns small map errors into huge
        output errors.
        """
        state = self._check_state(state)
        b = state.xx.shape[0]
        return torch.cat([self._precision(state).reshape(b, -1),
                          self._solve(state).reshape(b, -1), state.pending,
                          state.steps[:, None]], dim=1)

    def state_from_vector(self, vector: torch.Tensor) -> RegressionState:
        """Inverse of :meth:`state_vector`, projected onto the valid domain.

        Projection: Λ is symmetrised and its eigenvalues raised to at least σ²/α² (the
        nearest matrix in Frobenius norm whose XᵀX = Λ − σ²/α² I is positive
        semi-definite); steps is clamped to ≥ 0. Then XᵀX = Λ − σ²/α² I, XᵀY = Λ W̄ᵀ.
        """
        dx, dy = self.x_dim, self.y_dim
        size = dx * dx + dx * dy + dx + 1
        if not isinstance(vector, torch.Tensor) or vector.dim() != 2 or vector.shape[1] != size:
            shape = tuple(vector.shape) if isinstance(vector, torch.Tensor) else type(vector)
            raise ValueError(f"vector: expected shape [B, {size}], got {shape}")
        check_finite_tensor(vector, "vector")
        vector = vector.to(device=self.device, dtype=self.dtype)
        b = vector.shape[0]
        lam, mean_t, pending, steps = torch.split(vector, [dx * dx, dx * dy, dx, 1], dim=1)
        lam = lam.reshape(b, dx, dx)
        lam = 0.5 * (lam + lam.transpose(1, 2))
        with torch.no_grad():  # only rows outside the domain go through eigh, whose
            # derivative is undefined at repeated eigenvalues (Λ = σ²/α² I before any data)
            outside = torch.linalg.eigvalsh(lam).amin(-1) < self.ridge * (1 - 1e-9)
        if bool(outside.any()):
            evals, evecs = torch.linalg.eigh(lam[outside])
            inside = (evecs * evals.clamp(min=self.ridge).unsqueeze(1)) @ evecs.transpose(1, 2)
            lam = lam.index_put((outside,), inside)
        eye = torch.eye(dx, dtype=self.dtype, device=self.device)
        xy = lam @ mean_t.reshape(b, dx, dy)
        return RegressionState(lam - self.ridge * eye, xy, pending, steps[:, 0].clamp(min=0))

    # -- internals ---------------------------------------------------------------------
    def _absorb(self, state: RegressionState, y_prev: torch.Tensor,
                x_t: torch.Tensor) -> RegressionState:
        w = (state.steps >= 0.5).to(self.dtype)[:, None]  # steps is a count: robust to round-off
        p = state.pending * w
        xx = state.xx + p.unsqueeze(2) * state.pending.unsqueeze(1)
        xy = state.xy + p.unsqueeze(2) * y_prev.unsqueeze(1)
        return RegressionState(xx, xy, x_t, state.steps + 1)

    def _precision(self, state: RegressionState) -> torch.Tensor:
        eye = torch.eye(self.x_dim, dtype=self.dtype, device=self.device)
        return state.xx + self.ridge * eye

    def _solve(self, state: RegressionState) -> torch.Tensor:
        """Λ⁻¹ XᵀY ``[B, d_x, d_y]`` (= W̄ᵀ)."""
        return torch.linalg.solve(self._precision(state), state.xy)

    def _predict(self, state: RegressionState, x_t: torch.Tensor) -> torch.Tensor:
        return (x_t.unsqueeze(1) @ self._solve(state)).squeeze(1)

    def _split_input(self, x: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return split_regression_input(self, x, batch)

    def _check_state(self, state: RegressionState) -> RegressionState:
        if not isinstance(state, tuple) or len(state) != 4:
            raise TypeError(f"state: expected a RegressionState (xx, xy, pending, steps), "
                            f"got {type(state).__name__}")
        state = RegressionState(*(s.to(device=self.device, dtype=self.dtype) for s in state))
        b = state.xx.shape[0]
        dx, dy = self.x_dim, self.y_dim
        expected = ((b, dx, dx), (b, dx, dy), (b, dx), (b,))
        for name, leaf, shape in zip(RegressionState._fields, state, expected, strict=True):
            if tuple(leaf.shape) != shape:
                raise ValueError(f"state.{name}: expected shape {list(shape)}, "
                                 f"got {tuple(leaf.shape)}")
        return state


def split_regression_input(machine: Any, x: torch.Tensor, batch: int
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """``x [batch, x_dim + y_dim]`` = ``[x_t, y_(t-1)]`` checked and split into ``x_t [batch,
    x_dim]`` and ``y_(t-1) [batch, y_dim]`` on ``machine``'s device and dtype (the regression
    machines' shared input: :class:`BayesianLinearRegression`, ``DiscreteMMSE``)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape != (batch, machine.input_size):
        raise ValueError(f"x: expected shape [{batch}, {machine.input_size}] ([x_t, y_(t-1)]), "
                         f"got {tuple(x.shape)}")
    x = x.to(device=machine.device, dtype=machine.dtype)
    return x[:, : machine.x_dim], x[:, machine.x_dim:]
