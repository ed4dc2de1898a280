"""Task distributions: each knows how to sample episodes (or be an environment), encode them
for a machine, build probe inputs from a history and summarise the probe outputs
(the protocol, which these names re-export: :mod:`trajprobe.task_protocol`)."""

from trajprobe.task_protocol import (
    Environment,
    Episodes,
    Measured,
    Probed,
    Seed,
    Task,
    is_environment,
    make_generator,
    output_size,
)
from trajprobe.tasks.armed_bandits import BernoulliBandit, GaussianBandit
from trajprobe.tasks.bandits import ContextualBandit
from trajprobe.tasks.flipflop import FlipFlop
from trajprobe.tasks.fourier import FourierRegression, band_pass
from trajprobe.tasks.gym_env import GymEnvironment
from trajprobe.tasks.neurogym_trials import NeurogymTask
from trajprobe.tasks.prediction import (
    BernoulliPrediction,
    CategoricalPrediction,
    ExponentialPrediction,
    GaussianPrediction,
    NormalGammaPrediction,
    PredictionTask,
)
from trajprobe.tasks.regression import LinearRegression, haar_orthogonal
from trajprobe.tasks.task_pool import TaskPool
from trajprobe.tasks.wind_tunnels import (
    AssociativeRecall,
    BijectionElimination,
    HMMFiltering,
    RegimeSwitchingCoin,
)

__all__ = [
    "AssociativeRecall",
    "BernoulliBandit",
    "BernoulliPrediction",
    "BijectionElimination",
    "CategoricalPrediction",
    "ContextualBandit",
    "Environment",
    "Episodes",
    "ExponentialPrediction",
    "FlipFlop",
    "FourierRegression",
    "GaussianBandit",
    "GaussianPrediction",
    "GymEnvironment",
    "HMMFiltering",
    "LinearRegression",
    "Measured",
    "NeurogymTask",
    "NormalGammaPrediction",
    "PredictionTask",
    "Probed",
    "RegimeSwitchingCoin",
    "Seed",
    "Task",
    "TaskPool",
    "band_pass",
    "haar_orthogonal",
    "is_environment",
    "make_generator",
    "output_size",
]
