"""Task distributions: each knows how to sample episodes, encode them as machine inputs,
build probe inputs from a history, and its ground-truth structure."""

from trajprobe.tasks.bandits import ContextualBandit
from trajprobe.tasks.base import BanditTask, Episodes, Seed, Task, make_generator
from trajprobe.tasks.fourier import FourierRegression, band_pass
from trajprobe.tasks.regression import LinearRegression, haar_orthogonal

__all__ = [
    "BanditTask",
    "ContextualBandit",
    "Episodes",
    "FourierRegression",
    "LinearRegression",
    "Seed",
    "Task",
    "band_pass",
    "haar_orthogonal",
    "make_generator",
]
