"""Outer-loop (meta-)training: BPTT for prediction, advantage actor-critic for bandits.

Two loops over sampled episodes, one shared engine:

* :func:`train_supervised` — episodes from a :class:`~trajprobe.tasks.Task`; the loss is
  the episode-average squared error (Rabinowitz eq. 4) or the log-loss
  ``-log p(target | y)`` under ``model.distribution(y)`` (Mikulik §3.1), minimised by
  backpropagation through time with SGD or Adam.
* :func:`train_policy_gradient` — closed-loop episodes in a
  :class:`~trajprobe.tasks.Environment`; REINFORCE with a learned baseline (advantage
  actor-critic), an entropy bonus and a discount.

The engine saves log-spaced checkpoints (for outer-loop analyses, Rabinowitz §6,
Mikulik §4.2) plus ``latest.pt``; every file is written atomically. A run interrupted at
any point resumes from ``latest.pt`` exactly: each outer step draws its data from a seed
derived from ``(config.seed, step)``, and the model, optimiser, baseline, per-step
metrics and the global torch RNG state are all in the checkpoint, so on CPU a resumed
run ends with the same weights, bit for bit, as an uninterrupted one.

Files in ``out_dir``: ``checkpoint_<step>.pt`` (step = outer updates done; 0 is the
untrained model), ``latest.pt``, and ``metrics.nc`` at the end.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from torch import nn
from tqdm.auto import tqdm

from trajprobe import io
from trajprobe import machine as sm
from trajprobe.closed_loop import Played, lstm_core, play, taped_lstm
from trajprobe.dynamics import context_confusion, most_confused_pair
from trajprobe.machine import logits_policy
from trajprobe.measurement import measure
from trajprobe.progress import bar_options
from trajprobe.tasks.base import Environment, Task, make_generator
from trajprobe.validation import check_positive_int

__all__ = [
    "OptimiserConfig",
    "PolicyGradientConfig",
    "SupervisedConfig",
    "TrainingResult",
    "checkpoint_schedule",
    "discounted_returns",
    "list_checkpoints",
    "load_model",
    "most_confused",
    "resolve_device",
    "step_seed",
    "train",
    "train_policy_gradient",
    "train_supervised",
    "with_defaults",
]

_log = logging.getLogger(__name__)

LATEST = "latest.pt"
METRICS = "metrics.nc"
CONFUSED = "confused"
"""The contexts of a :class:`PolicyGradientConfig` curriculum stage that shows the pair
of contexts the policy confuses most (see its ``curriculum``)."""
CONFUSION_EPISODES = 200
"""Closed-loop episodes of the whole task on which a ``"confused"`` stage measures the
policy's confusion at its start."""


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class OptimiserConfig:
    """The outer-loop optimiser: ``torch.optim.SGD`` or ``torch.optim.Adam`` at ``lr``.

    ``schedule="cosine"`` anneals the learning rate as lr · ½(1 + cos(π k / K)) over the
    K outer steps; ``"constant"`` keeps ``lr`` throughout (the papers' set-up). With
    ``warmup`` = f > 0 the first W = ⌊f K⌋ steps ramp linearly, lr · (k + 1) / W, and the
    schedule then runs over the remaining K - W steps. Every rate is a pure function of
    the step, so resumed runs follow it exactly.
    """

    name: Literal["sgd", "adam"] = "adam"
    lr: float = 1e-4
    schedule: Literal["constant", "cosine"] = "constant"
    warmup: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in ("sgd", "adam"):
            raise ValueError(f"name: expected 'sgd' or 'adam', got {self.name!r}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule: expected 'constant' or 'cosine', got {self.schedule!r}")
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
    count or ``"confused"``); TypeError/ValueError naming the first bad stage."""
    parts = ("episode length, contexts shown or 'confused'" if shown
             else "episode length")
    expected = f"a tuple of (share of the outer steps, {parts}) stages"
    if not isinstance(curriculum, tuple | list):
        raise TypeError(f"curriculum: expected {expected}, got {curriculum!r}")
    for stage in curriculum:
        ok = isinstance(stage, tuple | list) and len(stage) == 2 + shown
        if ok:
            share, length = stage[:2]
            ok = (isinstance(share, numbers.Real) and 0 < share <= 1 and _is_count(length)
                  and (not shown or stage[2] is None or stage[2] == CONFUSED
                       or _is_count(stage[2])))
        if not ok:
            rule = (", length >= 1 and contexts None, >= 1 or 'confused'" if shown
                    else " and length >= 1")
            raise ValueError(f"curriculum: expected {expected}, each share in (0, 1]{rule}, "
                             f"got the stage {stage!r}")
    if sum(stage[0] for stage in curriculum) > 1:
        raise ValueError(f"curriculum: the shares add up to more than 1, got {curriculum!r}")


def _is_count(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= 1


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
            as given. ``()``: no curriculum. K_s = ``"confused"`` (:data:`CONFUSED`):
            every episode of the stage shows the same two contexts, ``task.only((c,
            c'))``, the pair the policy confuses most when the stage starts: measured on
            :data:`CONFUSION_EPISODES` closed-loop episodes of the whole task of
            ``n_steps`` (:func:`trajprobe.measurement.measure`), the pair with the largest
            M[c, c'] + M[c', c] at the last step (:func:`trajprobe.dynamics.context_confusion`).
            Two contexts that share one memory are shown in few random episodes; a stage
            that shows only them splits the memory (the coupled bandit Meta-Learner's
            recipe). The pair is logged (logger ``trajprobe.apps.training``, level INFO) and
            kept in the checkpoints (``extra["focus"]``), so a resumed stage shows it too.
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
        the contexts shown (None: the task as given; ``"confused"``: the confused pair)."""
        stage, _ = _stage_at(self.curriculum, step, total)
        return (self.n_steps, None) if stage is None else (stage[1], stage[2])

    def stage_start(self, step: int, total: int) -> int:
        """The first outer step of the curriculum stage of outer step ``step``."""
        return _stage_at(self.curriculum, step, total)[1]


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
        baseline: the learned baseline head of :func:`train_policy_gradient`.
    """

    model: nn.Module
    metrics: xr.Dataset
    out_dir: Path | None = None
    baseline: nn.Module | None = None


# --------------------------------------------------------------------------- helpers


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a ``torch.device``; a CUDA request without CUDA warns and gives CPU."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(f"device: {str(dev)!r} was asked for but CUDA is not available; "
                      "training on the CPU", RuntimeWarning, stacklevel=3)
        return torch.device("cpu")
    return dev


_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def step_seed(seed: int, step: int) -> int:
    """The data seed of outer step ``step`` of a run seeded ``seed``: a 63-bit integer.

    SplitMix64 of ``(seed, step)``: consecutive steps and nearby seeds give unrelated
    seeds, and any step's data can be re-drawn without replaying the run.
    """
    if step < 0:
        raise ValueError(f"step: expected a non-negative step, got {step}")
    return _splitmix64(_splitmix64(int(seed) & _MASK64) ^ int(step)) >> 1


def discounted_returns(rewards: torch.Tensor, discount: float) -> torch.Tensor:
    """G_t = Σ_{k=t}^{T} γ^{k-t} r_k for rewards ``[E, T]``; returns ``[E, T]``.

    One matrix product, G = r Γ with Γ_{kt} = γ^{k-t} for k ≥ t and 0 otherwise.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards: expected shape [episode, t], got {tuple(rewards.shape)}")
    n_steps = rewards.shape[1]
    k = torch.arange(n_steps, device=rewards.device)
    lag = (k[:, None] - k[None, :]).to(rewards.dtype)  # k - t
    weights = torch.where(lag >= 0, torch.tensor(float(discount), dtype=rewards.dtype,
                                                 device=rewards.device).pow(lag.clamp_min(0)), 0)
    return rewards @ weights


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
    _load_state(model, checkpoint["model"], "model", path)
    return model


def _load_state(module: Any, state: dict[str, Any], name: str, path: str | Path) -> None:
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as err:
        raise ValueError(
            f"{name}: the checkpoint {str(path)!r} does not fit this {type(module).__name__} "
            f"({str(err).splitlines()[0][:300]})"
        ) from err


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _unroll(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Outputs ``[E, T, ...]``: ``model.unroll`` when it has one, else step by step."""
    unroll = getattr(model, "unroll", None)
    if callable(unroll):
        return unroll(inputs)[0]
    state = model.initial_state(inputs.shape[0])
    outputs = []
    for t in range(inputs.shape[1]):
        y, state = model.step(inputs[:, t], state)
        outputs.append(y)
    return torch.stack(outputs, dim=1)


def _mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Rabinowitz eq. 4: (1/T) Σ_t ||ŷ_t - y_t||², averaged over episodes."""
    if targets.dim() == 2:
        targets = targets.unsqueeze(-1)
    if outputs.shape != targets.shape:
        raise ValueError(f"targets: expected the model's output shape {tuple(outputs.shape)}, "
                         f"got {tuple(targets.shape)}")
    return (outputs - targets).pow(2).flatten(2).sum(-1).mean()


def _log_loss(model: nn.Module, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-(1/T) Σ_t log p(y_t | ŷ_t), averaged over episodes."""
    dist_fn = getattr(model, "distribution", None)
    if not callable(dist_fn):
        raise TypeError(f"model: loss='log_loss' needs model.distribution(y); "
                        f"{type(model).__name__} has none")
    dist = dist_fn(outputs)
    expected = tuple(dist.batch_shape + dist.event_shape)
    if tuple(targets.shape) != expected and tuple(targets.shape[:-1]) == expected \
            and targets.shape[-1] == 1:
        targets = targets[..., 0]
    if tuple(targets.shape) != expected:
        raise ValueError(f"targets: expected shape {expected} for {type(dist).__name__}, "
                         f"got {tuple(targets.shape)}")
    log_prob = dist.log_prob(targets)
    return -log_prob.flatten(2).sum(-1).mean() if log_prob.dim() > 2 else -log_prob.mean()


# --------------------------------------------------------------------------- the engine


@dataclass
class _Record:
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


def _attrs(kind: str, config: Any, model: nn.Module) -> dict[str, Any]:
    from trajprobe import __version__

    return {"kind": kind, "config": dataclasses.asdict(config), "model": type(model).__name__,
            "trajprobe_version": __version__}


_RESUMABLE_CHANGES = ("save_every", "log_every")


def _run(
    kind: str,
    model: nn.Module,
    config: Any,
    out_dir: str | Path | None,
    loss_fn: Callable[[int], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    metric_names: tuple[str, ...],
    extra: dict[str, nn.Module],
    *,
    progress: bool | None,
    resume: bool,
    task: Any = None,
) -> TrainingResult:
    params = [p for m in (model, *extra.values()) for p in m.parameters()]
    optimiser = config.optimiser.build(params)
    total = math.ceil(config.n_episodes / config.batch_size)
    schedule = set(checkpoint_schedule(total, config.n_checkpoints))
    record = _Record(names=metric_names)
    attrs = _attrs(kind, config, model)
    out = Path(out_dir) if out_dir is not None else None
    start, wall0 = 0, 0.0

    def checkpoint(step: int, wall: float) -> dict[str, Any]:
        return {
            "kind": kind, "config": dataclasses.asdict(config), "step": step,
            "episodes": step * config.batch_size, "wall_time": wall,
            "model": model.state_dict(), "optimiser": optimiser.state_dict(),
            "extra": {k: m.state_dict() for k, m in extra.items()},
            "metrics": record.to_state(), "torch_rng": torch.get_rng_state(),
            "task": describe_task(task),
        }

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        latest = out / LATEST
        if resume and latest.exists():
            saved = io.load_checkpoint(latest, required=("config", "step", "model", "optimiser",
                                                         "extra", "metrics", "torch_rng"))
            _check_same_config(saved, kind, config, latest)
            _check_same_task(saved, task, latest)
            _load_state(model, saved["model"], "model", latest)
            for key, module in extra.items():
                _load_state(module, saved["extra"][key], key, latest)
            _load_state(optimiser, saved["optimiser"], "optimiser", latest)
            record.load(saved["metrics"])
            torch.set_rng_state(saved["torch_rng"])
            start, wall0 = int(saved["step"]), float(saved["wall_time"])
        if start == 0 and 0 in schedule:
            io.save_checkpoint(checkpoint(0, 0.0), out / f"checkpoint_{0:08d}.pt")

    bar = tqdm(total=total * config.batch_size, initial=start * config.batch_size, unit="ep",
               unit_scale=True, desc=kind, dynamic_ncols=True, **bar_options(progress))
    wall = wall0
    tick = time.perf_counter()
    try:
        for step in range(start, total):
            loss, values = loss_fn(step)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            for group in optimiser.param_groups:
                group["lr"] = config.optimiser.lr_at(step, total)
            optimiser.step()
            now = time.perf_counter()
            wall += now - tick
            tick = now
            record.add({"loss": loss, **values}, wall)
            done = step + 1
            if done % config.log_every == 0 or done == total:
                record.flush()
                bar.set_postfix(loss=f"{record.values['loss'][-1]:.4g}", refresh=False)
            bar.update(config.batch_size)
            if out is not None:
                if done in schedule:
                    io.save_checkpoint(checkpoint(done, wall), out / f"checkpoint_{done:08d}.pt")
                if done % config.save_every == 0 or done == total:
                    io.save_checkpoint(checkpoint(done, wall), out / LATEST)
                tick = time.perf_counter()  # file writes are not training time
    finally:
        bar.close()
    metrics = record.dataset(config.batch_size, config.log_every, attrs)
    if out is not None:
        io.save_dataset(metrics, out / METRICS)
    return TrainingResult(model=model, metrics=metrics, out_dir=out,
                          baseline=extra.get("baseline"))


def describe_task(task: Any) -> dict[str, Any] | None:
    """A JSON description of ``task`` (its class and fields) that a run directory records,
    so a run is never resumed, reused or relabelled with another task.

    None for a task that is not a dataclass: its identity is unknown (a default ``repr``
    holds a memory address), so such runs are checked by their config alone. A field
    whose metadata has ``"added": True`` (a field added after runs were recorded) is
    described only when it differs from its default, so older run directories still match.
    """
    if not dataclasses.is_dataclass(task):
        return None
    cls = type(task)
    out: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}"}
    for f in dataclasses.fields(task):
        value = getattr(task, f.name)
        if f.metadata.get("added") and value == f.default:
            continue
        plain = isinstance(value, int | float | str | bool | None)
        out[f.name] = value if plain else repr(value)
    return out


def check_run_dir(out_dir: str | Path, kind: str, config: Any, task: Any) -> None:
    """Refuse, before anything is written, to resume a run in ``out_dir`` that was trained
    with another kind of loop, another config or another task (see :func:`describe_task`).

    Raises:
        ValueError: naming the directory and what differs.
    """
    latest = Path(out_dir) / LATEST
    if not latest.exists():
        return
    saved = io.load_checkpoint(latest, required=("config", "step"))
    _check_same_config(saved, kind, config, latest)
    _check_same_task(saved, task, latest)


def _check_same_task(saved: dict[str, Any], task: Any, path: Path) -> None:
    before, current = saved.get("task"), describe_task(task)
    if before is None or current is None:  # an older checkpoint, or a task of unknown identity
        return
    if _jsonable(before) != _jsonable(current):
        changed = sorted(k for k in set(current) | set(before) if current.get(k) != before.get(k))
        detail = ", ".join(f"{k}: checkpoint {before.get(k)!r}, given {current.get(k)!r}"
                           for k in changed)
        raise ValueError(f"task: differs from the task of the run in {str(path.parent)!r} "
                         f"({detail}); use another out directory for another task")


def _check_same_config(saved: dict[str, Any], kind: str, config: Any, path: Path) -> None:
    if saved.get("kind") != kind:
        raise ValueError(f"out_dir: {str(path)!r} holds a {saved.get('kind')!r} run, "
                         f"not a {kind!r} run; use another out_dir or resume=False")
    current = _jsonable(dataclasses.asdict(config))
    before = _jsonable(with_defaults(saved["config"], config))
    changed = sorted(k for k in set(current) | set(before)
                     if k not in _RESUMABLE_CHANGES and current.get(k) != before.get(k))
    if changed:
        detail = ", ".join(f"{k}: checkpoint {before.get(k)!r}, given {current.get(k)!r}"
                           for k in changed)
        raise ValueError(f"config: differs from the run being resumed in {str(path)!r} "
                         f"({detail}); use the same config, another out_dir, or resume=False")


def with_defaults(saved: dict[str, Any], config: Any) -> dict[str, Any]:
    """A saved config (a JSON dict) with fields added to ``config``'s dataclass since it was
    written set to their defaults, so an upgrade does not orphan old runs and sweeps."""
    out = dict(saved)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and isinstance(out.get(f.name), dict):
            out[f.name] = with_defaults(out[f.name], value)
        elif f.name not in out and f.default is not dataclasses.MISSING:
            out[f.name] = f.default
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _prepare(model: Any, device: torch.device | str | None) -> tuple[torch.device, torch.dtype]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module machine (initial_state, step), got "
                        f"{type(model).__name__}")
    if not isinstance(model, sm.StateMachine):
        raise TypeError(f"model: {type(model).__name__} lacks initial_state(batch_size) "
                        "and step(x, state)")
    dev = resolve_device(device)
    model.to(dev)
    return dev, _model_dtype(model)


# --------------------------------------------------------------------------- the two loops


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
    loss of ``config.loss``.

    Args:
        model: an ``nn.Module`` machine, e.g. :class:`~trajprobe.apps.models.RabinowitzLSTM`;
            trained in place and moved to ``device``.
        task: an open-loop task.
        config: see :class:`SupervisedConfig`.
        out_dir: directory for checkpoints and ``metrics.nc`` (None: write nothing).
        device: where to train (CUDA if asked and present; otherwise CPU, with a warning).
        progress: show a progress bar with episodes/s and ETA (None: when on a terminal).
        resume: continue from ``out_dir/latest.pt`` if there is one (its config must match).
    """
    if not isinstance(config, SupervisedConfig):
        raise TypeError(f"config: expected a SupervisedConfig, got {type(config).__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"task: expected a Task (input_size, output_size, sample), got "
                        f"{type(task).__name__}")
    dev, dtype = _prepare(model, device)
    total = math.ceil(config.n_episodes / config.batch_size)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        episodes = task.sample(config.batch_size, config.length_at(step, total),
                               seed=step_seed(config.seed, step), device=dev, dtype=dtype)
        outputs = _unroll(model, episodes.inputs)
        if config.loss == "mse":
            return _mse(outputs, episodes.targets), {}
        return _log_loss(model, outputs, episodes.targets), {}

    return _run("supervised", model, config, out_dir, loss_fn, ("loss",), {},
                progress=progress, resume=resume, task=task)


def _policy_logits(model: nn.Module, played: Played) -> torch.Tensor:
    """The logits ``[E, T, A]`` of the played episodes, differentiable in the parameters:
    through the recorded LSTM pass when there is one, else by replaying the inputs."""
    if played.tape is None:
        return _unroll(model, played.inputs)
    pre, lstm, post = lstm_core(model)
    return post(taped_lstm(pre(played.inputs), lstm, played.tape))


def train_policy_gradient(
    model: nn.Module,
    task: Environment,
    config: PolicyGradientConfig,
    out_dir: str | Path | None = None,
    *,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    resume: bool = True,
) -> TrainingResult:
    """Meta-train a bandit policy ``model`` by advantage actor-critic (see the config).

    Every outer step runs ``batch_size`` episodes of ``n_steps`` (or its curriculum
    stage's length, in its stage's task: ``config.stage_at``) closed-loop
    (:func:`trajprobe.closed_loop.play`): the input at t is
    ``task.encode(context_t, a_{t-1}, r_{t-1})``, the model's output y_t are the logits of
    π_t, a_t ~ softmax(y_t) (Gumbel-max), r_t = ``task.reward(...)``, every draw made
    before the first step from the outer step's seed. The episodes are played without
    gradients; a model with an LSTM core (``lstm_core()``) records its gates and the loss
    is backpropagated through that record (the episode is computed once), any other model
    replays the recorded inputs once (``model.unroll`` when it has one) to build the loss.

    The baseline is a linear read-out of ``state_vector(model, s_t)`` with the state's
    gradient stopped: with a shared torso the squared error of returns (scale ~1/(1-γ))
    swamped the policy gradient in Adam's normalisation: a 1-context, 5-armed bandit
    stayed at chance reward for 2,000 updates, and learned with the gradient stopped
    (measured). It is returned as
    ``TrainingResult.baseline`` and saved in the checkpoints under ``extra``.

    Args: as :func:`train_supervised`, with ``task`` a :class:`~trajprobe.tasks.Environment`.
    """
    if not isinstance(config, PolicyGradientConfig):
        raise TypeError(f"config: expected a PolicyGradientConfig, got {type(config).__name__}")
    if not isinstance(task, Environment):
        raise TypeError(f"task: expected a Environment (sample_params, contexts, reward, "
                        f"encode, expected_reward), got {type(task).__name__}")
    dev, dtype = _prepare(model, device)
    with torch.no_grad():
        n_state = sm.state_vector(model, model.initial_state(1)).shape[1]
    baseline = nn.Linear(n_state, 1).to(device=dev, dtype=dtype)
    with torch.no_grad():
        nn.init.zeros_(baseline.weight)
        nn.init.zeros_(baseline.bias)
    gamma = config.discount
    total = math.ceil(config.n_episodes / config.batch_size)
    stages = _stage_tasks(task, config)
    extra: dict[str, nn.Module] = {"baseline": baseline}
    if any(stage[2] == CONFUSED for stage in config.curriculum):
        extra["focus"] = focus = _Focus()

    def stage_task(step: int, shown: int | str | None) -> Environment:
        if shown != CONFUSED:
            return stages[shown]
        start = config.stage_start(step, total)
        if int(focus.measured_at) != start:  # the stage's first step (or an earlier stage's)
            pair = most_confused(model, task, config.n_steps,
                                 seed=step_seed(step_seed(config.seed, start), 1))
            focus.contexts.copy_(torch.tensor(pair))
            focus.measured_at.fill_(start)
            _log.info("outer step %d: a 'confused' stage shows contexts %s", start, pair)
        return task.only(tuple(focus.contexts.tolist()))

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        gen = make_generator(step_seed(config.seed, step), dev)
        n_steps, shown = config.stage_at(step, total)
        played = play(model, stage_task(step, shown), config.batch_size, n_steps,
                      generator=gen)
        log_pi = torch.log_softmax(_policy_logits(model, played), dim=-1)  # [E, T, A]
        log_prob = log_pi.gather(2, played.actions[..., None])[..., 0]
        entropy = -(log_pi.exp() * log_pi).sum(-1).mean()
        rewards = played.rewards.to(dtype)
        returns = discounted_returns(rewards, gamma)
        v = baseline(played.state_vectors)[..., 0]
        advantage = (returns - v).detach()
        loss = (-(log_prob * advantage).mean()
                + config.baseline_cost * 0.5 * (returns - v).pow(2).mean()
                - config.entropy_cost * entropy)
        return loss, {"reward": rewards.mean(), "entropy": entropy}

    return _run("policy_gradient", model, config, out_dir, loss_fn,
                ("loss", "reward", "entropy"), extra,
                progress=progress, resume=resume, task=task)


class _Focus(nn.Module):
    """What a ``"confused"`` stage shows: ``contexts`` [2] (long), measured at the outer step
    ``measured_at`` (-1: not yet). Buffers, so a resumed stage shows the same pair."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("contexts", torch.zeros(2, dtype=torch.long))
        self.register_buffer("measured_at", torch.tensor(-1))


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


def _stage_tasks(task: Environment, config: PolicyGradientConfig
                 ) -> dict[int | None, Environment]:
    """The task of every curriculum stage by its contexts shown (None: ``task`` itself;
    a ``"confused"`` stage's task is chosen when it starts)."""
    stages: dict[int | None, Environment] = {None: task}
    for _, _, shown in config.curriculum:
        if shown == CONFUSED and not callable(getattr(task, "only", None)):
            raise ValueError(f"curriculum: a stage shows the 'confused' pair of contexts, but "
                             f"{type(task).__name__} has no only(contexts)")
        if shown is None or shown == CONFUSED or shown in stages:
            continue
        showing = getattr(task, "showing", None)
        if not callable(showing):
            raise ValueError(f"curriculum: a stage shows {shown} contexts, but "
                             f"{type(task).__name__} has no showing(n_shown); give None")
        stages[shown] = showing(shown)
    return stages


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
