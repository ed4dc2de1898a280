"""PyTorch's recurrent modules (nn.LSTM/GRU/RNN and their cells) as state machines."""

from __future__ import annotations

import torch
from torch import nn

from trajprobe.adapters.torch_core import DistributionArg, resolve_distribution
from trajprobe.machine import LSTMState, State

__all__ = ["LSTMState", "TorchCell", "TorchRNN", "wrap"]


_LAYERS = (nn.LSTM, nn.GRU, nn.RNN)
_CELLS = (nn.LSTMCell, nn.GRUCell, nn.RNNCell)


def _reference(module: nn.Module) -> torch.Tensor:
    for p in module.parameters():
        return p
    raise ValueError(f"module: {type(module).__name__} has no parameters to take a device from")


def _check_input(x: torch.Tensor, size: int) -> None:
    if x.dim() != 2 or x.shape[1] != size:
        raise ValueError(f"x: expected shape [batch, {size}], got {tuple(x.shape)}")


class TorchRNN(nn.Module):
    """``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` (any depth, either ``batch_first``) as a machine.

    State: :class:`LSTMState` ``(hidden [B, L, H], cell [B, L, H])`` for an LSTM, one
    tensor ``[B, L, H]`` for a GRU or RNN. Output: ``readout(h_top)`` where ``h_top``
    ``[B, H]`` is the top layer's new hidden state (identity readout by default).
    """

    def __init__(self, module: nn.LSTM | nn.GRU | nn.RNN, readout: nn.Module | None = None,
                 *, distribution: DistributionArg = None):
        super().__init__()
        family = resolve_distribution(distribution)
        if family is not None:
            self.distribution = family
        if module.bidirectional:
            raise ValueError(
                f"module: a bidirectional {type(module).__name__} reads the future and "
                "cannot run step by step; use bidirectional=False"
            )
        self.core = module
        self.readout = readout if readout is not None else nn.Identity()
        self._time_dim = 1 if module.batch_first else 0

    def initial_state(self, batch_size: int) -> State:
        """Zeros, as nn.LSTM/GRU/RNN use when no state is given; ``[B, L, H]`` leaves."""
        ref = _reference(self.core)
        layers = self.core.num_layers
        size = getattr(self.core, "proj_size", 0) or self.core.hidden_size
        h = torch.zeros(batch_size, layers, size, dtype=ref.dtype, device=ref.device)
        if isinstance(self.core, nn.LSTM):
            c = torch.zeros(batch_size, layers, self.core.hidden_size, dtype=ref.dtype,
                            device=ref.device)
            return LSTMState(h, c)
        return h

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """x ``[B, input_size]`` → (``readout(h_top)`` ``[B, ...]``, new state)."""
        _check_input(x, self.core.input_size)
        seq = x.unsqueeze(self._time_dim)
        if isinstance(self.core, nn.LSTM):
            hx = (state.hidden.transpose(0, 1).contiguous(),
                  state.cell.transpose(0, 1).contiguous())
            out, (h, c) = self.core(seq, hx)
            new_state: State = LSTMState(h.transpose(0, 1), c.transpose(0, 1))
        else:
            out, h = self.core(seq, state.transpose(0, 1).contiguous())
            new_state = h.transpose(0, 1)
        return self.readout(out.select(self._time_dim, 0)), new_state


class TorchCell(nn.Module):
    """``nn.LSTMCell``, ``nn.GRUCell`` or ``nn.RNNCell`` as a machine.

    State: :class:`LSTMState` ``(hidden [B, H], cell [B, H])`` for an LSTM cell, one
    tensor ``[B, H]`` otherwise. Output: ``readout(h)`` (identity by default).
    """

    def __init__(self, module: nn.LSTMCell | nn.GRUCell | nn.RNNCell,
                 readout: nn.Module | None = None, *, distribution: DistributionArg = None):
        super().__init__()
        family = resolve_distribution(distribution)
        if family is not None:
            self.distribution = family
        self.core = module
        self.readout = readout if readout is not None else nn.Identity()

    def initial_state(self, batch_size: int) -> State:
        """Zeros, as the cells use when no state is given; ``[B, H]`` leaves."""
        ref = _reference(self.core)
        h = torch.zeros(batch_size, self.core.hidden_size, dtype=ref.dtype, device=ref.device)
        return LSTMState(h, torch.zeros_like(h)) if isinstance(self.core, nn.LSTMCell) else h

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """x ``[B, input_size]`` → (``readout(h)`` ``[B, ...]``, new state)."""
        _check_input(x, self.core.input_size)
        if isinstance(self.core, nn.LSTMCell):
            h, c = self.core(x, (state.hidden, state.cell))
            return self.readout(h), LSTMState(h, c)
        h = self.core(x, state)
        return self.readout(h), h


def wrap(module: nn.Module, readout: nn.Module | None = None, *,
         distribution: DistributionArg = None) -> TorchRNN | TorchCell:
    """Turn a PyTorch recurrent module into a :class:`~trajprobe.StateMachine`.

    Args:
        module: ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` (any ``num_layers``, ``batch_first``
            either way, not bidirectional) or ``nn.LSTMCell``, ``nn.GRUCell``, ``nn.RNNCell``.
        readout: a module applied to the top layer's hidden state ``[B, H]`` to give the
            output; identity if None.
        distribution: what the outputs ``y [B, K]`` parameterise: ``"bernoulli"`` (K = 1,
            a logit), ``"categorical"`` (K logits), ``"normal"`` (K = 2, mean and
            softplus⁻¹ of the standard deviation), or a callable ``y -> Distribution``.
            It becomes ``machine.distribution(y)``, used by log-loss training and by KL
            comparisons (:func:`trajprobe.compare.simulation`,
            :func:`~trajprobe.compare.behavioural_dissimilarity`). None: the machine has no
            ``distribution`` and comparisons fall back to a normalised output error.

    Example:
        >>> machine = wrap(nn.LSTM(3, 64, num_layers=2), readout=nn.Linear(64, 1),
        ...                distribution="bernoulli")
    """
    if readout is not None and not isinstance(readout, nn.Module):
        raise TypeError(f"readout: expected an nn.Module or None, got {type(readout).__name__}")
    if isinstance(module, _LAYERS):
        return TorchRNN(module, readout, distribution=distribution)
    if isinstance(module, _CELLS):
        return TorchCell(module, readout, distribution=distribution)
    raise TypeError(
        f"module: wrap() takes nn.LSTM, nn.GRU, nn.RNN or their *Cell versions, got "
        f"{type(module).__name__}. For your own architecture use "
        "trajprobe.adapters.TorchCore(module, initial_state), with forward(x, state) "
        "returning (y, state)."
    )
