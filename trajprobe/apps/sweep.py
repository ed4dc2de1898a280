"""Sweeps over training seeds on Dask distributed: one task per (recipe, seed).

The papers report statistics over 5-15 independently trained Meta-Learners, each trained
for 8M-2B episodes. A sweep trains and measures every seed as one Dask task, on an
embedded :class:`distributed.LocalCluster` by default or on any running Dask cluster by
address (for example one started by dask-jobqueue on SLURM or PBS)::

    >>> from trajprobe.apps.sweep import sweep
    >>> ds = sweep("linear-regression-2d/meta-learner", preset="quick", seeds=4)  # doctest: +SKIP

Layout of the sweep's directory (which must be on a file system the workers share)::

    sweep.json              what the sweep is (recipe, preset); a re-run must match
    runs/seed<k>/           seed k's training run: checkpoints, latest.pt, metrics.nc
    results/seed<k>.nc      seed k's measurement at every checkpoint (written atomically)
    sweep.nc                every finished seed merged along ``seed`` (rewritten as seeds end)

Fault tolerance comes from the files, not from the scheduler's memory: a task first
returns a finished result file if there is one, and training resumes from the run's
``latest.pt``. So a worker that dies mid-task is retried (Dask reschedules it) from its last
checkpoint; every seed is one file, so none is counted twice; re-running a finished sweep
submits nothing; and a partly finished sweep resumes. Tasks pass paths, not tensors.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import numbers
import os
import textwrap
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from trajprobe import io, plots
from trajprobe.apps.recipes.config import default_out_dir
from trajprobe.devices import resolve_device
from trajprobe.dynamics import mean_sem
from trajprobe.progress import bar_options
from trajprobe.validation import check_positive_int, renamed_arguments

__all__ = ["Job", "SweepError", "headlines", "load_sweep", "plot_sweep",
           "run_job", "run_jobs", "summary", "sweep"]

SWEEP_FILE = "sweep.json"
MERGED_FILE = "sweep.nc"
SWEEPS_ROOT = "trajprobe-sweeps"
"""Where sweeps go by default: ``./trajprobe-sweeps/<recipe>-<preset>``."""
INSTALL_HINT = 'pip install "trajprobe[distributed]"'
LOCAL_CLUSTER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}
"""Dask settings of the embedded LocalCluster. Dask's workers set ``MALLOC_TRIM_THRESHOLD_``,
which turns off glibc's adaptive mmap threshold: every mid-sized tensor is then a fresh
mmap, and training an LSTM(64) ran ~1.5x slower (measured); the 10 ms stack profiler cost
~15 % more. Set the same on your own cluster (see docs/sweeps.md)."""


class SweepError(RuntimeError):
    """Some jobs of a sweep failed; the message names each one and why."""


@dataclass(frozen=True)
class Job:
    """One unit of work: train ``recipe`` for ``seed`` in ``run_dir``, then maybe measure it.

    Attributes:
        recipe: a :class:`~trajprobe.apps.recipes.MetaLearnerRecipe` (small; pickled to workers).
        seed: the training seed.
        run_dir: the training run's directory (resumed if it holds a partial run).
        result_path: where to write the measurement (None: train only).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None: the CPU (resolved on the worker
            by :func:`trajprobe.devices.resolve_device`: a device it lacks is an error).
        threads: torch CPU threads inside the task (None: the worker's setting).
        episodes: evaluation episodes (None: the measurement's default; the old name
            ``n_episodes`` still works, deprecated).
        checkpoints: measure every kept checkpoint (True) or only the final model.
    """

    recipe: Any
    seed: int
    run_dir: Path
    result_path: Path | None = None
    device: str | None = None
    threads: int | None = None
    episodes: int | None = None
    checkpoints: bool = True

    @property
    def label(self) -> str:
        """``"<recipe> seed <k>"``, for messages."""
        return f"{self.recipe.name} seed {self.seed}"


Job.__init__ = renamed_arguments(n_episodes="episodes")(Job.__init__)  # type: ignore[method-assign]


def run_job(job: Job, *, progress: bool | None = False) -> str:
    """Do ``job`` (in a worker or in this process); returns the path it produced.

    ``progress``: the training's progress bar (off by default: a worker's output is not
    seen; :func:`run_jobs` follows the runs' saved steps instead).

    Idempotent: an existing result file is returned untouched, and training resumes from
    (or reuses) ``job.run_dir``. The result holds, per seed, ``final_training_loss``,
    ``training_seconds`` (over all attempts) and ``resumed_from_step``, the outer step
    training restarted from (0 for a fresh run).
    """
    if job.result_path is not None and job.result_path.is_file():
        return str(job.result_path)
    before = torch.get_num_threads()
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    try:
        return _run_job(job, progress)
    finally:
        torch.set_num_threads(before)


def _run_job(job: Job, progress: bool | None) -> str:
    device = str(resolve_device(job.device))
    resumed_from = _saved_step(job.run_dir)
    trained = job.recipe.train(job.run_dir, seed=job.seed, device=device, progress=progress)
    if job.result_path is None:
        return str(job.run_dir)
    from trajprobe.apps.recipes.evaluate import evaluate
    from trajprobe.apps.runs import load_run
    from trajprobe.apps.training import list_checkpoints

    kept = list_checkpoints(job.run_dir) if job.checkpoints else []
    if kept:
        measured = []
        for step, path in kept:
            model = load_run(path, recipe=job.recipe, device=device).machine
            measured.append(evaluate(job.recipe, model, episodes=job.episodes,
                                     device=device).expand_dims(checkpoint=[step]))
        ds = xr.concat(measured, "checkpoint", combine_attrs="override")
    else:
        final = int(trained.metrics["step"].values[-1]) if trained.metrics.sizes["step"] else 0
        ds = evaluate(job.recipe, trained.model, episodes=job.episodes,
                      device=device).expand_dims(checkpoint=[final])
    last = trained.metrics.isel(step=-1)
    ds = ds.expand_dims(seed=[job.seed])
    ds["final_training_loss"] = ("seed", [float(last["loss"])])
    ds["training_seconds"] = ("seed", [float(last["wall_time"])])
    ds["resumed_from_step"] = ("seed", [resumed_from])
    ds.attrs.update(checkpoint_unit="outer (meta-training) step", device=device)
    io.save_dataset(ds, job.result_path)
    return str(job.result_path)


def _saved_step(run_dir: Path) -> int:
    """The outer step of ``run_dir/latest.pt`` (0 if there is none)."""
    from trajprobe.apps.training import LATEST

    latest = Path(run_dir) / LATEST
    if not latest.is_file():
        return 0
    return int(io.load_checkpoint(latest, required=("step",))["step"])


def run_jobs(
    jobs: Sequence[Job],
    *,
    scheduler: Any = "local",
    n_workers: int | None = None,
    progress: bool | None = None,
    on_done: Callable[[Job, str], None] | None = None,
) -> list[str]:
    """Run ``jobs`` on a Dask cluster (or in this process) and return their paths in order.

    Args:
        jobs: the work; each job writes its own files, so they may run in any order.
        scheduler: ``"local"`` — start a :class:`distributed.LocalCluster` of
            ``n_workers`` single-threaded worker processes (default: one per CPU core, at
            most one per job); a scheduler address such as ``"tcp://10.0.0.5:8786"`` —
            use that cluster; a :class:`distributed.Client` — use it as is; None — run
            the jobs one after another in this process (no Dask needed).
        n_workers: LocalCluster size.
        progress: show a progress bar (None: when on a terminal).
        on_done: called in this process as each job finishes, with the job and its path.

    Raises:
        SweepError: after every job has ended, if some failed; it names each one and
            why. The others' files are kept, so running again redoes only the failures.
    """
    paths: dict[int, str] = {}
    failures: list[str] = []
    totals = [_total_steps(job) for job in jobs]
    # job → (mtime of its latest.pt, its step); steps saved before this call are the bar's
    # start, so its rate and time left are this call's
    saved = {i: _saved_step_cached(job.run_dir, (0.0, 0)) for i, job in enumerate(jobs)}
    bar = tqdm(total=sum(totals), initial=sum(min(saved[i][1], totals[i]) for i in saved),
               unit="update", desc="sweep", dynamic_ncols=True, **bar_options(progress))
    bar.set_postfix_str(f"0/{len(jobs)} jobs", refresh=False)

    def finish(index: int, path: str) -> None:
        paths[index] = path
        if on_done is not None:
            on_done(jobs[index], path)
        bar.set_postfix_str(f"{len(paths)}/{len(jobs)} jobs", refresh=False)

    def show(unfinished: Iterable[int]) -> None:
        """The bar at the outer steps saved so far (finished jobs count whole)."""
        open_ = set(unfinished)
        for i in open_:
            saved[i] = _saved_step_cached(jobs[i].run_dir, saved[i])
        done = sum(min(saved[i][1], totals[i]) if i in open_ else totals[i]
                   for i in range(len(jobs)))
        bar.update(done - bar.n)

    try:
        if scheduler is None:
            for index, job in enumerate(jobs):
                try:
                    path = run_job(job, progress=progress)
                except Exception as err:
                    failures.append(f"{job.label}: {type(err).__name__}: {err}")
                    continue
                finish(index, path)
                show(range(index + 1, len(jobs)))
        elif jobs:
            distributed = _import_distributed()
            with _client(scheduler, n_workers or min(len(jobs), os.cpu_count() or 1)) as client:
                futures = {client.submit(run_job, job, key=_key(job), pure=False): index
                           for index, job in enumerate(jobs)}
                _gather(distributed, futures, jobs, finish, failures, show)
    finally:
        bar.close()
    if failures:
        raise SweepError(f"{len(failures)} of {len(jobs)} job(s) failed (run again to "
                           "retry them; finished ones are kept):\n  " + "\n  ".join(failures))
    return [paths[i] for i in range(len(jobs))]


POLL_SECONDS = 5.0
"""How often a sweep on Dask reads its runs' saved outer steps for the progress bar."""


def _gather(distributed: Any, futures: dict, jobs: Sequence[Job],
            finish: Callable[[int, str], None], failures: list[str],
            show: Callable[[Iterable[int]], None]) -> None:
    """Wait for every future, handing each to ``finish`` or ``failures`` as it ends, and
    update the bar from the runs' ``latest.pt`` every :data:`POLL_SECONDS` meanwhile (the
    workers train with ``progress=False``)."""
    remaining = dict(futures)
    while remaining:
        try:
            ended, _ = distributed.wait(list(remaining), timeout=POLL_SECONDS,
                                        return_when="FIRST_COMPLETED")
        except distributed.TimeoutError:
            ended = set()
        for future in ended:
            index = remaining.pop(future)
            if future.status == "finished":
                finish(index, future.result())
            else:
                failures.append(f"{jobs[index].label}: {_error(future)}")
        show(remaining.values())


def _saved_step_cached(run_dir: Path, before: tuple[float, int]) -> tuple[float, int]:
    """``(mtime, step)`` of ``run_dir/latest.pt``, read again only if it changed; ``before``
    if it is absent or cannot be read (being replaced on a shared file system)."""
    from trajprobe.apps.training import LATEST

    try:
        mtime = (Path(run_dir) / LATEST).stat().st_mtime
        return before if mtime == before[0] else (mtime, _saved_step(run_dir))
    except Exception:  # progress is best effort: never fail a sweep over it
        return before


def _total_steps(job: Job) -> int:
    """The outer steps of ``job``'s training (1 if its recipe does not say)."""
    training = getattr(job.recipe, "training", None)
    episodes, batch = (getattr(training, name, None) for name in ("n_episodes", "batch_size"))
    return math.ceil(episodes / batch) if episodes and batch else 1


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as err:
        raise ModuleNotFoundError(
            f"scheduler: running on a Dask cluster needs Dask distributed; {INSTALL_HINT} "
            "(or pass scheduler=None / --scheduler none to run the seeds one by one here)"
        ) from err
    return distributed


CONNECT_TIMEOUT = 10
"""Seconds to wait for a Dask scheduler given by address before giving up."""


@contextmanager
def _client(scheduler: Any, n_workers: int):
    """A Client for ``scheduler``; a LocalCluster it starts is closed on exit."""
    import dask
    import distributed

    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    if scheduler == "local":
        with dask.config.set(LOCAL_CLUSTER_CONFIG), \
                distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None,
                                         silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster) as client:
            yield client
        return
    if not isinstance(scheduler, str) or not scheduler:
        raise ValueError(f"scheduler: expected 'local', an address like 'tcp://host:8786', "
                         f"a distributed.Client or None, got {scheduler!r}")
    try:
        client = distributed.Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s")
    except OSError as err:  # TimeoutError, ConnectionRefusedError, ...
        raise ValueError(f"scheduler: could not connect to {scheduler!r} within "
                         f"{CONNECT_TIMEOUT} s ({type(err).__name__}); is a Dask scheduler "
                         "running there? (or --scheduler local / none)") from err
    with client:
        yield client


def _key(job: Job) -> str:
    """A Dask key unique to the job's files (so two sweeps on one cluster never collide)."""
    from dask.base import tokenize

    slug = job.recipe.name.replace("/", "-")
    return f"trajprobe-{slug}-seed{job.seed}-{tokenize(str(job.run_dir), str(job.result_path))}"


def _error(future: Any) -> str:
    try:
        error = future.exception()
    except Exception as err:  # a cancelled future raises here
        error = err
    return f"{type(error).__name__}: {error}"


# ------------------------------------------------------------------------------ sweeps


@renamed_arguments(n_episodes="episodes")
def sweep(
    recipe: str | Any,
    *,
    preset: str = "quick",
    seeds: int | Iterable[int] = 4,
    out_dir: str | Path | None = None,
    scheduler: Any = "local",
    n_workers: int | None = None,
    device: str | None = None,
    threads: int | None = None,
    episodes: int | None = None,
    checkpoints: bool = True,
    progress: bool | None = None,
) -> xr.Dataset:
    """Train and measure ``recipe`` for every seed, in parallel, and merge along ``seed``.

    Each seed is one task (:func:`run_job`): train (resuming from its last checkpoint),
    then measure every kept checkpoint with :func:`trajprobe.apps.recipes.evaluate.evaluate`.
    ``sweep.nc`` is rewritten as each seed finishes, so an interrupted sweep keeps its
    finished seeds, and calling again with the same arguments runs only what is missing.

    Args:
        recipe: a recipe name (see ``trajprobe recipes``) or a
            :class:`~trajprobe.apps.recipes.MetaLearnerRecipe` (then ``preset`` is ignored).
        preset: ``smoke``, ``quick`` or ``paper``.
        seeds: N for seeds 0..N-1, or the seeds themselves.
        out_dir: the sweep's directory (default ``./trajprobe-sweeps/<recipe>-<preset>``);
            on a multi-machine cluster it must be on a shared file system.
        scheduler, n_workers, progress: as in :func:`run_jobs`.
        device: each worker's device (None: the CPU; a device a worker lacks is an error).
        threads: torch threads per task (None: the worker's default; a LocalCluster's
            workers run one thread each).
        episodes: evaluation episodes per checkpoint (the old name ``n_episodes`` still
            works, deprecated).
        checkpoints: measure every kept checkpoint (the outer-loop view) or only the end.

    Returns:
        The measurement over ``seed, checkpoint, ...`` with per-seed
        ``final_training_loss``, ``training_seconds`` and ``resumed_from_step``.
    """
    from trajprobe.apps import recipes

    chosen = recipes.get(recipe, preset) if isinstance(recipe, str) else recipe
    if not isinstance(chosen, recipes.MetaLearnerRecipe):
        raise ValueError(f"recipe: {chosen.name!r} is a Learner set-up (trained inside "
                         "`trajprobe reproduce`); sweeps take Meta-Learner recipes")
    seed_list = _seeds(seeds)
    out = (Path(out_dir) if out_dir is not None
           else default_out_dir(chosen.name, chosen.preset, SWEEPS_ROOT))
    _claim(out, chosen)
    jobs = [Job(chosen, s, out / "runs" / f"seed{s}", out / "results" / f"seed{s}.nc",
                device=device, threads=threads, episodes=episodes,
                checkpoints=checkpoints) for s in seed_list]
    todo = [job for job in jobs if not job.result_path.is_file()]
    if todo:
        done = [job.result_path for job in jobs if job.result_path.is_file()]

        def merge(job: Job, path: str) -> None:
            done.append(Path(path))
            _save_merged(done, out / MERGED_FILE)

        run_jobs(todo, scheduler=scheduler, n_workers=n_workers, progress=progress,
                 on_done=merge)
    return _save_merged([job.result_path for job in jobs], out / MERGED_FILE)


def _seeds(seeds: int | Iterable[int]) -> list[int]:
    if isinstance(seeds, numbers.Integral):  # a bool too: check_positive_int rejects it
        return list(range(check_positive_int(seeds, "seeds")))
    values = list(seeds)
    if not values or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0
                         for s in values) or len(set(values)) != len(values):
        raise ValueError(f"seeds: expected distinct non-negative ints, got {seeds!r}")
    return [int(s) for s in values]


def _claim(out: Path, recipe: Any) -> None:
    """Write ``sweep.json``, or check that an existing one describes the same sweep."""
    info = json.loads(json.dumps({"recipe": recipe.name, "preset": recipe.preset,
                                  "training": dataclasses.asdict(recipe.training)}, default=str))
    path = out / SWEEP_FILE
    if path.is_file():
        from trajprobe.apps.training import differences, with_defaults

        before = json.loads(path.read_text())
        if isinstance(before.get("training"), dict):
            before["training"] = json.loads(json.dumps(
                with_defaults(before["training"], recipe.training), default=str))
        if before != info:
            raise ValueError(
                f"out_dir: {str(out)!r} holds a sweep of {before.get('recipe')!r} "
                f"({before.get('preset')}) with other settings "
                f"({'; '.join(differences(before, info))}); use another directory")
        return
    with io.atomic_write(path, "w") as handle:
        json.dump(info, handle, indent=1)


def _save_merged(paths: Iterable[Path], target: Path) -> xr.Dataset:
    """Concatenate the per-seed results along ``seed`` (sorted) and save them atomically."""
    parts = sorted((io.load_dataset(p) for p in set(paths)),
                   key=lambda ds: int(ds["seed"].values[0]))
    merged = xr.concat(parts, "seed", join="outer", combine_attrs="drop_conflicts")
    io.save_dataset(merged, target)
    return merged


def load_sweep(out_dir: str | Path) -> xr.Dataset:
    """The merged result of a sweep directory (as far as it got)."""
    path = Path(out_dir) / MERGED_FILE
    if not path.is_file():
        raise FileNotFoundError(f"out_dir: no {MERGED_FILE} in {str(out_dir)!r}; no seed of "
                                "that sweep has finished yet")
    return io.load_dataset(path)


def headlines(ds: xr.Dataset) -> dict[str, dict[str, xr.DataArray]]:
    """The measurement's headline quantities per seed and checkpoint, grouped by panel.

    Returns:
        panel title → {label → DataArray ``(seed, checkpoint)``}; which panels appear
        depends on the measurement (q per mode or per ranked context at the last inner
        step, Σ_t KL and excess log-loss against Bayes, or reward per step; for any other
        task, every ``(episode, t)`` variable at the last step).
    """
    panels: dict[str, dict[str, xr.DataArray]] = {}
    if "q" in ds and "mode" in ds["q"].dims:
        panels["q at the last inner step"] = {
            f"q_{mode} at the last step (ŝ/s)": ds["q"].sel(mode=mode).isel(t=-1).mean("episode")
            for mode in ds["mode"].values}
    if "q_ordered" in ds:
        panels["q at the last inner step, contexts by learning order"] = {
            f"q of the context learned {_ordinal(int(rank))}, last step":
                ds["q_ordered"].sel(rank=rank).isel(t=-1).mean("episode")
            for rank in ds["rank"].values}
    if "kl" in ds:  # two scales (a sum over t, a per-step mean): two panels
        panels["Σ_t KL(Bayes ‖ agent), Mikulik eq. 2 (nats)"] = {
            "sum_t KL(Bayes || agent) (Mikulik eq. 2)": ds["kl"].mean("episode").sum("t")}
        panels["log-loss per step minus Bayes' (nats)"] = {
            "log-loss per step minus Bayes' (nats)":
                (ds["log_loss"] - ds["bayes_log_loss"]).mean(("episode", "t"))}
    if "bayes_reward" in ds:
        panels["reward per step (Mikulik eq. 3)"] = {
            "reward per step": ds["reward"].mean(("episode", "t")),
            "Bayes-optimal reward per step": ds["bayes_reward"].mean(("episode", "t"))}
    if not panels:  # a task of one's own: every (episode, t) variable at the last step
        panels["at the last inner step"] = {
            f"{name} at the last step": ds[name].isel(t=-1).mean("episode")
            for name in ds.data_vars
            if set(ds[name].dims) == {"seed", "checkpoint", "episode", "t"}}
    return panels


def summary(ds: xr.Dataset) -> list[tuple[str, float, float]]:
    """Headline numbers of a sweep at its last checkpoint: (label, mean, standard error).

    Mean and standard error are over ``seed`` (:func:`trajprobe.dynamics.mean_sem`: s.e. NaN
    for one seed): the papers' "mean ± s.e. over seeds". The rows are :func:`headlines` at the last
    checkpoint, then the final training loss and training time.
    """
    rows: list[tuple[str, float, float]] = []
    series = {label: values.isel(checkpoint=-1) for panel in headlines(ds).values()
              for label, values in panel.items()}
    series.update({"final training loss": ds["final_training_loss"],
                   "training seconds": ds["training_seconds"]})
    for label, per_seed in series.items():
        rows.append((label, *mean_sem(np.asarray(per_seed, dtype=float))))
    return rows


def plot_sweep(ds: xr.Dataset) -> Any:
    """The outer-loop view of a sweep: each headline against checkpoint, mean ± s.e. band.

    One panel per group of :func:`headlines` (one quantity, one scale, named on the
    y-axis); x is the outer (meta-training) step on a symlog axis (linear from 0 to 1, log
    beyond, so checkpoint 0 stays on it), the line the mean over seeds and the band ± one
    standard error.
    """
    panels = headlines(ds)
    fig, axes = plots.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    x = ds["checkpoint"].values
    n = ds.sizes["seed"]
    for ax, (title, lines) in zip(axes[0], panels.items(), strict=True):
        for label, values in lines.items():
            mean, sem = (v.values for v in mean_sem(values, "seed"))  # one seed: no band
            ax.plot(x, mean, marker="o", markersize=3, label=label)
            ax.fill_between(x, mean - sem, mean + sem, alpha=0.25)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(0, max(float(x.max()), 1.0) * 1.6)
        ax.set_xlabel("outer (meta-training) step, symlog: linear 0–1")
        ax.set_ylabel(textwrap.fill(title, 40), fontsize="small")
        if len(lines) > 1:
            ax.legend(fontsize="x-small")
    fig.suptitle(f"{ds.attrs.get('recipe', 'sweep')}: mean ± s.e. over {n} seed(s)")
    fig.tight_layout()
    return fig


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
