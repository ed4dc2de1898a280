"""Simulation maps (Mikulik et al. 2020 §3.4): known answers for D_s and D_o."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trajprobe.adapters import TorchCore, wrap
from trajprobe.compare import SimulationConfig, simulation
from trajprobe.compare.simulation import fit_map
from trajprobe.reference_models.conjugate import BetaBernoulli
from trajprobe.tasks.base import make_generator
from trajprobe.tasks.prediction import BernoulliPrediction

SMALL = SimulationConfig(hidden_width=32, max_epochs=150, patience=10, batch_size=128,
                         learning_rate=3e-3)


def coin_inputs(n_episodes: int, n_steps: int, seed: int) -> torch.Tensor:
    return BernoulliPrediction().sample(n_episodes, n_steps, seed=seed, dtype=torch.float64).inputs


class AffineCore(nn.Module):
    """A Beta–Bernoulli machine whose state is stored as A s + c (A invertible)."""

    def __init__(self, bayes: BetaBernoulli):
        super().__init__()
        self.bayes = bayes
        self.register_buffer("A", torch.tensor([[2.0, 1.0], [-0.5, 3.0]], dtype=torch.float64))
        self.register_buffer("c", torch.tensor([5.0, -7.0], dtype=torch.float64))

    def encode(self, s: torch.Tensor) -> torch.Tensor:
        return s @ self.A.T + self.c

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve(self.A, (z - self.c).T).T

    def forward(self, x, state):
        y, s = self.bayes.step(x, self.decode(state))
        return y, self.encode(s)


class AffineCopy(TorchCore):
    def distribution(self, y):
        return self.core.bayes.distribution(y)


class BernoulliLSTM:
    """An untrained LSTM of 32 units with a 1-logit readout (weights from a fixed seed)."""

    def __init__(self, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        lstm, readout = nn.LSTM(2, 32), nn.Linear(32, 1)
        with torch.no_grad():
            for p in [*lstm.parameters(), *readout.parameters()]:
                p.uniform_(-0.5, 0.5, generator=gen)
        self.inner = wrap(lstm, readout)

    def initial_state(self, batch_size):
        return self.inner.initial_state(batch_size)

    def step(self, x, state):
        return self.inner.step(x, state)

    def distribution(self, y):
        return torch.distributions.Bernoulli(logits=y[..., 0])


@pytest.fixture(scope="module")
def inputs() -> torch.Tensor:
    return coin_inputs(80, 10, seed=1)


@pytest.fixture(scope="module")
def self_result(inputs):
    bayes = BetaBernoulli()
    return simulation(bayes, bayes, inputs, config=SMALL, seed=0)


def test_machine_simulates_itself(self_result):
    # Measured: D_s ~ 1e-4, D_o (sum over 10 steps of a Bernoulli KL) ~ 1e-4.
    ds = self_result
    assert list(ds["direction"].values) == ["a→b", "b→a"]
    assert (ds["state_dissimilarity"] < 5e-3).all()
    assert (ds["output_dissimilarity"] < 5e-3).all()
    assert float(ds["linear_cka"]) == pytest.approx(1.0, abs=1e-12)
    assert float(ds["procrustes_distance"]) == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(ds["output_dissimilarity_per_step"].sum("t"),
                               ds["output_dissimilarity"], rtol=1e-12)
    assert (ds["invalid_output_fraction"] == 0).all()


def test_affine_copy_simulates_and_is_simulated(inputs):
    bayes = BetaBernoulli()
    copy = AffineCopy(AffineCore(bayes), initial_state=lambda b: AffineCore(bayes).encode(
        bayes.initial_state(b)))
    ds = simulation(bayes, copy, inputs, config=SMALL, seed=0)
    assert (ds["state_dissimilarity"] < 5e-3).all()
    assert (ds["output_dissimilarity"] < 5e-3).all()
    # Procrustes is not invariant to a non-orthogonal map; the learned map is.
    assert float(ds["procrustes_distance"]) > 1e-3


def test_bayes_vs_untrained_lstm_has_larger_output_dissimilarity(inputs, self_result):
    ds = simulation(BetaBernoulli(), BernoulliLSTM(), inputs.float(), config=SMALL, seed=0)
    d_o = float(ds["output_dissimilarity"].sel(direction="a→b"))  # Bayes → LSTM
    assert d_o > 0.1
    assert d_o > 100 * float(self_result["output_dissimilarity"].sel(direction="a→b"))
    assert ds.attrs["n_components"] == 2  # the Bayes state's dimension


def test_same_seed_same_numbers(inputs):
    bayes = BetaBernoulli()
    small = SimulationConfig(hidden_width=16, max_epochs=5, patience=2)
    one = simulation(bayes, BernoulliLSTM(), inputs.float(), config=small, seed=3)
    two = simulation(bayes, BernoulliLSTM(), inputs.float(), config=small, seed=3)
    for name in ("state_dissimilarity", "output_dissimilarity", "embedded"):
        np.testing.assert_array_equal(one[name].values, two[name].values)
    np.testing.assert_array_equal(one["episode"].values, two["episode"].values)


def test_best_weights_are_restored():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=gen, dtype=torch.float64).numpy()
    y = np.sin(3 * x) + 0.3 * torch.randn(400, 2, generator=gen, dtype=torch.float64).numpy()
    config = SimulationConfig(hidden_width=64, max_epochs=60, patience=5, learning_rate=1e-2,
                              batch_size=16)
    fitted = fit_map(x[:40], y[:40], x[40:], y[40:], config, make_generator(1))
    # Overfits 40 noisy points, so the last epoch is worse than the best one.
    assert fitted.epochs_run > fitted.best_epoch
    assert fitted.history[-1] > fitted.best_validation_loss
    val = float(((fitted(x[40:]) - y[40:]) ** 2).mean())
    assert val == pytest.approx(fitted.best_validation_loss, rel=1e-5)
    assert fitted.best_validation_loss == min(fitted.history)


def test_misaligned_traces_are_an_error(inputs):
    from trajprobe.compare import AlignedTraces
    from trajprobe.rollout import rollout

    bayes = BetaBernoulli()
    other = inputs.clone()
    other[5, 3, 0] = 1 - other[5, 3, 0]
    with pytest.raises(ValueError, match=r"misaligned.*first at episode 5, t=4"):
        simulation(bayes, bayes, AlignedTraces(rollout(bayes, inputs), rollout(bayes, other)),
                   config=SMALL)


def test_too_few_episodes_is_an_error():
    bayes = BetaBernoulli()
    with pytest.raises(ValueError, match=r"inputs: expected at least 3 episodes.*got 2"):
        simulation(bayes, bayes, coin_inputs(2, 10, seed=0), config=SMALL)


def test_n_components_larger_than_state_is_an_error(inputs):
    bayes = BetaBernoulli()
    config = SimulationConfig(n_components=3)
    with pytest.raises(ValueError, match=r"n_components: expected at most .*\(2\), got 3"):
        simulation(bayes, BernoulliLSTM(), inputs, config=config)


def test_kl_without_distribution_is_an_error(inputs):
    plain = wrap(nn.GRU(2, 3))
    with pytest.raises(ValueError, match="output_measure='kl'"):
        simulation(BetaBernoulli(), plain, inputs, config=SimulationConfig(output_measure="kl"))
