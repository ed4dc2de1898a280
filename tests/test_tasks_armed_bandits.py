"""N-armed (two by default) Bernoulli and Gaussian bandit tasks: encoding, sampling, errors."""

from __future__ import annotations

import math

import pytest
import torch

from trajprobe.tasks import BernoulliBandit, Environment, GaussianBandit, make_generator


@pytest.mark.parametrize("task", [BernoulliBandit(), GaussianBandit(), BernoulliBandit(n_arms=4)])
def test_protocol_and_encoding(task):
    assert isinstance(task, Environment)
    assert task.input_size == task.n_actions + 1
    gen = make_generator(0)
    params = task.sample_params(3, generator=gen)
    ctx = task.contexts(params, 5, generator=gen)
    assert ctx.shape == (3, 5) and ctx.dtype == torch.long and (ctx == 0).all()
    x0 = task.encode(ctx[:, 0], None, None)
    assert x0.shape == (3, task.input_size) and (x0 == 0).all()
    torch.testing.assert_close(task.encode(None, None, None, batch_size=3), x0)
    action = torch.tensor([1, 0, 1])
    reward = torch.tensor([0.5, 1.0, -2.0])
    x = task.encode(ctx[:, 1], action, reward, dtype=torch.float64)
    want = torch.zeros(3, task.input_size, dtype=torch.float64)
    want[0, 1] = want[1, 0] = want[2, 1] = 1.0
    want[:, -1] = reward.double()
    torch.testing.assert_close(x, want)


def test_sampling_is_seeded_and_matches_the_prior():
    task = BernoulliBandit(2.0, 5.0)
    a = task.sample_params(20000, generator=make_generator(1))["means"]
    b = task.sample_params(20000, generator=make_generator(1))["means"]
    torch.testing.assert_close(a, b)
    assert a.shape == (20000, 2) and a.dtype == torch.float64
    # Beta(2, 5): mean 2/7, variance αβ / ((α+β)^2 (α+β+1)) = 10 / 392
    assert a.mean().item() == pytest.approx(2 / 7, abs=4 * math.sqrt(10 / 392 / 40000))
    assert a.var().item() == pytest.approx(10 / 392, rel=0.05)
    g = GaussianBandit(prior_mean=1.0, prior_std=0.5)
    m = g.sample_params(20000, generator=make_generator(2))["means"]
    assert m.mean().item() == pytest.approx(1.0, abs=4 * 0.5 / math.sqrt(40000))
    assert m.std().item() == pytest.approx(0.5, rel=0.03)


def test_rewards_have_the_arm_means():
    gen = make_generator(4)
    task = BernoulliBandit()
    params = {"means": torch.tensor([[0.2, 0.9]], dtype=torch.float64).expand(50000, 2)}
    for arm, p in [(0, 0.2), (1, 0.9)]:
        r = task.reward(params, None, torch.full((50000,), arm), generator=gen)
        assert set(r.unique().tolist()) <= {0.0, 1.0}
        assert r.mean().item() == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / 50000))
    gauss = GaussianBandit(reward_std=2.0)
    params = {"means": torch.tensor([[-1.0, 3.0]], dtype=torch.float64).expand(50000, 2)}
    r = gauss.reward(params, None, torch.ones(50000, dtype=torch.long), generator=gen)
    assert r.mean().item() == pytest.approx(3.0, abs=4 * 2.0 / math.sqrt(50000))
    assert r.std().item() == pytest.approx(2.0, rel=0.02)
    torch.testing.assert_close(gauss.expected_reward(params, None), params["means"])


def test_prior_mean_of_best_closed_forms():
    assert BernoulliBandit(1.0, 1.0).prior_mean_of_best() == pytest.approx(2 / 3, abs=1e-9)
    assert BernoulliBandit(1.0, 1.0, n_arms=4).prior_mean_of_best() == pytest.approx(0.8, abs=1e-9)
    # E[max of two N(μ, s²)] = μ + s / sqrt(π)
    g = GaussianBandit(prior_mean=0.3, prior_std=0.5)
    assert g.prior_mean_of_best() == pytest.approx(0.3 + 0.5 / math.sqrt(math.pi), abs=1e-9)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: BernoulliBandit(0.0, 1.0), "alpha"),
        (lambda: BernoulliBandit(1.0, -1.0), "beta"),
        (lambda: BernoulliBandit(float("nan"), 1.0), "alpha"),
        (lambda: GaussianBandit(prior_std=0.0), "prior_std"),
        (lambda: GaussianBandit(prior_std=-1.0), "prior_std"),
        (lambda: GaussianBandit(reward_std=-0.5), "reward_std"),
        (lambda: GaussianBandit(prior_mean=float("inf")), "prior_mean"),
        (lambda: BernoulliBandit(n_arms=0), "n_arms"),
    ],
)
def test_bad_priors_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_actions_and_encodings_raise():
    task = BernoulliBandit()
    params = task.sample_params(2, generator=make_generator(0))
    gen = make_generator(0)
    with pytest.raises(ValueError, match="action"):
        task.reward(params, None, torch.tensor([0, 2]), generator=gen)
    with pytest.raises(ValueError, match="action"):
        task.reward(params, None, torch.tensor([0]), generator=gen)
    with pytest.raises(ValueError, match="batch_size"):
        task.encode(None, None, None)
    with pytest.raises(ValueError, match="prev_action, prev_reward"):
        task.encode(None, torch.tensor([0, 1]), None)
    with pytest.raises(ValueError, match="prev_action"):
        task.encode(None, torch.tensor([0, 3]), torch.tensor([1.0, 0.0]))
