"""The sufficiency test (trajprobe.compare.sufficiency): known answers.

Every Bayes machine gives 0 on an exchangeable task (float64 rounding: below 1e-12 bits);
a count-based machine 0; a causal transformer without positions 0 while the same one with
positions does not; exponential smoothing its closed form (KL of two Normals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import distributions as D
from torch import nn

import trajprobe
from trajprobe.adapters import wrap, wrap_transformer
from trajprobe.compare import partner_histories, sufficiency
from trajprobe.heads import HEADS
from trajprobe.reference_models import (
    BayesianLinearRegression,
    BetaBernoulli,
    DirichletCategorical,
    GammaExponential,
    NormalGamma,
    NormalKnownVariance,
)
from trajprobe.tasks import (
    BernoulliPrediction,
    CategoricalPrediction,
    ExponentialPrediction,
    GaussianPrediction,
    LinearRegression,
    NormalGammaPrediction,
)
from trajprobe.tasks.exchangeable import permute_examples, permute_steps

TOLERANCE = 1e-12
"""Bits: what float64 rounding of a reordered sum can leave of an exact 0."""

SIZES = {"episodes": 12, "steps": 7, "horizon": 3}


@pytest.mark.parametrize("machine, task", [
    (BetaBernoulli(), BernoulliPrediction()),
    (DirichletCategorical(), CategoricalPrediction()),
    (NormalKnownVariance(), GaussianPrediction()),
    (GammaExponential(), ExponentialPrediction()),
    (NormalGamma(), NormalGammaPrediction()),
    (BayesianLinearRegression(2, output="predictive", noise_std=0.1),
     LinearRegression(dim=2, noise_std=0.1)),
], ids=lambda v: type(v).__name__)
def test_bayes_machines_are_sufficient(machine, task):
    ds = sufficiency(machine, task, **SIZES)
    equal = ds.sel(pairs="equal")
    assert bool(equal["distinct"].any())  # some pairs really are reordered
    assert not bool(equal["observational"].isnull().any())  # every divergence defined
    assert float(equal["observational"].max()) < TOLERANCE
    assert float(np.nanmax(equal["interventional"])) < TOLERANCE
    assert float(ds["ratio_overall"]) < 1e-10
    assert float(ds["interventional_ratio_overall"]) < 1e-10
    # the baseline is not 0: different evidence moves the Bayes predictions
    assert float(ds["observational_mean"].sel(pairs="different").max()) > 1e-3
    assert ds.attrs["units"] == "bits" and ds.attrs["measure"] == "sufficiency"


class CountMachine:
    """Bernoulli predictions from counts (n_1, n_0) through a non-Bayes squashing."""

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 2, dtype=torch.float64)

    def step(self, x, state):
        x = x.to(torch.float64)
        new = state + x[:, 1:2] * torch.cat([x[:, :1], 1 - x[:, :1]], dim=1)
        return torch.tanh(new[:, :1] - 0.5 * new[:, 1:]) * 3, new

    def distribution(self, y):
        return HEADS["bernoulli"](y)


def test_count_machine_is_sufficient():
    ds = sufficiency(CountMachine(), BernoulliPrediction(), **SIZES)
    assert float(ds["observational"].sel(pairs="equal").max()) == 0.0
    assert float(np.nanmax(ds["interventional"].sel(pairs="equal"))) == 0.0
    assert float(ds["ratio_overall"]) == 0.0


class Smoother:
    """Exponential smoothing m' = m + α w (x − m) (w the flag), predicting Normal(m', σ)."""

    def __init__(self, alpha, sigma):
        self.alpha, self.sigma = alpha, sigma

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 1, dtype=torch.float64)

    def step(self, x, state):
        x = x.to(torch.float64)
        new = state + self.alpha * x[:, 1:2] * (x[:, :1] - state)
        return torch.cat([new, torch.full_like(new, self.sigma)], dim=1), new

    def distribution(self, y):
        return D.Normal(y[..., 0], y[..., 1])


@dataclass(frozen=True)
class ReversedGaussian(GaussianPrediction):
    """A user's task opting in with its own hook: the observations seen, in reverse order."""

    def permute_history(self, episodes, t, *, seed=None):
        out = episodes.inputs.clone()
        if t >= 3:  # inputs 2..t hold observations 1..t-1
            out[:, 1:t] = episodes.inputs[:, 1:t].flip(1)
        return out


def _smoothed(obs, alpha):
    """m after each prefix of ``obs`` [E, n]: [E, n + 1] (m_0 = 0)."""
    m = np.zeros((obs.shape[0], obs.shape[1] + 1))
    for i in range(obs.shape[1]):
        m[:, i + 1] = m[:, i] + alpha * (obs[:, i] - m[:, i])
    return m


def test_exponential_smoothing_closed_form():
    alpha, sigma, horizon = 0.3, 0.7, 3
    task = ReversedGaussian()
    episodes = task.sample(5, 8, seed=3, dtype=torch.float64)
    ds = sufficiency(Smoother(alpha, sigma), task, episodes=episodes, horizon=horizon)
    assert ds.attrs["partner_rule"] == "permute_history"
    obs = episodes.targets.numpy()
    n_t = obs.shape[1]
    for t in range(1, n_t + 1):
        n = t - 2  # observations in s_{t-1}
        m1 = _smoothed(obs[:, :max(n, 0)], alpha)[:, -1]
        m2 = _smoothed(obs[:, :max(n, 0)][:, ::-1], alpha)[:, -1]
        for lag in range(1, horizon + 1):
            delta = (1 - alpha) ** lag * (m1 - m2)  # both absorb the same x from then on
            expected = delta**2 / (2 * sigma**2) / math.log(2)
            got = ds["interventional"].sel(pairs="equal", t=t, lag=lag).values
            if t + lag - 1 > n_t:
                assert np.isnan(got).all()
            else:
                np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
        expected = ((1 - alpha) * (m1 - m2)) ** 2 / (2 * sigma**2) / math.log(2)
        np.testing.assert_allclose(ds["observational"].sel(pairs="equal", t=t).values,
                                   expected, rtol=1e-9, atol=1e-15)
    # the baseline: another episode's state, in closed form with the recorded partner
    partner = ds["partner"].sel(pairs="different").values
    assert sorted(partner) == list(range(5)) and (partner != np.arange(5)).all()
    m = _smoothed(obs, alpha)
    for t in range(3, n_t + 1):
        delta = (1 - alpha) * (m[:, t - 2] - m[partner, t - 2])
        np.testing.assert_allclose(
            ds["observational"].sel(pairs="different", t=t).values,
            delta**2 / (2 * sigma**2) / math.log(2), rtol=1e-9, atol=1e-15)
    assert 0 < float(ds["ratio_overall"]) < 1


def _transformer(positions, max_len, seed=0):
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                       batch_first=True).double()
    machine = wrap_transformer(
        [layer], read_in=nn.Linear(2, 8).double(), read_out=nn.Linear(8, 1).double(),
        max_len=max_len,
        position=nn.Embedding(max_len, 8).double() if positions else None)
    machine.distribution = HEADS["bernoulli"]
    return machine


def test_transformer_without_positions_is_sufficient_with_positions_not():
    steps = SIZES["steps"]
    without = sufficiency(_transformer(False, steps), BernoulliPrediction(), **SIZES)
    with_pos = sufficiency(_transformer(True, steps), BernoulliPrediction(), **SIZES)
    # a cache without positions is a set of keys and values: reordering it changes nothing
    assert float(without["observational"].sel(pairs="equal").max()) < TOLERANCE
    assert float(np.nanmax(without["interventional"].sel(pairs="equal"))) < TOLERANCE
    assert float(without["ratio_overall"]) < 1e-9
    assert float(with_pos["ratio_overall"]) > 1e-3
    assert float(with_pos["interventional_ratio_overall"]) > 1e-3


def test_lstm_without_distribution_uses_normalised_error():
    torch.manual_seed(0)
    task = LinearRegression(dim=2)
    machine = wrap(nn.LSTM(task.input_size, 8, batch_first=True), nn.Linear(8, 2))
    ds = sufficiency(machine, task, episodes=6, steps=5, probes=4, horizon=2)
    assert ds.attrs["units"].startswith("1 (normalised")
    assert ds.attrs["probed_with"] == "task probe inputs" and ds.attrs["n_probes"] == 4
    assert float(ds["ratio_overall"]) > 0  # an LSTM reads order
    assert dict(ds.sizes) == {"pairs": 2, "episode": 6, "t": 5, "lag": 2}


def test_top_level_export_and_js():
    assert trajprobe.sufficiency is sufficiency and "sufficiency" in trajprobe.__all__
    ds = sufficiency(BetaBernoulli(), BernoulliPrediction(), divergence="js", **SIZES)
    assert float(ds["observational"].sel(pairs="equal").max()) < TOLERANCE
    assert float(ds["observational"].sel(pairs="different").max()) <= 1.0  # JS ≤ 1 bit
    assert ds["observational_mean"].attrs["units"] == "bits"
    assert ds["ratio"].attrs["long_name"] == "sufficiency ratio"


def test_partners_keep_the_posterior_and_the_future():
    task = LinearRegression(dim=2)
    episodes = task.sample(4, 6, seed=1)
    inputs = partner_histories(task, episodes, 4, seed=0)
    assert torch.equal(inputs[:, 4:], episodes.inputs[:, 4:])
    assert torch.equal(inputs[:, 3, :2], episodes.inputs[:, 3, :2])  # x_4 pending
    # the completed examples (x_i, y_i), i < 4, are the same set
    def examples(z):
        return sorted(map(tuple, torch.cat([z[:3, :2], z[1:4, 2:]], 1).tolist()))
    for e in range(4):
        assert examples(inputs[e]) == examples(episodes.inputs[e])
    steps = permute_steps(episodes.inputs, 5, first=2, seed=0)
    assert torch.equal(steps[:, 0], episodes.inputs[:, 0])
    assert torch.equal(steps[:, 5:], episodes.inputs[:, 5:])
    assert torch.equal(permute_examples(episodes.inputs, 2, 2, seed=0), episodes.inputs)


def test_bad_arguments():
    machine, task = BetaBernoulli(), BernoulliPrediction()
    with pytest.raises(TypeError, match="exchangeable_from"):
        sufficiency(machine, object(), episodes=4, steps=3)
    with pytest.raises(ValueError, match="pairs"):
        sufficiency(machine, task, pairs=("same",), episodes=4, steps=3)
    with pytest.raises(ValueError, match="divergence"):
        sufficiency(machine, task, divergence="tv", episodes=4, steps=3)
    with pytest.raises(ValueError, match="at least 2 episodes"):
        sufficiency(machine, task, episodes=1, steps=3)

    @dataclass(frozen=True)
    class Leaky(BernoulliPrediction):
        def permute_history(self, episodes, t, *, seed=None):
            return episodes.inputs.flip(1)  # touches the future too

    with pytest.raises(ValueError, match="changed the inputs after step"):
        sufficiency(machine, Leaky(), episodes=4, steps=4)
    only = sufficiency(machine, task, pairs="different", episodes=4, steps=3)
    assert list(only["pairs"].values) == ["different"] and "ratio" not in only


def test_report_sgd_learner_is_one_sgd_step_per_flip():
    from trajprobe.apps.reproduce import bayes_optimal as bo
    from trajprobe.apps.reproduce import bayes_sufficiency as bs
    from trajprobe.apps.reproduce.bayes_sufficiency import SGDLogit

    # the standalone command evaluates as the report does
    assert bs.EVAL_SEED == bo._EVAL_SEED
    assert bs.EVAL_EPISODES == {p: bo.SETTINGS[p].n_episodes for p in bs.EVAL_EPISODES}

    learner = SGDLogit(lr=0.5)
    theta = torch.tensor([[0.2], [-1.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # a flip of 1; no flip yet (flag 0)
    y, new = learner.step(x, theta)
    # d/dθ of log σ(θ) is 1 − σ(θ): one ascent step of size lr on the log-likelihood
    assert float(new[0, 0]) == pytest.approx(0.2 + 0.5 * (1 - 1 / (1 + math.exp(-0.2))))
    assert float(new[1, 0]) == -1.0 and torch.equal(y, new)
    ds = sufficiency(learner, BernoulliPrediction(), **SIZES)
    assert 0 < float(ds["ratio_overall"]) < 1  # constant-step SGD weighs recent flips more


def test_bandit_bayes_agent_is_sufficient_closed_loop():
    """A bandit's (a, r) pairs are exchangeable: the Gittins agent, run closed loop, gives 0."""
    from trajprobe.reference_models import catalogue

    entry = catalogue.get("bandit_bernoulli_beta_1_1")
    ds = sufficiency(entry.bayes(entry.task), entry.task, divergence="js", **SIZES)
    assert ds.attrs["partner_rule"] == "exchangeable_from=2"
    assert bool(ds["distinct"].sel(pairs="equal").any())
    assert float(ds["observational"].sel(pairs="equal").max()) == 0.0
    assert float(np.nanmax(ds["interventional"].sel(pairs="equal"))) == 0.0


def test_bijection_revealed_pairs_and_only_exchangeable_tasks_opt_in():
    """The bijection wind tunnel's revealed pairs are exchangeable (its Bayes machine gives
    0); an HMM's observations are not, and it does not inherit the prediction tasks' rule."""
    from trajprobe.tasks.wind_tunnels import BijectionElimination, HMMFiltering

    task = BijectionElimination(n_symbols=5)
    ds = sufficiency(task.bayes_machine(), task, **SIZES)
    assert ds.attrs["partner_rule"] == "permute_history"
    assert bool(ds["distinct"].sel(pairs="equal").any())
    assert float(ds["observational"].sel(pairs="equal").max()) == 0.0
    assert float(ds["observational_mean"].sel(pairs="different").max()) > 0.01
    with pytest.raises(TypeError, match="HMMFiltering does not say"):
        sufficiency(task.bayes_machine(), HMMFiltering(), episodes=4, steps=3)


def test_task_pool_posterior_ignores_the_order_of_examples():
    """dMMSE (the posterior over a pool of M tasks) and ridge give 0 on shuffled examples;
    neither has a distribution, so the divergence is the normalised squared error."""
    from trajprobe.reference_models import DiscreteMMSE
    from trajprobe.tasks import TaskPool

    pool = TaskPool(LinearRegression(3, noise_std=0.5, out_dim=1), size=4, seed=0)
    for machine in (DiscreteMMSE.from_task(pool),
                    BayesianLinearRegression.from_task(pool.task)):
        ds = sufficiency(machine, pool, probes=5, **SIZES)
        assert ds.attrs["units"].startswith("1") and ds.attrs["partner_rule"] == "permute_history"
        assert float(ds["observational"].sel(pairs="equal").max()) < 1e-20
        assert float(np.nanmax(ds["interventional"].sel(pairs="equal"))) < 1e-20
        assert float(ds["observational_mean"].sel(pairs="different").max()) > 1e-3


def test_a_distribution_that_rejects_the_outputs_means_normalised_error():
    """A model built without a family whose distribution(y) raises (as the apps' GPT) is
    compared by the normalised squared error, not left all-NaN."""

    class NoFamily(Smoother):
        def distribution(self, y):
            raise ValueError("built without a predictive distribution")

    ds = sufficiency(NoFamily(0.3, 1.0), GaussianPrediction(), **SIZES)
    assert ds.attrs["units"].startswith("1 (normalised")
    assert 0 < float(ds["ratio_overall"]) < 1


def test_task_diversity_rung_measures_every_machine_and_its_rows_average_the_seeds():
    """The task-diversity report's part (apps/reproduce/diversity_sufficiency): on a rung,
    ridge (and dMMSE) give 0, dMMSE on a one-task pool is undefined (no context moves it:
    0 / 0), and the row is the mean ± s.e. over the rung's transformers, here ridge (0)
    and an LSTM (r > 0): r / 2 ± r / 2."""
    import xarray as xr

    from trajprobe.apps.reproduce import diversity_sufficiency as suff
    from trajprobe.reference_models import DiscreteMMSE
    from trajprobe.tasks import TaskPool

    task = LinearRegression(3, noise_std=0.5, out_dim=1)
    rungs = []
    for size in (1, None):
        pool = TaskPool(task, size=size, seed=0)
        ridge = BayesianLinearRegression.from_task(task)
        bayes = {"dMMSE": DiscreteMMSE.from_task(pool) if pool.finite else ridge,
                 "Ridge": ridge}
        torch.manual_seed(0)
        lstm = wrap(nn.LSTM(task.input_size, 8, batch_first=True), nn.Linear(8, 1))
        rungs.append(suff.measure_size(pool, bayes, [ridge, lstm], task.sample(8, 6, seed=1),
                                       seed=0))
    ladder = xr.concat(rungs, dim="M").assign_coords(M=["1", "∞"])
    assert ladder["ratio"].dims == ("M", "machine", "seed", "t")
    ratio = ladder["ratio_overall"]
    assert float(abs(ratio.sel(machine="Ridge")).max()) < 1e-12
    assert float(abs(ratio.sel(M="∞", machine="dMMSE")).max()) < 1e-12  # dMMSE is ridge
    assert bool(ratio.sel(M="1", machine="dMMSE").isnull().all())
    ours = ratio.sel(machine="Transformer")
    assert float(abs(ours.sel(seed=0)).max()) < 1e-12 and float(ours.sel(seed=1).min()) > 1e-3
    rows = suff.sufficiency_rows(ladder)
    assert [row.quantity.rsplit("M = ", 1)[1] for row in rows] == ["1", "∞"]
    for row, m in zip(rows, ("1", "∞"), strict=True):
        r = float(ours.sel(M=m, seed=1))
        assert row.ours == pytest.approx(r / 2, rel=1e-9)
        assert row.sem == pytest.approx(r / 2, rel=1e-9)
    assert "dMMSE n/a, Ridge < 1e-12" in rows[0].note and "Ridge < 1e-12" in rows[1].note
    assert len(suff.plot_sufficiency(ladder).axes) == 1
