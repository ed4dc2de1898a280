"""PyTorch's recurrent modules (nn.LSTM/GRU/RNN and their cells) as state machines."""

from __future__ import annotations

import torch
from torch import nn

from trajprobe.adapters.torch_core import DistributionArg, resolve_distribution
from trajprobe.machine import LSTMState, State, tree_map

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

    def output_many(self, x: torch.Tensor, state: State) -> torch.Tensor:
        """Outputs for N inputs from each state: x ``[B, N, input_size]`` → ``[B, N, ...]``.

        Equals ``step`` on each (state, input) pair, but every layer's recurrent term
        W_hh h_{t-1} + b is computed once per state and shared by its N inputs
        (``docs/design.md``, "The engine"; used by :func:`trajprobe.probe`).
        """
        if x.dim() != 3 or x.shape[2] != self.core.input_size:
            raise ValueError(
                f"x: expected shape [batch, N, {self.core.input_size}], got {tuple(x.shape)}"
            )
        if self.core.training and self.core.dropout > 0:  # random masks: no sharing
            return _output_many_by_forking(self, x, state)
        blocks = _cache_blocks(self.output_many, x, state, self.core.hidden_size)
        if blocks is not None:
            return blocks
        lstm = isinstance(self.core, nn.LSTM)
        hidden = state.hidden if lstm else state
        layer_input = x
        for layer in range(self.core.num_layers):
            weights = _layer_weights(self.core, layer)
            h_new = _cell_many(self.core, weights, layer_input, hidden[:, layer],
                               state.cell[:, layer] if lstm else None)
            layer_input = h_new
        return self.readout(layer_input)


_BLOCK_BYTES = 2**20
"""Gate bytes one block of ``output_many`` may use: elementwise gate maths stays in cache."""


def _cache_blocks(fn, x: torch.Tensor, state: State, hidden_size: int) -> torch.Tensor | None:
    """``fn`` over blocks of states whose gates fit ``_BLOCK_BYTES``; None if one block does.

    Elementwise gate maths is memory-bound on CPU: blocks of ~1 MiB of gates keep it in
    the core's cache (about twice as fast as one big batch for H = 64).
    """
    batch, n = x.shape[:2]
    per_state = n * 4 * hidden_size * x.element_size()
    size = max(1, _BLOCK_BYTES // per_state)
    if batch <= size:
        return None
    parts = []
    for start in range(0, batch, size):
        rows = slice(start, start + size)
        parts.append(fn(x[rows], tree_map(lambda leaf, rows=rows: leaf[rows], state)))
    return torch.cat(parts)


def _output_many_by_forking(machine, x: torch.Tensor, state: State) -> torch.Tensor:
    """``output_many`` the plain way: fork each state N times and step the flat batch."""
    batch, n = x.shape[:2]
    forked = tree_map(lambda leaf: leaf.repeat_interleave(n, dim=0), state)
    y = machine.step(x.flatten(0, 1), forked)[0]
    return y.reshape(batch, n, *y.shape[1:])


def _layer_weights(module: nn.Module, layer: int | None) -> dict[str, torch.Tensor | None]:
    """A layer's ``weight_ih, weight_hh, bias_ih, bias_hh, weight_hr`` (None when absent)."""
    suffix = "" if layer is None else f"_l{layer}"
    return {name: getattr(module, f"{name}{suffix}", None)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")}


def _cell_many(
    module: nn.Module,
    w: dict[str, torch.Tensor | None],
    x: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor | None,
) -> torch.Tensor:
    """One LSTM/GRU/RNN layer on inputs ``x [B, N, I]`` from one state per row (``h, c [B, H]``).

    The recurrent term is computed once per row and broadcast over the N inputs; returns
    the new hidden states ``[B, N, H]``. An LSTM's tanh are taken as 2σ(2u) - 1 (one
    contiguous sigmoid over all four gates: on CPU tanh costs several times a sigmoid);
    equal to ``nn.LSTM`` to float rounding.
    """
    w_ih, w_hh, b_ih, b_hh = w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"]
    if isinstance(module, nn.LSTM | nn.LSTMCell):
        size = c.shape[-1]
        # Gate order i, f, g, o; the g rows doubled so that tanh(u) = 2σ(2u) - 1.
        scale = torch.ones(4 * size, dtype=w_ih.dtype, device=w_ih.device)
        scale[2 * size: 3 * size] = 2
        recurrent = h @ (w_hh * scale[:, None]).T  # [B, 4H]: once per state
        bias = (b_ih + b_hh) * scale if b_ih is not None else None
        if bias is not None:
            recurrent = recurrent + bias
        gates = torch.matmul(x, (w_ih * scale[:, None]).T)  # [B, N, 4H]
        gates = gates.add_(recurrent.unsqueeze(1)).sigmoid_()
        i, f, g, o = gates.split(size, dim=-1)
        cell = torch.addcmul(f * c.unsqueeze(1), i, g.mul_(2).sub_(1))
        squashed = cell.mul_(2).sigmoid_()
        h_new = torch.addcmul(o.neg(), o, squashed, value=2)  # o * tanh(cell)
        return h_new @ w["weight_hr"].T if w["weight_hr"] is not None else h_new
    recurrent = h @ w_hh.T  # [B, G]: once per state
    if b_hh is not None:
        recurrent = recurrent + b_hh
    gates = torch.matmul(x, w_ih.T)  # [B, N, G]
    if b_ih is not None:
        gates = gates.add_(b_ih)
    if isinstance(module, nn.GRU | nn.GRUCell):
        size = h.shape[-1]
        gi_r, gi_z, gi_n = gates.split(size, dim=-1)
        gh_r, gh_z, gh_n = recurrent.unsqueeze(1).split(size, dim=-1)
        r = (gi_r + gh_r).sigmoid_()
        z = (gi_z + gh_z).sigmoid_()
        n = torch.addcmul(gi_n, r, gh_n).tanh_()
        return torch.lerp(n, h.unsqueeze(1).expand_as(n), z)
    gates = gates.add_(recurrent.unsqueeze(1))
    return gates.tanh_() if module.nonlinearity == "tanh" else gates.relu_()


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

    def output_many(self, x: torch.Tensor, state: State) -> torch.Tensor:
        """Outputs for N inputs from each state: x ``[B, N, input_size]`` → ``[B, N, ...]``.

        Equals ``step`` on each (state, input) pair; the recurrent term W_hh h + b is
        computed once per state and shared by its N inputs.
        """
        if x.dim() != 3 or x.shape[2] != self.core.input_size:
            raise ValueError(
                f"x: expected shape [batch, N, {self.core.input_size}], got {tuple(x.shape)}"
            )
        blocks = _cache_blocks(self.output_many, x, state, self.core.hidden_size)
        if blocks is not None:
            return blocks
        lstm = isinstance(self.core, nn.LSTMCell)
        h = _cell_many(self.core, _layer_weights(self.core, None), x,
                       state.hidden if lstm else state, state.cell if lstm else None)
        return self.readout(h)


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
