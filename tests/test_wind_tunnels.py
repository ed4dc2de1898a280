"""Bayesian wind tunnels (issue 35): every exact Bayes machine against brute-force
enumeration or Monte Carlo, and posterior_error against its closed forms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.special import betaln
from torch import distributions as D
from torch import nn

import trajprobe
from trajprobe.adapters import wrap
from trajprobe.reference_models import BetaBernoulli, ChangePointBetaBernoulli
from trajprobe.tasks import (
    AssociativeRecall,
    BernoulliPrediction,
    BijectionElimination,
    HMMFiltering,
    RegimeSwitchingCoin,
)

TASKS = [BijectionElimination(4), BijectionElimination(5, fresh_queries=True),
         AssociativeRecall(4, 3, 2), HMMFiltering(), RegimeSwitchingCoin(2.0, 1.0, 0.3, 8)]


def _bayes_outputs(task, episodes) -> np.ndarray:
    return trajprobe.rollout(task.bayes_machine(), episodes.inputs).outputs.numpy()


# ------------------------------------------------------------ Bayes vs brute force

@pytest.mark.parametrize("fresh", [False, True])
def test_bijection_posterior_equals_counting_all_v_factorial_bijections(fresh):
    task = BijectionElimination(4, fresh_queries=fresh)
    episodes = task.sample(6, 4, seed=1)
    y = _bayes_outputs(task, episodes)
    perms = np.array(list(itertools.permutations(range(4))))  # all 24 bijections
    queries, images = episodes.params["queries"].numpy(), episodes.targets.numpy()
    for e, t in itertools.product(range(6), range(4)):
        ok = np.all(perms[:, queries[e, :t]] == images[e, :t], axis=1)  # consistent with seen
        counts = np.bincount(perms[ok, queries[e, t]], minlength=4)
        np.testing.assert_allclose(y[e, t], counts / counts.sum(), atol=1e-12)


def test_bijection_entropy_is_the_stair_of_log2_v_minus_k():
    task = BijectionElimination(6, fresh_queries=True)
    y = torch.as_tensor(_bayes_outputs(task, task.sample(3, 6, seed=0)))
    bits = D.Categorical(probs=y).entropy() / math.log(2)
    np.testing.assert_allclose(bits, np.log2(6 - np.arange(6))[None].repeat(3, 0), atol=1e-12)


def test_associative_recall_posterior_equals_counting_all_value_tables():
    task = AssociativeRecall(n_keys=3, n_values=3, n_pairs=2)
    episodes = task.sample(8, 6, seed=2)
    y = _bayes_outputs(task, episodes)
    tables = np.array(list(itertools.product(range(3), repeat=3)))  # all 27 value tables
    keys, values = episodes.params["keys"].numpy(), episodes.targets.numpy()
    for e, t in itertools.product(range(8), range(6)):
        shown = min(t + 1, 2)  # the store steps seen by the prediction of step t
        ok = np.all(tables[:, keys[e, :shown]] == values[e, :shown], axis=1)
        counts = np.bincount(tables[ok, keys[e, t]], minlength=3)
        np.testing.assert_allclose(y[e, t], counts / counts.sum(), atol=1e-12)


def _hmm_predictive_by_paths(transition, emission, initial, x):
    """P(x_t = m | x_<t) for every t and m, by summing over all K^t hidden paths."""
    k, m = emission.shape
    out = []
    for t in range(len(x)):
        joint = np.zeros(m)
        for path in itertools.product(range(k), repeat=t + 1):
            p = initial[path[0]]
            for s in range(1, t + 1):
                p *= transition[path[s - 1], path[s]]
            for s in range(t):
                p *= emission[path[s], x[s]]
            joint += p * emission[path[t]]
        out.append(joint / joint.sum())
    return np.array(out)


def test_hmm_forward_filter_equals_summing_over_all_hidden_paths():
    task = HMMFiltering()  # K = 5: 5^5 paths at T = 5
    episodes = task.sample(3, 5, seed=3)
    y = _bayes_outputs(task, episodes)
    tr, em, init = (np.asarray(m) for m in (task.transition, task.emission, task.initial))
    for e in range(3):
        exact = _hmm_predictive_by_paths(tr, em, init, episodes.targets[e].numpy())
        np.testing.assert_allclose(y[e], exact, atol=1e-12)


def test_hmm_forward_filter_with_given_matrices_and_more_symbols_than_states():
    rng = np.random.default_rng(0)
    tr, em, init = rng.dirichlet(np.ones(3), 3), rng.dirichlet(np.ones(4), 3), np.array(
        [0.5, 0.3, 0.2])
    task = HMMFiltering(transition=tr, emission=em, initial=init)
    assert (task.n_states, task.n_symbols, task.input_size, task.output_size) == (3, 4, 5, 4)
    episodes = task.sample(2, 6, seed=4)
    y = _bayes_outputs(task, episodes)
    for e in range(2):
        np.testing.assert_allclose(
            y[e], _hmm_predictive_by_paths(tr, em, init, episodes.targets[e].numpy()),
            atol=1e-12)


def _coin_predictive_by_change_points(x, alpha, beta, hazard):
    """P(x_t = 1 | x_<t) for every t, summing over all 2^(t-1) change-point patterns."""
    def evidence(seq):
        total = 0.0
        for changes in itertools.product((0, 1), repeat=max(len(seq) - 1, 0)):
            p = math.prod(hazard if c else 1 - hazard for c in changes)
            cuts = [0] + [s + 1 for s, c in enumerate(changes) if c] + [len(seq)]
            for a, b in itertools.pairwise(cuts):
                ones = sum(seq[a:b])
                p *= math.exp(betaln(alpha + ones, beta + b - a - ones) - betaln(alpha, beta))
            total += p
        return total

    return np.array([evidence([*x[:t], 1]) / evidence(list(x[:t])) for t in range(len(x))])


def test_change_point_posterior_equals_enumerating_every_change_point_pattern():
    task = RegimeSwitchingCoin(alpha=2.0, beta=1.0, hazard=0.3, horizon=7)
    episodes = task.sample(4, 7, seed=5)
    y = _bayes_outputs(task, episodes)[..., 0]
    for e in range(4):
        x = [int(v) for v in episodes.targets[e]]
        np.testing.assert_allclose(y[e], _coin_predictive_by_change_points(x, 2.0, 1.0, 0.3),
                                   atol=1e-12)


def test_change_point_posterior_matches_monte_carlo_of_the_task_itself():
    """P(x_4 = 1 | x_1..3 = 1, 1, 0) from 200,000 sampled episodes; tolerance 4.5 s.e."""
    task = RegimeSwitchingCoin(alpha=1.0, beta=1.0, hazard=0.2, horizon=4)
    x = task.sample(200_000, 4, seed=6).targets.numpy()
    hits = x[np.all(x[:, :3] == [1, 1, 0], axis=1), 3]
    se = math.sqrt(0.25 / hits.size)
    prefix = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0]]])
    bayes = trajprobe.rollout(task.bayes_machine(), prefix).outputs[0, 3, 0].item()
    assert hits.size > 10_000 and abs(hits.mean() - bayes) < 4.5 * se


def test_change_point_machine_refuses_to_run_past_its_horizon():
    machine = ChangePointBetaBernoulli(horizon=3)
    inputs = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]])
    with pytest.raises(ValueError, match="horizon = 3"):
        trajprobe.rollout(machine, inputs)
    with pytest.raises(ValueError, match=r"n_steps: expected at most horizon = 3"):
        RegimeSwitchingCoin(horizon=3).sample(1, 4, seed=0)


def test_zero_hazard_is_the_stationary_beta_bernoulli():
    task = RegimeSwitchingCoin(alpha=0.5, beta=2.0, hazard=0.0, horizon=12)
    inputs = task.sample(5, 12, seed=7).inputs
    change = trajprobe.rollout(task.bayes_machine(), inputs).outputs
    stationary = trajprobe.rollout(BetaBernoulli(0.5, 2.0), inputs).outputs
    torch.testing.assert_close(change, stationary, atol=1e-12, rtol=0)


# ------------------------------------------------------------ posterior_error

@pytest.mark.parametrize("task", TASKS, ids=lambda t: repr(t))
def test_posterior_error_of_the_bayes_machine_is_zero(task):
    ds = trajprobe.posterior_error(task.bayes_machine(), task, episodes=6, steps=5, seed=0)
    assert ds.sizes["episode"] == 6 and ds.sizes["t"] == 5
    assert float(ds.kl.max()) == 0.0 and float(ds.entropy_error.max()) == 0.0
    assert ds.kl.attrs["units"] == "bit" and float(ds.average_kl) == 0.0


class Uniform:
    """A machine that always predicts uniformly over V classes (and ignores its input)."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 1)

    def step(self, x, state):
        return torch.zeros(x.shape[0], self.n_classes), state

    def distribution(self, y):
        return D.Categorical(logits=y)


def test_posterior_error_of_a_uniform_predictor_is_log2_v_minus_the_bayes_entropy():
    """Fresh queries: Bayes has log2(V − t + 1) bits at every t, so KL = ΔH = log2 V − that."""
    v = 6
    ds = trajprobe.posterior_error(Uniform(v), BijectionElimination(v, fresh_queries=True),
                                   episodes=4, steps=v, seed=0)
    closed = np.log2(v) - np.log2(v - np.arange(v))
    np.testing.assert_allclose(ds.kl_mean, closed, atol=1e-12)
    np.testing.assert_allclose(ds.entropy_error_mean, closed, atol=1e-12)
    np.testing.assert_allclose(ds.kl_sem, 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.entropy_mean, np.log2(v), atol=1e-12)
    assert float(ds.average_kl) == pytest.approx(closed.mean(), abs=1e-12)


def test_posterior_error_of_a_uniform_predictor_with_repeated_queries():
    """i.i.d. queries: KL = log2 V at a revealed query, log2 V − log2(V − k) at a new one."""
    v, task = 5, BijectionElimination(5)
    episodes = task.sample(20, 8, seed=3)
    ds = trajprobe.posterior_error(Uniform(v), task, episodes=episodes)
    queries = episodes.params["queries"].numpy()
    expected = np.empty(queries.shape)
    for e, t in np.ndindex(*queries.shape):
        seen = set(queries[e, :t].tolist())
        expected[e, t] = np.log2(v) - (0.0 if queries[e, t] in seen else np.log2(v - len(seen)))
    np.testing.assert_allclose(ds.kl, expected, atol=1e-12)
    mean, sem = trajprobe.dynamics.mean_sem(ds.kl, "episode")
    np.testing.assert_allclose(ds.kl_mean, mean)
    np.testing.assert_allclose(ds.kl_sem, sem)
    np.testing.assert_allclose(ds.kl_sem, expected.std(0, ddof=1) / np.sqrt(20), atol=1e-12)


def test_posterior_error_of_a_uniform_predictor_on_associative_recall():
    task = AssociativeRecall(n_keys=6, n_values=4, n_pairs=3)
    episodes = task.sample(10, 9, seed=1)
    ds = trajprobe.posterior_error(Uniform(4), task, episodes=episodes)
    keys = episodes.params["keys"].numpy()
    stored = [set(k[:3].tolist()) for k in keys]
    known = np.array([[t < 3 or k[t] in s for t in range(9)]
                      for k, s in zip(keys, stored, strict=True)])
    np.testing.assert_allclose(ds.kl, np.where(known, 2.0, 0.0), atol=1e-12)


def test_kl_sees_a_wrong_predictive_that_the_entropy_error_misses():
    """A predictive with the right entropy but the wrong probabilities (a permuted Bayes)."""
    task = HMMFiltering()
    bayes = task.bayes_machine()

    class Permuted:
        initial_state = bayes.initial_state

        def step(self, x, state):
            y, state = bayes.step(x, state)
            return y.roll(1, dims=-1), state

        distribution = bayes.distribution

    ds = trajprobe.posterior_error(Permuted(), task, episodes=8, steps=6, seed=0)
    assert float(ds.entropy_error.max()) < 1e-12
    assert float(ds.kl.sel(t=1).max()) < 1e-12  # the uniform prior predictive, rolled
    assert float(ds.kl.sel(t=slice(2, None)).min()) > 0.01


def test_posterior_error_takes_a_given_bayes_machine_on_any_prediction_task():
    task = BernoulliPrediction(1.0, 1.0)
    ds = trajprobe.posterior_error(BetaBernoulli(1.0, 1.0), task, episodes=4, steps=3,
                                   bayes=BetaBernoulli(1.0, 1.0))
    assert float(ds.kl.max()) == 0.0
    off = trajprobe.posterior_error(BetaBernoulli(3.0, 1.0), task, episodes=4, steps=1,
                                    bayes=BetaBernoulli(1.0, 1.0))
    closed = 0.5 * np.log2(0.5 / 0.75) + 0.5 * np.log2(0.5 / 0.25)  # KL(Ber(½) ‖ Ber(¾))
    np.testing.assert_allclose(off.kl, closed, atol=1e-12)


def test_posterior_error_names_what_is_missing():
    task = BijectionElimination(4)
    plain = wrap(nn.GRU(task.input_size, 4, batch_first=True), readout=nn.Linear(4, 4))
    with pytest.raises(ValueError, match=r"machine: expected a machine with distribution"):
        trajprobe.posterior_error(plain, task, episodes=2, steps=2)
    with pytest.raises(ValueError, match=r"BernoulliPrediction supplies no Bayes machine"):
        trajprobe.posterior_error(BetaBernoulli(), BernoulliPrediction(), episodes=2, steps=2)


# ------------------------------------------------------------ the task protocol

@pytest.mark.parametrize("task", TASKS, ids=lambda t: repr(t))
def test_wind_tunnels_pass_the_task_checks_of_measure(task):
    torch.manual_seed(0)
    machine = wrap(nn.GRU(task.input_size, 6, batch_first=True),
                   readout=nn.Linear(6, task.output_size), distribution=task.distribution)
    ds = trajprobe.measure(machine, task, episodes=3, steps=4)
    assert dict(ds.sizes) == {"episode": 3, "t": 4}
    assert bool(np.isfinite(ds.log_loss).all())
    ds = trajprobe.posterior_error(machine, task, episodes=3, steps=4)
    assert bool((ds.kl > 0).all()) and bool(np.isfinite(ds.kl).all())


@pytest.mark.parametrize("task", TASKS, ids=lambda t: repr(t))
def test_same_seed_same_episodes(task):
    a, b = task.sample(3, 4, seed=11), task.sample(3, 4, seed=11)
    torch.testing.assert_close(a.inputs, b.inputs)
    torch.testing.assert_close(a.targets, b.targets)
    assert a.inputs.shape == (3, 4, task.input_size)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: BijectionElimination(1), r"n_symbols: expected at least 2"),
    (lambda: BijectionElimination(3, fresh_queries=True).sample(1, 4), r"n_steps: fresh"),
    (lambda: AssociativeRecall(n_keys=3, n_pairs=4), r"n_pairs: expected at most n_keys = 3"),
    (lambda: HMMFiltering(transition=[[0.5, 0.6], [0.5, 0.5]]), r"transition: expected every"),
    (lambda: HMMFiltering(transition=np.eye(2), emission=np.eye(3)), r"emission: expected shape"),
    (lambda: RegimeSwitchingCoin(hazard=1.5), r"hazard: expected a probability"),
])
def test_bad_task_parameters_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()
