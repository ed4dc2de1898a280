"""Conjugate predictors: closed-form predictives, chain rule = marginal likelihood,
exchangeability, projection, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats
from torch import distributions as D

from trajprobe import probe, rollout
from trajprobe.reference_models.conjugate import (
    MIN_PARAMETER,
    BetaBernoulli,
    DirichletCategorical,
    GammaExponential,
    NormalGamma,
    NormalKnownVariance,
)
from trajprobe.tasks.prediction import (
    BernoulliPrediction,
    CategoricalPrediction,
    ExponentialPrediction,
    GaussianPrediction,
    NormalGammaPrediction,
)

PROPERTY = settings(max_examples=30, deadline=None)
positive = st.floats(0.2, 5.0)


def run(machine, task, observations):
    """Outputs [T+1, ...] and final state after feeding observations x_1..x_T.

    One extra step (with a dummy observation slot) makes the last output the predictive
    after all T observations and the last state the posterior after all T.
    """
    obs = torch.as_tensor(observations)
    obs = obs if not obs.is_floating_point() else obs.double()
    padded = torch.cat([obs, obs[-1:] * 0])[None]
    inputs = task.encode(padded, dtype=torch.float64)
    trace = rollout(machine, inputs)
    return trace.outputs[0], trace.states[0, -1]


@PROPERTY
@given(a=positive, b=positive, xs=st.lists(st.integers(0, 1), min_size=1, max_size=25))
def test_beta_bernoulli_closed_form(a, b, xs):
    machine, task = BetaBernoulli(a, b), BernoulliPrediction(a, b)
    outputs, state = run(machine, task, np.array(xs, dtype=float))
    n, k = len(xs), sum(xs)
    assert outputs[-1, 0].item() == pytest.approx((a + k) / (a + b + n), rel=1e-12)
    assert state.tolist() == pytest.approx([a + k, b + n - k], rel=1e-12)
    # chain rule: Σ_t log p(x_t | x_<t) = log marginal likelihood B(a+k, b+n-k) / B(a, b)
    logp = machine.distribution(outputs[:-1]).log_prob(torch.tensor(xs, dtype=torch.float64))
    expected = special.betaln(a + k, b + n - k) - special.betaln(a, b)
    assert logp.sum().item() == pytest.approx(expected, rel=1e-10)


@PROPERTY
@given(conc=st.lists(positive, min_size=2, max_size=5), data=st.data())
def test_dirichlet_categorical_closed_form(conc, data):
    k = len(conc)
    xs = data.draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=25))
    machine, task = DirichletCategorical(conc), CategoricalPrediction(tuple(conc))
    outputs, state = run(machine, task, np.array(xs))
    counts = np.bincount(xs, minlength=k)
    post = np.array(conc) + counts
    np.testing.assert_allclose(state.numpy(), post, rtol=1e-12)
    np.testing.assert_allclose(outputs[-1].numpy(), post / post.sum(), rtol=1e-12)
    logp = machine.distribution(outputs[:-1]).log_prob(torch.tensor(xs)).sum().item()
    a = np.array(conc)
    expected = (special.gammaln(a.sum()) - special.gammaln(a.sum() + len(xs))
                + (special.gammaln(post) - special.gammaln(a)).sum())
    assert logp == pytest.approx(expected, rel=1e-10)


@PROPERTY
@given(a=positive, b=positive, xs=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=25))
def test_gamma_exponential_closed_form(a, b, xs):
    machine, task = GammaExponential(a, b), ExponentialPrediction(a, b)
    outputs, state = run(machine, task, np.array(xs))
    n, total = len(xs), sum(xs)
    assert state.tolist() == pytest.approx([a + n, b + total], rel=1e-12)
    # Lomax predictive equals scipy's lomax(c=a_n, scale=b_n)
    probe_x = torch.tensor([0.0, 0.3, 2.0, 7.5], dtype=torch.float64)
    dist = machine.distribution(outputs[-1])
    np.testing.assert_allclose(dist.log_prob(probe_x).numpy(),
                               stats.lomax(c=a + n, scale=b + total).logpdf(probe_x.numpy()),
                               rtol=1e-10)
    logp = machine.distribution(outputs[:-1]).log_prob(torch.tensor(xs, dtype=torch.float64))
    expected = (a * math.log(b) - special.gammaln(a) + special.gammaln(a + n)
                - (a + n) * math.log(b + total))
    assert logp.sum().item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


@PROPERTY
@given(m0=st.floats(-3, 3), s0=positive, sigma=positive,
       xs=st.lists(st.floats(-5, 5), min_size=1, max_size=25))
def test_normal_known_variance_closed_form(m0, s0, sigma, xs):
    machine = NormalKnownVariance(m0, s0, sigma)
    task = GaussianPrediction(m0, s0, sigma)
    outputs, state = run(machine, task, np.array(xs))
    x = np.array(xs)
    prec = 1 / s0**2 + len(x) / sigma**2
    mean = (m0 / s0**2 + x.sum() / sigma**2) / prec
    assert state.tolist() == pytest.approx([mean, prec], rel=1e-10, abs=1e-12)
    assert outputs[-1].tolist() == pytest.approx([mean, math.sqrt(1 / prec + sigma**2)],
                                                 rel=1e-10, abs=1e-12)
    # chain rule = the joint Gaussian marginal N(m0 1, σ² I + s0² 11ᵀ)
    logp = machine.distribution(outputs[:-1]).log_prob(torch.tensor(x)).sum().item()
    cov = sigma**2 * np.eye(len(x)) + s0**2 * np.ones((len(x), len(x)))
    expected = stats.multivariate_normal(np.full(len(x), m0), cov).logpdf(x)
    assert logp == pytest.approx(expected, rel=1e-9, abs=1e-9)


@PROPERTY
@given(mu=st.floats(-2, 2), kappa=positive, alpha=positive, beta=positive,
       xs=st.lists(st.floats(-5, 5), min_size=1, max_size=25))
def test_normal_gamma_closed_form(mu, kappa, alpha, beta, xs):
    machine = NormalGamma(mu, kappa, alpha, beta)
    task = NormalGammaPrediction(mu, kappa, alpha, beta)
    outputs, state = run(machine, task, np.array(xs))
    x = np.array(xs)
    n, xbar = len(x), x.mean()
    # batch posterior (Murphy 2007, eqs. 85-89), independent of the sequential update
    kn, an = kappa + n, alpha + n / 2
    mn = (kappa * mu + n * xbar) / kn
    bn = beta + 0.5 * ((x - xbar) ** 2).sum() + kappa * n * (xbar - mu) ** 2 / (2 * kn)
    np.testing.assert_allclose(state.numpy(), [mn, kn, an, bn], rtol=1e-9, atol=1e-12)
    probe_x = torch.tensor([-1.0, 0.0, 2.5], dtype=torch.float64)
    ref = stats.t(df=2 * an, loc=mn, scale=math.sqrt(bn * (kn + 1) / (an * kn)))
    np.testing.assert_allclose(machine.distribution(outputs[-1]).log_prob(probe_x).numpy(),
                               ref.logpdf(probe_x.numpy()), rtol=1e-9)
    logp = machine.distribution(outputs[:-1]).log_prob(torch.tensor(x)).sum().item()
    expected = (special.gammaln(an) - special.gammaln(alpha) + alpha * math.log(beta)
                - an * math.log(bn) + 0.5 * math.log(kappa / kn) - 0.5 * n * math.log(2 * math.pi))
    assert logp == pytest.approx(expected, rel=1e-9, abs=1e-9)


MACHINES = [
    (BetaBernoulli(0.5, 2.0), BernoulliPrediction(0.5, 2.0)),
    (DirichletCategorical((0.5, 1.0, 2.0)), CategoricalPrediction((0.5, 1.0, 2.0))),
    (GammaExponential(2.0, 3.0), ExponentialPrediction(2.0, 3.0)),
    (NormalKnownVariance(0.5, 2.0, 0.7), GaussianPrediction(0.5, 2.0, 0.7)),
    (NormalGamma(0.3, 2.0, 1.5, 0.5), NormalGammaPrediction(0.3, 2.0, 1.5, 0.5)),
]
IDS = [type(m).__name__ for m, _ in MACHINES]


@pytest.mark.parametrize(("machine", "task"), MACHINES, ids=IDS)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), perm_seed=st.integers(0, 2**31 - 1))
def test_exchangeability(machine, task, seed, perm_seed):
    """Permuting the observations leaves the final state (the posterior) unchanged."""
    obs = task.sample(1, 12, seed=seed, dtype=torch.float64).targets[0]
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(perm_seed))
    _, state = run(machine, task, obs)
    _, permuted = run(machine, task, obs[perm])
    torch.testing.assert_close(permuted, state, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("machine", "task"), MACHINES, ids=IDS)
def test_distribution_types_and_prior_predictive(machine, task):
    episodes = task.sample(3, 5, seed=0, dtype=torch.float64)
    trace = rollout(machine, episodes.inputs)
    dist = machine.distribution(trace.outputs)
    expected = {"BetaBernoulli": D.Bernoulli, "DirichletCategorical": D.Categorical,
                "GammaExponential": D.TransformedDistribution, "NormalKnownVariance": D.Normal,
                "NormalGamma": D.StudentT}[type(machine).__name__]
    assert isinstance(dist, expected)
    assert dist.batch_shape == (3, 5)
    assert torch.isfinite(dist.log_prob(episodes.targets)).all()
    # at t = 1 every episode sees the prior predictive
    torch.testing.assert_close(trace.outputs[:, 0], trace.outputs[:1, 0].expand(3, -1))
    assert trace.outputs.dtype == torch.float64


def test_prior_predictive_values():
    assert BetaBernoulli(5, 2).output(torch.zeros(1, 2), BetaBernoulli(5, 2).initial_state(1)
                                      ).item() == pytest.approx(5 / 7)
    m = NormalGamma(0.0, 1.0, 1.0, 1.0)
    # df 2, loc 0, scale sqrt(β(κ+1)/(ακ)) = sqrt(2)
    assert m.output(torch.zeros(1, 2), m.initial_state(1))[0].tolist() == pytest.approx(
        [2.0, 0.0, math.sqrt(2)])


@pytest.mark.parametrize(("machine", "task"), MACHINES, ids=IDS)
def test_probe_equals_rerun(machine, task):
    """Forked probes give what re-running the history with the probe input gives."""
    episodes = task.sample(2, 6, seed=1, dtype=torch.float64)
    trace = rollout(machine, episodes.inputs)
    probes = task.sample(1, 4, seed=2, dtype=torch.float64).inputs[0]
    probes[:, -1] = 1.0                                   # probe previous observations
    ys = probe(machine, trace, probes)                    # [E, T, N, ...]
    t = 4
    for n in range(probes.shape[0]):
        inputs = episodes.inputs.clone()
        inputs[:, t - 1] = probes[n]
        torch.testing.assert_close(ys[:, t - 1, n], rollout(machine, inputs).outputs[:, t - 1])


@pytest.mark.parametrize(("machine", "task"), MACHINES, ids=IDS)
def test_state_vector_round_trip_and_projection(machine, task):
    episodes = task.sample(4, 6, seed=3, dtype=torch.float64)
    state = rollout(machine, episodes.inputs).states[:, -1]
    vec = machine.state_vector(state)
    torch.testing.assert_close(machine.state_from_vector(vec), state)      # valid: unchanged
    bad = vec.clone() - 100.0                                               # all invalid
    projected = machine.state_from_vector(bad)
    positive = torch.tensor(machine.positive)
    assert (projected[:, positive] == MIN_PARAMETER).all()
    torch.testing.assert_close(projected[:, ~positive], bad[:, ~positive])  # means kept
    y, _ = machine.step(episodes.inputs[:, 0], projected)                  # usable
    assert torch.isfinite(y).all()
    torch.testing.assert_close(machine.state_from_vector(projected), projected)  # idempotent
    with pytest.raises(ValueError, match="vector"):
        machine.state_from_vector(torch.full_like(vec, float("nan")))


def test_fractional_flag_is_a_tempered_update():
    m = BetaBernoulli(1.0, 1.0)
    _, state = m.step(torch.tensor([[1.0, 0.5]]), m.initial_state(1))
    assert state.tolist() == [[1.5, 1.0]]
    _, state = m.step(torch.tensor([[1.0, -3.0]]), m.initial_state(1))    # negative: no update
    assert state.tolist() == [[1.0, 1.0]]


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: BetaBernoulli(0.0, 1.0), "alpha"),
        (lambda: BetaBernoulli(1.0, -2.0), "beta"),
        (lambda: DirichletCategorical((1.0, -1.0, 1.0)), r"concentration\[1\]"),
        (lambda: DirichletCategorical((1.0,)), "concentration"),
        (lambda: GammaExponential(1.0, 0.0), "rate"),
        (lambda: GammaExponential(float("nan"), 1.0), "shape"),
        (lambda: NormalKnownVariance(0.0, 1.0, -1.0), "noise_std"),
        (lambda: NormalKnownVariance(0.0, 0.0, 1.0), "prior_scale"),
        (lambda: NormalGamma(0.0, 0.0, 1.0, 1.0), "kappa"),
        (lambda: NormalGamma(0.0, 1.0, 1.0, -1.0), "beta"),
        (lambda: NormalGamma(float("inf"), 1.0, 1.0, 1.0), "mu"),
    ],
)
def test_bad_priors(factory, name):
    with pytest.raises(ValueError, match=name):
        factory()


def test_bad_inputs():
    m = DirichletCategorical((1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"x: expected shape \[2, 4\]"):
        m.step(torch.zeros(2, 3), m.initial_state(2))
    with pytest.raises(ValueError, match=r"state: expected shape \[B, 3\]"):
        m.step(torch.zeros(2, 4), torch.ones(2, 2))
    with pytest.raises(ValueError, match="batch_size"):
        m.initial_state(0)
