"""Curriculum stages of the policy-gradient loop: fixed ones, and hooks a recipe passes in.

A stage ``(share, T, K)`` of :attr:`PolicyGradientConfig.curriculum
<trajprobe.apps.training.PolicyGradientConfig>` plays episodes of length T in

* the task as given (K None);
* ``task.showing(K)`` (K a count): a task that can show K of its contexts per episode
  (:class:`ShowsContexts`, e.g. :class:`~trajprobe.tasks.ContextualBandit`);
* the task a :class:`Stage` chooses (K a name): a research-specific stage that looks at
  the model while training, passed in by the caller as ``stages={name: factory}``. The
  engine knows nothing of what a stage measures; the bandit recipe's ``"confused"``
  stage lives in :mod:`trajprobe.apps.recipes.curricula`.

A stage's state (what it chose) is saved in every checkpoint (``extra[stage.key]``), so a
run resumed inside the stage plays the same task, bit for bit. A stage of one's own::

    class FirstTwo:                     # shows contexts 0 and 1; chooses nothing
        key = "first_two"

        def check(self, task):          # before training: can the task do it?
            if not hasattr(task, "only"):
                raise ValueError("curriculum: 'first_two' needs task.only(contexts)")

        def task(self, model, task, start):
            return task.only((0, 1))

        def state_dict(self):
            return {}

        def load_state_dict(self, state_dict):
            pass

    config = PolicyGradientConfig(..., curriculum=((0.2, 50, "first_two"),))
    train_policy_gradient(model, task, config, stages={"first_two": FirstTwo})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import nn

from trajprobe.apps.training.config import PolicyGradientConfig
from trajprobe.randomness import step_seed
from trajprobe.task_protocol import Environment
from trajprobe.validation import did_you_mean

__all__ = ["ShowsContexts", "Stage", "StageFactory", "StageStart"]


@runtime_checkable
class ShowsContexts(Protocol):
    """A task whose episodes can show fewer of its contexts: the hook of count stages."""

    def showing(self, n_shown: int | None) -> Environment:
        """This task with ``n_shown`` contexts shown per episode (None: all of them)."""
        ...


@dataclass(frozen=True)
class StageStart:
    """What a :class:`Stage` is told when its stage starts.

    Attributes:
        step: the stage's first outer step (0-based).
        seed: a seed for the stage's own draws, derived from the run's seed and ``step``
            (``step_seed(step_seed(config.seed, step), 1)``), so a resumed run draws the
            same numbers.
        n_steps: the episode length of the task as given (``config.n_steps``).
    """

    step: int
    seed: int
    n_steps: int


@runtime_checkable
class Stage(Protocol):
    """A curriculum stage whose task is chosen while training (e.g. from the model).

    ``task`` is called at the stage's first outer step, and again when a run resumes
    inside the stage (after ``load_state_dict`` with the state saved in the checkpoint):
    it must then return the task it chose before. An ``nn.Module`` subclass with buffers
    gets ``state_dict``/``load_state_dict`` for free.

    Attributes:
        key: the name of the stage's state in a checkpoint's ``extra``.
    """

    key: str

    def check(self, task: Environment) -> None:
        """Raise (naming what ``task`` lacks) if the stage cannot run on ``task``; called
        before training starts."""
        ...

    def task(self, model: nn.Module, task: Environment, start: StageStart) -> Environment:
        """The task the stage's outer steps play; ``task`` is the run's task as given."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """What the stage chose, saved in the checkpoints."""
        ...

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> Any:
        """Restore what :meth:`state_dict` saved."""
        ...


StageFactory = Callable[[], Stage]
"""Makes a fresh :class:`Stage` for one run (a class, or a ``functools.partial``)."""


class Curriculum:
    """The task and episode length of every outer step of a policy-gradient run.

    Built before anything is written, so a missing hook (``showing``, a named stage not in
    ``stages``) is an error before training starts.
    """

    def __init__(self, task: Environment, config: PolicyGradientConfig,
                 stages: Mapping[str, StageFactory] | None) -> None:
        self.task, self.config = task, config
        self.fixed: dict[int | None, Environment] = {None: task}
        self.stages: dict[str, Stage] = {}
        self._chosen: tuple[int, Environment] | None = None
        for _, _, shown in config.curriculum:
            if isinstance(shown, str):
                if shown not in self.stages:
                    self.stages[shown] = _make_stage(shown, stages)
                    self.stages[shown].check(task)
            elif shown not in self.fixed:
                self.fixed[shown] = _showing(task, shown)

    def state_modules(self) -> dict[str, Any]:
        """The named stages by their checkpoint key (their state goes into ``extra``)."""
        return {stage.key: stage for stage in self.stages.values()}

    def at(self, model: nn.Module, step: int, total: int) -> tuple[int, Environment]:
        """``(T, task)`` of outer step ``step`` (0-based) of ``total``."""
        n_steps, shown = self.config.stage_at(step, total)
        if not isinstance(shown, str):
            return n_steps, self.fixed[shown]
        start = self.config.stage_start(step, total)
        if self._chosen is None or self._chosen[0] != start:
            begin = StageStart(step=start, seed=step_seed(step_seed(self.config.seed, start), 1),
                               n_steps=self.config.n_steps)
            self._chosen = (start, self.stages[shown].task(model, self.task, begin))
        return n_steps, self._chosen[1]


def _make_stage(name: str, stages: Mapping[str, StageFactory] | None) -> Stage:
    given = dict(stages or {})
    if name not in given:
        hint = ("; the bandit recipes' stages are in trajprobe.apps.recipes.curricula "
                "(stages=curricula.STAGES)" if not given else did_you_mean(name, given))
        raise ValueError(f"curriculum: a stage is named {name!r}, but stages= gives "
                         f"{sorted(given) or 'none'}{hint}")
    stage = given[name]()
    if not isinstance(stage, Stage):
        raise TypeError(f"stages: {name!r} made a {type(stage).__name__}, not a Stage "
                        "(key, check(task), task(model, task, start), state_dict, "
                        "load_state_dict)")
    return stage


def _showing(task: Environment, shown: int) -> Environment:
    if not isinstance(task, ShowsContexts):
        raise ValueError(f"curriculum: a stage shows {shown} contexts, but "
                         f"{type(task).__name__} has no showing(n_shown); give None")
    return task.showing(shown)
