"""The task catalogue of the Mikulik et al. (2020) comparison, as data.

Fourteen entries (§3.1, Fig. 4): ten sequential-prediction tasks and four two-armed
bandits, each with its prior and a factory for its Bayes-optimal machine. The paper's
appendix (exact priors, discount) was not available; the entries follow the families it
names. Episodes have T = 20 steps.

=============================  ==========  =================================================
name                           kind        task (prior)
=============================  ==========  =================================================
bernoulli_beta_1_1             prediction  Bernoulli, p ~ Beta(1, 1)
bernoulli_beta_0.5_0.5         prediction  Bernoulli, p ~ Beta(0.5, 0.5)
bernoulli_beta_5_2             prediction  Bernoulli, p ~ Beta(5, 2)
categorical3_dirichlet_1       prediction  Categorical K=3, π ~ Dirichlet(1, 1, 1)
categorical3_dirichlet_0.5     prediction  Categorical K=3, π ~ Dirichlet(0.5, 0.5, 0.5)
categorical5_dirichlet_1       prediction  Categorical K=5, π ~ Dirichlet(1, ..., 1)
exponential_gamma_1_1          prediction  Exponential, λ ~ Gamma(1, rate 1)
exponential_gamma_5_5          prediction  Exponential, λ ~ Gamma(5, rate 5)
gaussian_mean_normal_0_1       prediction  N(μ, 1), μ ~ N(0, 1)
gaussian_normal_gamma_0_1_1_1  prediction  N(μ, 1/τ), (μ, τ) ~ NormalGamma(0, 1, 1, 1)
bandit_bernoulli_beta_1_1      bandit      2 Bernoulli arms, p_a ~ Beta(1, 1)
bandit_bernoulli_beta_0.5_0.5  bandit      2 Bernoulli arms, p_a ~ Beta(0.5, 0.5)
bandit_gaussian_normal_0_1     bandit      2 Gaussian arms (unit variance), μ_a ~ N(0, 1)
bandit_gaussian_normal_0_0.25  bandit      2 Gaussian arms (unit variance), μ_a ~ N(0, 0.25)
=============================  ==========  =================================================

N(0, 0.25) is read as variance 0.25 (prior standard deviation 0.5). The bandits' Bayes
machines are Gittins-index agents with discount :data:`BANDIT_DISCOUNT` (an assumption:
the paper's value is in its appendix). Bandit tasks and agents are imported only when an
entry is built, so the catalogue can be listed without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trajprobe.reference_models import conjugate
from trajprobe.task_protocol import is_environment
from trajprobe.tasks import prediction

__all__ = [
    "BANDIT_DISCOUNT",
    "CATALOGUE",
    "EPISODE_LENGTH",
    "CatalogueEntry",
    "find",
    "get",
    "names",
]

EPISODE_LENGTH = 20
"""T, steps per episode for every catalogue task (Mikulik et al. §3.1)."""

BANDIT_DISCOUNT = 0.9
"""Discount γ of the bandits' Gittins agents (assumed; not given in the paper's main text)."""


@dataclass(frozen=True)
class CatalogueEntry:
    """One task of the comparison: the task, its prior, and its Bayes-optimal machine.

    Attributes:
        name: the catalogue key.
        prior: the prior in words, e.g. ``"Beta(1, 1)"``.
        make_task: builds the task object (no arguments).
        make_bayes: builds the Bayes-optimal machine for a task object.
        n_steps: T.
    """

    name: str
    prior: str
    make_task: Callable[[], Any]
    make_bayes: Callable[[Any], Any]
    n_steps: int = EPISODE_LENGTH

    @property
    def kind(self) -> str:
        """``"bandit"`` for an :class:`~trajprobe.tasks.Environment` (closed loop), else
        ``"prediction"`` (open loop): read from the task, never stored beside it."""
        return "bandit" if is_environment(self.task) else "prediction"

    @property
    def task(self) -> Any:
        """A fresh task object (tasks are immutable, so this is cheap and safe)."""
        return self.make_task()

    def bayes(self, task: Any = None) -> Any:
        """The Bayes-optimal machine for ``task`` (this entry's task if None)."""
        return self.make_bayes(self.task if task is None else task)


def _bandit_bernoulli(alpha: float, beta: float) -> Callable[[], Any]:
    def make() -> Any:
        from trajprobe.tasks.armed_bandits import BernoulliBandit

        return BernoulliBandit(alpha, beta, n_arms=2)

    return make


def _bandit_gaussian(prior_mean: float, prior_std: float) -> Callable[[], Any]:
    def make() -> Any:
        from trajprobe.tasks.armed_bandits import GaussianBandit

        return GaussianBandit(prior_mean, prior_std, reward_std=1.0, n_arms=2)

    return make


def _gittins(task: Any) -> Any:
    from trajprobe.reference_models.bandits import GittinsAgent

    return GittinsAgent(task, BANDIT_DISCOUNT)


def _bernoulli(alpha: float, beta: float) -> tuple[Callable, Callable]:
    return (lambda: prediction.BernoulliPrediction(alpha, beta),
            lambda task: conjugate.BetaBernoulli(task.alpha, task.beta))


def _categorical(concentration: tuple[float, ...]) -> tuple[Callable, Callable]:
    return (lambda: prediction.CategoricalPrediction(concentration),
            lambda task: conjugate.DirichletCategorical(task.concentration))


def _exponential(shape: float, rate: float) -> tuple[Callable, Callable]:
    return (lambda: prediction.ExponentialPrediction(shape, rate),
            lambda task: conjugate.GammaExponential(task.shape, task.rate))


def _gaussian(prior_mean: float, prior_std: float) -> tuple[Callable, Callable]:
    return (lambda: prediction.GaussianPrediction(prior_mean, prior_std, noise_std=1.0),
            lambda task: conjugate.NormalKnownVariance(task.prior_mean, task.prior_std,
                                                       task.noise_std))


def _normal_gamma(mu: float, kappa: float, alpha: float, beta: float) -> tuple[Callable, Callable]:
    return (lambda: prediction.NormalGammaPrediction(mu, kappa, alpha, beta),
            lambda task: conjugate.NormalGamma(task.mu, task.kappa, task.alpha, task.beta))


def _prediction(name: str, prior: str, factories: tuple[Callable, Callable]) -> CatalogueEntry:
    return CatalogueEntry(name, prior, *factories)


CATALOGUE: tuple[CatalogueEntry, ...] = (
    _prediction("bernoulli_beta_1_1", "Beta(1, 1)", _bernoulli(1.0, 1.0)),
    _prediction("bernoulli_beta_0.5_0.5", "Beta(0.5, 0.5)", _bernoulli(0.5, 0.5)),
    _prediction("bernoulli_beta_5_2", "Beta(5, 2)", _bernoulli(5.0, 2.0)),
    _prediction("categorical3_dirichlet_1", "Dirichlet(1, 1, 1)", _categorical((1.0,) * 3)),
    _prediction("categorical3_dirichlet_0.5", "Dirichlet(0.5, 0.5, 0.5)",
                _categorical((0.5,) * 3)),
    _prediction("categorical5_dirichlet_1", "Dirichlet(1, 1, 1, 1, 1)", _categorical((1.0,) * 5)),
    _prediction("exponential_gamma_1_1", "Gamma(shape 1, rate 1)", _exponential(1.0, 1.0)),
    _prediction("exponential_gamma_5_5", "Gamma(shape 5, rate 5)", _exponential(5.0, 5.0)),
    _prediction("gaussian_mean_normal_0_1", "N(0, 1) on the mean; unit noise variance",
                _gaussian(0.0, 1.0)),
    _prediction("gaussian_normal_gamma_0_1_1_1", "NormalGamma(mu 0, kappa 1, alpha 1, beta 1)",
                _normal_gamma(0.0, 1.0, 1.0, 1.0)),
    CatalogueEntry("bandit_bernoulli_beta_1_1", "Beta(1, 1) per arm",
                   _bandit_bernoulli(1.0, 1.0), _gittins),
    CatalogueEntry("bandit_bernoulli_beta_0.5_0.5", "Beta(0.5, 0.5) per arm",
                   _bandit_bernoulli(0.5, 0.5), _gittins),
    CatalogueEntry("bandit_gaussian_normal_0_1",
                   "N(0, 1) on each arm's mean; unit reward variance",
                   _bandit_gaussian(0.0, 1.0), _gittins),
    CatalogueEntry("bandit_gaussian_normal_0_0.25",
                   "N(0, 0.25) (variance; std 0.5) on each arm's mean; unit reward variance",
                   _bandit_gaussian(0.0, 0.5), _gittins),
)
"""Every entry, prediction tasks first."""


def names(kind: str | None = None) -> tuple[str, ...]:
    """Catalogue names, all or of one ``kind`` (``"prediction"`` or ``"bandit"``)."""
    if kind not in (None, "prediction", "bandit"):
        raise ValueError(f"kind: expected None, 'prediction' or 'bandit', got {kind!r}")
    return tuple(e.name for e in CATALOGUE if kind is None or e.kind == kind)


def get(name: str) -> CatalogueEntry:
    """The entry called ``name``; ValueError listing the valid names otherwise."""
    for entry in CATALOGUE:
        if entry.name == name:
            return entry
    from trajprobe.validation import did_you_mean

    raise ValueError(f"name: got {name!r}{did_you_mean(name, names())} "
                     f"(valid names: {', '.join(names())})")


def find(task: Any) -> CatalogueEntry | None:
    """The entry whose task equals ``task`` (tasks are frozen dataclasses), or None."""
    for entry in CATALOGUE:
        if entry.task == task:
            return entry
    return None
