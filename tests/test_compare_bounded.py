"""Issue 25: comparisons that cannot blow up, nulls with their own flags, per-machine encodings.

Known answers: on heavy-tailed Bayes states (a Gamma–Poisson posterior whose predictive
rates span 1e-2 to 1e4) against an untrained GRU, D_o is finite and within 5 % of the
best constant map's D_o both ways; a one-hot predictor and BetaBernoulli, each in its own
encoding and aligned in time, simulate each other exactly; an unreliable untrained
baseline makes the comparison unreliable, and the note says so.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trajprobe.adapters import wrap
from trajprobe.compare import (
    Coordinates,
    SimulationConfig,
    SimulationMap,
    behavioural_dissimilarity,
    simulation,
)
from trajprobe.reference_models.conjugate import BetaBernoulli, ConjugatePredictor
from trajprobe.traces import rollout

CLOSED = SimulationConfig(n_hidden_layers=0)
"""Closed-form maps: the bound does not depend on the MLP."""


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class GammaPoisson(ConjugatePredictor):
    """Poisson counts, Gamma(shape, rate) prior: state (a, b), a += w x, b += w; output the
    predictive mean a / b ``[B, 1]`` (no distribution: compared by the normalised error)."""

    support = (0.0, float("inf"))
    feature_size = 1
    param_names = ("shape", "rate")
    positive = (True, True)
    output_size = 1

    def _prior(self):
        return torch.tensor([1.0, 0.01])

    def _update(self, state, obs, w):
        return state + torch.stack([w * obs[:, 0], w], dim=-1)

    def _predictive(self, state):
        return state[:, :1] / state[:, 1:]


def _poisson_inputs(n_episodes: int, n_steps: int, seed: int = 0) -> torch.Tensor:
    """[x_{t−1}, flag] with x ~ Poisson(λ), λ log-uniform on [1e-2, 1e4] per episode."""
    gen = torch.Generator().manual_seed(seed)
    rate = 10 ** (torch.rand(n_episodes, 1, generator=gen, dtype=torch.float64) * 6 - 2)
    counts = torch.poisson(rate.expand(-1, n_steps), generator=gen)
    previous = torch.cat([torch.zeros(n_episodes, 1, dtype=torch.float64), counts[:, :-1]], 1)
    flag = torch.ones_like(previous)
    flag[:, 0] = 0
    return torch.stack([previous, flag], dim=-1)


def test_heavy_tailed_states_against_an_untrained_gru_are_bounded():
    inputs = _poisson_inputs(200, 20)
    bayes = GammaPoisson()
    torch.manual_seed(0)
    rnn = wrap(nn.GRU(2, 32, batch_first=True), nn.Linear(32, 1))
    log_counts = (None, lambda x: torch.log1p(x).float())  # the network reads log counts
    with torch.no_grad():
        ds = simulation(bayes, rnn, inputs, config=CLOSED, encode=log_counts, seed=0)
    shape = rollout(bayes, inputs).states[:, 1:, 0]
    assert float(shape.max() / shape.min()) > 1e5  # heavy tails indeed
    d_o, bound = ds["output_dissimilarity"], ds["output_dissimilarity_constant"]
    assert np.isfinite(d_o).all() and np.isfinite(bound).all()
    assert (d_o <= 1.05 * bound).all(), (d_o.values, bound.values)
    assert (ds["output_dissimilarity_fold"] <= 1.05 * ds["output_dissimilarity_constant_fold"]
            + 1e-9).all()
    # The map into the Bayes states uses their log coordinates (declared positive).
    assert any("log" in str(c) for c in ds["map_coordinates"].sel(direction="b→a").values)


def test_the_map_is_never_worse_than_a_constant_on_validation_and_held_out_episodes():
    # States spanning decades between episodes, and a cubed coordinate: held-out states
    # fall outside the training range, where raw least squares extrapolates.
    rng = np.random.default_rng(0)
    source = rng.normal(size=(60, 10, 3))
    scale = np.exp(rng.normal(scale=3.0, size=(60, 1, 1)))
    target = np.concatenate([scale * np.exp(source[..., :1]), source[..., 1:] ** 3], -1)
    phi = SimulationMap(n_hidden_layers=0, seed=0).fit(source[:45], target[:45])
    constants = phi.candidate_state_losses_[phi.candidate_constant_]
    assert phi.validation_state_loss_ <= constants.min()
    constant = phi.squared_error_of(phi.transform_constant(source[45:]), target[45:])
    assert phi.score(source[45:], target[45:]) <= 1.05 * float(constant.mean())
    assert phi.coordinates_[1].startswith("log")  # the positive target coordinate is logged


def test_coordinates_log_declared_or_detected():
    x = np.exp(np.random.default_rng(0).normal(scale=3, size=(100, 3)))
    x[:, 2] = np.linspace(1, 2, 100)  # positive but spans less than LOG_RANGE
    detected = Coordinates().fit(x)
    assert detected.log_.tolist() == [True, True, False]
    declared = Coordinates(np.array([False, True, True])).fit(x)
    assert declared.log_.tolist() == [False, True, True]
    np.testing.assert_allclose(declared.inverse(declared.forward(x)), x, rtol=1e-12)
    assert Coordinates(enabled=False).fit(x).is_identity


# ----------------------------------------------------------------------------- encodings


class OneHotCounter:
    """Reads x_t one-hot ``[B, 2]`` and predicts x_{t+1}: state = counts (n_0, n_1),
    output P(x_{t+1} = 1) = (n_1 + 1) / (n + 2) after reading x_t (Laplace's rule)."""

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 2, dtype=torch.float64)

    def step(self, x, state):
        state = state + x.to(torch.float64)
        return (state[:, 1:] + 1) / (state.sum(1, keepdim=True) + 2), state

    def distribution(self, y):
        return torch.distributions.Bernoulli(probs=y[..., 0])


def _coins(n_episodes=100, n_steps=12, seed=0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    p = torch.rand(n_episodes, 1, generator=gen, dtype=torch.float64)
    return torch.bernoulli(p.expand(-1, n_steps), generator=gen)


def one_hot(x):
    return torch.nn.functional.one_hot(x.long(), 2).to(torch.float64)


def beta_bernoulli_reads_x_t(x):
    """BetaBernoulli's [observation, flag] with the observation of *this* step: absorbing
    x_t at step t, it predicts x_{t+1}, as the one-hot predictor does."""
    return torch.stack([x, torch.ones_like(x)], dim=-1)


def beta_bernoulli_task_encoding(x):
    """The task's own encoding [x_{t−1}, flag]: predicts x_t, one step behind."""
    previous = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
    flag = torch.ones_like(x)
    flag[:, 0] = 0
    return torch.stack([previous, flag], dim=-1)


def test_machines_with_different_encodings_simulate_each_other_when_aligned():
    coins = _coins()
    aligned = (one_hot, beta_bernoulli_reads_x_t)
    config = SimulationConfig(hidden_width=8, max_epochs=3)
    ds = simulation(OneHotCounter(), BetaBernoulli(), coins, encode=aligned, config=config)
    assert ds["reliable"].all(), ds["reliability_note"].values
    assert (ds["state_dissimilarity"] < 0.01).all()
    assert (ds["output_dissimilarity"] < 0.01).all()
    kl = behavioural_dissimilarity(OneHotCounter(), BetaBernoulli(), coins, encode=aligned)
    assert float(kl["dissimilarity"]) == pytest.approx(0.0, abs=1e-12)
    # One step out of alignment, the same machines disagree.
    late = (one_hot, beta_bernoulli_task_encoding)
    kl_late = behavioural_dissimilarity(OneHotCounter(), BetaBernoulli(), coins, encode=late)
    assert float(kl_late["dissimilarity"]) > 0.1


def test_per_machine_inputs_must_share_episodes_and_steps():
    coins = _coins()
    inputs = {"a": one_hot(coins), "b": beta_bernoulli_reads_x_t(coins[:, :-1])}
    with pytest.raises(ValueError, match=r"misaligned.*same \[episode, t\]"):
        simulation(OneHotCounter(), BetaBernoulli(), inputs, config=CLOSED)
    with pytest.raises(TypeError, match="encode: expected a pair"):
        simulation(OneHotCounter(), BetaBernoulli(), coins, encode=one_hot)


# ----------------------------------------------------------------------------- null flags


class Frozen:
    """A machine whose state and output never change."""

    def initial_state(self, batch_size):
        return torch.ones(batch_size, 2, dtype=torch.float64)

    def step(self, x, state):
        return x[:, :1].to(torch.float64) * 0 + 0.5, state


def test_an_unreliable_untrained_baseline_makes_the_comparison_unreliable():
    coins = beta_bernoulli_task_encoding(_coins())
    config = SimulationConfig(n_hidden_layers=0, output_measure="error")
    ds = simulation(BetaBernoulli(), BetaBernoulli(2.0, 1.0), coins, config=config,
                    untrained=Frozen(), seed=0)
    assert not ds["reliable_untrained"].any()
    assert not ds["reliable"].any()
    for direction in ("a→b", "b→a"):
        note = str(ds["reliability_note"].sel(direction=direction).item())
        assert note.startswith("untrained baseline unreliable: ")
    assert "b's states have no variance" in str(
        ds["reliability_note_untrained"].sel(direction="a→b").item())
    # Without the baseline the same comparison is reliable, with the bound beside it.
    alone = simulation(BetaBernoulli(), BetaBernoulli(2.0, 1.0), coins, config=config, seed=0)
    assert alone["reliable"].all(), alone["reliability_note"].values
    assert alone["reliable_shuffled"].all()
    assert (alone["state_dissimilarity"] < 0.01).all()  # (α + 1, β) is an affine copy
    assert (alone["output_dissimilarity"] <= alone["output_dissimilarity_constant"]).all()
