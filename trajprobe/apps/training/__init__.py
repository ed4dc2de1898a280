"""Outer-loop (meta-)training: BPTT for prediction, advantage actor-critic for bandits.

Two loops over sampled episodes, one shared engine:

* :func:`train_supervised` — episodes from a :class:`~trajprobe.tasks.Task`; the loss is
  the episode-average squared error (Rabinowitz eq. 4) or the log-loss
  ``-log p(target | y)`` under ``model.distribution(y)`` (Mikulik §3.1), minimised by
  backpropagation through time with SGD or Adam.
* :func:`train_policy_gradient` — closed-loop episodes in a
  :class:`~trajprobe.tasks.Environment`; REINFORCE with a learned baseline (advantage
  actor-critic), an entropy bonus and a discount; curriculum stages may be chosen while
  training by hooks a recipe passes in (:class:`Stage`).

The engine saves log-spaced checkpoints plus ``latest.pt``, every file atomically, and a
run interrupted at any point resumes from ``latest.pt`` exactly (on CPU, bit for bit).
Files in ``out_dir``: ``checkpoint_<step>.pt`` (step = outer updates done; 0 is the
untrained model), ``latest.pt``, and ``metrics.nc`` at the end.

One concept per module: :mod:`~trajprobe.apps.training.config` (configs, curricula),
:mod:`~trajprobe.apps.training.stages` (curriculum stages and their hooks),
:mod:`~trajprobe.apps.training.losses`, :mod:`~trajprobe.apps.training.engine` (the run
loop, resume), :mod:`~trajprobe.apps.training.record` (per-step metrics),
:mod:`~trajprobe.apps.training.checkpoints` (files, loading weights),
:mod:`~trajprobe.apps.training.run_dirs` (the one owner of a run directory's record,
``recipe.json``: write, read, validate, resolve; what a run was trained with; refusals), and
the two loops :mod:`~trajprobe.apps.training.supervised` and
:mod:`~trajprobe.apps.training.policy_gradient`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from trajprobe.apps.training.checkpoints import (
    LATEST,
    METRICS,
    checkpoint_schedule,
    list_checkpoints,
    load_model,
)
from trajprobe.apps.training.config import (
    OPTIMISERS,
    OptimiserConfig,
    PolicyGradientConfig,
    SupervisedConfig,
)
from trajprobe.apps.training.engine import TrainingResult
from trajprobe.apps.training.losses import discounted_returns
from trajprobe.apps.training.policy_gradient import train_policy_gradient
from trajprobe.apps.training.run_dirs import (
    check_run_dir,
    describe_task,
    differences,
    task_class_path,
    task_differences,
    with_defaults,
)
from trajprobe.apps.training.stages import ShowsContexts, Stage, StageFactory, StageStart
from trajprobe.apps.training.supervised import train_supervised
from trajprobe.devices import resolve_device
from trajprobe.randomness import step_seed

__all__ = [
    "LATEST",
    "METRICS",
    "OPTIMISERS",
    "OptimiserConfig",
    "PolicyGradientConfig",
    "ShowsContexts",
    "Stage",
    "StageFactory",
    "StageStart",
    "SupervisedConfig",
    "TrainingResult",
    "check_run_dir",
    "checkpoint_schedule",
    "describe_task",
    "differences",
    "discounted_returns",
    "list_checkpoints",
    "load_model",
    "resolve_device",
    "step_seed",
    "task_class_path",
    "task_differences",
    "train",
    "train_policy_gradient",
    "train_supervised",
    "with_defaults",
]


def train(
    recipe: Any,
    out_dir: str | Path | None,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool | None = None,
) -> TrainingResult:
    """Train a recipe: ``trajprobe.apps.training.train(recipes.get(name, preset), out_dir)``.

    ``recipe`` is a :class:`~trajprobe.apps.recipes.MetaLearnerRecipe` (anything with a
    ``train(out_dir, *, seed, device, progress)`` method); it builds the model and task
    and calls :func:`train_supervised` or :func:`train_policy_gradient`, resuming from or
    reusing a run already in ``out_dir``.
    """
    method = getattr(recipe, "train", None)
    if not callable(method):
        raise TypeError(
            f"recipe: expected a Meta-Learner recipe from "
            f"trajprobe.apps.recipes.get(name, preset), "
            f"got {type(recipe).__name__}"
        )
    return method(out_dir, seed=seed, device=device, progress=progress)
