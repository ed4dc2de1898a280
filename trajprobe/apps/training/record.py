"""The per-step metrics of a training run, kept whole in every checkpoint.

Every outer step's values are kept (not only the logged means), so a resumed run loses
and repeats nothing; :meth:`Record.dataset` averages them into rows of ``log_every`` steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

__all__ = ["Record"]


@dataclass
class Record:
    """Per-outer-step metrics, kept whole so a resumed run loses and repeats nothing."""

    names: tuple[str, ...]
    values: dict[str, list[float]] = field(default_factory=dict)
    wall: list[float] = field(default_factory=list)
    pending: list[tuple[dict[str, torch.Tensor], float]] = field(default_factory=list)

    def add(self, values: dict[str, torch.Tensor], wall: float) -> None:
        self.pending.append(({k: v.detach() for k, v in values.items()}, wall))

    def flush(self) -> None:
        if not self.pending:
            return
        first = len(self.wall) + 1
        for name in self.names:
            stacked = torch.stack([p[0][name] for p in self.pending]).double().cpu()
            bad = (~torch.isfinite(stacked)).nonzero()
            if len(bad):
                self.pending.clear()
                raise ValueError(
                    f"model: the training {name} became {float(stacked[bad[0, 0]])} at outer "
                    f"step {first + int(bad[0, 0])}; lower the learning rate or set "
                    "max_grad_norm (latest.pt keeps the last state saved before it)"
                )
            self.values.setdefault(name, []).extend(stacked.tolist())
        self.wall.extend(p[1] for p in self.pending)
        self.pending.clear()

    def to_state(self) -> dict[str, Any]:
        self.flush()
        return {"values": {k: torch.tensor(v, dtype=torch.float64)
                           for k, v in self.values.items()},
                "wall": torch.tensor(self.wall, dtype=torch.float64)}

    def load(self, state: dict[str, Any]) -> None:
        self.values = {k: v.tolist() for k, v in state["values"].items()}
        self.wall = state["wall"].tolist()

    def dataset(self, batch_size: int, log_every: int, attrs: dict[str, Any]) -> xr.Dataset:
        self.flush()
        n = len(self.wall)
        ends = list(range(log_every, n + 1, log_every))
        if not ends or ends[-1] != n:
            ends.append(n)
        starts = [0, *ends[:-1]]
        wall = np.asarray(self.wall)
        data: dict[str, Any] = {}
        for name in self.names:
            values = np.asarray(self.values.get(name, []))
            data[name] = ("step", [values[a:b].mean() for a, b in zip(starts, ends, strict=True)])
        elapsed = [wall[b - 1] - (wall[a - 1] if a > 0 else 0.0)
                   for a, b in zip(starts, ends, strict=True)]
        data["episodes"] = ("step", np.asarray(ends, dtype=np.int64) * batch_size)
        data["episodes_per_s"] = (
            "step",
            [(b - a) * batch_size / e if e > 0 else np.nan
             for a, b, e in zip(starts, ends, elapsed, strict=True)],
        )
        data["wall_time"] = ("step", wall[np.asarray(ends) - 1] if n else [])
        return xr.Dataset(data, coords={"step": np.asarray(ends, dtype=np.int64)}, attrs=attrs)
