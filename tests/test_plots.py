"""Figures draw from the Datasets alone and show the measured numbers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from trajprobe.plots import (
    plot_learning_curves,
    plot_ordered_contexts,
    plot_progress,
    plot_steps_to_threshold,
)


def spectra_dataset():
    """Planted q_k(t) = 1 - r_k^(t-1) for 3 modes, identical across 4 episodes."""
    t = np.arange(1, 11)
    rates = np.array([0.2, 0.5, 0.8])
    q = np.broadcast_to(1 - rates[None, :] ** (t[:, None] - 1), (4, 10, 3)).copy()
    s = np.broadcast_to([2.0, 1.0, 0.1], (4, 3))
    return xr.Dataset(
        {
            "q": (("episode", "t", "mode"), q),
            "s": (("episode", "mode"), s),
            "loss": (("episode", "t"), np.broadcast_to(1.0 / t, (4, 10)).copy()),
        },
        coords={"episode": np.arange(4), "t": t, "mode": [1, 2, 3]},
    )


def test_learning_curves_and_progress_plot_the_means():
    ds = spectra_dataset()
    ax = plot_learning_curves(ds)
    ys = sorted(tuple(np.round(line.get_ydata(), 12))
                for line in ax.lines if len(line.get_ydata()) == 10)
    expected = sorted(tuple(np.round(ds.q.isel(episode=0, mode=k).values, 12)) for k in range(3))
    assert ys == expected
    ax = plot_progress(ds)
    assert len(ax.lines) == 3
    np.testing.assert_allclose(ax.lines[0].get_xdata(), -1.0 / np.arange(1, 11))
    plt.close("all")


def test_steps_to_threshold_plot_against_singular_values():
    ds = spectra_dataset()
    ax = plot_steps_to_threshold(ds, thresholds=(0.5, 0.9), x="s")
    # q > 0.5 first at t = 2 (r = 0.2), 2 (r = 0.5: 0.5 is not > 0.5 -> t = 3), 5 (r = 0.8)
    points = {tuple(zip(line.get_xdata(), line.get_ydata(), strict=True))
              for line in ax.lines if len(line.get_xdata())}
    assert ((0.1, 5.0), (1.0, 3.0), (2.0, 2.0)) in {tuple(sorted(p)) for p in points}
    never = plot_steps_to_threshold(ds, thresholds=(1.5,), x="s")  # no curve crosses
    assert not never.lines and never.texts[0].get_text() == "no curve reached q > 1.5"
    plt.close("all")


def test_ordered_contexts_log_axis_and_errors():
    ds = spectra_dataset().rename({"mode": "rank", "q": "q_ordered"})
    ax = plot_ordered_contexts(ds)
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="var: expected one of"):
        plot_learning_curves(ds, "nope")
    with pytest.raises(ValueError, match=r"expected dims \('episode', 't', 'mode'\)"):
        plot_learning_curves(ds, "q_ordered")
    plt.close("all")
