"""Behavioural dissimilarity (eqs. 2 and 3), KL by closed form or quadrature, aligned traces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import distributions as D
from torch import nn

from trajprobe.adapters import wrap
from trajprobe.compare import (
    AlignedTraces,
    aligned_rollout,
    behavioural_dissimilarity,
    js_divergence,
    kl,
    kl_quadrature,
    replay,
    reward_gap,
)
from trajprobe.reference_models.conjugate import BetaBernoulli
from trajprobe.tasks.prediction import BernoulliPrediction
from trajprobe.traces import rollout

F64 = torch.float64


def t(*values):
    return torch.tensor(values, dtype=F64)


@pytest.mark.parametrize(
    ("p", "q", "tol"),
    [
        (D.Normal(t(0.0, 1.0, 3.0), t(1.0, 0.1, 5.0)),
         D.Normal(t(1.0, 0.0, -2.0), t(2.0, 0.3, 1.0)), 1e-10),
        (D.Exponential(t(1.0, 0.1, 5.0)), D.Exponential(t(2.0, 0.3, 1.0)), 1e-10),
        (D.Gamma(t(2.0, 5.0, 0.9), t(1.0, 0.1, 5.0)), D.Gamma(t(3.0, 2.0, 1.5), t(2.0, 0.3, 1.0)),
         1e-5),
        (D.Beta(t(2.0, 5.0, 0.5), t(1.5, 3.0, 0.7)), D.Beta(t(3.0, 2.0, 3.0), t(2.0, 3.0, 2.0)),
         1e-4),
        (D.LogNormal(t(0.0, 1.0), t(0.5, 1.0)), D.LogNormal(t(0.3, 0.0), t(1.0, 2.0)), 1e-10),
        (D.Categorical(probs=torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype=F64)),
         D.Categorical(probs=torch.tensor([[0.5, 0.3, 0.2], [0.3, 0.3, 0.4]], dtype=F64)), 1e-12),
    ],
    ids=["normal", "exponential", "gamma", "beta", "lognormal", "categorical"],
)
def test_quadrature_matches_registered_kl(p, q, tol):
    np.testing.assert_allclose(kl_quadrature(p, q), D.kl_divergence(p, q), atol=tol, rtol=0)


def test_kl_falls_back_to_quadrature_for_unregistered_pair():
    # KL(StudentT || Normal) has no registered closed form. Brute force: adaptive
    # scipy quadrature of the density over the whole real line.
    from scipy import integrate, stats

    p, q = D.StudentT(t(5.0), t(0.5), t(1.5)), D.Normal(t(0.0), t(2.0))
    with pytest.raises(NotImplementedError):
        D.kl_divergence(p, q)
    sp, sq = stats.t(5, loc=0.5, scale=1.5), stats.norm(0.0, 2.0)
    brute, _ = integrate.quad(lambda x: sp.pdf(x) * (sp.logpdf(x) - sq.logpdf(x)),
                              -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12, limit=500)
    assert float(kl(p, q)) == pytest.approx(brute, rel=1e-10)


def test_quadrature_through_transformed_distribution_lomax_and_pareto():
    # Lomax (Pareto shifted to 0): no registered KL; brute force with scipy.
    from scipy import integrate, stats

    from trajprobe.heads import lomax

    p, q = lomax(t(3.0, 1.5), t(2.0, 1.0)), lomax(t(2.0, 4.0), t(1.0, 3.0))
    expected = []
    for (a1, s1), (a2, s2) in [((3.0, 2.0), (2.0, 1.0)), ((1.5, 1.0), (4.0, 3.0))]:
        sp, sq = stats.lomax(a1, scale=s1), stats.lomax(a2, scale=s2)
        def integrand(x, sp=sp, sq=sq):
            return sp.pdf(x) * (sp.logpdf(x) - sq.logpdf(x))

        expected.append(integrate.quad(integrand, 0, np.inf, epsabs=1e-13, limit=500)[0])
    np.testing.assert_allclose(kl(p, q), expected, rtol=1e-7)
    a, b = D.Pareto(t(2.0, 1.0), t(3.0, 1.5)), D.Pareto(t(1.0, 0.5), t(2.0, 4.0))
    np.testing.assert_allclose(kl_quadrature(a, b), D.kl_divergence(a, b), rtol=1e-7)


def test_js_divergence_closed_form_for_bernoulli():
    a, b = 0.2, 0.7
    m = (a + b) / 2

    def bern_kl(p, r):
        return p * math.log(p / r) + (1 - p) * math.log((1 - p) / (1 - r))

    expected = 0.5 * bern_kl(a, m) + 0.5 * bern_kl(b, m)
    got = js_divergence(D.Bernoulli(t(a, 0.0)), D.Bernoulli(t(b, 1.0)))
    np.testing.assert_allclose(got, [expected, math.log(2)], rtol=1e-12)
    p, q = D.Normal(t(0.0), t(1.0)), D.Normal(t(1.0), t(2.0))
    assert float(js_divergence(p, q)) == pytest.approx(float(js_divergence(q, p)), rel=1e-10)
    assert float(js_divergence(p, p)) == pytest.approx(0.0, abs=1e-12)


@pytest.fixture(scope="module")
def coins() -> torch.Tensor:
    return BernoulliPrediction().sample(50, 12, seed=0, dtype=F64).inputs


def test_behaviour_of_machine_with_itself_is_exactly_zero(coins):
    bayes = BetaBernoulli()
    ds = behavioural_dissimilarity(bayes, bayes, coins)
    assert float(ds["dissimilarity"]) == 0.0
    assert (ds["kl"] == 0).all()


def test_behaviour_matches_hand_computed_eq2(coins):
    a, b = BetaBernoulli(1.0, 1.0), BetaBernoulli(3.0, 0.5)
    ds = behavioural_dissimilarity(a, b, coins)
    # Brute force: count heads seen before step t and write both posterior predictives.
    obs, flag = coins[..., 0], coins[..., 1]
    heads = torch.cumsum(obs * flag, dim=1)
    seen = torch.cumsum(flag, dim=1)
    pa = (1.0 + heads) / (2.0 + seen)
    pb = (3.0 + heads) / (3.5 + seen)
    per = pa * torch.log(pa / pb) + (1 - pa) * torch.log((1 - pa) / (1 - pb))
    np.testing.assert_allclose(ds["kl"].values, per.numpy(), rtol=1e-10)
    np.testing.assert_allclose(float(ds["dissimilarity"]), float(per.mean(0).sum()), rtol=1e-12)
    np.testing.assert_allclose(ds["kl_per_step"].sum(), ds["dissimilarity"], rtol=1e-12)


class BernoulliLSTM:
    def __init__(self, seed):
        torch_gen = torch.Generator().manual_seed(seed)
        lstm, readout = nn.LSTM(2, 8), nn.Linear(8, 1)
        with torch.no_grad():
            for p in [*lstm.parameters(), *readout.parameters()]:
                p.uniform_(-1, 1, generator=torch_gen)
        self.inner = wrap(lstm, readout)

    def initial_state(self, b):
        return self.inner.initial_state(b)

    def step(self, x, s):
        return self.inner.step(x, s)

    def distribution(self, y):
        return D.Bernoulli(logits=y[..., 0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_behaviour_is_non_negative(coins, seed):
    ds = behavioural_dissimilarity(BetaBernoulli(), BernoulliLSTM(seed), coins)
    assert (ds["kl"] >= 0).all()
    assert float(ds["dissimilarity"]) > 0


def test_machine_without_distribution_is_a_type_error(coins):
    with pytest.raises(TypeError, match="b: expected a machine with distribution"):
        behavioural_dissimilarity(BetaBernoulli(), wrap(nn.GRU(2, 3)), coins)


def test_reward_gap_eq3():
    ra = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    rb = torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    ds = reward_gap(ra, rb)
    # per step means of r^a - r^b: [0, 0, 0.5]; eq. 3 = |0.5|; swapping gives the same.
    np.testing.assert_allclose(ds["reward_difference"], [0.0, 0.0, 0.5])
    assert float(ds["dissimilarity"]) == 0.5
    assert float(reward_gap(rb, ra)["dissimilarity"]) == 0.5
    assert float(reward_gap(ra, ra)["dissimilarity"]) == 0.0
    with pytest.raises(ValueError, match=r"rewards_b: expected shape \(2, 3\)"):
        reward_gap(ra, rb[:, :2])


def test_aligned_traces_accept_mixed_precision_and_reject_other_inputs(coins):
    a = BetaBernoulli()
    lstm = BernoulliLSTM(0)  # float32 machine on the same (float64) inputs: aligned
    pair = aligned_rollout(a, lstm, coins)
    assert pair.a.inputs.dtype == F64 and pair.b.inputs.dtype == torch.float32
    with pytest.raises(ValueError, match=r"trace_b: misaligned .* shape \(50, 12, 2\)"):
        AlignedTraces(rollout(a, coins), rollout(a, coins[:, :10]))
    shifted = coins.clone()
    shifted[3, 0, 0] = 1.0
    shifted[3, 0, 1] = 1.0
    with pytest.raises(ValueError, match=r"misaligned.*1 of 50 episodes"):
        AlignedTraces(rollout(a, coins), rollout(a, shifted))


def test_replay_feeds_the_recorded_stream(coins):
    a, b = BernoulliLSTM(0), BetaBernoulli()
    recorded = rollout(a, coins)
    replayed = replay(b, recorded)
    direct = rollout(b, coins)
    torch.testing.assert_close(replayed.outputs, direct.outputs, rtol=0, atol=0)
    assert replayed.attrs["replayed"] is True
    pair = aligned_rollout(a, b, recorded)
    assert pair.a is recorded


def test_closed_loop_stream_replayed_and_reward_gap_from_traces():
    from trajprobe.tasks.bandits import ContextualBandit
    from trajprobe.traces import interact

    task = ContextualBandit(n_contexts=2, n_actions=3)
    gen = torch.Generator().manual_seed(0)

    def agent():
        lstm, readout = nn.LSTM(task.input_size, 6), nn.Linear(6, task.n_actions)
        with torch.no_grad():
            for p in [*lstm.parameters(), *readout.parameters()]:
                p.uniform_(-1, 1, generator=gen)
        return wrap(lstm, readout)

    a, b = agent(), agent()
    stream = interact(a, task, 20, 7, seed=1)
    pair = aligned_rollout(a, b, stream)  # b replays a's actions and rewards
    torch.testing.assert_close(pair.b.rewards, stream.rewards, rtol=0, atol=0)
    torch.testing.assert_close(pair.b.outputs, rollout(b, stream.inputs).outputs)
    # Each agent acting in the same environments (same seed): eq. 3 from the traces.
    own = interact(b, task, 20, 7, seed=1)
    expected = abs(float((stream.rewards.double() - own.rewards.double()).mean(0).sum()))
    assert float(reward_gap(stream, own)["dissimilarity"]) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="rewards_b: expected a closed-loop trace"):
        reward_gap(stream, rollout(b, stream.inputs))


# ------------------------------------------------- heavy tails (Lomax, Student-t) vs scipy


def _scipy_kl(p, q, lower: float) -> float:
    from scipy import integrate

    def integrand(x):
        density = p.pdf(x)
        return density * (p.logpdf(x) - q.logpdf(x)) if density > 0 else 0.0

    return integrate.quad(integrand, lower, np.inf, limit=2000, epsabs=1e-14,
                          epsrel=1e-12)[0]


@pytest.mark.parametrize(("a1", "b1", "a2", "b2"), [
    (1.0, 1.0, 1.5, 2.0), (0.3, 0.5, 2.0, 1.0), (20.0, 15.0, 21.0, 16.0),
    (0.01, 1.0, 2.0, 1.0), (2.0, 1.0, 1e-3, 5.0), (0.05, 0.2, 0.1, 3.0),
])
def test_lomax_kl_matches_scipy_for_any_shape(a1, b1, a2, b2):
    from scipy import stats

    from trajprobe.heads import lomax

    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    expected = _scipy_kl(stats.lomax(a1, scale=b1), stats.lomax(a2, scale=b2), 0.0)
    got = float(kl(lomax(t(a1), t(b1)), lomax(t(a2), t(b2)))[0])
    assert got == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize(("p", "q"), [
    ((2.0, 0.0, 1.0), (3.0, 0.5, 1.2)), ((0.5, 0.0, 1.0), (2.0, 0.0, 1.0)),
    ((40.0, 1.0, 0.3), (41.0, 1.01, 0.31)), ((0.05, 0.0, 1.0), (2.0, 0.0, 1.0)),
    ((0.2, 1.0, 2.0), (0.3, -1.0, 0.5)), ((2.0, 0.0, 1e-3), (2.0, 3.0, 1.0)),
])
def test_student_t_kl_matches_scipy_for_any_degrees_of_freedom(p, q):
    # ν = 0.05 used to give 2.8 nats instead of 31.5 (generic quadrature lost the tails).
    from scipy import stats

    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    expected = _scipy_kl(stats.t(*p), stats.t(*q), -np.inf)
    got = float(kl(D.StudentT(*map(t, p)), D.StudentT(*map(t, q)))[0])
    assert got == pytest.approx(expected, rel=5e-5)


def test_heavy_tailed_kl_against_light_tails_and_itself():
    from scipy import stats

    from trajprobe.heads import lomax

    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    expected = _scipy_kl(stats.lomax(3.0, scale=2.0), stats.gamma(2.5, scale=1 / 0.7), 0.0)
    assert float(kl(lomax(t(3.0), t(2.0)), D.Gamma(t(2.5), t(0.7)))[0]) == pytest.approx(
        expected, rel=1e-8)
    expected = _scipy_kl(stats.t(5.0, 0.0, 1.0), stats.norm(0.3, 1.2), -np.inf)
    assert float(kl(D.StudentT(t(5.0), t(0.0), t(1.0)), D.Normal(t(0.3), t(1.2)))[0]) == \
        pytest.approx(expected, rel=1e-8)
    p = D.StudentT(torch.tensor([0.01, 1.0, 30.0]), torch.zeros(3), torch.ones(3))
    assert torch.equal(kl(p, p), torch.zeros(3))
    # A Student-t with ν ≤ 2 against a Normal: the variance is infinite, so is the KL.
    assert float(kl(D.StudentT(t(1.0), t(0.0), t(1.0)), D.Normal(t(0.0), t(1.0)))[0]) > 1e3
