"""Bayes bandit agents: exact values, exact policy evaluation, closed-form posteriors."""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pytest
import torch

from trajprobe import machine as sm
from trajprobe.reference_models import (
    ContextualBanditPosterior,
    FiniteHorizonBernoulliAgent,
    GittinsAgent,
    bernoulli_gittins_index,
)
from trajprobe.tasks import BernoulliBandit, GaussianBandit, make_generator

# ----------------------------------------------------------------------------- helpers


def brute_force_bayes_value(alpha, beta, horizon):
    """Expectimax over the tree of histories (no tables): optimal expected total reward."""

    @cache
    def value(a1, b1, a2, b2, remaining):
        if remaining == 0:
            return 0.0
        best = -1.0
        for arm in (0, 1):
            a, b = (a1, b1) if arm == 0 else (a2, b2)
            p = a / (a + b)
            if arm == 0:
                win = value(a1 + 1, b1, a2, b2, remaining - 1)
                lose = value(a1, b1 + 1, a2, b2, remaining - 1)
            else:
                win = value(a1, b1, a2 + 1, b2, remaining - 1)
                lose = value(a1, b1, a2, b2 + 1, remaining - 1)
            best = max(best, p * (1 + win) + (1 - p) * lose)
        return best

    return value(alpha, beta, alpha, beta, horizon)


def exact_policy_value(agent, alpha, beta, horizon):
    """Expected total reward of ``agent`` over ``horizon`` pulls of a two-armed Bernoulli
    bandit with Beta(α, β) priors, by backward induction over the counts, querying the
    agent's own output at every reachable posterior (input zeros = nothing new observed)."""
    T = horizon
    v = np.zeros((T + 2,) * 4)
    grid = np.stack(np.meshgrid(*[np.arange(T)] * 4, indexing="ij"), -1).reshape(-1, 4)
    level = grid.sum(1)
    for t in range(T - 1, -1, -1):
        s1, f1, s2, f2 = grid[level == t].T
        state = torch.tensor(
            np.stack([np.stack([alpha + s1, beta + f1], 1), np.stack([alpha + s2, beta + f2], 1)],
                     1),
            dtype=torch.float64,
        )
        pi = agent.output(torch.zeros(len(s1), 3, dtype=torch.float64), state).numpy()
        p1 = (alpha + s1) / (alpha + beta + s1 + f1)
        p2 = (alpha + s2) / (alpha + beta + s2 + f2)
        q1 = p1 * (1 + v[s1 + 1, f1, s2, f2]) + (1 - p1) * v[s1, f1 + 1, s2, f2]
        q2 = p2 * (1 + v[s1, f1, s2 + 1, f2]) + (1 - p2) * v[s1, f1, s2, f2 + 1]
        v[s1, f1, s2, f2] = pi[:, 0] * q1 + pi[:, 1] * q2
    return float(v[0, 0, 0, 0])


def closed_loop(agent, task, n_episodes, n_steps, seed):
    """A small closed-loop runner: rewards [E, T] and inputs [E, T, A + 1]."""
    gen = make_generator(seed)
    params = task.sample_params(n_episodes, generator=gen)
    contexts = task.contexts(params, n_steps, generator=gen)
    state = agent.initial_state(n_episodes)
    action = reward = None
    rewards, inputs = [], []
    for t in range(n_steps):
        x = task.encode(contexts[:, t], action, reward, dtype=torch.float64)
        y, state = agent.step(x, state)
        action = torch.multinomial(agent.distribution(y).probs, 1, generator=gen)[:, 0]
        reward = task.reward(params, contexts[:, t], action, generator=gen)
        rewards.append(reward)
        inputs.append(x)
    return torch.stack(rewards, 1), torch.stack(inputs, 1), state


# ----------------------------------------------------------------------------- finite horizon


def test_finite_horizon_small_cases_closed_form():
    assert FiniteHorizonBernoulliAgent(1, 1, 1).value == pytest.approx(0.5)
    # pull an arm (1/2), then the better posterior mean: 1/2·2/3 + 1/2·1/2
    assert FiniteHorizonBernoulliAgent(1, 1, 2).value == pytest.approx(13 / 12, abs=1e-14)


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (0.5, 0.5), (2.0, 1.0)])
@pytest.mark.parametrize("horizon", [3, 5])
def test_finite_horizon_matches_brute_force_expectimax(alpha, beta, horizon):
    agent = FiniteHorizonBernoulliAgent(alpha, beta, horizon)
    assert agent.value == pytest.approx(brute_force_bayes_value(alpha, beta, horizon), abs=1e-12)
    assert exact_policy_value(agent, alpha, beta, horizon) == pytest.approx(agent.value, abs=1e-12)


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (0.5, 0.5)])
def test_dp_regret_at_most_gittins_regret_at_T20(alpha, beta):
    """The issue's known answer: exact expected regret, DP agent ≤ Gittins agent, T = 20."""
    T = 20
    task = BernoulliBandit(alpha, beta)
    best = T * task.prior_mean_of_best()
    dp = FiniteHorizonBernoulliAgent(alpha, beta, T)
    dp_regret = best - exact_policy_value(dp, alpha, beta, T)
    assert dp_regret == pytest.approx(best - dp.value, abs=1e-10)
    for discount in (0.5, 0.9, 0.95):
        gittins_regret = best - exact_policy_value(GittinsAgent(task, discount), alpha, beta, T)
        assert dp_regret <= gittins_regret + 1e-12
    # and a myopic (greedy) policy is strictly worse than the DP
    greedy = best - exact_policy_value(GittinsAgent(task, 1e-6), alpha, beta, T)
    assert greedy > dp_regret + 1e-3
    if (alpha, beta) == (1.0, 1.0):
        assert best == pytest.approx(40 / 3)


def test_finite_horizon_acts_greedily_past_horizon_and_splits_ties():
    agent = FiniteHorizonBernoulliAgent(1, 1, 2)
    s0 = agent.initial_state(1)
    y = agent.output(torch.zeros(1, 3), s0)
    torch.testing.assert_close(y, torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    # arm 0: 2 successes, arm 1: nothing -> t = 2 = T, greedy on means 3/4 vs 1/2
    state = torch.tensor([[[3.0, 1.0], [1.0, 1.0]]], dtype=torch.float64)
    torch.testing.assert_close(agent.policy(state), torch.tensor([[1.0, 0.0]], dtype=torch.float64))


# ----------------------------------------------------------------------------- Gittins agent


def test_gittins_agent_bernoulli_state_is_beta_posterior_and_prefers_unexplored_arm():
    task = BernoulliBandit(1.0, 1.0)
    agent = GittinsAgent(task, 0.9)
    state = agent.initial_state(1)
    # arm 0: success then failure -> Beta(2, 2), index 0.6346 < 0.7029 of untouched arm 1
    for a, r in [(0, 1.0), (0, 0.0)]:
        x = task.encode(torch.zeros(1, dtype=torch.long), torch.tensor([a]), torch.tensor([r]),
                        dtype=torch.float64)
        y, state = agent.step(x, state)
    torch.testing.assert_close(state, torch.tensor([[[2.0, 2.0], [1.0, 1.0]]], dtype=torch.float64))
    torch.testing.assert_close(y, torch.tensor([[0.0, 1.0]], dtype=torch.float64))
    idx = agent.indices(state)
    assert idx[0, 0].item() == pytest.approx(0.6346, abs=2e-4)
    assert idx[0, 1].item() == pytest.approx(0.7029, abs=2e-4)


def test_gittins_agent_gaussian_posterior_closed_form():
    task = GaussianBandit(prior_mean=0.5, prior_std=2.0, reward_std=0.5)
    agent = GittinsAgent(task, 0.9)
    rewards = [1.0, -0.3, 2.2]
    state = agent.initial_state(1)
    for r in rewards:
        x = torch.tensor([[0.0, 1.0, r]], dtype=torch.float64)
        _, state = agent.step(x, state)
    prec0, noise = 1 / 2.0**2, 1 / 0.5**2
    prec = prec0 + len(rewards) * noise
    mean = (prec0 * 0.5 + noise * sum(rewards)) / prec
    torch.testing.assert_close(state[0, 1], torch.tensor([mean, prec], dtype=torch.float64))
    torch.testing.assert_close(state[0, 0], torch.tensor([0.5, prec0], dtype=torch.float64))
    # index = μ + σ ν(0, n, 1, γ) with n = σ² τ = 1/16 + 3
    from trajprobe.reference_models import gaussian_gittins_index

    expected = gaussian_gittins_index(mean, 0.25 * prec, 0.9, reward_std=0.5)
    assert agent.indices(state)[0, 1].item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("task", [BernoulliBandit(1.0, 1.0), GaussianBandit(0.0, 1.0)])
def test_gittins_agent_final_state_is_exchangeable(task):
    agent = GittinsAgent(task, 0.9)
    _, inputs, state = closed_loop(agent, task, 8, 12, seed=3)
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(0)) + 1
    shuffled = torch.cat([inputs[:, :1], inputs[:, perm]], dim=1)  # t = 1 stays zeros
    s = agent.initial_state(8)
    for t in range(12):
        _, s = agent.step(shuffled[:, t], s)
    torch.testing.assert_close(s, state, rtol=1e-12, atol=1e-12)


def test_gittins_agent_closed_loop_reward_matches_exact_expectation():
    task = BernoulliBandit(1.0, 1.0)
    agent = GittinsAgent(task, 0.9)
    rewards, _, _ = closed_loop(agent, task, 4000, 20, seed=11)
    totals = rewards.sum(1)
    exact = exact_policy_value(agent, 1.0, 1.0, 20)
    se = totals.std().item() / np.sqrt(len(totals))
    assert abs(totals.mean().item() - exact) < 4 * se


def test_gittins_agent_projects_mapped_in_states_onto_the_lattice():
    task = BernoulliBandit(0.5, 0.5)
    agent = GittinsAgent(task, 0.9)
    lattice = torch.tensor([[[3.5, 0.5], [1.5, 2.5]]], dtype=torch.float64)
    vec = sm.state_vector(agent, lattice) + 0.3
    moved = sm.state_from_vector(agent, vec)
    torch.testing.assert_close(agent.indices(moved), agent.indices(lattice))
    expected = bernoulli_gittins_index(np.array([3.5, 1.5]), np.array([0.5, 2.5]), 0.9)
    np.testing.assert_allclose(agent.indices(lattice)[0].numpy(), expected)


def test_interact_interoperates():
    from trajprobe.traces import interact, rollout

    for task, agent in [
        (BernoulliBandit(1.0, 1.0), FiniteHorizonBernoulliAgent(1.0, 1.0, 10)),
        (GaussianBandit(0.0, 0.5), GittinsAgent(GaussianBandit(0.0, 0.5), 0.9)),
    ]:
        trace = interact(agent, task, 16, 10, seed=0)
        replay = rollout(agent, trace.inputs)
        torch.testing.assert_close(replay.outputs, trace.outputs)
        assert trace.inputs.shape == (16, 10, 3)
        assert (trace.inputs[:, 0] == 0).all()


# ----------------------------------------------------------------------------- contextual


def _contextual_input(agent, context, action, reward):
    c, a = agent.n_contexts, agent.n_actions
    x = torch.zeros(1, c + a + 1, dtype=torch.float64)
    x[0, context] = 1.0
    if action is not None:
        x[0, c + action] = 1.0
        x[0, -1] = reward
    return x


def brute_force_context_posterior(history, n_contexts, n_actions, pc, pi):
    """Joint posterior over all A^C assignments of correct actions, marginalised per context."""
    joint = {}
    for assignment in itertools.product(range(n_actions), repeat=n_contexts):
        w = 1.0
        for c, a, r in history:
            q = pc if assignment[c] == a else pi
            w *= q if r == 1 else 1 - q
        joint[assignment] = w
    z = sum(joint.values())
    post = np.zeros((n_contexts, n_actions))
    for assignment, w in joint.items():
        for c in range(n_contexts):
            post[c, assignment[c]] += w / z
    return post


@pytest.mark.parametrize(("pc", "pi"), [(0.8, 0.2), (0.6, 0.3)])
def test_contextual_posterior_equals_brute_force_bayes(pc, pi):
    rng = np.random.default_rng(0)
    agent = ContextualBanditPosterior(2, 3, pc, pi, policy="thompson")
    history = [(int(rng.integers(2)), int(rng.integers(3)), int(rng.integers(2))) for _ in range(9)]
    state = agent.initial_state(1)
    prev = (None, None)
    for c, a, r in history:
        _, state = agent.step(_contextual_input(agent, c, *prev), state)
        prev = (a, r)
    # the last (a, r) is credited when the next input arrives
    y, state = agent.step(_contextual_input(agent, 1, *prev), state)
    want = brute_force_context_posterior(history, 2, 3, pc, pi)
    np.testing.assert_allclose(agent.posterior_correct(state)[0].numpy(), want, atol=1e-12)
    # Thompson acts with the posterior probability of being correct in the current context
    np.testing.assert_allclose(y[0].numpy(), want[1], atol=1e-12)


def test_contextual_greedy_deterministic_rewards_and_impossible_evidence():
    agent = ContextualBanditPosterior(2, 3, 1.0, 0.0, policy="greedy")
    s = agent.initial_state(1)
    y, s = agent.step(_contextual_input(agent, 0, None, None), s)
    torch.testing.assert_close(y, torch.full((1, 3), 1 / 3, dtype=torch.float64))
    y, s = agent.step(_contextual_input(agent, 1, 2, 1.0), s)  # action 2 rewarded in context 0
    f64 = torch.float64
    torch.testing.assert_close(s.posterior[0, 0], torch.tensor([0.0, 0.0, 1.0], dtype=f64))
    torch.testing.assert_close(s.posterior[0, 1], torch.full((3,), 1 / 3, dtype=torch.float64))
    y, s = agent.step(_contextual_input(agent, 0, 0, 0.0), s)  # context 1: action 0 unrewarded
    torch.testing.assert_close(s.posterior[0, 1], torch.tensor([0.0, 0.5, 0.5], dtype=f64))
    torch.testing.assert_close(y, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64))
    # context 0: action 0 rewarded contradicts "action 2 is correct" with p_incorrect = 0
    before = s.posterior.clone()
    _, s = agent.step(_contextual_input(agent, 0, 0, 1.0), s)
    torch.testing.assert_close(s.posterior, before)


def test_contextual_runs_in_contextual_bandit_task_and_learns():
    from trajprobe.tasks import ContextualBandit

    task = ContextualBandit(n_contexts=3, n_actions=3)
    agent = ContextualBanditPosterior(3, 3, task.p_correct, task.p_incorrect, policy="greedy")
    gen = make_generator(5)
    params = task.sample_params(300, generator=gen)
    contexts = task.contexts(params, 60, generator=gen)
    state = agent.initial_state(300)
    action = reward = None
    for t in range(60):
        x = task.encode(contexts[:, t], action, reward, dtype=torch.float64)
        y, state = agent.step(x, state)
        action = torch.multinomial(agent.distribution(y).probs, 1, generator=gen)[:, 0]
        reward = task.reward(params, contexts[:, t], action, generator=gen)
    # mass of the posterior on the true correct action grows well above the prior 1/3
    on_truth = state.posterior.gather(2, params["correct"][:, :, None])[..., 0]
    assert on_truth.mean().item() > 0.7


def test_distribution_is_categorical_over_outputs():
    agent = GittinsAgent(BernoulliBandit(), 0.9)
    y = agent.output(torch.zeros(2, 3), agent.initial_state(2))
    dist = agent.distribution(y)
    assert isinstance(dist, torch.distributions.Categorical)
    torch.testing.assert_close(dist.probs, y)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: FiniteHorizonBernoulliAgent(0.0, 1.0, 5), ValueError, "alpha"),
        (lambda: FiniteHorizonBernoulliAgent(1.0, -1.0, 5), ValueError, "beta"),
        (lambda: FiniteHorizonBernoulliAgent(1.0, 1.0, 0), ValueError, "horizon"),
        (lambda: FiniteHorizonBernoulliAgent(1.0, 1.0, 31), ValueError, "horizon"),
        (lambda: GittinsAgent(BernoulliBandit(), 1.0), ValueError, "discount"),
        (lambda: GittinsAgent("bandit", 0.9), TypeError, "task"),
        (lambda: ContextualBanditPosterior(2, 3, 1.2, 0.2), ValueError, "p_correct"),
        (lambda: ContextualBanditPosterior(2, 1), ValueError, "n_actions"),
        (lambda: ContextualBanditPosterior(2, 3, policy="ucb"), ValueError, "policy"),
    ],
)
def test_bad_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_input_shape_raises():
    agent = GittinsAgent(BernoulliBandit(), 0.9)
    with pytest.raises(ValueError, match=r"x: expected shape \[2, 3\]"):
        agent.step(torch.zeros(2, 4), agent.initial_state(2))
