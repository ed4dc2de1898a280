"""Sweeps over seeds: the Dask engine, fault tolerance, resume, and the standard measurement."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from trajprobe import io
from trajprobe.apps import recipes
from trajprobe.apps import sweep as sweep_module
from trajprobe.apps.recipes.evaluate import evaluate
from trajprobe.apps.sweep import Job, load_sweep, plot_sweep, run_jobs, summary, sweep
from trajprobe.reference_models import BayesianLinearRegression, catalogue

BERNOULLI = "bayes-optimal/bernoulli_beta_1_1"
PER_SEED_VARS = ("training_seconds", "resumed_from_step")


def _small(steps: int = 200) -> recipes.MetaLearnerRecipe:
    """The Beta(1,1)-Bernoulli Meta-Learner, ``steps`` outer steps of 20 episodes."""
    recipe = recipes.get(BERNOULLI, "smoke")
    training = replace(recipe.training, n_episodes=20 * steps, batch_size=20, save_every=10,
                       n_checkpoints=3, log_every=10)
    return replace(recipe, training=training)


def _measured(ds: xr.Dataset) -> xr.Dataset:
    """A result without what legitimately differs between runs (wall time, resume point)."""
    return ds.drop_vars(list(PER_SEED_VARS))


# ------------------------------------------------------------------ the standard measurement


def test_evaluate_bayes_against_itself_is_zero_kl() -> None:
    recipe = recipes.get(BERNOULLI, "smoke")
    ds = evaluate(recipe, catalogue.get("bernoulli_beta_1_1").bayes(), episodes=30)
    assert dict(ds.sizes) == {"episode": 30, "t": 20}
    np.testing.assert_allclose(ds["kl"], 0.0, atol=1e-12)
    np.testing.assert_allclose(ds["log_loss"], ds["bayes_log_loss"], rtol=0, atol=1e-12)
    # the first prediction under Beta(1,1) is a fair coin: log 2 nats
    np.testing.assert_allclose(ds["bayes_log_loss"].isel(t=0), np.log(2.0), atol=1e-12)


def test_evaluate_bayes_linear_regression_recovers_the_spectrum() -> None:
    recipe = recipes.get("linear-regression-2d/meta-learner", "smoke")
    bayes = BayesianLinearRegression.from_task(recipe.task)
    ds = evaluate(recipe, bayes, episodes=20, seed=3)
    assert ds.attrs["recipe"] == recipe.name and set(ds.dims) == {"episode", "t", "mode"}
    # a few noise-level (σ = 0.01) observations of a 2-D W pin the posterior mean to W
    late = ds["s_hat"].isel(t=slice(5, None))
    np.testing.assert_allclose(late, ds["s"].broadcast_like(late), atol=0.05)
    assert float(ds["q"].isel(t=0).mean()) == pytest.approx(0.0, abs=1e-6)


def test_evaluate_rejects_a_learner_recipe() -> None:
    with pytest.raises(TypeError, match="MetaLearnerRecipe"):
        evaluate(recipes.get("linear-regression-2d/learner", "smoke"), torch.nn.Linear(1, 1))


# ------------------------------------------------------------------ in-process sweeps


def test_sweep_merges_seeds_and_checkpoints(tmp_path: Path) -> None:
    recipe = _small(40)
    ds = sweep(recipe, seeds=[2, 0], out_dir=tmp_path, scheduler=None, threads=1, episodes=8,
               progress=False)
    assert list(ds["seed"].values) == [0, 2]
    assert list(ds["checkpoint"].values) == [0, 1, 6, 40]  # checkpoint_schedule(40, 3)
    assert dict(ds["kl"].sizes) == {"seed": 2, "checkpoint": 4, "episode": 8, "t": 20}
    assert np.isfinite(ds["kl"]).all() and (ds["resumed_from_step"] == 0).all()
    # seeds differ in training, not in the evaluation episodes
    assert not np.array_equal(ds["kl"].sel(seed=0), ds["kl"].sel(seed=2))
    bayes = ds["bayes_log_loss"]
    np.testing.assert_array_equal(bayes.sel(seed=0), bayes.sel(seed=2))
    xr.testing.assert_identical(load_sweep(tmp_path), ds)
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["seed0.nc", "seed2.nc"]
    per_seed = ds["kl"].isel(checkpoint=-1).mean("episode").sum("t").values
    label, mean, sem = summary(ds)[0]
    assert label.startswith("sum_t KL") and mean == pytest.approx(per_seed.mean())
    assert sem == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2)  # s.d. / sqrt(2), n = 2
    fig = plot_sweep(ds)  # Σ_t KL and the per-step excess log-loss: two scales, two panels
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1]
    assert fig.axes[0].get_ylabel().startswith("Σ_t KL") and fig.axes[0].get_xlim()[0] == 0


def test_rerun_does_no_work_and_partial_sweeps_resume(tmp_path: Path, monkeypatch) -> None:
    recipe = _small(20)
    first = sweep(recipe, seeds=2, out_dir=tmp_path, scheduler=None, threads=1, episodes=4,
                  progress=False)
    ran: list[int] = []
    real = sweep_module.run_job
    monkeypatch.setattr(sweep_module, "run_job",
                        lambda job, **kw: ran.append(job.seed) or real(job, **kw))
    again = sweep(recipe, seeds=2, out_dir=tmp_path, scheduler="no cluster needed",
                  threads=1, episodes=4, progress=False)
    assert ran == []
    xr.testing.assert_identical(again, first)
    more = sweep(recipe, seeds=3, out_dir=tmp_path, scheduler=None, threads=1, episodes=4,
                 progress=False)
    assert ran == [2] and list(more["seed"].values) == [0, 1, 2]
    xr.testing.assert_identical(more.sel(seed=[0, 1]), first)


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path, monkeypatch) -> None:
    recipe = _small(40)
    real_save = io.save_checkpoint

    def save_then_stop(checkpoint, path):
        real_save(checkpoint, path)
        if Path(path).name == "latest.pt" and checkpoint["step"] == 20:
            raise KeyboardInterrupt

    monkeypatch.setattr(io, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        sweep(recipe, seeds=1, out_dir=tmp_path, scheduler=None, threads=1, progress=False)
    monkeypatch.setattr(io, "save_checkpoint", real_save)
    assert not (tmp_path / "results").exists()
    resumed = sweep(recipe, seeds=1, out_dir=tmp_path, scheduler=None, threads=1, episodes=4,
                    progress=False)
    assert resumed["resumed_from_step"].item() == 20
    fresh = sweep(recipe, seeds=1, out_dir=tmp_path / "fresh", scheduler=None, threads=1,
                  episodes=4, progress=False)
    xr.testing.assert_identical(_measured(resumed), _measured(fresh))


def test_failed_seeds_are_reported_and_the_rest_kept(tmp_path: Path) -> None:
    good = _small(10)

    class Broken:
        name = "broken/recipe"

        def train(self, *args, **kwargs):
            raise ValueError("no data today")

    jobs = [Job(good, 0, tmp_path / "r0", tmp_path / "seed0.nc", threads=1, episodes=2),
            Job(Broken(), 1, tmp_path / "r1", tmp_path / "seed1.nc")]
    with pytest.raises(RuntimeError, match=r"(?s)1 of 2 job\(s\) failed.*broken/recipe seed 1: "
                                           r"ValueError: no data today"):
        run_jobs(jobs, scheduler=None, progress=False)
    assert (tmp_path / "seed0.nc").is_file() and not (tmp_path / "seed1.nc").exists()


def test_bad_arguments_say_what_is_valid(tmp_path: Path, monkeypatch) -> None:
    recipe = _small(10)
    sweep(recipe, seeds=1, out_dir=tmp_path, scheduler=None, threads=1, episodes=2,
          progress=False)
    other = replace(recipe, training=replace(recipe.training, batch_size=10))
    with pytest.raises(ValueError, match="holds a sweep of 'bayes-optimal/bernoulli_beta_1_1'"):
        sweep(other, seeds=1, out_dir=tmp_path, scheduler=None, progress=False)
    with pytest.raises(ValueError, match="Learner set-up"):
        sweep("linear-regression-2d/learner", preset="smoke", out_dir=tmp_path / "l")
    for seeds in (0, [1, 1], [-1]):
        with pytest.raises(ValueError, match="seeds"):
            sweep(recipe, seeds=seeds, out_dir=tmp_path / "s", scheduler=None)
    with pytest.raises(TypeError, match="seeds: expected a positive int, got True"):
        sweep(recipe, seeds=True, out_dir=tmp_path / "s", scheduler=None)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "trajprobe\[distributed\]"'):
        sweep(recipe, seeds=1, out_dir=tmp_path / "d", scheduler="local")


# ------------------------------------------------------------------ a real Dask cluster


def _kill_a_worker_mid_run(client, out: Path, killed: dict, stop: threading.Event) -> None:
    """Kill (SIGKILL) the worker process training the first seed seen between checkpoints."""
    while not stop.is_set():
        for run_dir in sorted((out / "runs").glob("seed*")):
            seed = int(run_dir.name[4:])
            if (out / "results" / f"seed{seed}.nc").exists():
                continue
            if sweep_module._saved_step(run_dir) >= 20:
                for address, keys in client.processing().items():
                    if any(f"-seed{seed}-" in str(key) for key in keys):
                        pid = client.run(os.getpid, workers=[address])[address]
                        os.kill(pid, signal.SIGKILL)
                        killed.update(seed=seed, pid=pid)
                        return
        time.sleep(0.02)


@pytest.mark.slow  # ~31 s on the quiet 2-core machine: cluster start-up, a worker restart
def test_localcluster_sweep_survives_a_killed_worker(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    recipe = _small(60)
    killed: dict = {}
    stop = threading.Event()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        killer = threading.Thread(target=_kill_a_worker_mid_run,
                                  args=(client, tmp_path / "sweep", killed, stop), daemon=True)
        killer.start()
        try:
            ds = sweep(recipe, seeds=4, out_dir=tmp_path / "sweep", scheduler=client,
                       threads=1, episodes=6, checkpoints=False, progress=False)
        finally:
            stop.set()
            killer.join()
    assert killed, "the test never caught a seed between checkpoints to kill its worker"
    assert list(ds["seed"].values) == [0, 1, 2, 3]
    assert int(ds["resumed_from_step"].sel(seed=killed["seed"])) >= 20  # from its checkpoint
    one_by_one = sweep(recipe, seeds=4, out_dir=tmp_path / "serial", scheduler=None, threads=1,
                       episodes=6, checkpoints=False, progress=False)
    xr.testing.assert_identical(_measured(ds), _measured(one_by_one))


def test_a_logged_sweep_on_dask_reports_the_workers_training_steps(tmp_path: Path,
                                                                   monkeypatch, capsys) -> None:
    """Workers train without a bar; the sweep's own bar follows their saved outer steps, so
    a log file shows the training advance before any job ends."""
    distributed = pytest.importorskip("distributed")
    import trajprobe.progress

    monkeypatch.setattr(trajprobe.progress, "LOG_INTERVAL", 0.0)  # a line at every change
    monkeypatch.setattr(sweep_module, "POLL_SECONDS", 0.05)
    recipe = _small(400)
    jobs = [Job(recipe, 0, tmp_path / "run", threads=1)]
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=":0") as client:
        run_jobs(jobs, scheduler=client, progress=None)  # stderr is captured: not a terminal
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sweep")]
    counts = [int(line.split("|")[2].split("/")[0]) for line in lines]
    assert counts[-1] == 400 and "1/1 jobs" in lines[-1] and "update" in lines[-1]
    assert any(0 < n < 400 for n in counts), lines  # seen mid-training, from latest.pt
    run_jobs(jobs, scheduler=None, progress=None)  # finished: the bar starts full
    again = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sweep")]
    assert again and all("400/400" in line for line in again), again


def test_sweep_progress_reads_a_changed_latest_checkpoint_only(tmp_path: Path) -> None:
    assert sweep_module._saved_step_cached(tmp_path, (0.0, 0)) == (0.0, 0)  # no run yet
    recipe = _small(20)
    recipe.train(tmp_path, seed=0, progress=False)
    mtime, step = sweep_module._saved_step_cached(tmp_path, (0.0, 0))
    assert step == 20 and mtime > 0
    assert sweep_module._saved_step_cached(tmp_path, (mtime, 7)) == (mtime, 7)  # unchanged
    assert sweep_module._total_steps(Job(recipe, 0, tmp_path)) == 20
