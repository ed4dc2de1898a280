"""What a reproduction target returns, and the context it runs in."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["PRESETS", "Preset", "RunContext", "SummaryRow", "TargetResult"]

Preset = Literal["smoke", "quick", "paper"]
PRESETS: tuple[str, ...] = ("smoke", "quick", "paper")


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


@dataclass(frozen=True)
class SummaryRow:
    """One line of the report's headline table: our number beside the paper's."""

    quantity: str
    agent: str
    ours: float
    paper: float | None = None
    note: str = ""

    def formatted(self) -> tuple[str, str, str, str, str]:
        """(quantity, agent, ours, paper, note) as text for tables."""
        return (self.quantity, self.agent, _fmt(self.ours),
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
