"""The task protocol's front door: trajprobe.measure on tasks of one's own and bundled ones."""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import trajprobe
from trajprobe.reference_models import catalogue
from trajprobe.tasks import BernoulliBandit, BernoulliPrediction, Measured

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "measure_your_own_task.py"


@functools.cache
def _example():
    """The tutorial's script, run as a module in an empty folder (it writes its sweep)."""
    spec = importlib.util.spec_from_file_location("measure_your_own_task", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves annotations through it
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            spec.loader.exec_module(module)
        finally:
            os.chdir(here)
    return module


def test_a_task_of_ones_own_is_measured_with_its_known_answer():
    own = _example()
    task = own.PoissonRate(a=3.0, b=2.0)
    assert isinstance(task, Measured)
    ds = trajprobe.measure(own.GammaPoissonBayes(task), task, episodes=40, steps=12, seed=3)
    assert ds["q"].dims == ("episode", "t") and list(ds["t"].values) == list(range(1, 13))
    # the posterior mean (a + sum n) / (b + t) moves by exactly 1 / (b + t) per count
    np.testing.assert_allclose(ds["gain"], 1 / (2.0 + ds["t"]).broadcast_like(ds["gain"]),
                               rtol=1e-12)
    np.testing.assert_allclose(ds["q"], 1.0, rtol=1e-12)
    assert ds.attrs["measure"] == "effective gain" and ds.attrs["task"] == "PoissonRate"
    assert ds.attrs["task_b"] == 2.0 and ds.attrs["n_probes"] == task.n_counts
    again = trajprobe.measure(own.GammaPoissonBayes(task), task, episodes=40, steps=12, seed=3)
    assert ds.identical(again)  # same seed, same numbers


def test_a_task_without_a_measurement_is_refused():
    class OnlySampling:
        input_size = output_size = 1

        def sample(self, n_episodes, n_steps, *, seed=None, device=None, dtype=None):
            raise AssertionError("not reached")

    machine = _example().GammaPoissonBayes(_example().PoissonRate())
    with pytest.raises(TypeError, match="task: expected a task with a measurement"):
        trajprobe.measure(machine, OnlySampling())


def test_a_summary_without_episode_and_t_is_refused():
    own = _example()

    class Flat(own.PoissonRate):
        def summarise(self, probed):
            return super().summarise(probed).mean("t")

    task = Flat()
    with pytest.raises(ValueError, match="summarise must return dims episode and t"):
        trajprobe.measure(own.GammaPoissonBayes(task), task, episodes=2, steps=3)


def test_prediction_task_measures_the_log_loss_of_the_bayes_machine():
    task = BernoulliPrediction(1.0, 1.0)
    bayes = catalogue.get("bernoulli_beta_1_1").bayes(task)
    ds = trajprobe.measure(bayes, task, episodes=30, steps=6)
    # before any observation the Beta(1, 1) predictive is 1/2: log-loss log 2 exactly
    np.testing.assert_allclose(ds["log_loss"].sel(t=1), math.log(2.0), rtol=1e-12)
    with pytest.raises(ValueError, match="measured without probes"):
        trajprobe.measure(bayes, task, episodes=2, steps=2, probes=3)


def test_bandit_task_measures_rewards_and_regret_of_the_actions_taken():
    task = BernoulliBandit(n_arms=2)

    class AlwaysFirst:
        def initial_state(self, batch_size):
            return torch.zeros(batch_size, 1)

        def step(self, x, state):
            return torch.tensor([[30.0, -30.0]]).expand(x.shape[0], 2), state

    ds = trajprobe.measure(AlwaysFirst(), task, episodes=50, steps=5, seed=1)
    means = trajprobe.interact(AlwaysFirst(), task, 50, 5, seed=1).params["means"]
    expected = (means.max(1).values - means[:, 0]).double().numpy()
    np.testing.assert_allclose(ds["regret"], np.repeat(expected[:, None], 5, 1), rtol=1e-12)
    assert set(np.unique(ds["reward"])) <= {0.0, 1.0}
