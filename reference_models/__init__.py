"""Bayes-optimal reference machines: state = sufficient statistics, same input encoding
as the meta-learner for the same task."""

from trajprobe.reference_models import catalogue
from trajprobe.reference_models.bandits import (
    ContextualBanditPosterior,
    FiniteHorizonBernoulliAgent,
    GittinsAgent,
)
from trajprobe.reference_models.conjugate import (
    BetaBernoulli,
    DirichletCategorical,
    GammaExponential,
    NormalGamma,
    NormalKnownVariance,
)
from trajprobe.reference_models.dmmse import DiscreteMMSE
from trajprobe.reference_models.gittins import (
    bernoulli_gittins_index,
    bernoulli_gittins_table,
    gaussian_gittins_index,
    standardized_gaussian_gittins_index,
)
from trajprobe.reference_models.grid_posterior import FourierGridPosterior
from trajprobe.reference_models.ideal_observers import (
    ContextDecisionObserver,
    PerceptualDecisionObserver,
)
from trajprobe.reference_models.linear_regression import BayesianLinearRegression
from trajprobe.reference_models.wind_tunnels import (
    AssociativeRecallPosterior,
    BijectionPosterior,
    ChangePointBetaBernoulli,
    HMMForwardFilter,
)

__all__: list[str] = [
    "AssociativeRecallPosterior",
    "BayesianLinearRegression",
    "BetaBernoulli",
    "BijectionPosterior",
    "ChangePointBetaBernoulli",
    "ContextDecisionObserver",
    "ContextualBanditPosterior",
    "DirichletCategorical",
    "DiscreteMMSE",
    "FiniteHorizonBernoulliAgent",
    "FourierGridPosterior",
    "GammaExponential",
    "GittinsAgent",
    "HMMForwardFilter",
    "NormalGamma",
    "NormalKnownVariance",
    "PerceptualDecisionObserver",
    "bernoulli_gittins_index",
    "bernoulli_gittins_table",
    "catalogue",
    "gaussian_gittins_index",
    "standardized_gaussian_gittins_index",
]
