"""SimulationMap and Whitening: the estimator behind compare.simulation (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajprobe.compare import SimulationMap, Whitening


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _states(seed: int = 0, n_episodes: int = 60, n_steps: int = 15):
    """A 2-D random walk and a 12-D nonlinear image of it: [E, T, 2] and [E, T, 12]."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(size=(n_episodes, n_steps, 2)), axis=1) / 3
    image = np.tanh(walk @ rng.normal(size=(2, 12)))
    return walk, image


def test_whitening_keeps_the_rank_and_reports_by_explained_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3)) * [10.0, 1.0, 0.1]
    x = np.concatenate([x, x[:, :1] + x[:, 1:2]], axis=1)  # a null direction: rank 3 of 4
    w = Whitening(explained_variance=0.99).fit(x)
    assert w.rank_ == 3
    cumulative = np.cumsum(w.explained_variance_ratio_)
    k = w.n_components_
    assert cumulative[k - 1] >= 0.99 and (k == 1 or cumulative[k - 2] < 0.99)
    assert Whitening(explained_variance=1.0).fit(x).n_components_ == 3
    z = w.transform(x)
    np.testing.assert_allclose(np.cov(z.T), np.eye(3), atol=1e-10)
    np.testing.assert_allclose(w.inverse_transform(z), x, atol=1e-10)


@pytest.mark.parametrize("copy", ["identity", "affine"])
def test_identity_and_invertible_affine_maps_are_exact(copy):
    _, image = _states()
    rng = np.random.default_rng(1)
    target = image if copy == "identity" else image @ rng.normal(size=(12, 12)) + 5.0
    phi = SimulationMap(seed=0).fit(image[:40], target[:40])
    assert phi.score(image[40:], target[40:]) < 1e-20
    np.testing.assert_allclose(phi.transform(image[40:]), target[40:], atol=1e-9)
    assert phi.best_epoch_ == 0 and phi.mlp_ is None  # nothing nonlinear to learn


def test_planted_nonlinear_map_is_learned_beyond_the_affine_part():
    walk, image = _states()
    phi = SimulationMap(seed=0, max_epochs=60).fit(walk[:45], image[:45])
    affine = SimulationMap(seed=0, n_hidden_layers=0).fit(walk[:45], image[:45])
    assert phi.best_epoch_ > 0
    assert phi.score(walk[45:], image[45:]) < 0.5 * affine.score(walk[45:], image[45:])
    # The MLP was kept because it lowered the validation D_s of the closed form.
    assert phi.validation_state_loss_ < affine.validation_state_loss_
    assert phi.history_[phi.best_epoch_] == min(phi.history_)


def test_same_seed_same_map():
    walk, image = _states()
    one = SimulationMap(seed=4, max_epochs=3).fit(walk, image).transform(walk[:2])
    two = SimulationMap(seed=4, max_epochs=3).fit(walk, image).transform(walk[:2])
    np.testing.assert_array_equal(one, two)


def test_errors_name_the_argument():
    walk, image = _states()
    with pytest.raises(RuntimeError, match="fit"):
        SimulationMap().transform(walk)
    with pytest.raises(ValueError, match=r"target: expected .* same episodes"):
        SimulationMap().fit(walk, image[:10])
    with pytest.raises(ValueError, match="target's states have no variance"):
        SimulationMap().fit(walk, np.ones_like(image))
    with pytest.raises(ValueError, match="source: state vectors contain NaN"):
        SimulationMap().fit(walk * np.nan, image)
    with pytest.raises(ValueError, match="explained_variance"):
        SimulationMap(explained_variance=1.5)
    with pytest.raises(TypeError, match=r"hidden_width: expected a positive int, got 2\.0"):
        SimulationMap(hidden_width=2.0)
    with pytest.raises(TypeError, match="max_epochs"):
        SimulationMap(max_epochs=1.5)
    with pytest.raises(ValueError, match="ridge_path"):
        SimulationMap(ridge_path=(-1.0,))
