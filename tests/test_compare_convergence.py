"""Convergence maps (§3.3): pairwise behavioural distances and their 2-D MDS embedding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajprobe.compare import mds_embedding, prediction_convergence, regret_convergence
from trajprobe.reference_models.conjugate import BetaBernoulli
from trajprobe.tasks.prediction import BernoulliPrediction


def test_regret_distances_are_absolute_differences():
    regrets = np.array([[5.0, 3.0, 1.0], [6.0, 2.0, 1.2]])
    ds = regret_convergence(regrets, 1.0, checkpoints=[100, 200, 300])
    np.testing.assert_allclose(ds["distance_to_reference"], [[4.0, 2.0, 0.0], [5.0, 1.0, 0.2]])
    assert float(ds["distance"].sel(run=0, checkpoint=100, other_run=1, other_checkpoint=200)) \
        == pytest.approx(3.0)
    assert list(ds["checkpoint"].values) == [100, 200, 300]
    # MDS of points on a line keeps their distances (up to the stress of the fit).
    emb = np.concatenate([ds["embedding"].values.reshape(-1, 2),
                          ds["reference_embedding"].values[None]])
    values = np.concatenate([regrets.reshape(-1), [1.0]])
    fitted = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    np.testing.assert_allclose(fitted, np.abs(values[:, None] - values[None]), atol=0.05)


def test_mds_recovers_planted_planar_configuration():
    points = np.random.default_rng(0).normal(size=(8, 2))
    distance = np.linalg.norm(points[:, None] - points[None], axis=-1)
    emb = mds_embedding(distance, seed=0)
    np.testing.assert_allclose(np.linalg.norm(emb[:, None] - emb[None], axis=-1), distance,
                               atol=0.02)


def test_prediction_convergence_js_distances():
    inputs = BernoulliPrediction().sample(30, 8, seed=0, dtype=torch.float64).inputs
    # Two "runs" whose checkpoints move towards the reference prior Beta(1, 1).
    runs = [[BetaBernoulli(5.0, 1.0), BetaBernoulli(1.0, 1.0)],
            [BetaBernoulli(1.0, 4.0), BetaBernoulli(1.0, 1.0)]]
    ds = prediction_convergence(runs, BetaBernoulli(1.0, 1.0), inputs)
    d = ds["distance_to_reference"].values
    np.testing.assert_allclose(d[:, 1], 0.0, atol=1e-15)  # round-off of log-sum-exp
    assert d[0, 0] > 0.05 and d[1, 0] > 0.05
    assert float(ds["distance"].sel(run=0, checkpoint=1, other_run=1, other_checkpoint=1)) < 1e-15
    assert (ds["distance"] <= 8 * np.log(2) + 1e-12).all()  # JS ≤ log 2 per step
    # Final checkpoints sit on the reference in the embedding.
    ref = ds["reference_embedding"].values
    np.testing.assert_allclose(ds["embedding"].sel(checkpoint=1).values, [ref, ref], atol=0.05)


def test_ragged_runs_are_an_error():
    with pytest.raises(ValueError, match="machines: expected every run"):
        prediction_convergence([[BetaBernoulli()], []], BetaBernoulli(),
                               torch.zeros(3, 4, 2, dtype=torch.float64))


def test_prediction_convergence_distances_are_the_closed_form_js_sums():
    """d(i, j) = (1/K) Σ_k Σ_t JS(π_t^i ‖ π_t^j), each JS between two Bernoullis by its
    closed form (numpy), from the machines' predictive probabilities; also between two
    machines that never meet (a sum over t, not a mean, shows as a factor T = 8)."""
    from trajprobe.traces import rollout

    inputs = BernoulliPrediction().sample(30, 8, seed=1, dtype=torch.float64).inputs
    machines = [BetaBernoulli(5.0, 1.0), BetaBernoulli(1.0, 4.0), BetaBernoulli(1.0, 1.0)]
    ds = prediction_convergence([machines[:2]], machines[2], inputs)
    probs = [m.distribution(rollout(m, inputs).outputs).probs.reshape(30, 8).numpy()
             for m in machines]

    def js(p, q):
        m = (p + q) / 2

        def kl(a, b):
            return a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))

        return 0.5 * kl(p, m) + 0.5 * kl(q, m)

    expected = np.array([[js(p, q).sum(1).mean() for q in probs] for p in probs])
    np.testing.assert_allclose(ds["distance"].values[0, :, 0, :], expected[:2, :2], rtol=1e-9,
                               atol=1e-15)
    np.testing.assert_allclose(ds["distance_to_reference"].values[0], expected[:2, 2], rtol=1e-9)
    assert expected[0, 1] > 0.1
