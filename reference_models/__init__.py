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
from trajprobe.reference_models.linear_regression import BayesianLinearRegression

__all__: list[str] = [
    "BayesianLinearRegression",
    "BetaBernoulli",
    "ContextualBanditPosterior",
    "DirichletCategorical",
    "DiscreteMMSE",
    "FiniteHorizonBernoulliAgent",
    "FourierGridPosterior",
    "GammaExponential",
    "GittinsAgent",
    "NormalGamma",
    "NormalKnownVariance",
    "bernoulli_gittins_index",
    "bernoulli_gittins_table",
    "catalogue",
    "gaussian_gittins_index",
    "standardized_gaussian_gittins_index",
]
