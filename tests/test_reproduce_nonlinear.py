"""`trajprobe reproduce nonlinear-regression`: the smoke run's files and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

from trajprobe.apps.reproduce import nonlinear_regression as nl
from trajprobe.apps.reproduce import read_results, reproduce
from trajprobe.tasks import FourierRegression

FIGURES = ("fig8ab_learning_curves", "fig8c_steps_to_threshold", "figA5_normalised",
           "fig10_q_vs_progress", "figA7_bandpass", "fig15_outer_loop")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nonlinear")
    report = reproduce("nonlinear-regression", preset="smoke", out_dir=out, progress=False)
    return out, report


@pytest.mark.slow
def test_smoke_run_writes_every_output(smoke_run):
    out, report = smoke_run
    results = read_results(out / "results.nc")
    assert set(results) == {"learner", "meta_learner", "bayes", "bandpass_meta_learner",
                            "outer_loop"}
    learner = results["learner"]
    assert learner["q"].dims == ("episode", "t", "mode")
    assert list(learner["mode"].values) == [1, 2, 3, 4, 5]
    assert learner.sizes["x"] == 40 and np.isfinite(learner["q"]).all()
    for name in ("meta_learner", "bandpass_meta_learner"):
        ds = results[name]
        assert ds["q"].dims == ("seed", "episode", "t", "mode")
        assert ds.sizes["t"] == 40 and np.isfinite(ds["q"]).all()
        assert np.isfinite(ds["probe_loss"]).all()
    bayes = results["bayes"]
    assert bayes["q"].dims == ("episode", "t", "mode") and np.isfinite(bayes["q"]).all()
    # the Bayes prior mean is g = 0 before any observation: q_k(1) = 0 for every k
    np.testing.assert_allclose(bayes["q"].isel(t=0), 0.0, atol=1e-9)
    outer = results["outer_loop"]
    assert outer["steps_to_threshold"].dims == ("seed", "checkpoint", "mode")
    assert outer["curve"].dims == ("seed", "checkpoint", "t", "mode")
    assert outer.sizes["checkpoint"] >= 2 and np.isfinite(outer["final"]).all()
    for stem in FIGURES:
        assert (out / "figures" / f"{stem}.png").stat().st_size > 10_000
    text = report.read_text()
    for quantity in ("k = 5 vs k = 1", "normalised to asymptote", "stop band k = 1, 2",
                     "pass band k = 3-5", "outer loop: first checkpoint"):
        assert quantity in text
    for agent in ("| Learner |", "| Meta-Learner |", "| Bayes |", "| Meta-Learner (band-pass) |"):
        assert agent in text
    assert "| 6.4 |" in text and "| 1.5 |" in text
    assert (out / "report.html").read_text().count("data:image/png;base64") == len(FIGURES)


def _curves(rates: list[float], n_t: int = 40) -> xr.DataArray:
    """q_k(t) = 1 - exp(-r_k t) with 2 identical episodes: known crossing times."""
    t = np.arange(1, n_t + 1)
    q = np.stack([1 - np.exp(-r * t) for r in rates], axis=-1)
    return xr.DataArray(np.stack([q, q]), dims=("episode", "t", "mode"),
                        coords={"t": t, "mode": np.arange(1, len(rates) + 1)})


def test_time_ratio_k5_k1_matches_closed_form():
    # integer rule: q > 0.5 first at t = ceil(ln 2 / r): r = 0.5 -> t = 2; r = 0.1 -> t = 7
    q = _curves([0.5, 0.4, 0.3, 0.2, 0.1])
    assert nl.time_ratio_k5_k1(q, 0.5, interpolate=False) == pytest.approx(7 / 2)
    # interpolated (the default): where the chord between the two steps around the
    # crossing reaches 0.5, t = t_i + (0.5 - q(t_i)) / (q(t_i + 1) - q(t_i)); near the
    # continuous answer (ln 2 / 0.1) / (ln 2 / 0.5) = 5 that the integer rule reads as 3.5
    def chord(r, i):
        q_i, q_j = 1 - math.exp(-r * i), 1 - math.exp(-r * (i + 1))
        return i + (0.5 - q_i) / (q_j - q_i)

    assert nl.time_ratio_k5_k1(q, 0.5) == pytest.approx(chord(0.1, 6) / chord(0.5, 1))
    assert nl.time_ratio_k5_k1(q, 0.5) == pytest.approx(5.0, rel=0.05)
    # mode 5 never crosses 0.99 within 40 steps (1 - e^-4 < 0.99), mode 1 does: inf
    assert math.isinf(nl.time_ratio_k5_k1(q, 0.99))


def test_normalised_ratio_removes_incomplete_asymptote():
    # mode 5 = half of mode 1's curve: same time constant, asymptote 0.5 -> ratio 1 once
    # normalised, "never" (inf) without normalising at c = 0.6
    base = _curves([0.3] * 5)
    q = base.copy()
    q[..., 4] = 0.5 * base[..., 4]
    assert math.isinf(nl.time_ratio_k5_k1(q, 0.6))
    assert nl.time_ratio_k5_k1(q, 0.6, normalise=True) == pytest.approx(1.0)


def test_assumed_noise_closed_form():
    assert nl.assumed_noise(16) == pytest.approx(math.sqrt(1e-4 + 5 * (math.pi / 16) ** 2 / 6))
    assert nl.assumed_noise(8) > nl.assumed_noise(16)


def test_bayes_on_grid_phases_learns_every_mode():
    # true phases on bin centres of a 4^5 grid: the posterior mean converges to g, so
    # q_k(T) -> 1 for every k and q_k(1) = 0 (prior mean 0)
    task = FourierRegression(n_modes=5, noise_std=0.01)
    episodes = task.sample(3, 40, seed=0, dtype=torch.float64)
    bins = torch.randint(0, 4, (3, 5), generator=torch.Generator().manual_seed(1))
    phases = (2 * math.pi * (bins + 0.5) / 4).double()
    params = {"phases": phases, "amplitudes": torch.ones(3, 5, dtype=torch.float64)}
    x = episodes.inputs[..., 0]
    y = task.function(params, x)
    y_prev = torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], dim=1)
    from trajprobe.tasks import Episodes

    eps = Episodes(torch.stack([x, y_prev], -1), y[..., None], params)
    ds = nl.bayes_spectra(task, eps, 4, progress=False)
    np.testing.assert_allclose(ds["q"].isel(t=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds["q"].isel(t=-1), 1.0, atol=1e-3)
    assert float(ds["probe_loss"].isel(t=-1).max()) < 1e-4


def test_normalised_ratio_treats_an_unlearned_mode_as_never():
    # k = 5 stays at ~0 (final 0.01 < MIN_ASYMPTOTE): dividing by it would be noise
    q = _curves([0.3] * 5)
    q[..., 4] = 0.01 * q[..., 4]
    assert math.isinf(nl.time_ratio_k5_k1(q, 0.5, normalise=True))
    q[..., 0] = 0.01 * q[..., 0]
    assert math.isnan(nl.time_ratio_k5_k1(q, 0.5, normalise=True))


def test_headline_numbers_are_the_pinned_ones(smoke_run, assert_pinned):
    assert_pinned(smoke_run[0], "nonlinear-regression")
