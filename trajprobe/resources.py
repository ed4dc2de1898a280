"""Memory, disk and time: estimates before a large job, and refusals of what cannot fit.

A job that cannot fit in this machine's memory would otherwise end, minutes or hours in,
in a ``MemoryError`` (or the kernel's OOM killer); one far beyond its preset (``reproduce
--seeds 100000``) would start writing thousands of run directories. Both are refused up
front, before any work, with the estimate, what the machine has, and the flag that
overrides where one exists (:class:`ResourceError`, a ``ValueError``).

Estimates are deliberately simple and stated in their docstrings: bytes of the tensors a
job must hold at once, and the recipes' own time estimates (:data:`CPU_FLOPS`-based).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trajprobe import machine as sm
from trajprobe.io import format_bytes

__all__ = [
    "TIME_LIMIT_FACTOR",
    "TIME_LIMIT_FLOOR",
    "Estimate",
    "ResourceError",
    "available_memory",
    "check_estimate",
    "check_measure",
    "format_duration",
    "free_disk",
    "measure_bytes",
]

TIME_LIMIT_FACTOR = 20.0
"""A job estimated to take more than this many times its preset's own size is refused."""

TIME_LIMIT_FLOOR = 86_400.0
"""...unless it fits in this many seconds (a day) anyway."""


class ResourceError(ValueError):
    """A job refused before any work because it cannot fit, or is far beyond its preset."""


@dataclass(frozen=True)
class Estimate:
    """What a job is expected to need.

    Attributes:
        what: the job, for messages (e.g. ``"reproduce bayes-optimal --seeds 100000"``).
        seconds: wall time on this machine (None: not estimated).
        memory: peak bytes held at once (None: not estimated).
        disk: bytes written (None: not estimated).
        reference_seconds: the same job at its preset's own size (e.g. one seed), for
            "far beyond the preset" (None: no reference).
    """

    what: str
    seconds: float | None = None
    memory: int | None = None
    disk: int | None = None
    reference_seconds: float | None = None


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def free_disk(path: str | os.PathLike) -> int:
    """Free bytes on the file system that would hold ``path`` (its nearest existing parent)."""
    existing = Path(path).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def format_duration(seconds: float) -> str:
    """``"42 s"``, ``"7 min"``, ``"3.1 h"``, ``"12 days"``, ``"3.4 years"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    if seconds < 2 * 365 * 86400:
        return f"{seconds / 86400:.0f} days"
    return f"{seconds / (365.25 * 86400):.3g} years"


def check_estimate(estimate: Estimate, *, out: str | os.PathLike | None = None,
                   override: str | None = None, fix: str = "make the job smaller") -> None:
    """Refuse ``estimate`` if it cannot fit or is far beyond its preset.

    Refused when its memory exceeds :func:`available_memory`, its disk exceeds the free
    space at ``out``, or its time exceeds ``TIME_LIMIT_FACTOR`` × its reference time and
    :data:`TIME_LIMIT_FLOOR`.

    Args:
        estimate: the job's needs.
        out: where it writes (for the disk check).
        override: the flag that runs it anyway (e.g. ``"--force"``), named in the message;
            None: the refusal cannot be overridden.
        fix: how to make it fit, for the message.

    Raises:
        ResourceError: naming the job, the estimate, what the machine has, the fix and
            the override.
    """
    reasons = []
    memory = available_memory()
    if estimate.memory is not None and memory is not None and estimate.memory > memory:
        reasons.append(f"it needs about {format_bytes(estimate.memory)} of memory and this "
                       f"machine has {format_bytes(memory)} available")
    if estimate.disk is not None and out is not None:
        free = free_disk(out)
        if estimate.disk > free:
            reasons.append(f"it writes about {format_bytes(estimate.disk)} and "
                           f"{str(out)!r} has {format_bytes(free)} free")
    if estimate.seconds is not None and estimate.reference_seconds is not None:
        limit = max(TIME_LIMIT_FACTOR * estimate.reference_seconds, TIME_LIMIT_FLOOR)
        if estimate.seconds > limit:
            reasons.append(f"it is estimated to take {format_duration(estimate.seconds)} on this "
                           f"machine, {estimate.seconds / estimate.reference_seconds:,.0f}x the "
                           f"preset's {format_duration(estimate.reference_seconds)}")
    if reasons:
        forced = f", or add {override} to run it anyway" if override else ""
        raise ResourceError(f"{estimate.what}: refused before any work: {'; '.join(reasons)}; "
                            f"{fix}{forced}")


def measure_bytes(episodes: int, steps: int, probes: int, input_size: int, output_size: int,
                  state_size: int, itemsize: int = 4) -> int:
    """Bytes a measurement holds at once, at least: the trace and the probes.

    The inputs and outputs ``[E, T, ·]``, the states ``[E, T+1, S]``, the probe inputs
    ``[E, T, N, input_size]`` and the probe outputs ``[E, T, N, output_size]``.
    """
    trace = episodes * steps * (input_size + output_size) + episodes * (steps + 1) * state_size
    probed = episodes * steps * probes * (input_size + output_size)
    return int((trace + probed) * itemsize)


def check_measure(machine: Any, task: Any, episodes: int, steps: int,
                  probes: int | None, what: str = "measure") -> None:
    """Refuse a measurement whose trace and probes cannot fit in memory (:func:`measure_bytes`,
    with N = ``probes``, or 1 when the task chooses: a lower bound).

    Raises:
        ResourceError: naming the sizes, the bytes needed and the bytes available.
    """
    with torch.no_grad():
        leaves = sm.tree_leaves(machine.initial_state(1))
    state_size = sum(leaf.numel() for leaf in leaves)
    itemsize = max((leaf.element_size() for leaf in leaves if leaf.is_floating_point()),
                   default=4)
    output_size = getattr(task, "output_size", None) or getattr(task, "n_actions", 1)
    needed = measure_bytes(episodes, steps, probes or 1, getattr(task, "input_size", 1),
                           output_size, state_size, itemsize)
    check_estimate(Estimate(f"{what}: episodes={episodes:,} × steps={steps:,}"
                            + (f" × probes={probes:,}" if probes else ""), memory=needed),
                   fix="use fewer episodes (or measure several smaller batches and "
                       "concatenate them along episode)")
