"""Linear CKA and orthogonal Procrustes distance: invariances and brute-force values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group

from trajprobe.compare import linear_cka, procrustes_distance


@pytest.fixture()
def states():
    return np.random.default_rng(0).normal(size=(200, 5))


def test_rotated_scaled_shifted_copy(states):
    q = ortho_group.rvs(5, random_state=1)
    copy = 3.0 * states @ q + 7.0
    assert linear_cka(states, copy) == pytest.approx(1.0, abs=1e-12)
    assert procrustes_distance(states, copy) == pytest.approx(0.0, abs=1e-6)


def test_procrustes_matches_scipy_brute_force(states):
    other = np.random.default_rng(2).normal(size=(200, 3))
    x = states - states.mean(0)
    y = np.pad(other - other.mean(0), ((0, 0), (0, 2)))
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    r, _ = orthogonal_procrustes(y, x)
    expected = np.linalg.norm(x - y @ r)
    assert procrustes_distance(states, other) == pytest.approx(expected, rel=1e-10)
    assert procrustes_distance(other, states) == pytest.approx(expected, rel=1e-10)


def test_cka_closed_form_for_independent_columns():
    # x = [u, v], y = u with u, v orthogonal, centred and of equal norm: CKA = 1/sqrt(2).
    u = np.array([1.0, -1.0, 1.0, -1.0])
    v = np.array([1.0, 1.0, -1.0, -1.0])
    x = np.stack([u, v], axis=1)
    assert linear_cka(x, u[:, None]) == pytest.approx(1 / np.sqrt(2), rel=1e-12)


def test_non_orthogonal_map_is_not_invariant(states):
    a = np.diag([10.0, 1.0, 1.0, 1.0, 0.1])
    assert procrustes_distance(states, states @ a) > 0.1
    assert linear_cka(states, states @ a) < 0.99


def test_mismatched_samples_is_an_error(states):
    with pytest.raises(ValueError, match="y: expected 200 samples"):
        linear_cka(states, states[:10])


@pytest.mark.dsa
def test_dsa_distance_is_zero_for_a_copy_and_larger_for_other_dynamics():
    pytest.importorskip("DSA")
    from trajprobe.compare import dsa_distance

    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(60, 20, 2)), axis=1)
    states = np.tanh(walk @ rng.normal(size=(2, 8)))
    assert dsa_distance(states, states) == pytest.approx(0.0, abs=1e-9)
    copy = states @ rng.normal(size=(8, 8)) + 1.0  # invertible linear change of coordinates
    other = np.cumsum(rng.normal(size=states.shape), axis=1)
    assert dsa_distance(states, copy) < 0.1 * dsa_distance(states, other)
    with pytest.raises(ValueError, match="states_b"):
        dsa_distance(states, states[:10])
