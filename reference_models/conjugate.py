"""Bayes-optimal sequential predictors for conjugate exponential families (Mikulik et al. §3.1).

Each machine's state is the conjugate posterior's parameters, ``[B, P]`` (one tensor), and
its output at t is the posterior predictive for x_t given x_1..x_{t-1}. Inputs follow
:mod:`trajprobe.tasks.prediction` exactly: ``x`` at t is ``[e(x_{t-1}), flag_t]``
``[B, D + 1]``, with flag 0 at t = 1 and 1 afterwards. The transition absorbs the
previous observation with weight ``w = max(flag, 0)`` (w = 1: a real observation, w = 0:
none; a fractional w is a tempered likelihood p(x | θ)^w, which keeps the update
conjugate) and the output is the predictive of the updated posterior::

    s_t = update(s_{t-1}, x_{t-1}, w_t)       y_t = predictive parameters of s_t

| machine | state (posterior) | output y | ``distribution(y)`` |
|---|---|---|---|
| BetaBernoulli | (α, β) | (p,) | Bernoulli(p) |
| DirichletCategorical | (α_1..α_K) | (π_1..π_K) | Categorical(π) |
| GammaExponential | (a, b) shape, rate | (a, b) | Lomax(a, b) = Pareto(b, a) - b |
| NormalKnownVariance | (m, λ) mean, precision | (m, sqrt(1/λ + σ²)) | Normal |
| NormalGamma | (μ, κ, α, β) | (2α, μ, sqrt(β(κ+1)/(ακ))) | StudentT |

Projection onto the valid domain: a state that did not come from this machine's own
updates (``state_from_vector``, e.g. a state mapped in by a simulation map, or any state
passed to ``step``) is projected before use: every parameter that must be positive
(concentrations, shapes, rates, precisions, κ) is clamped to at least
:data:`MIN_PARAMETER`; means are unconstrained and kept. NaN or infinite state vectors
raise ``ValueError``. Projection is idempotent and leaves valid states unchanged.

All computation is in float64 unless another ``dtype`` is given.
"""

from __future__ import annotations

import math

import torch
from torch import distributions as D

from trajprobe.devices import resolve_device
from trajprobe.heads import lomax
from trajprobe.validation import check_finite_tensor, check_positive, check_positive_int

__all__ = [
    "MIN_PARAMETER",
    "BetaBernoulli",
    "ConjugatePredictor",
    "DirichletCategorical",
    "GammaExponential",
    "NormalGamma",
    "NormalKnownVariance",
]

MIN_PARAMETER = 1e-6
"""Smallest value a positive posterior parameter is projected to."""


class ConjugatePredictor:
    """Shared machinery: validation, projection, step/output; subclasses give the maths.

    Subclasses set ``feature_size`` (D), ``param_names`` (state layout), ``positive``
    (bool mask over the state's P entries) and implement ``_prior() -> [P]``,
    ``_update(state [B, P], obs [B, D], w [B]) -> [B, P]``, ``_predictive(state) -> y`` and
    ``distribution(y)``.
    """

    feature_size: int = 1
    param_names: tuple[str, ...] = ()
    positive: tuple[bool, ...] = ()

    def __init__(self, *, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        if not dtype.is_floating_point:
            raise TypeError(f"dtype: expected a floating dtype, got {dtype}")
        self.dtype = dtype
        self.device = resolve_device(device)

    # -- protocol ----------------------------------------------------------------------
    @property
    def input_size(self) -> int:
        """D + 1: previous observation features and the flag."""
        return self.feature_size + 1

    @property
    def state_size(self) -> int:
        """P, the number of posterior parameters."""
        return len(self.param_names)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """The prior's parameters, ``[B, P]``."""
        check_positive_int(batch_size, "batch_size")
        prior = self._prior().to(device=self.device, dtype=self.dtype)
        return prior.expand(batch_size, -1).clone()

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Absorb x_{t-1} from ``x`` ``[B, D + 1]`` into s_{t-1} ``[B, P]``; predict x_t.

        Returns:
            ``(y_t, s_t)``: predictive parameters ``[B, output_size]`` and the posterior.
        """
        state = self.project(self._check_state(state))
        obs, weight = self._split_input(x, state.shape[0])
        self._check_observations(obs, weight)
        new = self._update(state, obs, weight)
        return self._predictive(new), new

    def output(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The output function f(x, s) alone."""
        return self.step(x, state)[0]

    def state_vector(self, state: torch.Tensor) -> torch.Tensor:
        """The posterior parameters ``[B, P]`` (the state itself)."""
        return self._check_state(state)

    def state_from_vector(self, vector: torch.Tensor) -> torch.Tensor:
        """Vectors ``[B, P]`` to a state, projected onto the valid domain (module docstring)."""
        return self.project(self._check_state(vector, name="vector"))

    def project(self, state: torch.Tensor) -> torch.Tensor:
        """Clamp the positive parameters of ``state`` ``[B, P]`` to ≥ :data:`MIN_PARAMETER`."""
        mask = torch.tensor(self.positive, device=state.device)
        return torch.where(mask, state.clamp(min=MIN_PARAMETER), state)

    # -- subclass hooks ----------------------------------------------------------------
    def _prior(self) -> torch.Tensor:
        raise NotImplementedError

    def _update(self, state: torch.Tensor, obs: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _predictive(self, state: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    support: tuple[float, float] = (-math.inf, math.inf)
    """Closed interval every observed feature must lie in (rows with weight 0 are skipped)."""

    def _check_observations(self, obs: torch.Tensor, w: torch.Tensor) -> None:
        low, high = self.support
        seen = obs[w > 0]
        bad = (seen < low) | (seen > high)
        if bool(bad.any()):
            raise ValueError(
                f"x: {type(self).__name__} observations must lie in [{low}, {high}], got "
                f"{float(seen[bad][0])}; encode observations as the task does"
            )

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """The posterior predictive distribution from outputs ``y`` ``[..., output_size]``."""
        raise NotImplementedError

    # -- validation --------------------------------------------------------------------
    def _check_state(self, state: torch.Tensor, name: str = "state") -> torch.Tensor:
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor [B, {self.state_size}], "
                            f"got {type(state).__name__}")
        if state.dim() != 2 or state.shape[1] != self.state_size:
            raise ValueError(
                f"{name}: expected shape [B, {self.state_size}] "
                f"({', '.join(self.param_names)}), got {tuple(state.shape)}"
            )
        check_finite_tensor(state, name)
        return state.to(device=self.device, dtype=self.dtype)

    def _split_input(self, x: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape != (batch, self.input_size):
            raise ValueError(
                f"x: expected shape [{batch}, {self.input_size}] (previous observation "
                f"features and flag), got {tuple(x.shape)}"
            )
        x = x.to(device=self.device, dtype=self.dtype)
        return x[:, : self.feature_size], x[:, self.feature_size].clamp(min=0)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"

    def _config(self) -> dict:
        return {}


class BetaBernoulli(ConjugatePredictor):
    """Bernoulli observations, Beta(alpha, beta) prior on the bias.

    State (α, β) ``[B, 2]``: α += w x, β += w (1 - x). Output p = α / (α + β) ``[B, 1]``,
    the predictive P(x_t = 1 | x_<t); ``distribution`` is Bernoulli(p).
    """

    support = (0.0, 1.0)
    feature_size = 1
    param_names = ("alpha", "beta")
    positive = (True, True)
    output_size = 1

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, **kwargs) -> None:
        check_positive(alpha, "alpha")
        check_positive(beta, "beta")
        self.alpha, self.beta = float(alpha), float(beta)
        super().__init__(**kwargs)

    def _config(self):
        return {"alpha": self.alpha, "beta": self.beta}

    def _prior(self):
        return torch.tensor([self.alpha, self.beta], dtype=torch.float64)

    def _update(self, state, obs, w):
        x = obs[:, 0]
        return state + torch.stack([w * x, w * (1 - x)], dim=1)

    def _predictive(self, state):
        return state[:, :1] / state.sum(dim=1, keepdim=True)

    def distribution(self, y):
        """Bernoulli(p) from ``y`` ``[..., 1]``."""
        return D.Bernoulli(probs=y[..., 0])


class DirichletCategorical(ConjugatePredictor):
    """Categorical observations (one-hot encoded), Dirichlet(concentration) prior.

    State (α_1..α_K) ``[B, K]``: α += w onehot(x). Output π = α / Σα ``[B, K]``;
    ``distribution`` is Categorical(π).
    """

    support = (0.0, 1.0)
    positive = ()

    def __init__(self, concentration=(1.0, 1.0, 1.0), **kwargs) -> None:
        conc = tuple(float(c) for c in concentration)
        if len(conc) < 2:
            raise ValueError(f"concentration: expected at least 2 classes, got {concentration!r}")
        for i, c in enumerate(conc):
            check_positive(c, f"concentration[{i}]")
        self.concentration = conc
        self.feature_size = len(conc)
        self.output_size = len(conc)
        self.param_names = tuple(f"alpha_{k}" for k in range(len(conc)))
        self.positive = (True,) * len(conc)
        super().__init__(**kwargs)

    def _config(self):
        return {"concentration": self.concentration}

    def _prior(self):
        return torch.tensor(self.concentration, dtype=torch.float64)

    def _update(self, state, obs, w):
        return state + w[:, None] * obs

    def _predictive(self, state):
        return state / state.sum(dim=1, keepdim=True)

    def distribution(self, y):
        """Categorical(π) from ``y`` ``[..., K]``."""
        return D.Categorical(probs=y)


class GammaExponential(ConjugatePredictor):
    """Exponential observations, Gamma(shape, rate) prior on the rate λ.

    State (a, b) ``[B, 2]``: a += w, b += w x. Output (a, b) ``[B, 2]``; the predictive
    p(x) = a b^a / (b + x)^(a+1) is Lomax(a, b), a Pareto(scale b, alpha a) shifted by -b.
    """

    support = (0.0, math.inf)
    feature_size = 1
    param_names = ("shape", "rate")
    positive = (True, True)
    output_size = 2

    def __init__(self, shape: float = 1.0, rate: float = 1.0, **kwargs) -> None:
        check_positive(shape, "shape")
        check_positive(rate, "rate")
        self.shape, self.rate = float(shape), float(rate)
        super().__init__(**kwargs)

    def _config(self):
        return {"shape": self.shape, "rate": self.rate}

    def _prior(self):
        return torch.tensor([self.shape, self.rate], dtype=torch.float64)

    def _update(self, state, obs, w):
        return state + torch.stack([w, w * obs[:, 0]], dim=1)

    def _predictive(self, state):
        return state.clone()

    def distribution(self, y):
        """Lomax(a, b) from ``y`` ``[..., 2]`` = (a, b)."""
        return lomax(y[..., 0], y[..., 1])


class NormalKnownVariance(ConjugatePredictor):
    """Gaussian observations N(μ, noise_std²), N(prior_mean, prior_scale²) prior on μ.

    State (m, λ) ``[B, 2]``, posterior mean and precision of μ:
    λ' = λ + w/σ², m' = (λ m + w x/σ²) / λ'. Output (m, sqrt(1/λ + σ²)) ``[B, 2]``;
    ``distribution`` is Normal.
    """

    feature_size = 1
    param_names = ("mean", "precision")
    positive = (False, True)
    output_size = 2

    def __init__(self, prior_mean: float = 0.0, prior_scale: float = 1.0,
                 noise_std: float = 1.0, **kwargs) -> None:
        if not math.isfinite(prior_mean):
            raise ValueError(f"prior_mean: expected a finite number, got {prior_mean!r}")
        check_positive(prior_scale, "prior_scale")
        check_positive(noise_std, "noise_std")
        self.prior_mean, self.prior_scale = float(prior_mean), float(prior_scale)
        self.noise_std = float(noise_std)
        super().__init__(**kwargs)

    def _config(self):
        return {"prior_mean": self.prior_mean, "prior_scale": self.prior_scale,
                "noise_std": self.noise_std}

    def _prior(self):
        return torch.tensor([self.prior_mean, self.prior_scale**-2], dtype=torch.float64)

    def _update(self, state, obs, w):
        m, lam = state[:, 0], state[:, 1]
        noise_prec = self.noise_std**-2
        lam_new = lam + w * noise_prec
        m_new = (lam * m + w * noise_prec * obs[:, 0]) / lam_new
        return torch.stack([m_new, lam_new], dim=1)

    def _predictive(self, state):
        std = torch.sqrt(1.0 / state[:, 1] + self.noise_std**2)
        return torch.stack([state[:, 0], std], dim=1)

    def distribution(self, y):
        """Normal(mean, std) from ``y`` ``[..., 2]``."""
        return D.Normal(y[..., 0], y[..., 1])


class NormalGamma(ConjugatePredictor):
    """Gaussian observations N(μ, 1/τ) with unknown mean and precision.

    Prior τ ~ Gamma(alpha, rate beta), μ | τ ~ N(mu, 1/(kappa τ)). State (μ, κ, α, β)
    ``[B, 4]``; absorbing x with weight w:
    κ' = κ + w, μ' = (κ μ + w x)/κ', α' = α + w/2, β' = β + w κ (x - μ)² / (2 κ').
    Output (2α, μ, sqrt(β (κ + 1) / (α κ))) ``[B, 3]``; ``distribution`` is that StudentT.
    """

    feature_size = 1
    param_names = ("mu", "kappa", "alpha", "beta")
    positive = (False, True, True, True)
    output_size = 3

    def __init__(self, mu: float = 0.0, kappa: float = 1.0, alpha: float = 1.0,
                 beta: float = 1.0, **kwargs) -> None:
        if not math.isfinite(mu):
            raise ValueError(f"mu: expected a finite number, got {mu!r}")
        check_positive(kappa, "kappa")
        check_positive(alpha, "alpha")
        check_positive(beta, "beta")
        self.mu, self.kappa, self.alpha, self.beta = map(float, (mu, kappa, alpha, beta))
        super().__init__(**kwargs)

    def _config(self):
        return {"mu": self.mu, "kappa": self.kappa, "alpha": self.alpha, "beta": self.beta}

    def _prior(self):
        return torch.tensor([self.mu, self.kappa, self.alpha, self.beta], dtype=torch.float64)

    def _update(self, state, obs, w):
        mu, kappa, alpha, beta = state.unbind(dim=1)
        x = obs[:, 0]
        kappa_new = kappa + w
        mu_new = (kappa * mu + w * x) / kappa_new
        alpha_new = alpha + 0.5 * w
        beta_new = beta + w * kappa * (x - mu) ** 2 / (2 * kappa_new)
        return torch.stack([mu_new, kappa_new, alpha_new, beta_new], dim=1)

    def _predictive(self, state):
        mu, kappa, alpha, beta = state.unbind(dim=1)
        scale = torch.sqrt(beta * (kappa + 1) / (alpha * kappa))
        return torch.stack([2 * alpha, mu, scale], dim=1)

    def distribution(self, y):
        """StudentT(df, loc, scale) from ``y`` ``[..., 3]``."""
        return D.StudentT(y[..., 0], y[..., 1], y[..., 2])
