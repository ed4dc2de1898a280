"""The discrete MMSE predictor: Bayes for a finite pool of regression tasks (Raventós et al. 2023).

Model: W is one of M known targets W⁽¹⁾ … W⁽ᴹ⁾ ``[d_y, d_x]``, each with prior 1/M, and
y = W x + ε, ε ~ N(0, σ² I). After pairs (x_i, y_i), i < t, the posterior over the pool is
(Raventós eq. 3, "dMMSE")::

    log p(m | data) = -Σ_i ||y_i - W⁽ᵐ⁾ x_i||² / (2σ²) + const          (softmax weights)
    ŷ_t = W̄_t x_t,   W̄_t = Σ_m p(m | data) W⁽ᵐ⁾                         (posterior mean)

With no data the weights are uniform and ŷ_1 = mean(W⁽ᵐ⁾) x_1. With M → ∞ targets from
the Gaussian prior, W̄_t tends to ridge regression's posterior mean
(:class:`~trajprobe.reference_models.BayesianLinearRegression`).

Input encoding (the linear-regression task's): ``[x_t, y_{t-1}]`` ``[B, d_x + d_y]`` with
y_0 = 0. As in Bayesian linear regression, y_{t-1} arrives one step after x_{t-1}, so the
state keeps the pending x::

    state = (log-likelihoods [B, M], pending x [B, d_x], steps [B])

``log_lik[b, m]`` = Σ_i log N(y_i; W⁽ᵐ⁾ x_i, σ² I) over the completed pairs (up to a
constant): the sufficient statistic of the posterior over the pool.

Output: ``output="mean"`` (default) emits ŷ_t ``[B, d_y]``. ``output="predictive"`` emits
``[logits (M), component means (M · d_y)]``: the posterior predictive is exactly the
mixture Σ_m p(m | data) N(W⁽ᵐ⁾ x_t, σ² I), and ``distribution(y)`` is that
``MixtureSameFamily`` (its ``mean`` is ŷ_t).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import distributions as D

from trajprobe.devices import resolve_device
from trajprobe.reference_models.linear_regression import split_regression_input
from trajprobe.validation import as_tensor, check_finite_tensor, check_positive, check_positive_int

__all__ = ["DiscreteMMSE", "PoolState"]


class PoolState(NamedTuple):
    """Sufficient statistics of the posterior over a task pool; every leaf batch-leading."""

    log_lik: torch.Tensor
    """``[B, M]`` Σ_i -||y_i - W⁽ᵐ⁾ x_i||² / (2σ²) over completed pairs."""
    pending: torch.Tensor
    """``[B, d_x]`` the last x, whose y arrives with the next input."""
    steps: torch.Tensor
    """``[B]`` the number of inputs seen."""


class DiscreteMMSE:
    """Bayes-optimal predictor for y = W x + ε when W is uniform over a known pool of M targets.

    Args:
        targets: the pool ``[M, d_y, d_x]`` (e.g. :meth:`trajprobe.tasks.TaskPool.targets`).
        noise_std: σ, the observation noise standard deviation (known, > 0).
        output: ``"mean"`` (ŷ only) or ``"predictive"`` (the mixture's parameters, with
            ``distribution``).
        dtype, device: of the state and the pool (float64 by default).
    """

    def __init__(
        self,
        targets: torch.Tensor,
        *,
        noise_std: float = 1.0,
        output: str = "mean",
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        if not dtype.is_floating_point:
            raise TypeError(f"dtype: expected a floating dtype, got {dtype}")
        self.device = resolve_device(device)
        self.dtype = dtype
        targets = as_tensor(targets, "targets", dtype=dtype, device=self.device)
        if targets.dim() != 3:
            raise ValueError(f"targets: expected the pool's shape [M, d_y, d_x], "
                             f"got {tuple(targets.shape)}")
        check_finite_tensor(targets, "targets")
        check_positive(noise_std, "noise_std")
        if output not in ("mean", "predictive"):
            raise ValueError(f"output: expected 'mean' or 'predictive', got {output!r}")
        self.targets = targets
        self.n_tasks, self.y_dim, self.x_dim = targets.shape
        self.noise_std = float(noise_std)
        self.output_kind = output
        if output == "predictive":
            self.distribution = self._mixture

    @classmethod
    def from_task(cls, pool, **kwargs) -> DiscreteMMSE:
        """The Bayes reference of a finite :class:`~trajprobe.tasks.TaskPool` (its targets
        and noise). ``kwargs`` (``dtype``, ``device``, ``output``, or ``noise_std`` to
        override the task's; a noiseless task needs one > 0) are passed on."""
        noise_std = kwargs.pop("noise_std", pool.task.noise_std)
        dtype = kwargs.get("dtype", torch.float64)
        return cls(pool.targets(dtype=dtype), noise_std=noise_std, **kwargs)

    def __repr__(self) -> str:
        return (f"DiscreteMMSE(M={self.n_tasks}, d_y={self.y_dim}, d_x={self.x_dim}, "
                f"noise_std={self.noise_std}, output={self.output_kind!r})")

    @property
    def input_size(self) -> int:
        """d_x + d_y."""
        return self.x_dim + self.y_dim

    @property
    def output_size(self) -> int:
        """d_y (``output="mean"``) or M (1 + d_y) (``output="predictive"``)."""
        return self.y_dim if self.output_kind == "mean" else self.n_tasks * (1 + self.y_dim)

    def initial_state(self, batch_size: int) -> PoolState:
        """Uniform posterior (zero log-likelihoods), nothing pending, ``steps = 0``."""
        check_positive_int(batch_size, "batch_size")
        kw = {"dtype": self.dtype, "device": self.device}
        return PoolState(torch.zeros(batch_size, self.n_tasks, **kw),
                         torch.zeros(batch_size, self.x_dim, **kw), torch.zeros(batch_size, **kw))

    def step(self, x: torch.Tensor, state: PoolState) -> tuple[torch.Tensor, PoolState]:
        """Absorb (pending x, y_{t-1}), then predict y_t from the posterior over the pool.

        Args:
            x: ``[B, d_x + d_y]`` = [x_t, y_{t-1}].
            state: s_{t-1}.

        Returns:
            ``(y_t, s_t)``: ŷ_t ``[B, d_y]``, or the mixture's ``[logits, means]`` with
            ``output="predictive"``.
        """
        state = self._check_state(state)
        x_t, y_prev = self._split_input(x, state.log_lik.shape[0])
        new = self._absorb(state, y_prev, x_t)
        if self.output_kind == "predictive":
            means = torch.einsum("myx,bx->bmy", self.targets, x_t)
            return torch.cat([self.posterior(new).logits, means.flatten(1)], dim=1), new
        return self._predict(new, x_t), new

    def output(self, x: torch.Tensor, state: PoolState) -> torch.Tensor:
        """The output function alone: y_t as :meth:`step` emits it."""
        return self.step(x, state)[0]

    def posterior(self, state: PoolState) -> D.Categorical:
        """p(m | completed pairs): a Categorical over the M pool members, batch ``[B]``."""
        state = self._check_state(state)
        return D.Categorical(logits=state.log_lik - state.log_lik.logsumexp(-1, keepdim=True))

    def posterior_mean(self, state: PoolState) -> torch.Tensor:
        """W̄ = Σ_m p(m | data) W⁽ᵐ⁾ ``[B, d_y, d_x]`` over the completed pairs."""
        probs = self.posterior(state).probs
        return torch.einsum("bm,myx->byx", probs, self.targets)

    def state_vector(self, state: PoolState) -> torch.Tensor:
        """``[B, M + d_x + 1]``: the normalised log-posterior, pending x and steps.

        The log-likelihoods are shifted by their log-sum-exp (a state and any constant
        shift of it predict the same), so equal posteriors have equal vectors.
        """
        state = self._check_state(state)
        log_post = state.log_lik - state.log_lik.logsumexp(-1, keepdim=True)
        return torch.cat([log_post, state.pending, state.steps[:, None]], dim=1)

    def state_from_vector(self, vector: torch.Tensor) -> PoolState:
        """Inverse of :meth:`state_vector` (steps clamped to ≥ 0)."""
        size = self.n_tasks + self.x_dim + 1
        if not isinstance(vector, torch.Tensor) or vector.dim() != 2 or vector.shape[1] != size:
            shape = tuple(vector.shape) if isinstance(vector, torch.Tensor) else type(vector)
            raise ValueError(f"vector: expected shape [B, {size}], got {shape}")
        check_finite_tensor(vector, "vector")
        vector = vector.to(device=self.device, dtype=self.dtype)
        log_lik, pending, steps = torch.split(vector, [self.n_tasks, self.x_dim, 1], dim=1)
        return PoolState(log_lik, pending, steps[:, 0].clamp(min=0))

    # -- internals ---------------------------------------------------------------------
    def _absorb(self, state: PoolState, y_prev: torch.Tensor, x_t: torch.Tensor) -> PoolState:
        seen = state.steps >= 0.5  # a pending pair exists from the second input on
        resid = y_prev[:, None, :] - torch.einsum("myx,bx->bmy", self.targets, state.pending)
        log_lik = state.log_lik - seen.to(self.dtype)[:, None] * resid.square().sum(-1) / (
            2 * self.noise_std**2)
        return PoolState(log_lik, x_t, state.steps + 1)

    def _predict(self, state: PoolState, x_t: torch.Tensor) -> torch.Tensor:
        return torch.einsum("byx,bx->by", self.posterior_mean(state), x_t)

    def _mixture(self, y: torch.Tensor) -> D.Distribution:
        """``MixtureSameFamily`` from ``y`` ``[..., M (1 + d_y)]`` = [logits, means]."""
        logits, means = y[..., : self.n_tasks], y[..., self.n_tasks:]
        means = means.reshape(*means.shape[:-1], self.n_tasks, self.y_dim)
        components = D.Independent(D.Normal(means, torch.full_like(means, self.noise_std)), 1)
        return D.MixtureSameFamily(D.Categorical(logits=logits), components)

    def _split_input(self, x: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return split_regression_input(self, x, batch)

    def _check_state(self, state: PoolState) -> PoolState:
        if not isinstance(state, tuple) or len(state) != 3:
            raise TypeError(f"state: expected a PoolState (log_lik, pending, steps), "
                            f"got {type(state).__name__}")
        state = PoolState(*(s.to(device=self.device, dtype=self.dtype) for s in state))
        b = state.log_lik.shape[0]
        expected = ((b, self.n_tasks), (b, self.x_dim), (b,))
        for name, leaf, shape in zip(PoolState._fields, state, expected, strict=True):
            if tuple(leaf.shape) != shape:
                raise ValueError(f"state.{name}: expected shape {list(shape)}, "
                                 f"got {tuple(leaf.shape)}")
        return state

