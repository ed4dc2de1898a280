"""Figures render headless from the labelled results and carry the right panels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from trajprobe.compare import SimulationConfig, regret_convergence, simulation
from trajprobe.compare.plots import plot_bar_summary, plot_mds_trajectories, plot_simulation
from trajprobe.reference_models.conjugate import BetaBernoulli
from trajprobe.tasks.prediction import BernoulliPrediction


def test_simulation_figure_has_four_panels_with_scores(tmp_path):
    inputs = BernoulliPrediction().sample(20, 6, seed=0, dtype=torch.float64).inputs
    ds = simulation(BetaBernoulli(), BetaBernoulli(2.0, 1.0), inputs,
                    config=SimulationConfig(hidden_width=8, max_epochs=3), seed=0)
    fig = plot_simulation(ds, names=("Opt", "Other"))
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 4
    titles = [ax.get_title() for ax in panels]  # row-major: row = space, column = source
    d_s = ds["state_dissimilarity"]
    assert titles[0] == "Opt states" and titles[3] == "Other states"
    assert titles[1] == f"Other → Opt  D_s = {float(d_s.sel(direction='b→a')):.3g}"
    assert titles[2] == f"Opt → Other  D_s = {float(d_s.sel(direction='a→b')):.3g}"
    fig.savefig(tmp_path / "fig3.png")
    assert (tmp_path / "fig3.png").stat().st_size > 0


def test_mds_and_bar_figures(tmp_path):
    ds = regret_convergence(np.array([[5.0, 3.0, 1.0], [6.0, 2.0, 1.2]]), 1.0)
    fig = plot_mds_trajectories(ds)
    fig.savefig(tmp_path / "fig2.png")
    values = xr.DataArray(np.random.default_rng(0).random((3, 10, 2)),
                          dims=("task", "run", "direction"),
                          coords={"task": ["bernoulli", "categorical", "gaussian"],
                                  "direction": ["a→b", "b→a"]}, name="D_o")
    fig = plot_bar_summary(values, hue="direction")
    fig.savefig(tmp_path / "fig4.png")
    assert fig.axes[0].get_ylabel() == "D_o"
    with pytest.raises(ValueError, match="values: expected dims"):
        plot_bar_summary(values)
