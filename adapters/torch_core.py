"""Any module with ``forward(x, state) -> (y, state)`` as a state machine."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from trajprobe import machine as sm

__all__ = ["TorchCore"]


class TorchCore(nn.Module):
    """Wrap a user's recurrent module whose ``forward(x, state)`` returns ``(y, state)``.

    The state may be any pytree of tensors, batch leading on every leaf.

    Args:
        module: the recurrent core; ``module(x [B, ...], state) -> (y [B, ...], state)``.
        initial_state: either a callable ``batch_size -> state`` or a state pytree for a
            *single* episode, without the batch axis, which is repeated ``B`` times
            (e.g. ``torch.zeros(64)`` for a 64-unit state).

    Example:
        >>> machine = TorchCore(MyCore(), initial_state=lambda b: torch.zeros(b, 64))
    """

    def __init__(self, module: nn.Module, initial_state: Callable[[int], sm.State] | sm.State):
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
        if not callable(initial_state):
            leaves = sm.tree_leaves(initial_state)
            if not leaves or not all(isinstance(leaf, torch.Tensor) for leaf in leaves):
                raise TypeError(
                    "initial_state: expected a callable batch_size -> state or a pytree of "
                    f"tensors for one episode, got {initial_state!r}"
                )
        self.core = module
        self._initial_state = initial_state

    def initial_state(self, batch_size: int) -> sm.State:
        """s_0 for ``batch_size`` episodes: every leaf ``[B, ...]``."""
        if callable(self._initial_state):
            state = self._initial_state(batch_size)
        else:
            state = sm.tree_map(
                lambda leaf: leaf.unsqueeze(0).expand(batch_size, *leaf.shape).clone(),
                self._initial_state,
            )
        sm.check_state(state, batch_size, "initial_state")
        return state

    def step(self, x: torch.Tensor, state: sm.State) -> tuple[torch.Tensor, sm.State]:
        """One call of the wrapped module's forward."""
        result = self.core(x, state)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(
                f"module: {type(self.core).__name__}.forward(x, state) must return a pair "
                f"(y, state), got {type(result).__name__}"
            )
        return result
