"""Training configurations: the optimiser, the two loops' configs and their curricula.

Configs are data (frozen dataclasses of plain values, saved as JSON in every checkpoint);
a curriculum stage that a recipe computes while training (e.g. the bandit recipe's
``"confused"`` stage) is named here by a string and passed to the loop as a
:class:`~trajprobe.apps.training.stages.Stage` (see ``train_policy_gradient(stages=)``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from trajprobe.validation import check_positive_int

__all__ = ["OptimiserConfig", "PolicyGradientConfig", "SupervisedConfig"]

OPTIMISERS: tuple[str, ...] = ("sgd", "adam")
"""The optimiser vocabulary of every config: ``torch.optim.SGD`` and ``torch.optim.Adam``."""

@dataclass(frozen=True)
class OptimiserConfig:
    """The outer-loop optimiser: ``torch.optim.SGD`` or ``torch.optim.Adam`` at ``lr``.

    ``schedule="cosine"`` anneals the learning rate as lr · ½(1 + cos(π k / K)) over the
    K outer steps; ``"linear"`` decays it linearly to 0 (with ``warmup=0.5``: Raventós et
    al.'s triangle); ``"constant"`` keeps ``lr`` throughout (the papers' set-up). With
    ``warmup`` = f > 0 the first W = ⌊f K⌋ steps ramp linearly, lr · (k + 1) / W, and the
    schedule then runs over the remaining K - W steps. Every rate is a pure function of
    the step, so resumed runs follow it exactly.
    """

    name: Literal["sgd", "adam"] = "adam"
    lr: float = 1e-4
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in OPTIMISERS:
            raise ValueError(f"name: expected 'sgd' or 'adam', got {self.name!r}")
        if self.schedule not in ("constant", "cosine", "linear"):
            raise ValueError(f"schedule: expected 'constant', 'cosine' or 'linear', "
                             f"got {self.schedule!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr: expected a finite positive learning rate, got {self.lr!r}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup: expected a fraction of the steps in [0, 1), got "
                             f"{self.warmup!r}")

    def build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """The optimiser over ``params``."""
        if self.name == "sgd":
            return torch.optim.SGD(params, lr=self.lr)
        return torch.optim.Adam(params, lr=self.lr)

    def lr_at(self, step: int, total: int) -> float:
        """The learning rate of outer step ``step`` (0-based) of ``total``."""
        warm = int(self.warmup * total)
        if step < warm:
            return self.lr * (step + 1) / warm
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "linear":
            return self.lr * (1.0 - (step - warm) / max(total - warm, 1))
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(total - warm, 1)))


def _check_common(config: Any) -> None:
    for name in ("n_episodes", "n_steps", "batch_size", "save_every", "log_every"):
        check_positive_int(getattr(config, name), name)
    n_checkpoints = config.n_checkpoints
    if isinstance(n_checkpoints, bool) or not isinstance(n_checkpoints, numbers.Integral):
        raise TypeError(f"n_checkpoints: expected an int >= 0, got {n_checkpoints!r}")
    if n_checkpoints < 0:
        raise ValueError(f"n_checkpoints: expected an int >= 0, got {n_checkpoints!r}")
    if config.max_grad_norm is not None and not config.max_grad_norm > 0:
        raise ValueError(f"max_grad_norm: expected a positive number or None, got "
                         f"{config.max_grad_norm!r}")
    if not isinstance(config.optimiser, OptimiserConfig):
        raise TypeError(f"optimiser: expected an OptimiserConfig, got {config.optimiser!r}")


@dataclass(frozen=True)
class SupervisedConfig:
    """BPTT over sampled episodes (Rabinowitz §3.2.1, §4.2.1; Mikulik §3.1).

    Attributes:
        n_episodes: episodes to train on in total; outer steps = ceil(n_episodes / batch_size).
        n_steps: episode length T.
        batch_size: episodes per outer step.
        loss: ``"mse"`` — (1/T) Σ_t ||ŷ_t - y_t||², mean over episodes (Rabinowitz eq. 4);
            ``"log_loss"`` — -(1/T) Σ_t log p(y_t | ŷ_t) under ``model.distribution``.
        optimiser: SGD or Adam and its learning rate.
        seed: the data of outer step k comes from :func:`step_seed` ``(seed, k)``.
        n_checkpoints: log-spaced checkpoints (plus step 0); see :func:`checkpoint_schedule`.
        save_every: outer steps between saves of ``latest.pt``.
        log_every: outer steps per row of the metrics Dataset.
        max_grad_norm: clip the gradient's global norm (None: no clipping).
        curriculum: shorter episodes first, as stages ``(share, T_s)``: the first
            ⌊share · K⌋ of the K outer steps train on episodes of length T_s, the next
            stage's share after them, and the steps left on ``n_steps``. The loss is
            averaged over t, so a short episode spends its update on the early,
            high-error steps at a fraction of the cost. ``()``: ``n_steps`` throughout.
    """

    n_episodes: int
    n_steps: int = 20
    batch_size: int = 200
    loss: Literal["mse", "log_loss"] = "mse"
    optimiser: OptimiserConfig = field(default_factory=OptimiserConfig)
    seed: int = 0
    n_checkpoints: int = 20
    save_every: int = 100
    log_every: int = 10
    max_grad_norm: float | None = None
    curriculum: tuple[tuple[float, int], ...] = ()

    def __post_init__(self) -> None:
        _check_common(self)
        if self.loss not in ("mse", "log_loss"):
            raise ValueError(f"loss: expected 'mse' or 'log_loss', got {self.loss!r}")
        _check_stages(self.curriculum, shown=False)

    def length_at(self, step: int, total: int) -> int:
        """The episode length T of outer step ``step`` (0-based) of ``total``."""
        stage, _ = _stage_at(self.curriculum, step, total)
        return self.n_steps if stage is None else stage[1]


def _stage_at(curriculum: tuple[tuple[Any, ...], ...], step: int, total: int
              ) -> tuple[tuple[Any, ...] | None, int]:
    """The curriculum stage of outer step ``step`` (0-based) of ``total`` (None: past the
    stages) and its first step: stage i covers the outer steps up to
    ⌊(share_1 + … + share_i) · total⌋."""
    end, start = 0.0, 0
    for stage in curriculum:
        end += stage[0]
        if step < int(end * total):
            return stage, start
        start = int(end * total)
    return None, start


def _check_stages(curriculum: Any, *, shown: bool) -> None:
    """Curriculum stages ``(share, T)``, or ``(share, T, K)`` with ``shown`` (K None, a
    count or a stage's name); TypeError/ValueError naming the first bad stage."""
    parts = ("episode length, contexts shown or a stage's name" if shown
             else "episode length")
    expected = f"a tuple of (share of the outer steps, {parts}) stages"
    if not isinstance(curriculum, tuple | list):
        raise TypeError(f"curriculum: expected {expected}, got {curriculum!r}")
    for stage in curriculum:
        ok = isinstance(stage, tuple | list) and len(stage) == 2 + shown
        if ok:
            share, length = stage[:2]
            ok = (isinstance(share, numbers.Real) and 0 < share <= 1 and _is_count(length)
                  and (not shown or stage[2] is None or _is_name(stage[2])
                       or _is_count(stage[2])))
        if not ok:
            rule = (", length >= 1 and contexts None, >= 1 or a stage's name (an identifier)"
                    if shown
                    else " and length >= 1")
            raise ValueError(f"curriculum: expected {expected}, each share in (0, 1]{rule}, "
                             f"got the stage {stage!r}")
    if sum(stage[0] for stage in curriculum) > 1:
        raise ValueError(f"curriculum: the shares add up to more than 1, got {curriculum!r}")


def _is_count(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= 1


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and value.isidentifier()


@dataclass(frozen=True)
class PolicyGradientConfig:
    """Advantage actor-critic on closed-loop bandit episodes (Rabinowitz §5.2.1, A.6).

    Per episode and step, with return G_t = Σ_{k≥t} γ^{k-t} r_k (to the episode's end),
    a baseline V_t = w·sg(s_t) + b read linearly from the machine's state vector after
    x_t (sg: stop-gradient, so the baseline's error does not train the machine) and
    advantage A_t = G_t - V_t (no gradient through A_t), the loss, averaged over
    episodes and steps, is::

        -log π(a_t | ·) A_t  +  baseline_cost · ½ (G_t - V_t)²  -  entropy_cost · H[π_t]

    The fields ``n_episodes, n_steps, batch_size, optimiser, seed, n_checkpoints,
    save_every, log_every, max_grad_norm`` are as in :class:`SupervisedConfig`.

    Attributes:
        discount: γ in [0, 1] (1: the undiscounted episode return).
        entropy_cost: weight of the entropy bonus.
        baseline_cost: weight of the baseline's squared error.
        curriculum: easier episodes first, as stages ``(share, T_s, K_s)``: the first
            ⌊share · K⌋ of the K outer steps play episodes of length T_s in
            ``task.showing(K_s)`` (e.g. a :class:`~trajprobe.tasks.ContextualBandit` that
            shows only K_s of its contexts per episode; K_s None: the task as given), the
            next stage's share after them, and the steps left play ``n_steps`` in the task
            as given. ``()``: no curriculum. K_s a name (a string, e.g. ``"confused"``):
            the stage's task is chosen while training by the
            :class:`~trajprobe.apps.training.stages.Stage` of that name that the caller
            passes to :func:`~trajprobe.apps.training.train_policy_gradient` (``stages=``;
            the bandit recipes pass :data:`trajprobe.apps.recipes.curricula.STAGES`, whose
            ``"confused"`` stage shows the pair of contexts the policy confuses most).
    """

    n_episodes: int
    n_steps: int = 100
    batch_size: int = 200
    discount: float = 1.0
    entropy_cost: float = 0.01
    baseline_cost: float = 0.5
    optimiser: OptimiserConfig = field(default_factory=OptimiserConfig)
    seed: int = 0
    n_checkpoints: int = 20
    save_every: int = 100
    log_every: int = 10
    max_grad_norm: float | None = None
    curriculum: tuple[tuple[float, int, int | str | None], ...] = ()

    def __post_init__(self) -> None:
        _check_common(self)
        _check_stages(self.curriculum, shown=True)
        if not 0 <= self.discount <= 1:
            raise ValueError(f"discount: expected a number in [0, 1], got {self.discount!r}")
        for name in ("entropy_cost", "baseline_cost"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name}: expected a finite non-negative number, got {value!r}")

    def stage_at(self, step: int, total: int) -> tuple[int, int | str | None]:
        """``(T, K)`` of outer step ``step`` (0-based) of ``total``: the episode length and
        the contexts shown (None: the task as given; a string: the stage of that name)."""
        stage, _ = _stage_at(self.curriculum, step, total)
        return (self.n_steps, None) if stage is None else (stage[1], stage[2])

    def stage_start(self, step: int, total: int) -> int:
        """The first outer step of the curriculum stage of outer step ``step``."""
        return _stage_at(self.curriculum, step, total)[1]

