"""What a reproduction target returns, and the context it runs in."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import xarray as xr
from matplotlib.figure import Figure

from trajprobe.apps.presets import Presets
from trajprobe.apps.recipes.config import PRESETS, Preset

__all__ = ["INTERPOLATED", "PRESETS", "Preset", "Presets", "RunContext", "SummaryRow",
           "TargetResult"]

INTERPOLATED = "crossing times interpolated between steps"
"""The note of every time-ratio row: the reports read crossing times with
``steps_to_threshold(..., interpolate=True)`` (:func:`trajprobe.dynamics.steps_to_threshold`)."""


@dataclass(frozen=True)
class RunContext:
    """Where and how a target runs.

    Attributes:
        preset: ``"smoke"`` (seconds, for tests), ``"quick"`` (minutes on a laptop CPU) or
            ``"paper"`` (the papers' scale, for a GPU or a cluster).
        seeds: independent training seeds 0..seeds-1 per trained agent.
        device: where to train and probe.
        out_dir: the run's directory; training runs live in ``out_dir/runs``.
        progress: show progress bars (None: when on a terminal).
    """

    preset: Preset
    seeds: int
    device: torch.device
    out_dir: Path
    progress: bool | None = None

    @property
    def runs_dir(self) -> Path:
        """Where training checkpoints go (reused when the command is run again)."""
        return self.out_dir / "runs"

    def run_dir(self, recipe: str, seed: int) -> Path:
        """The training run of ``recipe`` (a name) for ``seed``: ``runs/<recipe>/seed<k>``."""
        return self.runs_dir / recipe.replace("/", "-") / f"seed{seed}"


@dataclass(frozen=True)
class SummaryRow:
    """One line of the report's headline table: our number beside the paper's."""

    quantity: str
    agent: str
    ours: float
    paper: float | None = None
    note: str = ""
    sem: float | None = None
    """Standard error of ``ours`` when it is a mean over seeds (None: one value)."""

    def formatted(self) -> tuple[str, str, str, str, str]:
        """(quantity, agent, ours ± s.e., paper, note) as text for tables."""
        ours = _fmt(self.ours)
        if self.sem is not None and math.isfinite(self.sem) and math.isfinite(self.ours):
            ours += f" ± {self.sem:.2g}"
        return (self.quantity, self.agent, ours,
                "—" if self.paper is None else _fmt(self.paper), self.note)


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "never" if value > 0 else "-inf"
    return f"{value:.3g}"


@dataclass
class TargetResult:
    """Everything one reproduction target produced.

    Attributes:
        title: a heading for the report.
        datasets: labelled results by name (saved as groups of ``results.nc``).
        figures: matplotlib figures by file stem (saved as ``figures/<stem>.png``).
        rows: the headline table.
        notes: paragraphs for the report (what was run, caveats).
    """

    title: str
    datasets: dict[str, xr.Dataset] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    rows: list[SummaryRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
