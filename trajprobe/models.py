"""The papers' Meta-Learner architectures as state machines that also unroll fast.

* :class:`RabinowitzLSTM` — one LSTM layer (64 units) and a linear readout
  (Rabinowitz 2019 A.2, A.4, A.6).
* :class:`MikulikNet` — encoder (fully connected) → LSTM → decoder (fully connected) →
  linear readout, every layer of width N (N = 32 for prediction, 256 for bandits;
  Mikulik et al. 2020 §3.1).

Both are ``nn.Module`` machines: ``initial_state(B)``, ``step(x, s) -> (y, s)`` and
``unroll(inputs [E, T, D]) -> (outputs [E, T, ...], final state)``, which runs the whole
sequence through ``nn.LSTM`` at once (what training uses) and equals stepping. A model
built with ``distribution=`` also has ``distribution(y)``, the predictive distribution its
outputs parameterise (for log-loss training and KL comparisons); a model built without one
has no ``distribution`` attribute at all.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import distributions as D
from torch import nn

from trajprobe.heads import resolve_head
from trajprobe.initialisers import torch_default_init
from trajprobe.machine import LSTMState
from trajprobe.tasks.base import Seed, make_generator
from trajprobe.validation import check_positive_int

__all__ = [
    "MikulikNet",
    "RabinowitzLSTM",
]


class _LSTMMachine(nn.Module):
    """Shared machinery: ``pre`` → single-layer ``nn.LSTM`` → ``post``."""

    pre: nn.Module
    lstm: nn.LSTM
    post: nn.Module

    def __init__(self, input_size: int, output_size: int, distribution):
        super().__init__()
        self.input_size = check_positive_int(input_size, "input_size")
        self.output_size = check_positive_int(output_size, "output_size")
        self._distribution = resolve_head(distribution)
        if self._distribution is not None:
            # Only a model built with a family has distribution(y): code that asks
            # callable(getattr(model, "distribution", None)) then skips KL, not fails.
            self.distribution = self._distribution

    def _init_from(self, seed: Seed) -> None:
        """Re-draw every parameter with PyTorch's own rules, from ``seed`` (not the global RNG)."""
        if seed is None:
            return
        torch_default_init(self, make_generator(seed, next(self.parameters()).device))

    @property
    def hidden_size(self) -> int:
        """LSTM units H."""
        return self.lstm.hidden_size

    def initial_state(self, batch_size: int) -> LSTMState:
        """Zeros: ``hidden`` and ``cell`` ``[B, H]``."""
        ref = self.lstm.weight_hh_l0
        h = torch.zeros(batch_size, self.hidden_size, dtype=ref.dtype, device=ref.device)
        return LSTMState(h, torch.zeros_like(h))

    def step(self, x: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """x ``[B, input_size]`` → (y ``[B, output_size]``, new state)."""
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x: expected shape [batch, {self.input_size}], got {tuple(x.shape)}")
        y, new_state = self.unroll(x.unsqueeze(1), state)
        return y[:, 0], new_state

    def unroll(
        self, inputs: torch.Tensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        """Whole sequences at once: inputs ``[E, T, input_size]`` → outputs ``[E, T, K]``."""
        if inputs.dim() != 3 or inputs.shape[2] != self.input_size:
            raise ValueError(
                f"inputs: expected shape [episode, t, {self.input_size}], got "
                f"{tuple(inputs.shape)}"
            )
        if state is None:
            state = self.initial_state(inputs.shape[0])
        hx = (state.hidden.unsqueeze(0).contiguous(), state.cell.unsqueeze(0).contiguous())
        out, (h, c) = self.lstm(self.pre(inputs), hx)
        return self.post(out), LSTMState(h[0], c[0])


class RabinowitzLSTM(_LSTMMachine):
    """Rabinowitz 2019 Meta-Learner: LSTM(``hidden_size``) + linear readout (A.2, A.4, A.6).

    y_t = W h_t + b with (h_t, c_t) = LSTM(x_t, (h_{t-1}, c_{t-1})). State
    :class:`~trajprobe.machine.LSTMState` ``([B, H], [B, H])``; ``state_vector`` = ``[h, c]``.

    Args:
        input_size: e.g. N_x + N_y for regression ([x_t, y_{t-1}]), K_c + K_a + 1 for
            contextual bandits ([one-hot c_t, one-hot a_{t-1}, r_{t-1}]).
        output_size: N_y, or K_a logits.
        hidden_size: 64 in the paper.
        distribution: predictive family of the outputs (a name in
            :data:`trajprobe.heads.HEADS` or a callable).
        seed: parameters drawn with PyTorch's default rules from this seed (None: from
            the global RNG, as ``nn.LSTM`` does).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden_size: int = 64,
        *,
        distribution: str | Callable[[torch.Tensor], D.Distribution] | None = None,
        seed: Seed = 0,
    ):
        super().__init__(input_size, output_size, distribution)
        self.pre = nn.Identity()
        self.lstm = nn.LSTM(self.input_size, hidden_size, batch_first=True)
        self.post = nn.Linear(hidden_size, self.output_size)
        self._init_from(seed)


class MikulikNet(_LSTMMachine):
    """Mikulik et al. 2020 Meta-Learner: encoder → LSTM → decoder → linear readout (§3.1).

    e_t = ReLU(W_e x_t + b_e); (h_t, c_t) = LSTM(e_t, (h_{t-1}, c_{t-1}));
    d_t = ReLU(W_d h_t + b_d); y_t = W_o d_t + b_o. Every layer has width N. The paper
    does not name the encoder/decoder nonlinearity; ReLU is used.

    Args:
        input_size, output_size: task encoding and output width (e.g. the family's
            :func:`trajprobe.heads.head_size`, or the number of arms for bandit logits).
        width: N (32 for prediction tasks, 256 for bandits in the paper).
        distribution, seed: as :class:`RabinowitzLSTM`.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        width: int = 32,
        *,
        distribution: str | Callable[[torch.Tensor], D.Distribution] | None = None,
        seed: Seed = 0,
    ):
        super().__init__(input_size, output_size, distribution)
        self.pre = nn.Sequential(nn.Linear(self.input_size, width), nn.ReLU())
        self.lstm = nn.LSTM(width, width, batch_first=True)
        self.post = nn.Sequential(nn.Linear(width, width), nn.ReLU(),
                                  nn.Linear(width, self.output_size))
        self._init_from(seed)
