"""``SimulationConfig.directions``: one question, one direction computed (issue 33).

Known answers on a pair whose simulation is exact in one direction only: machine a is the
Beta-Bernoulli posterior (α, β); machine b carries the same posterior and the last
observation, (α, β, x_{t−1}), with a's outputs. a simulates b (drop the last coordinate):
"b→a" has D_s = D_o = 0; b simulates a's outputs but cannot place its states (the last
observation is not a function of the counts): "a→b" has D_o = 0 and D_s > 0.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajprobe.compare import (
    DIRECTIONS,
    SimulationConfig,
    pairwise_simulation,
    simulation,
    simulation_summary,
)
from trajprobe.compare.plots import plot_simulation
from trajprobe.reference_models.conjugate import BetaBernoulli
from trajprobe.tasks.prediction import BernoulliPrediction

QUICK = {"n_hidden_layers": 0, "n_folds": 3}
"""Closed-form maps: the exact direction is affine, the MLP is not needed."""

FIGURES_OF = {"a→b": ("embedded_b_from_a", "output_b_from_a"),
              "b→a": ("embedded_a_from_b", "output_a_from_b")}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: the maps are small


class CountsAndLast:
    """Beta-Bernoulli's posterior (α, β) and the last observation: state ``[B, 3]``;
    outputs and ``distribution`` are Beta-Bernoulli's."""

    def __init__(self):
        self.bayes = BetaBernoulli()
        self.distribution = self.bayes.distribution

    def initial_state(self, batch_size):
        prior = self.bayes.initial_state(batch_size)
        return torch.cat([prior, torch.zeros(batch_size, 1, dtype=prior.dtype)], dim=1)

    def step(self, x, state):
        y, posterior = self.bayes.step(x, state[:, :2])
        return y, torch.cat([posterior, x[:, :1].to(posterior.dtype)], dim=1)


@pytest.fixture(scope="module")
def inputs():
    return BernoulliPrediction().sample(60, 10, seed=1, dtype=torch.float64).inputs


def _run(inputs, directions=DIRECTIONS, **kwargs):
    config = SimulationConfig(**QUICK, directions=directions)
    return simulation(BetaBernoulli(), CountsAndLast(), inputs, config=config, seed=0,
                      **kwargs)


@pytest.fixture(scope="module")
def both(inputs):
    return _run(inputs, untrained=BetaBernoulli(5.0, 5.0))


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("value", "match"), [
    ("a→b", r"got 'a→b' \(a single label: wrap it in a tuple\)"),
    ((), r"got \(\) \(empty\)"),
    (("a→b", "a->b"), "a direction repeated"),
    (("a→b", "b←a"), r"unknown \['b←a'\]"),
    (None, "got None"),
])
def test_bad_directions_are_an_error(value, match):
    with pytest.raises(ValueError, match=r"directions: expected a non-empty tuple.*'a→b'.*"
                                         + match):
        SimulationConfig(directions=value)


def test_directions_are_normalised_to_the_arrows_in_their_order():
    assert SimulationConfig().directions == DIRECTIONS == ("a→b", "b→a")
    assert SimulationConfig(directions=("b->a", "a->b")).directions == DIRECTIONS
    assert SimulationConfig(directions=("b->a",)) == SimulationConfig(directions=("b→a",))


# ----------------------------------------------------------------------------- known answers


def test_the_default_computes_both_directions_with_the_known_answers(both):
    assert list(both["direction"].values) == list(DIRECTIONS)
    exact, placed = both.sel(direction="b→a"), both.sel(direction="a→b")
    assert float(exact["state_dissimilarity"]) < 1e-12
    assert abs(float(exact["output_dissimilarity"])) < 1e-9
    assert abs(float(placed["output_dissimilarity"])) < 1e-9
    # the last observation is not a function of the counts: a's states cannot place b's
    assert float(placed["state_dissimilarity"]) > 0.05
    assert both["reliable"].all(), both["reliability_note"].values


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_one_direction_is_that_direction_of_the_run_with_both(inputs, both, direction):
    """Same seed: the same folds, map seeds and untrained baseline as the run with both
    directions (the generator is advanced past the direction not computed), so every
    per-direction number agrees to round-off."""
    ascii_label = direction.replace("→", "->")
    one = _run(inputs, (ascii_label,), untrained=BetaBernoulli(5.0, 5.0))
    assert list(one["direction"].values) == [direction]
    other = next(d for d in DIRECTIONS if d != direction)
    assert set(both.data_vars) - set(one.data_vars) == set(FIGURES_OF[other])
    assert set(one.data_vars) <= set(both.data_vars)
    for name in ("whitened_a", "whitened_b", "output_a", "output_b", *FIGURES_OF[direction]):
        np.testing.assert_allclose(one[name].values, both[name].values, rtol=1e-9, atol=1e-12)
    for name, var in one.data_vars.items():
        if "direction" not in var.dims:
            continue
        expected = both[name].sel(direction=[direction])
        assert var.dims == expected.dims, name
        if var.dtype.kind == "f":
            np.testing.assert_allclose(var.values, expected.values, rtol=1e-9, atol=1e-12,
                                       err_msg=name)
        else:
            np.testing.assert_array_equal(var.values, expected.values, err_msg=name)
    assert one.attrs["config_directions"] == str((direction,))


def test_the_exact_direction_alone_is_exact(inputs):
    one = _run(inputs, ("b→a",))
    assert float(one["state_dissimilarity"].item()) < 1e-12
    assert abs(float(one["output_dissimilarity"].item())) < 1e-9
    assert float(one["output_simulation_score"].item()) == pytest.approx(1.0, abs=1e-9)
    assert bool(one["reliable"].item())


# ----------------------------------------------------------------------------- consumers


def test_summary_and_plot_read_one_direction(inputs):
    one = _run(inputs, ("a→b",))
    text = simulation_summary(one, names=("Bayes", "Bayes+last"))
    assert "Bayes → Bayes+last: does Bayes+last simulate Bayes?" in text
    assert "Bayes+last → Bayes:" not in text
    assert "one direction only" in text
    figure = plot_simulation(one, names=("Bayes", "Bayes+last"))
    titles = [ax.get_title() for ax in figure.axes]
    assert any("Bayes → Bayes+last  D_s" in t for t in titles)
    assert not any("Bayes+last → Bayes" in t for t in titles)


def test_pairwise_refuses_one_direction(inputs):
    agents = {"bayes": BetaBernoulli(), "last": CountsAndLast()}
    config = SimulationConfig(**QUICK, directions=("a→b",))
    with pytest.raises(ValueError, match=r"config: expected directions=\('a→b', 'b→a'\).*"
                                         r"got directions=\('a→b',\).*simulation\(a, b"):
        pairwise_simulation(agents, inputs, config=config)


def test_pairwise_diagonal_equals_the_full_self_comparison(inputs):
    """The diagonal computes only "a→b", the direction it reads: its entries are those of
    a two-direction self-comparison with the pair's seed."""
    agents = {"bayes": BetaBernoulli(), "last": CountsAndLast()}
    config = SimulationConfig(**QUICK)
    with torch.no_grad():
        ds = pairwise_simulation(agents, inputs, config=config, seed=0)
    assert float(ds["state_dissimilarity"].sel(agent="last", other_agent="bayes")) < 1e-12
    assert float(ds["state_dissimilarity"].sel(agent="bayes", other_agent="last")) > 0.05
    # the pair seeds: two off the generator per pair, the diagonal's last (pairwise.py)
    seeds = torch.randint(0, 2**62, (3,), generator=torch.Generator().manual_seed(0)).tolist()
    self_last = simulation(CountsAndLast(), CountsAndLast(), inputs, config=config,
                           seed=seeds[2]).sel(direction="a→b")
    for name in ("state_dissimilarity", "output_dissimilarity_constant",
                 "state_dissimilarity_shuffled", "output_simulation_score"):
        np.testing.assert_allclose(
            float(ds[name].sel(agent="last", other_agent="last")), float(self_last[name]),
            rtol=1e-9, atol=1e-15, err_msg=name)
