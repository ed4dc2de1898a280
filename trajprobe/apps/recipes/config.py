"""Typed recipe configurations: what to train, on which task, with which hyperparameters."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch

from trajprobe.adapters.torch_transformer import Interleaved
from trajprobe.apps.models import GPT, GatedSSM, MikulikNet, RabinowitzLSTM
from trajprobe.apps.presets import Presets
from trajprobe.apps.recipes.curricula import STAGES
from trajprobe.apps.training import (
    OPTIMISERS,
    PolicyGradientConfig,
    SupervisedConfig,
    TrainingResult,
    describe_task,
    train_policy_gradient,
    train_supervised,
)
from trajprobe.apps.training.run_dirs import RECIPE_FILE, write_run_record
from trajprobe.paths import check_path
from trajprobe.task_protocol import output_size

__all__ = [
    "CPU_FLOPS",
    "PRESETS",
    "RECIPE_FILE",
    "LearnerConfig",
    "LearnerRecipe",
    "MetaLearnerRecipe",
    "ModelConfig",
    "Preset",
    "default_out_dir",
    "format_seconds",
]

PRESETS: tuple[str, ...] = ("smoke", "quick", "paper")
"""Every set-up at three scales: seconds for tests, minutes on a laptop, the paper's."""

Preset = Literal["smoke", "quick", "paper"]


def default_out_dir(name: str, preset: str, root: str = "trajprobe-runs") -> Path:
    """``./<root>/<name>-<preset>`` with ``/`` in the name as ``-``: where a reproduce
    target (``trajprobe-runs``) or a sweep (``trajprobe-sweeps``) writes by default."""
    return Path(root) / f"{name.replace('/', '-')}-{preset}"


CPU_FLOPS = 2e10
"""Sustained float32 FLOP/s of BPTT through LSTM(64) on this project's 2-core CPU
(``benchmarks/training_throughput.py`` measured ~11,000 episodes/s of T = 20, i.e.
~2.3e10 FLOP/s); used only for cost estimates."""

# Fixed costs that FLOPs do not see, calibrated with benchmarks/cost_model.py (whole runs,
# measured against estimated, one thread) on this project's 2-core CPU, in CPU seconds:
# what a quiet machine's wall clock shows (at load 15 the wall clock was 3-6x longer).
# Every smoke recipe and the quick ones timed came within 0.5-2x; read the estimates as
# the right order of magnitude, not to the minute.
UPDATE_SECONDS = 1e-3
"""Per supervised outer update: sampling the batch, the optimiser step, bookkeeping."""
RECURRENT_STEP_SECONDS = 1e-4
"""Per time step of a supervised update of a recurrent model (every architecture but
``gpt``): the unrolled forward and backward kernels, whatever their arithmetic (FlipFlop
GRU(16), T = 64: 17.5 ms per update measured at load 15 against 2.3 ms of arithmetic;
1e-4 keeps the smoke Fourier Meta-Learners within 2x as well)."""
CLOSED_LOOP_STEP_SECONDS = 4e-4
"""Per time step of a closed-loop (policy-gradient) update: one machine step, an action
drawn and a reward, in Python between the steps."""
LEARNER_STEP_SECONDS = 2.5e-3
"""Per vmapped Learner step (``torch.func`` dispatch), whatever its arithmetic."""
LINEAR_CHAIN_STEP_SECONDS = 5e-5
"""Per step of the closed-form linear-MLP Learner (adapters/torch_learner.py:
``LinearChainLearner``, no vmap), plus :data:`LINEAR_CHAIN_SAMPLE_SECONDS` per example of
every learner's minibatch: 0.50 ms per step of 48 learners × 100 examples and 0.99 ms of
100 × 100 (CPU seconds, benchmarks/cost_model.py)."""
LINEAR_CHAIN_SAMPLE_SECONDS = 9.5e-8
"""Per example (learners × minibatch) of a linear-MLP Learner step."""
BANDIT_LEARNER_STEP_SECONDS = 4.5e-4
"""Per step of the closed-form bandit Learner (adapters/bandit_learner.py), plus
:data:`BANDIT_LEARNER_SAMPLE_SECONDS` per example of every learner's minibatch: 0.30 ms
per step of 4 × 20, 0.63 ms of 20 × 200, 0.75 ms of 50 × 200 (CPU seconds)."""
BANDIT_LEARNER_SAMPLE_SECONDS = 3e-8
"""Per example (learners × minibatch) of a bandit Learner step."""
BANDIT_LEARNER_STOP_STEPS = 60_000
"""Steps until every learner of the paper's set-up meets the stopping rule (measured with
``benchmarks/bandit_learners.py``: median ~35,000 coupled, slowest ~60,000)."""


@dataclass(frozen=True)
class ModelConfig:
    """A Meta-Learner architecture.

    Attributes:
        architecture: ``"rabinowitz-lstm"`` (LSTM + linear readout, Rabinowitz A.2/A.4/A.6),
            ``"mikulik-net"`` (encoder → LSTM → decoder → readout, Mikulik §3.1),
            ``"gpt"`` (:class:`~trajprobe.apps.models.GPT`, a KV-cache transformer, 4 heads) or
            ``"gated-ssm"`` (:class:`~trajprobe.apps.models.GatedSSM`).
        size: LSTM units (Rabinowitz: 64), layer width N (Mikulik: 32 / 256), d_model
            (gpt) or state channels (gated-ssm).
        distribution: the predictive family read from the outputs (prediction tasks).
        layers: depth of ``gpt`` and ``gated-ssm`` (ignored by the LSTMs).
        max_len: ``gpt`` only: the longest episode its cache and positions hold.
        heads: ``gpt`` only: attention heads (``size`` divisible by it).
        interleaved: ``gpt`` only: Garg et al. 2022's layout, an x token then a y token per
            step (:class:`~trajprobe.adapters.Interleaved`; the input ``[x_t, y_{t-1}]``
            splits in halves), instead of one token ``[x_t, y_{t-1}]`` per step.
    """

    architecture: Literal["rabinowitz-lstm", "mikulik-net", "gpt", "gated-ssm"] = (
        "rabinowitz-lstm")
    size: int = 64
    distribution: str | None = None
    layers: int = 2
    max_len: int = 100
    heads: int = 4
    interleaved: bool = False

    def build(self, input_size: int, output_size: int, *, seed: int = 0,
              distribution: Any = None) -> torch.nn.Module:
        """A freshly initialised model (parameters drawn from ``seed``)."""
        dist = distribution if distribution is not None else self.distribution
        if self.architecture == "gpt":
            layout = Interleaved(input_size - output_size, output_size) \
                if self.interleaved else None
            return GPT(input_size, output_size, self.size, self.layers, self.heads,
                       max_len=self.max_len, layout=layout, distribution=dist, seed=seed)
        if self.architecture == "gated-ssm":
            return GatedSSM(input_size, output_size, self.size, self.layers,
                            distribution=dist, seed=seed)
        cls = RabinowitzLSTM if self.architecture == "rabinowitz-lstm" else MikulikNet
        return cls(input_size, output_size, self.size, distribution=dist, seed=seed)

    def flops_per_step(self, input_size: int, output_size: int) -> float:
        """Forward + backward FLOPs of one episode step (≈ 3 × 2 × multiply-adds)."""
        n = self.size
        if self.architecture == "gpt":  # per token: projections, MLP, attention to ~T/2
            tokens = 2 if self.interleaved else 1
            macs = self.layers * (12 * n * n + n * self.max_len * tokens)
            return 6.0 * tokens * (macs + n * (input_size + output_size))
        if self.architecture == "gated-ssm":
            macs = 3 * n * input_size + n * n + (self.layers - 1) * 4 * n * n
            return 6.0 * (macs + n * output_size)
        macs = 4 * n * (n + (n if self.architecture == "mikulik-net" else input_size))
        macs += n * output_size
        if self.architecture == "mikulik-net":
            macs += n * input_size + n * n
        return 6.0 * macs


@dataclass(frozen=True)
class MetaLearnerRecipe:
    """An LSTM Meta-Learner outer-trained across a task distribution.

    Attributes:
        name: the recipe's name, e.g. ``"linear-regression-2d/meta-learner"``.
        preset: ``smoke``, ``quick`` or ``paper``.
        paper: where the set-up comes from.
        task: the task object (a :class:`~trajprobe.tasks.Task` or an
            :class:`~trajprobe.tasks.Environment`).
        model: the architecture.
        training: the outer loop's configuration.
        description: one line for listings.
    """

    name: str
    preset: str
    paper: str
    task: Any
    model: ModelConfig
    training: SupervisedConfig | PolicyGradientConfig
    description: str = ""
    agent: str = "meta-learner"

    @property
    def output_size(self) -> int:
        """Width of the model's output: the task's output size or number of actions."""
        return output_size(self.task)

    def build_model(self, seed: int = 0) -> torch.nn.Module:
        """The untrained model for training seed ``seed``."""
        return self.model.build(self.task.input_size, self.output_size, seed=seed,
                                distribution=getattr(self.task, "distribution", None))

    def train(self, out_dir: str | Path | None, *, seed: int = 0,
              device: torch.device | str | None = None,
              progress: bool | None = None) -> TrainingResult:
        """Train (or resume, or reuse a finished run in ``out_dir``) for ``seed``."""
        model = self.build_model(seed)
        config = _with_seed(self.training, seed)
        if out_dir is not None:
            out_dir = check_path(out_dir, "out_dir")  # not '' (= here), / or ~
            kind = "policy_gradient" if isinstance(config, PolicyGradientConfig) else "supervised"
            # refuses another run's directory before anything is written
            write_run_record(out_dir, self.run_info(seed), kind=kind, config=config,
                             task=self.task)
        if isinstance(config, PolicyGradientConfig):
            return train_policy_gradient(model, self.task, config, out_dir, device=device,
                                         progress=progress, stages=STAGES)
        return train_supervised(model, self.task, config, out_dir, device=device,
                                progress=progress)

    def run_info(self, seed: int) -> dict[str, Any]:
        """What a run directory's ``recipe.json`` records: recipe, preset, seed and task, and
        the rest of the recipe, so that :func:`trajprobe.apps.load_run` can rebuild it."""
        kind = "policy_gradient" if isinstance(self.training, PolicyGradientConfig) else (
            "supervised")
        return {"name": self.name, "preset": self.preset, "seed": seed,
                "task": describe_task(self.task), "paper": self.paper,
                "description": self.description, "agent": self.agent,
                "model": asdict(self.model), "training_kind": kind,
                "training": asdict(self.training)}

    def estimated_seconds(self, flops: float = CPU_FLOPS) -> float:
        """Projected training time on this CPU: outer updates × (fixed + arithmetic) cost.

        The arithmetic is the model's FLOPs at ``flops`` FLOP/s; the fixed part is
        :data:`UPDATE_SECONDS` per supervised update plus, for a recurrent model,
        :data:`RECURRENT_STEP_SECONDS` per time step, or :data:`CLOSED_LOOP_STEP_SECONDS`
        per time step of a closed-loop update.
        """
        cfg = self.training
        updates = math.ceil(cfg.n_episodes / cfg.batch_size)
        # a curriculum's stages (share, T, ...) play shorter episodes first: the mean length
        stages = cfg.curriculum
        length = (sum(stage[0] * stage[1] for stage in stages)
                  + (1 - sum(stage[0] for stage in stages)) * cfg.n_steps)
        arithmetic = (cfg.batch_size * length
                      * self.model.flops_per_step(self.task.input_size, self.output_size) / flops)
        if isinstance(cfg, PolicyGradientConfig):
            fixed = length * CLOSED_LOOP_STEP_SECONDS
        else:
            recurrent = self.model.architecture != "gpt"
            fixed = UPDATE_SECONDS + recurrent * length * RECURRENT_STEP_SECONDS
        return updates * (fixed + arithmetic)


@dataclass(frozen=True)
class LearnerConfig:
    """A Learner: one network trained by SGD/Adam on a single task (Rabinowitz A.1/A.3/A.5).

    Attributes:
        network: ``"linear-mlp"`` (A.1), ``"relu-mlp"`` (A.3), ``"bandit-coupled"`` /
            ``"bandit-decoupled"`` (A.5, shared bias or one network per context).
        optimiser: ``"sgd"`` or ``"adam"``.
        lr: learning rate.
        hidden: hidden units (linear MLP: 10; ReLU MLP: 256).
        minibatch: examples per training step.
        n_steps: training steps.
        n_learners: independent Learners run as one vmapped batch (different seeds and
            target tasks).
        stop_at: bandit Learners only: each learner stops when its normalised expected
            reward (E[r] - p_incorrect) / (p_correct - p_incorrect) reaches this (A.5's
            "until E[r] reaches 0.98"); ``n_steps`` is then the cap. None: ``n_steps``.
    """

    network: Literal["linear-mlp", "relu-mlp", "bandit-coupled", "bandit-decoupled"]
    optimiser: Literal["sgd", "adam"]
    lr: float
    hidden: int
    minibatch: int
    n_steps: int
    n_learners: int
    stop_at: float | None = None

    def __post_init__(self) -> None:
        if self.optimiser not in OPTIMISERS:  # the vocabulary of OptimiserConfig too
            raise ValueError(f"optimiser: expected 'sgd' or 'adam', got {self.optimiser!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr: expected a finite positive learning rate, got {self.lr!r}")


@dataclass(frozen=True)
class LearnerRecipe:
    """A batch of Learners, each trained on one fixed task drawn from ``task``."""

    name: str
    preset: str
    paper: str
    task: Any
    learner: LearnerConfig
    description: str = ""
    agent: str = "learner"

    def expected_steps(self) -> int:
        """Training steps: ``n_steps``, or for a stopping rule the steps it typically takes."""
        cfg = self.learner
        if cfg.stop_at is None:
            return cfg.n_steps
        return min(cfg.n_steps, BANDIT_LEARNER_STOP_STEPS)

    def estimated_seconds(self, flops: float = CPU_FLOPS) -> float:
        """Projected time on this CPU: expected steps × (fixed + arithmetic) cost per step."""
        cfg = self.learner
        steps = self.expected_steps()
        examples = cfg.minibatch * cfg.n_learners
        if cfg.network.startswith("bandit"):
            return steps * (BANDIT_LEARNER_STEP_SECONDS + examples * BANDIT_LEARNER_SAMPLE_SECONDS)
        if cfg.network == "linear-mlp":  # measured per example: the FLOPs are negligible
            return steps * (LINEAR_CHAIN_STEP_SECONDS + examples * LINEAR_CHAIN_SAMPLE_SECONDS)
        arithmetic = 6.0 * 5 * cfg.hidden**2 * examples / flops
        return steps * (LEARNER_STEP_SECONDS + arithmetic)


def _with_seed(config: SupervisedConfig | PolicyGradientConfig, seed: int):
    from dataclasses import replace

    return replace(config, seed=config.seed + 1000 * seed)


def format_seconds(seconds: float) -> str:
    """A human duration: ``"42 s"``, ``"7 min"``, ``"3.1 h"``, ``"12 days"``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def scaled_training(preset: str, *, paper: SupervisedConfig, quick: SupervisedConfig
                    ) -> SupervisedConfig:
    """A recipe's training at ``preset``: ``paper`` or ``quick`` as given, and ``smoke`` a
    few-second cut of ``quick`` (at most 2,000 episodes, batch 50, 3 checkpoints)."""
    smoke = replace(quick, n_episodes=min(quick.n_episodes, 2_000), batch_size=50,
                    n_checkpoints=3, save_every=10, log_every=5)
    return Presets(smoke=smoke, quick=quick, paper=paper)[preset]
