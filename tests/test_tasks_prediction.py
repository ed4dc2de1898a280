"""Sequential prediction tasks: encoding, seeding, prior draws, meta-learner heads, errors."""

from __future__ import annotations

import pytest
import torch
from torch import distributions as D

from trajprobe.heads import lomax
from trajprobe.tasks import Task
from trajprobe.tasks.prediction import (
    BernoulliPrediction,
    CategoricalPrediction,
    ExponentialPrediction,
    GaussianPrediction,
    NormalGammaPrediction,
    encode_observations,
)

TASKS = [BernoulliPrediction(2.0, 3.0), CategoricalPrediction((1.0, 2.0, 3.0, 4.0)),
         ExponentialPrediction(3.0, 2.0), GaussianPrediction(1.0, 2.0, 0.5),
         NormalGammaPrediction(1.0, 2.0, 3.0, 4.0)]
IDS = [type(t).__name__ for t in TASKS]


def test_encoding_shifts_and_flags():
    feats = torch.arange(1.0, 7.0).reshape(1, 3, 2)
    enc = encode_observations(feats)
    assert enc.tolist() == [[[0, 0, 0], [1, 2, 1], [3, 4, 1]]]
    task = CategoricalPrediction((1.0, 1.0, 1.0))
    assert task.encode(torch.tensor([[2, 0]])).tolist() == [[[0, 0, 0, 0], [0, 0, 1, 1]]]


@pytest.mark.parametrize("task", TASKS, ids=IDS)
def test_sample_shapes_seeding_and_encoding(task):
    assert isinstance(task, Task)
    a = task.sample(5, 7, seed=3)
    b = task.sample(5, 7, seed=3)
    c = task.sample(5, 7, seed=4)
    assert a.inputs.shape == (5, 7, task.input_size) and a.targets.shape == (5, 7)
    assert a.inputs.dtype == torch.float32
    torch.testing.assert_close(a.inputs, b.inputs)
    torch.testing.assert_close(a.targets, b.targets)
    assert not torch.equal(a.targets, c.targets)
    # the input at t+1 encodes the target at t; flag 0 only at t = 1
    torch.testing.assert_close(a.inputs[:, 1:, :-1], task.features(a.targets[:, :-1]).float())
    assert (a.inputs[:, 0] == 0).all() and (a.inputs[:, 1:, -1] == 1).all()
    for value in a.params.values():
        assert value.shape[0] == 5
    # meta-learner head: raw outputs of output_size to a distribution over targets
    dist = task.distribution(torch.zeros(5, 7, task.output_size))
    assert torch.isfinite(dist.log_prob(a.targets)).all()


def test_prior_draws_match_prior_moments():
    n = 20000
    p = BernoulliPrediction(5.0, 2.0).sample(n, 1, seed=0, dtype=torch.float64).params["p"]
    assert p.mean().item() == pytest.approx(5 / 7, abs=0.01)
    probs = CategoricalPrediction((1.0, 2.0, 3.0)).sample(n, 1, seed=0).params["probs"]
    torch.testing.assert_close(probs.double().mean(0),
                               torch.tensor([1 / 6, 2 / 6, 3 / 6], dtype=torch.float64),
                               atol=0.01, rtol=0)
    rate = ExponentialPrediction(5.0, 2.0).sample(n, 1, seed=0, dtype=torch.float64)
    assert rate.params["rate"].mean().item() == pytest.approx(2.5, rel=0.02)
    ng = NormalGammaPrediction(1.0, 2.0, 3.0, 4.0).sample(n, 1, seed=0, dtype=torch.float64)
    assert ng.params["precision"].mean().item() == pytest.approx(0.75, rel=0.02)
    assert ng.params["mean"].mean().item() == pytest.approx(1.0, abs=0.03)


def test_observations_follow_the_episode_parameter():
    eps = BernoulliPrediction(1.0, 1.0).sample(200, 400, seed=1, dtype=torch.float64)
    freq = eps.targets.mean(1)
    assert (freq - eps.params["p"]).abs().max() < 0.1
    eps = GaussianPrediction(0.0, 3.0, 0.5).sample(200, 400, seed=1, dtype=torch.float64)
    assert (eps.targets.mean(1) - eps.params["mean"]).abs().max() < 0.15
    eps = CategoricalPrediction((1.0, 1.0, 1.0)).sample(2, 10, seed=0)
    assert eps.targets.dtype == torch.int64 and eps.targets.min() >= 0
    assert eps.targets.max() <= 2


def test_lomax_density():
    dist = lomax(torch.tensor(3.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))
    x = torch.tensor([0.0, 1.0, 5.0], dtype=torch.float64)
    expected = torch.log(torch.tensor(3.0 / 2.0)) - 4 * torch.log1p(x / 2)
    torch.testing.assert_close(dist.log_prob(x), expected.double())
    assert isinstance(dist, D.TransformedDistribution)


@pytest.mark.parametrize(
    ("factory", "name"),
    [(lambda: BernoulliPrediction(0.0, 1.0), "alpha"),
     (lambda: CategoricalPrediction((1.0, 0.0)), r"concentration\[1\]"),
     (lambda: CategoricalPrediction((1.0,)), "concentration"),
     (lambda: ExponentialPrediction(1.0, -1.0), "rate"),
     (lambda: GaussianPrediction(0.0, 1.0, -0.5), "noise_std"),
     (lambda: NormalGammaPrediction(0.0, 1.0, 1.0, 0.0), "beta")],
)
def test_bad_priors(factory, name):
    with pytest.raises(ValueError, match=name):
        factory()


def test_bad_sizes():
    with pytest.raises(ValueError, match="n_steps"):
        BernoulliPrediction().sample(3, 0)
    with pytest.raises(ValueError, match="observations"):
        BernoulliPrediction().encode(torch.zeros(3))
