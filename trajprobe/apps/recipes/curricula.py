"""Research-specific curriculum stages, passed by the recipes to the training loop.

The training engine knows stages only as hooks (:class:`~trajprobe.apps.training.Stage`);
what a stage measures lives here, in the recipes layer. The one stage so far:

* ``"confused"`` (:class:`ConfusedPair`): every episode of the stage shows the same two
  contexts, ``task.only((c, c'))``, the pair the policy confuses most when the stage
  starts: measured on :data:`CONFUSION_EPISODES` closed-loop episodes of the whole task of
  ``n_steps`` (:func:`trajprobe.measure`), the pair with the largest M[c, c'] + M[c', c]
  at the last step (:func:`trajprobe.dynamics.context_confusion`). Two contexts that
  share one memory are shown together in few random episodes; a stage that shows only
  them splits the memory (the coupled bandit Meta-Learner's recipe; the study is
  ``docs/studies/bandit-meta-learner.md``). The pair is logged (logger
  ``trajprobe.apps.recipes.curricula``, level INFO) and kept in the checkpoints
  (``extra["focus"]``), so a resumed stage shows it too.

A curriculum names a stage by its key in :data:`STAGES` (e.g.
``PolicyGradientConfig(curriculum=(..., (0.1, 50, CONFUSED)))``) and the recipe passes
``stages=STAGES`` to :func:`~trajprobe.apps.training.train_policy_gradient`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from trajprobe.apps.training import StageFactory, StageStart
from trajprobe.dynamics import context_confusion, most_confused_pair
from trajprobe.machine import logits_policy
from trajprobe.measurement import measure
from trajprobe.task_protocol import Environment

__all__ = ["CONFUSED", "CONFUSION_EPISODES", "STAGES", "ConfusedPair", "ShowsOnly",
           "most_confused"]

_log = logging.getLogger(__name__)

CONFUSED = "confused"
"""The name of the curriculum stage that shows the pair of contexts the policy confuses
most (:class:`ConfusedPair`)."""
CONFUSION_EPISODES = 200
"""Closed-loop episodes of the whole task on which a ``"confused"`` stage measures the
policy's confusion at its start."""


@runtime_checkable
class ShowsOnly(Protocol):
    """A task that can show the same few of its contexts in every episode (e.g.
    :meth:`ContextualBandit.only <trajprobe.tasks.ContextualBandit.only>`)."""

    def only(self, contexts: tuple[int, ...]) -> Environment:
        """This task showing ``contexts`` (indices) in every episode."""
        ...


def most_confused(model: nn.Module, task: Environment, n_steps: int, *, seed: int,
                  n_episodes: int = CONFUSION_EPISODES) -> tuple[int, int]:
    """The pair of contexts ``(c, c')``, c < c', that the policy ``model`` (logits) confuses
    most (:func:`~trajprobe.dynamics.most_confused_pair` of the
    :func:`~trajprobe.dynamics.context_confusion` matrix) at the last of ``n_steps`` steps,
    over ``n_episodes`` closed-loop episodes of ``task`` (a task whose measurement gives
    ``policy`` and ``correct``, e.g. a :class:`~trajprobe.tasks.ContextualBandit`) drawn
    from ``seed``."""
    ds = measure(model, task, episodes=n_episodes, steps=n_steps, seed=seed,
                 policy=logits_policy, progress=False)
    if "policy" not in ds or "correct" not in ds:
        raise ValueError(f"task: a 'confused' stage needs a measurement with the policy per "
                         f"context and the correct actions; {type(task).__name__} gives "
                         f"{sorted(ds.data_vars)}")
    first, second, _ = most_confused_pair(
        context_confusion(ds["policy"].isel(t=-1), ds["correct"]))
    return first, second


class ConfusedPair(nn.Module):
    """The ``"confused"`` stage (see the module docstring).

    Its state: ``contexts`` [2] (long), the pair shown, measured at the outer step
    ``measured_at`` (-1: not yet); buffers, so a resumed stage shows the same pair.

    Args:
        n_episodes: closed-loop episodes of the confusion measurement.
    """

    key = "focus"

    def __init__(self, n_episodes: int = CONFUSION_EPISODES) -> None:
        super().__init__()
        self.n_episodes = n_episodes
        self.register_buffer("contexts", torch.zeros(2, dtype=torch.long))
        self.register_buffer("measured_at", torch.tensor(-1))

    def check(self, task: Environment) -> None:
        """ValueError if ``task`` cannot show a pair of its contexts (:class:`ShowsOnly`)."""
        if not isinstance(task, ShowsOnly):
            raise ValueError(f"curriculum: a stage shows the 'confused' pair of contexts, but "
                             f"{type(task).__name__} has no only(contexts)")

    def task(self, model: nn.Module, task: Environment, start: StageStart) -> Environment:
        """``task.only(pair)`` with the pair measured at ``start.step`` (kept on resume)."""
        if int(self.measured_at) != start.step:  # a new stage (not a resumed one)
            pair = most_confused(model, task, start.n_steps, seed=start.seed,
                                 n_episodes=self.n_episodes)
            self.contexts.copy_(torch.tensor(pair))
            self.measured_at.fill_(start.step)
            _log.info("outer step %d: a 'confused' stage shows contexts %s", start.step, pair)
        return task.only(tuple(self.contexts.tolist()))


STAGES: Mapping[str, StageFactory] = {CONFUSED: ConfusedPair}
"""The recipes' curriculum stages by name, as ``train_policy_gradient(stages=)`` takes them."""
