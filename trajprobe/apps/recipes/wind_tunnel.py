"""Bayesian wind tunnels (Agarwal, Dalal & Misra 2025) as recipes: five architectures per task.

``wind-tunnel/<task>/<architecture>`` trains one learner by teacher-forced cross-entropy
(the log-loss of the task's head) on fresh episodes of one wind tunnel
(:mod:`trajprobe.tasks.wind_tunnels`), for a fixed number of updates per preset:

* tasks (:data:`WIND_TUNNEL_TASKS`): ``bijection`` (:class:`~trajprobe.tasks.BijectionElimination`,
  i.i.d. queries, so revealed queries recur: elimination *and* binding), ``recall``
  (:class:`~trajprobe.tasks.AssociativeRecall`), ``hmm`` (:class:`~trajprobe.tasks.HMMFiltering`,
  K = 5) and ``coin`` (:class:`~trajprobe.tasks.RegimeSwitchingCoin`);
* architectures (:data:`WIND_TUNNEL_ARCHITECTURES`): ``lstm``
  (:class:`~trajprobe.apps.models.RabinowitzLSTM`), ``gru``
  (:class:`~trajprobe.apps.recipes.flipflop.PredictiveGRU`),
  ``transformer`` (:class:`~trajprobe.apps.models.GPT`, the KV-cache transformer),
  ``ssm`` (:class:`~trajprobe.apps.models.GatedSSM`) and ``mlp`` (:class:`WindowMLP`, an MLP
  over the last W inputs: no memory beyond its window).

Capacity matching: every architecture takes the largest width whose parameter count
(:meth:`WindTunnelModel.n_parameters`, in closed form) stays within the preset's budget
(:data:`PARAMETER_BUDGET`), so the five differ in how they can use their parameters, not
in how many they have. The paper's own sizes are not all stated in the abstract we read;
``paper`` is our GPU scale (its tasks: V = 20 symbols; the paper's bit accuracies were
reached by transformers of a few layers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import torch
from torch import distributions as D
from torch import nn

from trajprobe.apps.models import GPT, GatedSSM, RabinowitzLSTM, unroll_step
from trajprobe.apps.presets import Presets
from trajprobe.apps.recipes.config import MetaLearnerRecipe, ModelConfig
from trajprobe.apps.recipes.flipflop import PredictiveGRU
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig
from trajprobe.heads import resolve_head
from trajprobe.initialisers import torch_default_init
from trajprobe.randomness import Seed, make_generator
from trajprobe.tasks import (
    AssociativeRecall,
    BijectionElimination,
    HMMFiltering,
    RegimeSwitchingCoin,
)
from trajprobe.validation import check_positive_int

__all__ = [
    "PARAMETER_BUDGET",
    "WIND_TUNNEL_ARCHITECTURES",
    "WIND_TUNNEL_RECIPES",
    "WIND_TUNNEL_TASKS",
    "WindTunnelModel",
    "WindowMLP",
    "wind_tunnel_name",
    "wind_tunnel_task",
]


class WindowMLP(nn.Module):
    """An MLP over a fixed window of the W most recent inputs, as a machine.

    y_t = MLP([x_{t-W+1}, …, x_t]) with zeros before the episode's first input; the MLP has
    ``n_layers`` hidden ReLU layers of ``hidden_size`` units and a linear read-out. State
    ``[B, W - 1, D]``: the W − 1 previous inputs, oldest first (the window is all it
    remembers: an input W or more steps back cannot move an output).
    ``unroll(inputs [E, T, D])`` evaluates every window at once and equals stepping.

    Args:
        input_size, output_size: D and the head's width.
        hidden_size: units per hidden layer.
        window: W ≥ 1 (1: a feed-forward map of x_t alone).
        n_layers: hidden layers (≥ 1).
        distribution, seed: as :class:`~trajprobe.apps.models.RabinowitzLSTM`.
    """

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 64,
                 window: int = 4, n_layers: int = 2, *,
                 distribution: str | Callable[[torch.Tensor], D.Distribution] | None = None,
                 seed: Seed = 0):
        super().__init__()
        self.input_size = check_positive_int(input_size, "input_size")
        self.output_size = check_positive_int(output_size, "output_size")
        self.window = check_positive_int(window, "window")
        check_positive_int(hidden_size, "hidden_size")
        check_positive_int(n_layers, "n_layers")
        widths = [self.window * self.input_size] + [hidden_size] * n_layers
        layers: list[nn.Module] = []
        for a, b in pairwise(widths):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden_size, self.output_size))
        self._distribution = resolve_head(distribution)
        if seed is not None:
            torch_default_init(self, make_generator(seed))

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zeros ``[B, W - 1, D]``."""
        ref = self.net[0].weight
        return torch.zeros(batch_size, self.window - 1, self.input_size, dtype=ref.dtype,
                           device=ref.device)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x ``[B, D]`` → (y ``[B, output_size]``, the last W − 1 inputs ``[B, W - 1, D]``)."""
        return unroll_step(self, x, state)

    def unroll(self, inputs: torch.Tensor, state: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole sequences: inputs ``[E, T, D]`` → (outputs ``[E, T, K]``, the last W − 1
        inputs ``[E, W - 1, D]``)."""
        if inputs.dim() != 3 or inputs.shape[2] != self.input_size:
            raise ValueError(f"inputs: expected shape [episode, t, {self.input_size}], got "
                             f"{tuple(inputs.shape)}")
        if state is None:
            state = self.initial_state(inputs.shape[0])
        padded = torch.cat([state.to(inputs.dtype), inputs], dim=1)  # [E, W - 1 + T, D]
        windows = padded.unfold(1, self.window, 1)  # [E, T, D, W]: oldest first along W
        flat = windows.transpose(2, 3).flatten(2)  # [E, T, W * D]
        return self.net(flat), padded[:, padded.shape[1] - (self.window - 1):]

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """The predictive distribution outputs ``y`` ``[..., K]`` parameterise."""
        if self._distribution is None:
            raise ValueError("distribution: this WindowMLP was built without a predictive "
                             "distribution; pass distribution='categorical' (or another family)")
        return self._distribution(y)


Architecture = Literal["lstm", "gru", "transformer", "ssm", "mlp"]


@dataclass(frozen=True)
class WindTunnelModel(ModelConfig):
    """One of the five wind-tunnel architectures (module docstring) at width ``size``.

    Attributes:
        architecture: ``"lstm"``, ``"gru"``, ``"transformer"``, ``"ssm"`` or ``"mlp"``.
        size: LSTM/GRU units, d_model, SSM state channels per layer, or MLP hidden units.
        layers: transformer blocks, SSM layers or MLP hidden layers (not the RNNs').
        heads: transformer heads (``size`` divisible by it).
        max_len: the transformer's longest episode.
        window: the MLP's window W.
    """

    architecture: Architecture = "lstm"  # type: ignore[assignment]
    size: int = 64
    layers: int = 2
    heads: int = 4
    max_len: int = 100
    window: int = 4

    def build(self, input_size: int, output_size: int, *, seed: int = 0,
              distribution: Any = None) -> nn.Module:
        """A freshly initialised model (parameters drawn from ``seed``)."""
        dist = distribution if distribution is not None else self.distribution
        n, arch = self.size, self.architecture
        if arch == "lstm":
            return RabinowitzLSTM(input_size, output_size, n, distribution=dist, seed=seed)
        if arch == "gru":
            return PredictiveGRU(input_size, output_size, n, distribution=dist, seed=seed)
        if arch == "transformer":
            return GPT(input_size, output_size, n, self.layers, self.heads,
                       max_len=self.max_len, distribution=dist, seed=seed)
        if arch == "ssm":
            return GatedSSM(input_size, output_size, n, self.layers, distribution=dist,
                            seed=seed)
        if arch == "mlp":
            return WindowMLP(input_size, output_size, n, self.window, self.layers,
                             distribution=dist, seed=seed)
        raise ValueError(f"architecture: expected one of {', '.join(WIND_TUNNEL_ARCHITECTURES)}"
                         f", got {arch!r}")

    def n_parameters(self, input_size: int, output_size: int) -> int:
        """The built model's parameter count, in closed form (equal to counting them)."""
        n, d, o, layers = self.size, input_size, output_size, self.layers
        readout = n * o + o
        if self.architecture == "lstm":
            return 4 * n * (d + n) + 8 * n + readout
        if self.architecture == "gru":
            return 3 * n * (d + n) + 6 * n + readout
        if self.architecture == "transformer":
            block = 12 * n * n + 13 * n
            return d * n + n + self.max_len * n + layers * block + 2 * n + readout
        if self.architecture == "ssm":
            mix = (d * 3 * n + 3 * n) + (layers - 1) * (n * 3 * n + 3 * n)
            return mix + layers * (n * n + n) + layers * n + readout
        hidden = self.window * d * n + n + (layers - 1) * (n * n + n)
        return hidden + readout

    def flops_per_step(self, input_size: int, output_size: int) -> float:
        """Forward + backward FLOPs of one episode step (≈ 3 × 2 × parameters, plus a
        transformer's attention to ~T/2 cached steps)."""
        macs = float(self.n_parameters(input_size, output_size))
        if self.architecture == "transformer":
            macs += self.layers * self.size * self.max_len
        return 6.0 * macs


WIND_TUNNEL_ARCHITECTURES: tuple[str, ...] = ("lstm", "gru", "transformer", "ssm", "mlp")
"""Recipe slugs of the five architectures, in the table's order."""

WIND_TUNNEL_TASKS: tuple[str, ...] = ("bijection", "recall", "hmm", "coin")
"""Recipe slugs of the four wind tunnels."""

PARAMETER_BUDGET: Presets[int] = Presets(smoke=2_000, quick=25_000, paper=800_000)
"""Parameters per learner: each architecture's width is the largest within it (quick: the
pilot's LSTM(64) on bijection had 21,512)."""

DEPTH: Presets[dict[str, int]] = Presets(
    smoke={"transformer": 1, "ssm": 1, "mlp": 2, "heads": 2, "window": 2},
    quick={"transformer": 2, "ssm": 2, "mlp": 2, "heads": 4, "window": 4},
    paper={"transformer": 4, "ssm": 4, "mlp": 3, "heads": 8, "window": 8},
)
"""Layers per architecture, transformer heads and the MLP's window W, per preset."""


def wind_tunnel_task(task: str, preset: str) -> tuple[Any, int]:
    """The wind tunnel ``task`` (a slug of :data:`WIND_TUNNEL_TASKS`) at ``preset`` and its
    episode length T: smoke (V, T) = (4, 8), quick (8, 24), paper (20, 60) for bijection;
    recall K = V = 4/8/16 keys and values with K/2 stored; the HMM's K = 5 states for 8 /
    20 / 50 steps; the coin (Beta(1, 1), hazard 0.1) for 8 / 40 / 100 steps."""
    if task not in WIND_TUNNEL_TASKS:
        raise ValueError(f"task: expected one of {', '.join(WIND_TUNNEL_TASKS)}, got {task!r}")
    sizes = Presets(smoke=(4, 8), quick=(8, 24), paper=(20, 60))[preset]
    if task == "bijection":
        return BijectionElimination(sizes[0]), sizes[1]
    if task == "recall":
        k, t = Presets(smoke=(4, 6), quick=(8, 16), paper=(16, 32))[preset]
        return AssociativeRecall(n_keys=k, n_values=k, n_pairs=k // 2), t
    if task == "hmm":
        return HMMFiltering(5), Presets(smoke=8, quick=20, paper=50)[preset]
    steps = Presets(smoke=8, quick=40, paper=100)[preset]
    return RegimeSwitchingCoin(1.0, 1.0, 0.1, horizon=steps), steps


def matched_model(architecture: str, preset: str, input_size: int, output_size: int,
                  max_len: int) -> WindTunnelModel:
    """``architecture`` at the largest width whose parameters stay within the preset's
    :data:`PARAMETER_BUDGET` (a transformer's width a multiple of its heads)."""
    depth = DEPTH[preset]
    budget = PARAMETER_BUDGET[preset]
    layers = depth.get(architecture, 1)
    step = depth["heads"] if architecture == "transformer" else 1

    def model(width: int) -> WindTunnelModel:
        return WindTunnelModel(architecture, width, layers=layers, heads=depth["heads"],
                               max_len=max_len, window=depth["window"])

    width = step
    while model(width + step).n_parameters(input_size, output_size) <= budget:
        width += step
    return model(width)


UPDATES: Presets[tuple[int, int]] = Presets(smoke=(30, 32), quick=(2_000, 64),
                                            paper=(50_000, 256))
"""(updates, episodes per update) of every wind-tunnel run."""


def wind_tunnel_name(task: str, architecture: str) -> str:
    """The recipe ``wind-tunnel/<task>/<architecture>``."""
    return f"wind-tunnel/{task}/{architecture}"


def _wind_tunnel(task_name: str, architecture: str) -> Callable[[str], MetaLearnerRecipe]:
    def make(preset: str) -> MetaLearnerRecipe:
        task, steps = wind_tunnel_task(task_name, preset)
        updates, batch = UPDATES[preset]
        # one schedule for all five architectures (not tuned per architecture): Adam, 5 %
        # warm-up, cosine decay, clipped at 1. Quick's 3e-3: pilots on bijection (V = 8,
        # T = 24, constant rates, 1 thread) left the uniform plateau (3 bits) after ~600
        # updates at 3e-3 (transformer, d = 32: 1.84 bits at 800) but not at 1e-3 (2.99); the
        # LSTM(64) stayed on it for 800 updates at 3e-3 and 700 at 1e-2
        optimiser = OptimiserConfig("adam", Presets(smoke=3e-3, quick=3e-3, paper=1e-3)[preset],
                                    "cosine", warmup=0.05)
        training = SupervisedConfig(
            updates * batch, steps, batch, loss="log_loss", optimiser=optimiser,
            max_grad_norm=1.0, n_checkpoints=Presets(smoke=3, quick=10, paper=20)[preset],
            save_every=Presets(smoke=10, quick=250, paper=1_000)[preset],
            log_every=Presets(smoke=5, quick=25, paper=100)[preset])
        model = matched_model(architecture, preset, task.input_size, task.output_size, steps)
        return MetaLearnerRecipe(
            name="", preset=preset,
            paper="Agarwal, Dalal & Misra 2025 (wind tunnels); our sizes, capacity-matched",
            task=task, model=model, training=training)
    return make


_LABEL = {"lstm": "LSTM", "gru": "GRU", "transformer": "KV-cache transformer",
          "ssm": "gated SSM", "mlp": "MLP over a fixed window"}

WIND_TUNNEL_RECIPES: dict[str, tuple[str, Callable[[str], MetaLearnerRecipe]]] = {
    wind_tunnel_name(task, arch): (f"wind tunnel {task}: {_LABEL[arch]}, capacity-matched "
                                   "(Agarwal et al. 2025)", _wind_tunnel(task, arch))
    for task in WIND_TUNNEL_TASKS for arch in WIND_TUNNEL_ARCHITECTURES
}
"""Name → (description, preset → recipe), merged into :data:`RECIPES`."""
