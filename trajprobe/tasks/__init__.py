"""Task distributions: each knows how to sample episodes, encode them as machine inputs,
build probe inputs from a history, and its ground-truth structure."""

from trajprobe.tasks.bandits import ContextualBandit
from trajprobe.tasks.base import BanditTask, Episodes, Seed, Task, make_generator
from trajprobe.tasks.fourier import FourierRegression, band_pass
from trajprobe.tasks.prediction import (
    BernoulliPrediction,
    CategoricalPrediction,
    ExponentialPrediction,
    GaussianPrediction,
    NormalGammaPrediction,
    PredictionTask,
)
from trajprobe.tasks.regression import LinearRegression, haar_orthogonal
from trajprobe.tasks.two_armed import BernoulliBandit, GaussianBandit

__all__ = [
    "BanditTask",
    "BernoulliBandit",
    "BernoulliPrediction",
    "CategoricalPrediction",
    "ContextualBandit",
    "Episodes",
    "ExponentialPrediction",
    "FourierRegression",
    "GaussianBandit",
    "GaussianPrediction",
    "LinearRegression",
    "NormalGammaPrediction",
    "PredictionTask",
    "Seed",
    "Task",
    "band_pass",
    "haar_orthogonal",
    "make_generator",
]
