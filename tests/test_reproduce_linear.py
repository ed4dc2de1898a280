"""`reproduce linear-regression` at the smoke preset writes every file, with the right contents."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from trajprobe.apps.reproduce import read_results, reproduce
from trajprobe.apps.reproduce.linear_regression import SPECTRA, headline_ratio


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("lr")
    reproduce("linear-regression", preset="smoke", out_dir=out, progress=False)
    return out


def test_results_are_labelled_and_finite(run_dir):
    results = read_results(run_dir / "results.nc")
    assert set(results) == {"learner", "meta_learner", "bayes", "outer_loop"}
    for name in ("learner", "meta_learner", "bayes"):
        q = results[name]["q"]
        assert {"episode", "t", "mode"} <= set(q.dims)
        assert np.isfinite(q.values).all()
    assert results["meta_learner"].sizes["seed"] == 1
    assert results["outer_loop"]["steps_to_threshold"].dims == ("seed", "checkpoint", "mode")
    assert results["bayes"].attrs["preset"] == "smoke"


def test_bayes_learns_both_modes_at_once(run_dir):
    bayes = read_results(run_dir / "results.nc")["bayes"]
    # 2-D regression: two observations pin W down, so q > 0.8 at t = 3 for every mode
    assert headline_ratio(bayes["q"], interpolate=False) == 1.0
    # interpolated: both modes cross between t = 2 and t = 3
    q = bayes["q"].where(xr.DataArray(np.arange(bayes.sizes["episode"]) % len(SPECTRA),
                                      dims="episode") == 0, drop=True).mean("episode")
    assert (q.sel(t=2) <= 0.8).all() and (q.sel(t=3) > 0.8).all()
    assert 2 / 3 < headline_ratio(bayes["q"]) < 3 / 2
    assert float(bayes["q"].isel(t=-1).mean()) > 0.95


def test_report_has_the_headline_rows_and_figures(run_dir):
    report = (run_dir / "report.md").read_text()
    for agent, paper in (("Learner", "9"), ("Meta-Learner", "1.05"), ("Bayes", "—")):
        assert f"| time to q > 0.8: s = 0.05 vs s = 2.5 (50× smaller) | {agent} |" in report
        assert f"| {paper} |" in report
    for stem in ("fig1b_learning_curves", "fig1c_steps_to_threshold", "fig14_outer_loop"):
        assert (run_dir / "figures" / f"{stem}.png").stat().st_size > 5_000
        assert f"figures/{stem}.png" in report
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert str(SPECTRA) in report


def test_rerun_reuses_the_finished_training(run_dir):
    runs = sorted((run_dir / "runs").rglob("latest.pt"))
    before = [p.stat().st_mtime_ns for p in runs]
    reproduce("linear-regression", preset="smoke", out_dir=run_dir, progress=False)
    assert [p.stat().st_mtime_ns for p in runs] == before



def test_runs_trained_by_the_sweep_engine_are_the_ones_the_target_uses(tmp_path, monkeypatch):
    """`reproduce --seeds N` trains ``training_runs`` as jobs first; ``run`` only reuses them."""
    import torch

    import trajprobe.apps.reproduce as reproduce_module
    from trajprobe.apps.recipes import MetaLearnerRecipe
    from trajprobe.apps.reproduce import RunContext, linear_regression
    from trajprobe.apps.training import LATEST
    from trajprobe.io import load_checkpoint

    context = RunContext(preset="smoke", seeds=2, device=torch.device("cpu"), out_dir=tmp_path,
                         progress=False)
    runs = linear_regression.training_runs(context)
    reproduce_module._train_on_cluster(runs, context, scheduler=None)  # the serial engine
    steps_before_reuse = []
    real_train = MetaLearnerRecipe.train

    def train(self, out_dir, **kwargs):
        steps_before_reuse.append(load_checkpoint(out_dir / LATEST)["step"])
        return real_train(self, out_dir, **kwargs)

    monkeypatch.setattr(MetaLearnerRecipe, "train", train)
    reproduce("linear-regression", preset="smoke", seeds=2, out_dir=tmp_path, progress=False,
              scheduler=None)
    assert steps_before_reuse == [40, 40]  # smoke: 2000 episodes / 50 per step, both finished


def test_rows_over_seeds_show_mean_and_standard_error():
    from trajprobe.apps.reproduce import SummaryRow
    from trajprobe.dynamics import mean_sem
    mean, sem = mean_sem([1.0, 2.0, 3.0])
    assert mean == 2.0 and sem == pytest.approx(1 / np.sqrt(3))
    assert mean_sem([4.0])[0] == 4.0 and np.isnan(mean_sem([4.0])[1])
    inf_mean, inf_sem = mean_sem([1.0, float("inf")])
    assert inf_mean == float("inf") and np.isnan(inf_sem)
    row = SummaryRow("time ratio", "Meta-Learner", mean, 1.05, "3 seeds", sem=sem)
    assert row.formatted()[2] == "2 ± 0.58"


def test_headline_numbers_are_the_pinned_ones(run_dir, assert_pinned):
    assert_pinned(run_dir, "linear-regression")
