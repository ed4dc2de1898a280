"""Simulation maps (Mikulik et al. 2020 §3.4): known answers for D_s and D_o.

Identity and invertible affine copies must give D_s and D_o ≈ 0 in both directions on
every task family (issue 13); degenerate comparisons are flagged in the Dataset.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trajprobe import machine as sm
from trajprobe.adapters import TorchCore, wrap
from trajprobe.compare import INVARIANCES, AlignedTraces, SimulationConfig, simulation
from trajprobe.reference_models import catalogue
from trajprobe.reference_models.bandits import ContextualBanditPosterior
from trajprobe.reference_models.conjugate import BetaBernoulli
from trajprobe.reference_models.linear_regression import BayesianLinearRegression
from trajprobe.tasks.bandits import ContextualBandit
from trajprobe.tasks.prediction import BernoulliPrediction
from trajprobe.tasks.regression import LinearRegression
from trajprobe.traces import interact, rollout

FAST = SimulationConfig(hidden_width=32, max_epochs=10, shuffled_null=False)
"""Known-answer runs: the affine part is exact, so the MLP never needs many epochs."""

TOL = 0.01
"""Issue 13: identity and affine copies give D_s < 0.01 and D_o < 0.01."""


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: the maps are small


class AffineCopy:
    """``machine`` with its state vector stored as z = s Aᵀ + c, A invertible (float64).

    Outputs and ``distribution`` are the original machine's, so a perfect simulation
    exists in both directions: φ(z) = A s + c and its inverse.
    """

    def __init__(self, machine, seed: int = 0):
        self.machine = machine
        self.dtype = sm.machine_dtype(machine)
        n = sm.state_vector(machine, machine.initial_state(1)).shape[1]
        gen = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
        scales = torch.empty(n, dtype=torch.float64).uniform_(-1, 1, generator=gen).exp()
        self.A = q * scales  # condition number ≤ e²
        self.c = torch.randn(n, generator=gen, dtype=torch.float64)
        if callable(getattr(machine, "distribution", None)):
            self.distribution = machine.distribution

    def encode(self, state):
        return sm.state_vector(self.machine, state).to(torch.float64) @ self.A.T + self.c

    def decode(self, z):
        return sm.state_from_vector(self.machine, torch.linalg.solve(self.A, (z - self.c).T).T)

    def initial_state(self, batch_size):
        return self.encode(self.machine.initial_state(batch_size))

    def step(self, x, z):
        y, state = self.machine.step(x.to(self.dtype), self.decode(z))
        return y, self.encode(state)


def _rnn(kind: str, input_size: int, output_size: int, distribution, seed: int = 0):
    torch.manual_seed(seed)
    core = (nn.GRU if kind == "gru" else nn.LSTM)(input_size, 64, batch_first=True)
    return wrap(core, nn.Linear(64, output_size), distribution=distribution)


def _family(name: str, n_episodes: int = 120, n_steps: int = 20):
    """(machine builder, inputs builder) for the three task families of issue 13."""
    if name == "regression":
        task = LinearRegression(dim=2)
        return (lambda kind: _rnn(kind, 4, 2, None),
                lambda m: task.sample(n_episodes, n_steps, seed=0).inputs)
    if name == "bernoulli":
        return (lambda kind: _rnn(kind, 2, 1, "bernoulli"),
                lambda m: BernoulliPrediction().sample(n_episodes, n_steps, seed=0).inputs)
    task = ContextualBandit()
    return (lambda kind: _rnn(kind, task.input_size, task.n_actions, "categorical"),
            lambda m: interact(m, task, n_episodes, n_steps, seed=0))


def _assert_near_zero(ds):
    assert ds["reliable"].all(), ds["reliability_note"].values
    assert (ds["state_dissimilarity"] < TOL).all(), ds["state_dissimilarity"].values
    assert (ds["output_dissimilarity"] < TOL).all(), ds["output_dissimilarity"].values
    assert np.isfinite(ds["output_dissimilarity"]).all()


@pytest.mark.parametrize("family", ["regression", "bernoulli", "bandit"])
@pytest.mark.parametrize("kind", ["gru", "lstm"])
@pytest.mark.parametrize("copy", ["identity", "affine"])
def test_rnn_identity_and_affine_copy(family, kind, copy):
    make, inputs_for = _family(family)
    rnn = make(kind)
    other = rnn if copy == "identity" else AffineCopy(rnn, seed=1)
    with torch.no_grad():
        ds = simulation(rnn, other, inputs_for(rnn), config=FAST, seed=0)
    _assert_near_zero(ds)
    expected = "kl" if family != "regression" else "normalised"
    assert expected.lower() in ds.attrs["output_measure"].lower()


@pytest.mark.parametrize("name", catalogue.names())
def test_catalogue_bayes_machine_simulates_itself_and_affine_copy(name):
    entry = catalogue.get(name)
    bayes = entry.bayes()
    if entry.kind == "prediction":
        inputs = entry.task.sample(100, entry.n_steps, seed=0).inputs
    else:
        inputs = interact(bayes, entry.task, 100, entry.n_steps, seed=0)
    for other in (bayes, AffineCopy(bayes, seed=2)):
        _assert_near_zero(simulation(bayes, other, inputs, config=FAST, seed=0))


@pytest.mark.parametrize("output", ["mean", "predictive"])
def test_bayesian_linear_regression_simulates_itself_and_affine_copy(output):
    # noise_std 0.01: the ridge σ²/α² = 1e-4 makes W̄ = (XᵀX + 1e-4 I)⁻¹ XᵀY ill-conditioned
    # early in an episode, which blew D_o up to 1e7 with a PCA-truncated map.
    task = LinearRegression(dim=2)
    bayes = BayesianLinearRegression.from_task(task, output=output)
    inputs = task.sample(100, 20, seed=0).inputs
    for other in (bayes, AffineCopy(bayes, seed=3)):
        ds = simulation(bayes, other, inputs, config=FAST, seed=0)
        _assert_near_zero(ds)
        assert ("KL" in ds.attrs["output_measure"]) == (output == "predictive")


def test_contextual_bandit_posterior_simulates_itself():
    task = ContextualBandit()
    bayes = ContextualBanditPosterior(5, 5)
    trace = interact(bayes, task, 100, 20, seed=0)
    _assert_near_zero(simulation(bayes, AffineCopy(bayes), trace, config=FAST, seed=0))


class LowVarianceOutput(nn.Module):
    """s' = s + x u, y = 1e3 · (s · v): the output reads a direction with ~1e-6 of the
    state's variance (beyond the reported components)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("u", torch.tensor([1.0, 1e-3], dtype=torch.float64))
        self.register_buffer("v", torch.tensor([0.0, 1e3], dtype=torch.float64))

    def forward(self, x, s):
        s = s + x * self.u
        return (s @ self.v)[:, None], s


def test_output_reading_an_unreported_direction_is_simulated():
    machine = TorchCore(LowVarianceOutput(), initial_state=torch.zeros(2, dtype=torch.float64))
    inputs = torch.randn(100, 10, 1, generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64)
    ds = simulation(machine, AffineCopy(machine), inputs, config=FAST, seed=0)
    assert (ds["n_components"] == 1).all()  # 99 % of the variance is in one direction
    _assert_near_zero(ds)


# ----------------------------------------------------------------------------- nulls


class BernoulliLSTM(nn.Module):
    """An untrained LSTM of 16 units with a 1-logit readout (Bernoulli predictive)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.inner = wrap(nn.LSTM(2, 16), nn.Linear(16, 1), distribution="bernoulli")
        self.distribution = self.inner.distribution

    def initial_state(self, batch_size):
        return self.inner.initial_state(batch_size)

    def step(self, x, state):
        return self.inner.step(x, state)


@pytest.fixture(scope="module")
def coin_inputs():
    return BernoulliPrediction().sample(100, 10, seed=1, dtype=torch.float64).inputs


def test_nulls_sit_beside_the_measures(coin_inputs):
    lstm = BernoulliLSTM()
    config = SimulationConfig(hidden_width=32, max_epochs=20)
    with torch.no_grad():
        ds = simulation(BetaBernoulli(), lstm, coin_inputs.float(), config=config,
                        untrained="reinit", seed=0)
    for name in ("state_dissimilarity", "output_dissimilarity"):
        for suffix in ("", "_sem", "_shuffled", "_shuffled_sem", "_untrained",
                       "_untrained_sem"):
            assert f"{name}{suffix}" in ds, f"{name}{suffix}"
            assert np.isfinite(ds[f"{name}{suffix}"]).all()
        assert ds[f"{name}_fold"].sizes["fold"] == 5
    # The Bayes agent (a) is simulated by itself far better than the time-shuffled null.
    d_s = ds["state_dissimilarity"].sel(direction="b→a")  # LSTM states → Bayes states
    assert float(d_s) < 0.5 * float(ds["state_dissimilarity_shuffled"].sel(direction="b→a"))
    assert ds["reliable"].all()
    assert "seed" in ds.attrs and ds.attrs["n_folds"] == 5


def test_untrained_machine_is_accepted(coin_inputs):
    config = SimulationConfig(hidden_width=8, max_epochs=2, shuffled_null=False)
    ds = simulation(BetaBernoulli(), BetaBernoulli(2.0, 1.0), coin_inputs, config=config,
                    untrained=BetaBernoulli(5.0, 5.0), seed=0)
    assert np.isfinite(ds["state_dissimilarity_untrained"]).all()
    assert "state_dissimilarity_shuffled" not in ds


def test_reinit_needs_a_torch_module(coin_inputs):
    with pytest.raises(TypeError, match=r"untrained: 'reinit'.*BetaBernoulli"):
        simulation(BetaBernoulli(), BetaBernoulli(), coin_inputs, config=FAST,
                   untrained="reinit")


# ----------------------------------------------------------------------------- flags


class Frozen:
    """A machine whose state never changes."""

    def initial_state(self, batch_size):
        return torch.ones(batch_size, 2, dtype=torch.float64)

    def step(self, x, state):
        return x[:, :1].to(torch.float64) * 0 + 0.5, state


def test_zero_variance_target_is_flagged_not_simulated(coin_inputs):
    ds = simulation(BetaBernoulli(), Frozen(), coin_inputs, config=FAST, seed=0)
    row = ds.sel(direction="a→b")  # the frozen machine is the target
    assert not bool(row["reliable"])
    assert "b's states have no variance" in str(row["reliability_note"].values)
    assert np.isnan(float(row["state_dissimilarity"]))
    # The other direction maps onto the Bayes states; the frozen outputs have no variance.
    other = ds.sel(direction="b→a")
    assert not bool(other["reliable"])
    assert "outputs have no variance" in str(other["reliability_note"].values)


def test_too_few_states_for_the_dimension_is_flagged():
    inputs = BernoulliPrediction().sample(12, 5, seed=0).inputs
    lstm = _rnn("lstm", 2, 1, "bernoulli")
    with torch.no_grad():
        ds = simulation(BetaBernoulli(), lstm, inputs, config=FAST, seed=0)
    note = str(ds["reliability_note"].sel(direction="b→a").values)
    assert not bool(ds["reliable"].sel(direction="b→a"))
    assert "training states for a source of rank" in note


def test_too_few_episodes_for_the_folds_is_an_error():
    with pytest.raises(ValueError, match=r"inputs: expected at least 10 episodes.*got 6"):
        simulation(BetaBernoulli(), BetaBernoulli(),
                   BernoulliPrediction().sample(6, 5, seed=0).inputs, config=FAST)


def test_machine_without_distribution_uses_normalised_error_with_a_note(coin_inputs):
    plain = wrap(nn.GRU(2, 3), nn.Linear(3, 1))
    with torch.no_grad():
        ds = simulation(BetaBernoulli(), plain, coin_inputs.float(), config=FAST, seed=0)
    assert "no distribution(y): KL skipped" in ds.attrs["output_measure_note"]
    assert "normalised" in ds.attrs["output_measure"]
    assert np.isfinite(ds["output_dissimilarity"]).all()
    # Outputs of different sizes: D_o is undefined, flagged (D_s is still measured).
    with torch.no_grad():
        ds = simulation(BetaBernoulli(), wrap(nn.GRU(2, 3)), coin_inputs.float(),
                        config=FAST, seed=0)
    assert np.isnan(ds["output_dissimilarity"]).all()
    assert np.isfinite(ds["state_dissimilarity"]).all()
    assert "differ in size" in str(ds["reliability_note"].sel(direction="a→b").values)
    with pytest.raises(ValueError, match="output_measure='kl'"):
        simulation(BetaBernoulli(), plain, coin_inputs,
                   config=SimulationConfig(output_measure="kl"))


def test_normalised_error_is_one_for_a_constant_prediction(coin_inputs):
    # b's output function ignores its state and predicts a's mean output: D_o(a→b) = 1.
    a = BetaBernoulli()
    mean = float(rollout(a, coin_inputs).outputs.mean())

    class Constant:
        def initial_state(self, batch_size):
            return torch.zeros(batch_size, 1, dtype=torch.float64)

        def step(self, x, state):
            return torch.full((x.shape[0], 1), mean, dtype=torch.float64), state + x[:, :1]

    config = SimulationConfig(hidden_width=8, max_epochs=2, shuffled_null=False,
                              output_measure="error")
    ds = simulation(a, Constant(), coin_inputs, config=config, seed=0)
    assert float(ds["output_dissimilarity"].sel(direction="a→b")) == pytest.approx(1.0, rel=1e-9)


# ----------------------------------------------------------------------------- API


def test_same_seed_same_numbers(coin_inputs):
    config = SimulationConfig(hidden_width=16, max_epochs=5)
    lstm = BernoulliLSTM()
    with torch.no_grad():
        one = simulation(BetaBernoulli(), lstm, coin_inputs.float(), config=config, seed=3)
        two = simulation(BetaBernoulli(), lstm, coin_inputs.float(), config=config, seed=3)
    for name in ("state_dissimilarity", "output_dissimilarity", "embedded_b_from_a",
                 "state_dissimilarity_shuffled"):
        np.testing.assert_array_equal(one[name].values, two[name].values)


def test_dataset_layout_and_attrs(coin_inputs):
    ds = simulation(BetaBernoulli(), BetaBernoulli(), coin_inputs, config=FAST, seed=0)
    assert list(ds["direction"].values) == ["a→b", "b→a"]
    assert ds.sizes["episode"] == 100 and ds.sizes["t"] == 10
    # eq. 2 sums over t: on a pair whose outputs differ (priors Beta(1, 1), Beta(5, 1): the
    # states map affinely, the predictions do not) a mean over t would be 10× smaller
    other = simulation(BetaBernoulli(), BetaBernoulli(5.0, 1.0), coin_inputs, config=FAST, seed=0)
    d_o = other["output_dissimilarity"]
    assert (d_o > 0.05).all()
    np.testing.assert_allclose(other["output_dissimilarity_per_step"].sum("t"), d_o, rtol=1e-9)
    assert (other["output_dissimilarity_per_step"].max("t") < 0.5 * d_o).all()
    assert float(ds["linear_cka"]) == pytest.approx(1.0, abs=1e-12)
    assert ds.attrs["invariances_state_dissimilarity"].startswith("invariant_to_affine_source")
    assert INVARIANCES["procrustes_distance"]["is_metric"]
    assert "eq. 2" in ds.attrs["output_measure"]


def test_misaligned_traces_are_an_error(coin_inputs):
    bayes = BetaBernoulli()
    other = coin_inputs.clone()
    other[5, 3, 0] = 1 - other[5, 3, 0]
    with pytest.raises(ValueError, match=r"misaligned.*first at episode 5, t=4"):
        simulation(bayes, bayes, AlignedTraces(rollout(bayes, coin_inputs),
                                               rollout(bayes, other)), config=FAST)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_folds": 1}, "n_folds"), ({"output_measure": "mse"}, "output_measure"),
    ({"explained_variance": 0.0}, "explained_variance"), ({"patience": 0}, "patience"),
])
def test_bad_config_is_an_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimulationConfig(**kwargs)


@pytest.mark.dsa
def test_dsa_beside_the_measures_when_asked(coin_inputs):
    pytest.importorskip("DSA")
    config = SimulationConfig(hidden_width=8, max_epochs=2, shuffled_null=False, dsa=True)
    ds = simulation(BetaBernoulli(), AffineCopy(BetaBernoulli()), coin_inputs, config=config)
    assert float(ds["dsa_distance"]) < 0.05
