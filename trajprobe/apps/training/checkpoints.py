"""A run directory's files: which checkpoints it keeps, and loading their weights.

Files in a run's ``out_dir``: ``checkpoint_<step>.pt`` (step = outer updates done; 0 is
the untrained model), :data:`LATEST` (what a resumed run starts from) and :data:`METRICS`
at the end. Every file is written atomically (:mod:`trajprobe.io`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from trajprobe import io

__all__ = ["LATEST", "METRICS", "checkpoint_schedule", "list_checkpoints", "load_model"]

LATEST = "latest.pt"
"""The checkpoint a resumed run starts from (every ``save_every`` outer steps and the last)."""
METRICS = "metrics.nc"
"""The metrics Dataset of a finished run (see :class:`~trajprobe.apps.training.TrainingResult`)."""


def checkpoint_schedule(total_steps: int, n_checkpoints: int) -> list[int]:
    """Outer steps with a kept checkpoint: 0 plus ``n_checkpoints`` log-spaced in 1..total.

    Rounding can merge close steps early on, so fewer may be returned; the last is
    always ``total_steps``.
    """
    if n_checkpoints == 0:
        return [0]
    spaced = np.unique(np.round(np.logspace(0, math.log10(total_steps), n_checkpoints)))
    return [0, *sorted({int(s) for s in spaced} | {total_steps})]


def list_checkpoints(out_dir: str | Path) -> list[tuple[int, Path]]:
    """The kept checkpoints of a run, as ``(outer step, path)`` in step order."""
    found = []
    for path in Path(out_dir).glob("checkpoint_*.pt"):
        try:
            found.append((int(path.stem.split("_")[1]), path))
        except (IndexError, ValueError):
            continue
    return sorted(found)


def load_model(path: str | Path, model: nn.Module, *, map_location: str = "cpu") -> nn.Module:
    """Load a checkpoint's weights into ``model`` (in place) and return it.

    Raises ValueError if the file is truncated or corrupt, or was written for a model
    with other parameters.
    """
    checkpoint = io.load_checkpoint(path, map_location=map_location, required=("model",))
    load_state(model, checkpoint["model"], "model", path)
    return model


def load_state(module: Any, state: dict[str, Any], name: str, path: str | Path) -> None:
    """``module.load_state_dict(state)``; ValueError naming ``name`` and the file if it
    does not fit."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as err:
        raise ValueError(
            f"{name}: the checkpoint {str(path)!r} does not fit this {type(module).__name__} "
            f"({str(err).splitlines()[0][:300]})"
        ) from err
