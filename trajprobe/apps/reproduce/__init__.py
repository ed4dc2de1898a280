"""Reproduce the papers end to end: train, probe, compare, and write a report.

>>> from trajprobe.apps.reproduce import reproduce
>>> reproduce("linear-regression", preset="quick")      # -> trajprobe-runs/linear-regression-quick
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import torch

from trajprobe.apps.recipes.config import default_out_dir
from trajprobe.apps.reproduce.base import PRESETS, Presets, RunContext, SummaryRow, TargetResult
from trajprobe.apps.reproduce.report import read_results, write_report
from trajprobe.devices import resolve_device
from trajprobe.paths import check_path
from trajprobe.validation import check_positive_int, did_you_mean

__all__ = [
    "PRESETS",
    "TARGETS",
    "Presets",
    "RunContext",
    "SummaryRow",
    "TargetResult",
    "read_results",
    "reproduce",
]

TARGETS: dict[str, str] = {
    "linear-regression": "trajprobe.apps.reproduce.linear_regression",
    "nonlinear-regression": "trajprobe.apps.reproduce.nonlinear_regression",
    "contextual-bandits": "trajprobe.apps.reproduce.contextual_bandits",
    "bayes-optimal": "trajprobe.apps.reproduce.bayes_optimal",
    "in-context-regression": "trajprobe.apps.reproduce.in_context_regression",
    "task-diversity": "trajprobe.apps.reproduce.task_diversity",
    "wind-tunnel": "trajprobe.apps.reproduce.wind_tunnel",
    "neurogym-decision": "trajprobe.apps.reproduce.neurogym_decision",
}
"""Target name → module with ``run(context) -> TargetResult``."""


def reproduce(
    target: str,
    *,
    preset: str = "quick",
    seeds: int = 1,
    device: torch.device | str | None = None,
    out_dir: str | Path | None = None,
    progress: bool | None = None,
    scheduler: Any = "auto",
) -> Path:
    """Train (or reuse finished runs in ``out_dir``), probe, compare and report ``target``.

    Writes ``results.nc``, ``figures/*.png``, ``report.md`` and ``report.html`` into
    ``out_dir`` (default :func:`trajprobe.apps.recipes.default_out_dir`,
    ``./trajprobe-runs/<target>-<preset>``). Training runs live in ``out_dir/runs``
    and resume where they stopped, so an interrupted command picks up where it left off.

    ``scheduler`` says where the Meta-Learners train, with the machinery of
    :func:`trajprobe.apps.sweep.run_jobs`: ``"local"`` (a LocalCluster), a Dask scheduler
    address, or None (one after another in this process). ``"auto"`` uses a LocalCluster
    when ``seeds > 1`` (or the target trains a ladder of runs: its ``SWEEPS``) and Dask
    is installed, else this process. Probing and the report
    always run here, on the finished runs.

    Returns:
        The path of ``report.md``.
    """
    if target not in TARGETS:
        raise ValueError(f"target: got {target!r}{did_you_mean(target, TARGETS)} "
                         f"(expected one of {', '.join(TARGETS)})")
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    seeds = check_positive_int(seeds, "seeds")
    dev = resolve_device(device)
    out = check_path(out_dir, "out_dir") if out_dir is not None else default_out_dir(target,
                                                                                 preset)
    context = RunContext(preset=preset, seeds=seeds, device=dev, out_dir=out, progress=progress)
    module = importlib.import_module(TARGETS[target])
    if scheduler == "auto":
        many = seeds > 1 or getattr(module, "SWEEPS", False)  # e.g. a ladder of pool sizes
        scheduler = "local" if many and importlib.util.find_spec("distributed") else None
    if scheduler is not None:
        _train_on_cluster(module.training_runs(context), context, scheduler)
    result = module.run(context)
    return write_report(result, context, target)


def _train_on_cluster(runs: list[tuple[str, int]], context: RunContext, scheduler: Any) -> None:
    """Train every (recipe, seed) run as one job, into the directories the target reuses."""
    from trajprobe.apps import recipes
    from trajprobe.apps.sweep import Job, run_jobs

    jobs = [Job(recipes.get(name, context.preset), seed, context.run_dir(name, seed),
                device=str(context.device)) for name, seed in runs]
    run_jobs(jobs, scheduler=scheduler, progress=context.progress)
