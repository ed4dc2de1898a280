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


def _measured(seed=0, episodes=6):
    """A Bayes-optimal machine measured on 2-D linear regression (labelled by measure)."""
    import trajprobe as tp
    from trajprobe.reference_models import BayesianLinearRegression
    from trajprobe.tasks import LinearRegression

    task = LinearRegression(dim=2)
    bayes = BayesianLinearRegression(2, prior_scale=task.prior_scale, noise_std=task.noise_std)
    return tp.measure(bayes, task, episodes=episodes, steps=8, probes=12, seed=seed)


def test_every_measured_variable_has_long_name_and_units():
    ds = _measured()
    for name in [*ds.data_vars, "mode"]:
        assert ds[name].attrs["long_name"] and "units" in ds[name].attrs, name
    assert ds["q"].attrs["units"] == "1"
    assert ds["t"].attrs["long_name"] == "step t (prediction after t − 1 observations)"


def test_plot_measurement_draws_q_equals_one_and_names_the_band():
    from trajprobe.plots import plot_measurement

    fig = plot_measurement(_measured())
    (ax,) = fig.axes
    ones = [line for line in ax.lines if np.allclose(line.get_ydata(), 1.0)
            and line.get_label().startswith("q = 1")]
    assert len(ones) == 1
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "band: ± s.e. over 6 episodes" in labels
    assert ax.get_ylabel() == "proportion learned q_k = ŝ_k / s_k"
    assert ax.get_xlabel() == "step t (prediction after t − 1 observations)"
    low, high = ax.get_ylim()
    assert low <= 0.0 and high >= 1.0


def test_plot_measurement_overlays_agents_seeds_and_reference_with_shared_limits():
    from trajprobe.plots import plot_measurement

    # the "GRU" is a planted Dataset: half of Bayes's q, so its panels differ in range
    bayes = _measured()
    half = bayes.copy(deep=True)
    half["q"] = half["q"] * 0.5 + 0.3 * (half["mode"] == 2)
    seeds = xr.concat([half, half + 0 * half], "seed")
    fig = plot_measurement({"GRU": seeds}, reference=bayes, reference_name="Bayes")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["singular mode k = 1", "singular mode k = 2"]
    assert axes[0].get_ylim() == axes[1].get_ylim()  # one y-range for the figure
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["GRU, thin: each seed, band ± s.e. over 2 seeds",
                      "Bayes, band ± s.e. over 6 episodes", "q = 1 (target learned)"]
    bayes_line = next(ln for ln in axes[1].lines if ln.get_label().startswith("Bayes"))
    np.testing.assert_allclose(bayes_line.get_ydata(), bayes["q"].sel(mode=2).mean("episode"))


def test_plot_measurement_shares_limits_across_variables_with_the_same_units():
    from trajprobe.plots import plot_measurement

    ds = spectra_dataset()
    ds["loss"].attrs.update(long_name="loss", units="1")
    ds["loss10"] = (ds["loss"] * 10).assign_attrs(ds["loss"].attrs)  # older xarray drops attrs
    fig = plot_measurement(ds, variables=["loss", "loss10"])
    low, high = fig.axes[0].get_ylim()
    assert fig.axes[1].get_ylim() == (low, high)
    assert low < 0 < 10 < high  # holds 0 and the larger variable's maximum, 10
    with pytest.raises(ValueError, match="variables: expected names from"):
        plot_measurement(ds, variables=["nope"])


def test_learning_curves_name_modes_by_constant_singular_values():
    ax = plot_learning_curves(spectra_dataset())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:3] == ["s = 2", "s = 1", "s = 0.1"]
    plt.close("all")


def test_report_html_renders_the_markdown(tmp_path):
    import torch

    from trajprobe.apps.reproduce import report
    from trajprobe.apps.reproduce.base import RunContext, SummaryRow, TargetResult
    from trajprobe.plots import subplots

    fig, ax = subplots()
    ax.plot([0, 1])
    result = TargetResult(
        title="t", figures={"curves": fig},
        rows=[SummaryRow("q at `t = 20`", "a | b", 0.5, paper=0.25, note="<b>raw</b>")],
        notes=["Trained with `lr = 1e-3`; see **Fig. 1**."])
    report.write_report(result, RunContext("smoke", 1, torch.device("cpu"), tmp_path), "x")
    page = (tmp_path / "report.html").read_text()
    cells = "\n".join(["<td>q at <code>t = 20</code></td>", "<td>a | b</td>", "<td>0.5</td>",
                       "<td>0.25</td>", "<td>&lt;b&gt;raw&lt;/b&gt;</td>"])
    assert cells in page
    assert "<code>lr = 1e-3</code>" in page and "<strong>Fig. 1</strong>" in page
    assert "&lt;b&gt;raw&lt;/b&gt;" in page and "`" not in page  # raw HTML escaped, no backticks
    assert page.count('src="data:image/png;base64,') == 1
    assert "<code>results.nc</code>" in page


def test_plot_measurement_of_contexts_draws_them_in_learning_order():
    from trajprobe.plots import plot_measurement

    ds = spectra_dataset().rename({"mode": "context"}).drop_vars("s")
    ds["q_ordered"] = ds["q"].rename({"context": "rank"})
    (ax,) = plot_measurement(ds).axes
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "P(correct action)"
    assert [t.get_text() for t in ax.get_legend().get_texts()][:3] == ["1", "2", "3"]
