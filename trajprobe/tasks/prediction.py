"""Sequential prediction tasks (Mikulik et al. 2020 §3.1): predict the next observation.

At the start of every episode the task parameter θ is drawn from a conjugate prior
p(θ); the observations x_1..x_T are then drawn i.i.d. from p(x | θ). A learner must give
a predictive distribution for x_t having seen x_1..x_{t-1}; it is scored by the log-loss.

Input encoding (shared by meta-learners and the Bayes machines of
:mod:`trajprobe.reference_models.conjugate`, which accept exactly these inputs):

    input at t = concat[ e(x_{t-1}) , flag_t ]      [E, T, D + 1]
    flag_t = 0 at t = 1 (then e(x_0) = 0) and 1 from t = 2 on
    target at t = x_t                               [E, T]

where e(x) is the observation's feature vector of width D: the value itself (D = 1) for
Bernoulli (0 or 1), exponential and Gaussian observations, and the one-hot vector (D = K)
for a categorical observation. The output at t is therefore the prediction of x_t from
the t-1 observations seen so far; at t = 1 it is the prior predictive. Targets are
``[E, T]`` floats, or class indices (long) for categorical tasks, so they can be scored
directly with ``distribution(y).log_prob(targets)``.

Every task also defines the meta-learner's output head, ``distribution(y)``: raw network
outputs ``[..., output_size]`` to the predictive distribution of the same family as the
Bayes-optimal predictive (positive parameters through softplus).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch import distributions as D

from trajprobe.heads import HEADS
from trajprobe.labelled import Label, describe, to_numpy
from trajprobe.task_protocol import Episodes, Seed, make_generator
from trajprobe.validation import check_positive, check_positive_int

if TYPE_CHECKING:
    from trajprobe.task_protocol import Probed

__all__ = [
    "BernoulliPrediction",
    "CategoricalPrediction",
    "ExponentialPrediction",
    "GaussianPrediction",
    "NormalGammaPrediction",
    "PredictionTask",
    "encode_observations",
]


def encode_observations(features: torch.Tensor) -> torch.Tensor:
    """Shift observation features one step and add the "has a previous observation" flag.

    Args:
        features: ``[E, T, D]`` e(x_1)..e(x_T).

    Returns:
        ``[E, T, D + 1]``: row t is ``[e(x_{t-1}), 1]`` for t ≥ 2 and ``[0, 0]`` at t = 1.
    """
    if features.dim() != 3:
        raise ValueError(f"features: expected shape [E, T, D], got {tuple(features.shape)}")
    n_episodes, n_steps, _ = features.shape
    shifted = torch.zeros_like(features)
    shifted[:, 1:] = features[:, :-1]
    flag = torch.ones(n_episodes, n_steps, 1, dtype=features.dtype, device=features.device)
    flag[:, 0] = 0
    return torch.cat([shifted, flag], dim=2)


def _check_sizes(n_episodes: int, n_steps: int) -> None:
    check_positive_int(n_episodes, "n_episodes")
    check_positive_int(n_steps, "n_steps")


def _numpy_rng(seed: Seed) -> np.random.Generator:
    """A numpy generator derived from a trajprobe seed (same seed, same stream).

    numpy is used for the prior draws because torch cannot sample Gamma variates from
    an explicit ``torch.Generator``.
    """
    gen = make_generator(seed)
    draw = torch.randint(0, 2**62, (1,), generator=gen, device=gen.device)
    return np.random.default_rng(int(draw.item()))


def _as_tensor(array: np.ndarray, device, dtype) -> torch.Tensor:
    return torch.as_tensor(array, device=device).to(dtype)


class PredictionTask:
    """Shared behaviour of the prediction tasks; subclasses are frozen dataclasses.

    Subclasses define ``feature_size`` (D), ``output_size``, ``_draw(rng, E, T)`` returning
    ``(observations [E, T], params)`` as numpy float64 arrays and ``distribution(y)``. A
    subclass whose observations are i.i.d. given θ says so with ``exchangeable_from = 2``
    (the conjugate tasks below): from step 2 on the inputs are observations whose order the
    posterior ignores (step 1 is the "no observation yet" input), which the sufficiency
    test (:mod:`trajprobe.tasks.exchangeable`) uses; it is not inherited from here, since a
    subclass's observations need not be exchangeable (an HMM's are not).
    """

    feature_size: int = 1
    output_size: int = 1

    @property
    def input_size(self) -> int:
        """D + 1: the previous observation's features and the flag."""
        return self.feature_size + 1

    def features(self, observations: torch.Tensor) -> torch.Tensor:
        """e(x): observations ``[E, T]`` to features ``[E, T, D]``."""
        return observations.unsqueeze(-1)

    def encode(self, observations: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Machine inputs ``[E, T, D + 1]`` for observations ``[E, T]`` (module docstring)."""
        if observations.dim() != 2:
            raise ValueError(
                f"observations: expected shape [E, T], got {tuple(observations.shape)}"
            )
        dtype = dtype or (observations.dtype if observations.is_floating_point()
                          else torch.get_default_dtype())
        return encode_observations(self.features(observations).to(dtype))

    def sample(
        self,
        n_episodes: int,
        n_steps: int,
        *,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Episodes:
        """Draw θ ~ prior per episode and x_1..x_T i.i.d. from p(x | θ).

        Returns:
            :class:`Episodes` with inputs ``[E, T, D + 1]``, targets x_t ``[E, T]``
            (long class indices for categorical tasks) and the true θ in ``params``.
        """
        _check_sizes(n_episodes, n_steps)
        rng = _numpy_rng(seed)
        observations, params = self._draw(rng, n_episodes, n_steps)
        obs = torch.as_tensor(observations, device=device)
        obs = obs if not obs.is_floating_point() else obs.to(dtype)
        return Episodes(
            inputs=self.encode(obs, dtype=dtype),
            targets=obs,
            params={k: _as_tensor(v, device, dtype) for k, v in params.items()},
        )

    def _draw(self, rng: np.random.Generator, n_episodes: int, n_steps: int):
        raise NotImplementedError

    def probe_inputs(self, episodes: Episodes, n_probes: int | None = None, *,
                     seed: Seed = None) -> None:
        """None: the measurement of a prediction task reads the real predictions only."""
        if n_probes is not None:
            raise ValueError(f"n_probes: {type(self).__name__} is measured without probes "
                             f"(its log-loss), got {n_probes}")
        return None

    def summarise(self, probed: Probed) -> xr.Dataset:
        """Log-loss of every prediction, −log p(x_t | y_t) under ``machine.distribution``.

        The per-step summand of the sequential prediction loss (Mikulik et al. §3.1); its
        gap to the Bayes-optimal agent's is the KL of eq. 2 in expectation.

        Returns:
            ``log_loss (episode, t)`` (float64).
        """
        dist = getattr(probed.machine, "distribution", None)
        if not callable(dist):
            raise ValueError(
                f"machine: {type(self).__name__}'s measurement is the log-loss under the "
                f"machine's predictive distribution; {type(probed.machine).__name__} has no "
                "distribution(y) (wrap it with distribution=..., see trajprobe.heads)"
            )
        predictive = dist(probed.trace.outputs.to(torch.float64))
        targets = probed.episodes.targets.to(probed.trace.outputs.device)
        values = targets.to(torch.float64) if targets.is_floating_point() else targets
        ds = xr.Dataset({"log_loss": (("episode", "t"), to_numpy(-predictive.log_prob(values)))},
                        attrs={"measure": "log_loss"})
        return describe(ds, {"log_loss": Label("log-loss −log p(x_t)", "nats",
                                               "-log p(x_t | y_t) (Mikulik et al. §3.1)")})


@dataclass(frozen=True)
class BernoulliPrediction(PredictionTask):
    """Coin flips x_t ∈ {0, 1} with bias p ~ Beta(alpha, beta).

    Inputs ``[E, T, 2]`` = [x_{t-1}, flag]; targets ``[E, T]``; params ``"p"`` ``[E]``.
    Meta-learner head: 1 logit.
    """

    alpha: float = 1.0
    beta: float = 1.0
    feature_size = 1
    output_size = 1

    exchangeable_from = 2  # i.i.d. given θ (class PredictionTask's docstring)

    def __post_init__(self) -> None:
        check_positive(self.alpha, "alpha")
        check_positive(self.beta, "beta")

    def _draw(self, rng, n_episodes, n_steps):
        p = rng.beta(self.alpha, self.beta, size=n_episodes)
        x = (rng.random((n_episodes, n_steps)) < p[:, None]).astype(np.float64)
        return x, {"p": p}

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """Bernoulli predictive from raw outputs ``[..., 1]`` (a logit)."""
        return HEADS["bernoulli"](y)


@dataclass(frozen=True)
class CategoricalPrediction(PredictionTask):
    """Class labels x_t ∈ {0..K-1} with probabilities π ~ Dirichlet(concentration).

    Inputs ``[E, T, K + 1]`` = [one-hot x_{t-1}, flag]; targets ``[E, T]`` (long);
    params ``"probs"`` ``[E, K]``. Meta-learner head: K logits.
    """

    concentration: tuple[float, ...] = (1.0, 1.0, 1.0)

    exchangeable_from = 2  # i.i.d. given θ (class PredictionTask's docstring)

    def __post_init__(self) -> None:
        conc = tuple(float(c) for c in self.concentration)
        if len(conc) < 2:
            raise ValueError(
                f"concentration: expected at least 2 classes, got {self.concentration!r}"
            )
        for i, c in enumerate(conc):
            check_positive(c, f"concentration[{i}]")
        object.__setattr__(self, "concentration", conc)

    @property
    def n_classes(self) -> int:
        """K."""
        return len(self.concentration)

    @property
    def feature_size(self) -> int:  # type: ignore[override]
        """K (one-hot)."""
        return self.n_classes

    @property
    def output_size(self) -> int:  # type: ignore[override]
        """K logits."""
        return self.n_classes

    def features(self, observations: torch.Tensor) -> torch.Tensor:
        """One-hot ``[E, T, K]`` of class indices ``[E, T]``."""
        return F.one_hot(observations.long(), self.n_classes)

    def _draw(self, rng, n_episodes, n_steps):
        probs = rng.dirichlet(self.concentration, size=n_episodes)
        cdf = np.cumsum(probs, axis=1)
        u = rng.random((n_episodes, n_steps, 1))
        x = np.minimum((u > cdf[:, None, :]).sum(-1), self.n_classes - 1).astype(np.int64)
        return x, {"probs": probs}

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """Categorical predictive from raw outputs ``[..., K]`` (logits)."""
        return HEADS["categorical"](y)


@dataclass(frozen=True)
class ExponentialPrediction(PredictionTask):
    """Waiting times x_t ~ Exponential(rate λ) with λ ~ Gamma(shape, rate).

    Inputs ``[E, T, 2]``; targets ``[E, T]``; params ``"rate"`` ``[E]``. Meta-learner head:
    2 outputs, the Lomax shape and scale through softplus.
    """

    shape: float = 1.0
    rate: float = 1.0
    feature_size = 1
    output_size = 2

    exchangeable_from = 2  # i.i.d. given θ (class PredictionTask's docstring)

    def __post_init__(self) -> None:
        check_positive(self.shape, "shape")
        check_positive(self.rate, "rate")

    def _draw(self, rng, n_episodes, n_steps):
        lam = rng.gamma(self.shape, 1.0 / self.rate, size=n_episodes)
        x = rng.standard_exponential((n_episodes, n_steps)) / lam[:, None]
        return x, {"rate": lam}

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """Lomax predictive from raw outputs ``[..., 2]`` (softplus shape, softplus scale)."""
        return HEADS["lomax"](y)


@dataclass(frozen=True)
class GaussianPrediction(PredictionTask):
    """x_t ~ N(μ, noise_std²) with unknown mean μ ~ N(prior_mean, prior_std²).

    Inputs ``[E, T, 2]``; targets ``[E, T]``; params ``"mean"`` ``[E]``. Meta-learner head:
    2 outputs, the mean and the softplus standard deviation.
    """

    prior_mean: float = 0.0
    prior_std: float = 1.0
    noise_std: float = 1.0
    feature_size = 1
    output_size = 2

    exchangeable_from = 2  # i.i.d. given θ (class PredictionTask's docstring)

    def __post_init__(self) -> None:
        if not math.isfinite(self.prior_mean):
            raise ValueError(f"prior_mean: expected a finite number, got {self.prior_mean!r}")
        check_positive(self.prior_std, "prior_std")
        check_positive(self.noise_std, "noise_std")

    def _draw(self, rng, n_episodes, n_steps):
        mu = self.prior_mean + self.prior_std * rng.standard_normal(n_episodes)
        x = mu[:, None] + self.noise_std * rng.standard_normal((n_episodes, n_steps))
        return x, {"mean": mu}

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """Normal predictive from raw outputs ``[..., 2]`` (mean, softplus std)."""
        return HEADS["normal"](y)


@dataclass(frozen=True)
class NormalGammaPrediction(PredictionTask):
    """x_t ~ N(μ, 1/τ), unknown mean and precision: (μ, τ) ~ NormalGamma(mu, kappa, alpha, beta).

    τ ~ Gamma(alpha, rate beta), μ | τ ~ N(mu, 1/(kappa τ)). Inputs ``[E, T, 2]``; targets
    ``[E, T]``; params ``"mean"``, ``"precision"`` ``[E]``. Meta-learner head: 3 outputs,
    Student-t softplus degrees of freedom, location, softplus scale.
    """

    mu: float = 0.0
    kappa: float = 1.0
    alpha: float = 1.0
    beta: float = 1.0
    feature_size = 1
    output_size = 3

    exchangeable_from = 2  # i.i.d. given θ (class PredictionTask's docstring)

    def __post_init__(self) -> None:
        if not math.isfinite(self.mu):
            raise ValueError(f"mu: expected a finite number, got {self.mu!r}")
        check_positive(self.kappa, "kappa")
        check_positive(self.alpha, "alpha")
        check_positive(self.beta, "beta")

    def _draw(self, rng, n_episodes, n_steps):
        tau = rng.gamma(self.alpha, 1.0 / self.beta, size=n_episodes)
        mu = self.mu + rng.standard_normal(n_episodes) / np.sqrt(self.kappa * tau)
        x = mu[:, None] + rng.standard_normal((n_episodes, n_steps)) / np.sqrt(tau)[:, None]
        return x, {"mean": mu, "precision": tau}

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """Student-t predictive from raw outputs ``[..., 3]`` (softplus df, loc, softplus scale)."""
        return HEADS["student_t"](y)
