"""BPTT over sampled episodes (Rabinowitz §3.2.1, §4.2.1; Mikulik §3.1)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from trajprobe.apps.training.config import SupervisedConfig
from trajprobe.apps.training.engine import TrainingResult, prepare, run
from trajprobe.apps.training.losses import log_loss, mse, unroll
from trajprobe.randomness import step_seed
from trajprobe.task_protocol import Task

__all__ = ["train_supervised"]


def train_supervised(
    model: nn.Module,
    task: Task,
    config: SupervisedConfig,
    out_dir: str | Path | None = None,
    *,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    resume: bool = True,
) -> TrainingResult:
    """Meta-train ``model`` by BPTT on episodes sampled from ``task``.

    Outer step k draws ``batch_size`` episodes ``task.sample(..., seed=step_seed(seed, k))``
    of length T = ``config.length_at(k, K)`` (``n_steps`` unless a curriculum is set;
    inputs ``[E, T, input_size]``, targets ``[E, T, ...]``), unrolls the model over them
    (``model.unroll`` when present, else ``step``), and takes one optimiser step on the
    loss of ``config.loss``: eq. 4 of Rabinowitz 2019 (``"mse"``) or the log-loss.

    Args:
        model: an ``nn.Module`` machine, e.g. :class:`~trajprobe.apps.models.RabinowitzLSTM`;
            trained in place and moved to ``device``.
        task: an open-loop task.
        config: see :class:`~trajprobe.apps.training.SupervisedConfig`.
        out_dir: directory for checkpoints and ``metrics.nc`` (None: write nothing).
        device: where to train (:func:`trajprobe.devices.resolve_device`: None is the CPU;
            an unavailable device is a ValueError).
        progress: show a progress bar with episodes/s and ETA (None: when on a terminal).
        resume: continue from ``out_dir/latest.pt`` if there is one (its config and task
            must match; a refusal names each setting that differs).
    """
    if not isinstance(config, SupervisedConfig):
        raise TypeError(f"config: expected a SupervisedConfig, got {type(config).__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"task: expected a Task (input_size, output_size, sample), got "
                        f"{type(task).__name__}")
    dev, dtype = prepare(model, device)
    total = math.ceil(config.n_episodes / config.batch_size)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        episodes = task.sample(config.batch_size, config.length_at(step, total),
                               seed=step_seed(config.seed, step), device=dev, dtype=dtype)
        outputs = unroll(model, episodes.inputs)
        if config.loss == "mse":
            return mse(outputs, episodes.targets), {}
        return log_loss(model, outputs, episodes.targets), {}

    return run("supervised", model, config, out_dir, loss_fn, ("loss",), {},
               progress=progress, resume=resume, task=task)
