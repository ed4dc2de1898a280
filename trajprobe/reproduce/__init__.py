"""Reproduce the papers end to end: train, probe, compare, and write a report.

>>> from trajprobe.reproduce import reproduce
>>> reproduce("linear-regression", preset="quick")      # -> trajprobe-runs/linear-regression-quick
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from trajprobe.reproduce.base import PRESETS, RunContext, SummaryRow, TargetResult
from trajprobe.reproduce.report import read_results, write_report

__all__ = [
    "PRESETS",
    "TARGETS",
    "RunContext",
    "SummaryRow",
    "TargetResult",
    "default_out_dir",
    "read_results",
    "reproduce",
]

TARGETS: dict[str, str] = {
    "linear-regression": "trajprobe.reproduce.linear_regression",
    "nonlinear-regression": "trajprobe.reproduce.nonlinear_regression",
    "contextual-bandits": "trajprobe.reproduce.contextual_bandits",
    "bayes-optimal": "trajprobe.reproduce.bayes_optimal",
}
"""Target name → module with ``run(context) -> TargetResult``."""


def default_out_dir(target: str, preset: str) -> Path:
    """``./trajprobe-runs/<target>-<preset>``."""
    return Path("trajprobe-runs") / f"{target}-{preset}"


def reproduce(
    target: str,
    *,
    preset: str = "quick",
    seeds: int = 1,
    device: torch.device | str | None = None,
    out_dir: str | Path | None = None,
    progress: bool | None = None,
) -> Path:
    """Train (or reuse finished runs in ``out_dir``), probe, compare and report ``target``.

    Writes ``results.nc``, ``figures/*.png``, ``report.md`` and ``report.html`` into
    ``out_dir`` (default :func:`default_out_dir`). Training runs live in ``out_dir/runs``
    and resume where they stopped, so an interrupted command picks up where it left off.

    Returns:
        The path of ``report.md``.
    """
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {', '.join(TARGETS)}, got {target!r}")
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds: expected a positive integer, got {seeds!r}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: CUDA was asked for but torch.cuda.is_available() is False")
    out = Path(out_dir) if out_dir is not None else default_out_dir(target, preset)
    context = RunContext(preset=preset, seeds=seeds, device=dev, out_dir=out, progress=progress)
    module = importlib.import_module(TARGETS[target])
    result = module.run(context)
    return write_report(result, context, target)
