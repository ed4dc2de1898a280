"""The run loop both training loops share: optimiser steps, metrics, checkpoints, resume.

A loop hands the engine a loss function of the outer step (``loss_fn(k) -> (loss,
metrics)``, drawing its data from :func:`~trajprobe.randomness.step_seed` ``(seed, k)``);
the engine owns everything else. It saves log-spaced checkpoints (for outer-loop
analyses, Rabinowitz §6, Mikulik §4.2) plus ``latest.pt``, every file atomically. A run
interrupted at any point resumes from ``latest.pt`` exactly: the model, the optimiser,
the extra state (a baseline, curriculum stages), the per-step metrics and the global
torch RNG state are all in the checkpoint, so on CPU a resumed run ends with the same
weights, bit for bit, as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import xarray as xr
from torch import nn
from tqdm.auto import tqdm

from trajprobe import io
from trajprobe import machine as sm
from trajprobe.apps.training.checkpoints import LATEST, METRICS, checkpoint_schedule, load_state
from trajprobe.apps.training.record import Record
from trajprobe.apps.training.run_dirs import (
    check_same_config,
    check_same_task,
    describe_task,
    unloadable_task_message,
)
from trajprobe.devices import parameter_dtype, resolve_device
from trajprobe.progress import bar_options

__all__ = ["LossFn", "TrainingResult", "prepare", "run"]

LossFn = Callable[[int], tuple[torch.Tensor, dict[str, torch.Tensor]]]
"""The loss of outer step k (0-based) and the metrics to record beside it."""


@dataclass
class TrainingResult:
    """What a training run returns.

    Attributes:
        model: the trained model (the object passed in, trained in place).
        metrics: Dataset over ``step`` (outer updates done, every ``log_every``) with
            ``loss``, ``episodes`` (seen so far), ``episodes_per_s`` (over the row's
            window), ``wall_time`` (training seconds so far) and, for bandits, ``reward``
            (mean reward per step) and ``entropy``.
        out_dir: where checkpoints and ``metrics.nc`` were written (None: nothing written).
        baseline: the learned baseline head of
            :func:`~trajprobe.apps.training.train_policy_gradient`.
    """

    model: nn.Module
    metrics: xr.Dataset
    out_dir: Path | None = None
    baseline: nn.Module | None = None


def prepare(model: Any, device: torch.device | str | None) -> tuple[torch.device, torch.dtype]:
    """Check that ``model`` is an ``nn.Module`` machine, move it to ``device``
    (:func:`trajprobe.devices.resolve_device`) and return the device and its dtype."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module machine (initial_state, step), got "
                        f"{type(model).__name__}")
    if not isinstance(model, sm.StateMachine):
        raise TypeError(f"model: {type(model).__name__} lacks initial_state(batch_size) "
                        "and step(x, state)")
    dev = resolve_device(device)
    model.to(dev)
    return dev, parameter_dtype(model) or torch.get_default_dtype()


@dataclass
class _Run:
    """One training run: what its steps update and what its checkpoints hold."""

    kind: str
    model: nn.Module
    config: Any
    extra: dict[str, Any]  # name -> state_dict()/load_state_dict() (a baseline, stages)
    task: Any
    out: Path | None
    record: Record
    params: list[nn.Parameter] = field(init=False)
    optimiser: torch.optim.Optimizer = field(init=False)
    total: int = field(init=False)
    schedule: set[int] = field(init=False)

    def __post_init__(self) -> None:
        modules = [self.model, *(m for m in self.extra.values() if isinstance(m, nn.Module))]
        self.params = [p for m in modules for p in m.parameters()]
        self.optimiser = self.config.optimiser.build(self.params)
        self.total = math.ceil(self.config.n_episodes / self.config.batch_size)
        self.schedule = set(checkpoint_schedule(self.total, self.config.n_checkpoints))

    def checkpoint(self, step: int, wall: float) -> dict[str, Any]:
        return {
            "kind": self.kind, "config": dataclasses.asdict(self.config), "step": step,
            "episodes": step * self.config.batch_size, "wall_time": wall,
            "model": self.model.state_dict(), "optimiser": self.optimiser.state_dict(),
            "extra": {k: m.state_dict() for k, m in self.extra.items()},
            "metrics": self.record.to_state(), "torch_rng": torch.get_rng_state(),
            "task": describe_task(self.task),
        }

    def start(self, resume: bool) -> tuple[int, float]:
        """Create ``out``, resume from its ``latest.pt`` if asked and there is one, save
        checkpoint 0 of a new run; the first outer step and the wall time so far."""
        if self.out is None:
            return 0, 0.0
        message = unloadable_task_message(self.task)
        if message is not None:
            warnings.warn(message, UserWarning, stacklevel=4)
        self.out.mkdir(parents=True, exist_ok=True)
        start, wall = 0, 0.0
        latest = self.out / LATEST
        if resume and latest.exists():
            start, wall = self._load(latest)
        if start == 0 and 0 in self.schedule:
            io.save_checkpoint(self.checkpoint(0, 0.0), self.out / f"checkpoint_{0:08d}.pt")
        return start, wall

    def _load(self, latest: Path) -> tuple[int, float]:
        saved = io.load_checkpoint(latest, required=("config", "step", "model", "optimiser",
                                                     "extra", "metrics", "torch_rng"))
        check_same_config(saved, self.kind, self.config, latest)
        check_same_task(saved, self.task, latest)
        load_state(self.model, saved["model"], "model", latest)
        for key, module in self.extra.items():
            if key not in saved["extra"]:
                raise ValueError(f"extra: the checkpoint {str(latest)!r} holds no {key!r} "
                                 f"state (it has {sorted(saved['extra'])}); resume=False")
            load_state(module, saved["extra"][key], key, latest)
        load_state(self.optimiser, saved["optimiser"], "optimiser", latest)
        self.record.load(saved["metrics"])
        torch.set_rng_state(saved["torch_rng"])
        return int(saved["step"]), float(saved["wall_time"])

    def update(self, step: int, loss_fn: LossFn) -> dict[str, torch.Tensor]:
        """One optimiser step on ``loss_fn(step)``; the metrics to record."""
        loss, values = loss_fn(step)
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        for group in self.optimiser.param_groups:
            group["lr"] = self.config.optimiser.lr_at(step, self.total)
        self.optimiser.step()
        return {"loss": loss, **values}

    def save(self, done: int, wall: float) -> None:
        """The checkpoints due after ``done`` outer steps."""
        if self.out is None:
            return
        if done in self.schedule:
            io.save_checkpoint(self.checkpoint(done, wall), self.out / f"checkpoint_{done:08d}.pt")
        if done % self.config.save_every == 0 or done == self.total:
            io.save_checkpoint(self.checkpoint(done, wall), self.out / LATEST)


def run(kind: str, model: nn.Module, config: Any, out_dir: str | Path | None,
        loss_fn: LossFn, metric_names: tuple[str, ...], extra: dict[str, Any], *,
        progress: bool | None, resume: bool, task: Any = None) -> TrainingResult:
    """Train ``model`` (and the modules in ``extra``) on ``loss_fn`` for the config's
    outer steps, from ``out_dir/latest.pt`` when resuming; see the module docstring.

    Args:
        kind: the loop's name, recorded and checked on resume.
        metric_names: ``"loss"`` and the names of the metrics ``loss_fn`` returns.
        extra: state saved beside the model (``extra[name].state_dict()``); its
            ``nn.Module`` parameters are trained with the model's.
    """
    from trajprobe import __version__

    cfg = config
    state = _Run(kind, model, cfg, extra, task, Path(out_dir) if out_dir is not None else None,
                 Record(names=metric_names))
    start, wall = state.start(resume)
    bar = tqdm(total=state.total * cfg.batch_size, initial=start * cfg.batch_size, unit="ep",
               unit_scale=True, desc=kind, dynamic_ncols=True, **bar_options(progress))
    tick = time.perf_counter()
    try:
        for step in range(start, state.total):
            values = state.update(step, loss_fn)
            now = time.perf_counter()
            wall += now - tick
            tick = now
            state.record.add(values, wall)
            done = step + 1
            if done % cfg.log_every == 0 or done == state.total:
                state.record.flush()
                bar.set_postfix(loss=f"{state.record.values['loss'][-1]:.4g}", refresh=False)
            bar.update(cfg.batch_size)
            if state.out is not None:
                state.save(done, wall)
                tick = time.perf_counter()  # file writes are not training time
    finally:
        bar.close()
    attrs = {"kind": kind, "config": dataclasses.asdict(cfg), "model": type(model).__name__,
             "trajprobe_version": __version__}
    metrics = state.record.dataset(cfg.batch_size, cfg.log_every, attrs)
    if state.out is not None:
        io.save_dataset(metrics, state.out / METRICS)
    return TrainingResult(model=model, metrics=metrics, out_dir=state.out,
                          baseline=extra.get("baseline"))
