"""The 3-bit flip-flop (Sussillo & Barak 2013, §3.1) for a GRU and an LSTM: networks whose
fixed points are known to be 8 stable corners of the output cube with saddles between them,
to check :func:`trajprobe.fixed_points` on.

Not in Rabinowitz 2019 or Mikulik et al. 2020. Architecture and scale follow
FixedPointFinder's PyTorch example (Golub & Sussillo 2018: 16 units, a linear readout,
Adam, batches of 128 episodes); quick trains fresh episodes of 64 steps with a 20 % pulse
rate per step and channel (:class:`~trajprobe.tasks.FlipFlop`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from torch import distributions as D
from torch import nn

from trajprobe.apps.models import RabinowitzLSTM, unroll_step
from trajprobe.apps.presets import Presets
from trajprobe.apps.recipes.config import MetaLearnerRecipe, ModelConfig
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig
from trajprobe.heads import resolve_head
from trajprobe.initialisers import torch_default_init
from trajprobe.randomness import Seed, make_generator
from trajprobe.tasks.flipflop import FlipFlop

__all__ = ["FLIPFLOP_RECIPES", "FlipFlopGRU", "FlipFlopModel", "PredictiveGRU"]


class FlipFlopGRU(nn.Module):
    """A one-layer GRU + linear readout as a machine: y_t = W h_t + b, h_t = GRU(x_t, h_{t-1}).

    State ``[B, H]`` (h, zeros at the start). ``gru`` is an ``nn.GRU(batch_first=True)``,
    so tools written for ``nn.GRU`` (e.g. FixedPointFinder's PyTorch code) take it as is.

    Args:
        input_size, output_size: K and K for the K-bit flip-flop.
        hidden_size: H.
        seed: parameters drawn with PyTorch's default rules from this seed.
    """

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 16, *,
                 seed: Seed = 0):
        super().__init__()
        self.input_size, self.output_size = input_size, output_size
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, output_size)
        if seed is not None:
            torch_default_init(self, make_generator(seed))

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zeros ``[B, H]``."""
        ref = self.gru.weight_hh_l0
        return torch.zeros(batch_size, self.gru.hidden_size, dtype=ref.dtype, device=ref.device)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x ``[B, K]`` → (y ``[B, K]``, h ``[B, H]``)."""
        return unroll_step(self, x, state)

    def unroll(self, inputs: torch.Tensor, state: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole sequences: inputs ``[E, T, K]`` → (outputs ``[E, T, K]``, h_T ``[E, H]``)."""
        if inputs.dim() != 3 or inputs.shape[2] != self.input_size:
            raise ValueError(f"inputs: expected shape [episode, t, {self.input_size}], got "
                             f"{tuple(inputs.shape)}")
        if state is None:
            state = self.initial_state(inputs.shape[0])
        out, h = self.gru(inputs, state.unsqueeze(0).contiguous())
        return self.readout(out), h[0]


class PredictiveGRU(FlipFlopGRU):
    """:class:`FlipFlopGRU` (one GRU layer + linear read-out, state ``[B, H]``) with a
    predictive head: ``distribution(y)``, e.g. Categorical(logits = y) for
    ``distribution="categorical"`` (the wind tunnels, neurogym-decision)."""

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 64, *,
                 distribution: str | Callable[[torch.Tensor], D.Distribution] | None = None,
                 seed: Seed = 0):
        super().__init__(input_size, output_size, hidden_size, seed=seed)
        self._distribution = resolve_head(distribution)

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """The predictive distribution outputs ``y`` ``[..., K]`` parameterise."""
        if self._distribution is None:
            raise ValueError("distribution: this GRU was built without a predictive "
                             "distribution; pass distribution='categorical'")
        return self._distribution(y)


@dataclass(frozen=True)
class FlipFlopModel(ModelConfig):
    """A GRU (:class:`FlipFlopGRU`) or an LSTM (:class:`~trajprobe.apps.models.RabinowitzLSTM`)
    of ``size`` units with a linear readout."""

    architecture: Literal["gru", "lstm"] = "gru"  # type: ignore[assignment]
    size: int = 16

    def build(self, input_size: int, output_size: int, *, seed: int = 0,
              distribution: Any = None) -> nn.Module:
        """A freshly initialised model (parameters drawn from ``seed``)."""
        if self.architecture == "gru":
            return FlipFlopGRU(input_size, output_size, self.size, seed=seed)
        return RabinowitzLSTM(input_size, output_size, self.size, seed=seed)

    def flops_per_step(self, input_size: int, output_size: int) -> float:
        """Forward + backward FLOPs of one episode step (≈ 3 × 2 × multiply-adds)."""
        gates = 3 if self.architecture == "gru" else 4
        return 6.0 * (gates * self.size * (self.size + input_size) + self.size * output_size)


def _flipflop(architecture: str) -> Callable[[str], MetaLearnerRecipe]:
    def make(preset: str) -> MetaLearnerRecipe:
        # quick: Adam 1e-2 (FixedPointFinder's 1/√128 ≈ 0.09 is for its fixed 512-trial set),
        # cosine-decayed, clipped at 1: 1,500 updates of 128 fresh 64-step episodes.
        quick = SupervisedConfig(192_000, 64, 128,
                                 optimiser=OptimiserConfig("adam", 1e-2, "cosine"),
                                 max_grad_norm=1.0, save_every=250, log_every=25)
        paper = replace(quick, n_episodes=1_280_000, save_every=1000, log_every=100)
        smoke = replace(quick, n_episodes=2_000, batch_size=50, n_steps=32, n_checkpoints=3,
                        save_every=10, log_every=5)
        training = Presets(smoke=smoke, quick=quick, paper=paper)[preset]
        return MetaLearnerRecipe(
            name="", preset=preset, paper="Sussillo & Barak 2013 §3.1 (task); "
            "Golub & Sussillo 2018 (scale)", task=FlipFlop(3),
            model=FlipFlopModel(architecture, 16), training=training,
        )
    return make


FLIPFLOP_RECIPES: dict[str, tuple[str, Callable[[str], MetaLearnerRecipe]]] = {
    "flipflop-3bit/gru": ("GRU(16) on the 3-bit flip-flop: 8 stable fixed points, one per "
                          "corner (Sussillo & Barak 2013)", _flipflop("gru")),
    "flipflop-3bit/lstm": ("LSTM(16) on the 3-bit flip-flop", _flipflop("lstm")),
}
"""Name → (description, preset → recipe), merged into :data:`RECIPES`."""

