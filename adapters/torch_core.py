"""Any module with ``forward(x, state) -> (y, state)`` as a state machine."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import distributions as D
from torch import nn

from trajprobe import machine as sm
from trajprobe.heads import resolve_head

__all__ = ["DistributionArg", "TorchCore", "resolve_distribution"]

DistributionArg = str | Callable[[torch.Tensor], D.Distribution] | None
"""What ``distribution=`` accepts: a family name, a callable ``y -> Distribution`` or None."""


def resolve_distribution(distribution: DistributionArg
                         ) -> Callable[[torch.Tensor], D.Distribution] | None:
    """The callable ``y [..., K] -> Distribution`` for ``distribution=`` (None stays None).

    Names are the heads of :data:`trajprobe.heads.HEADS`: ``"bernoulli"`` (K = 1, the
    logit of p(x = 1)), ``"categorical"`` (K logits), ``"normal"`` (K = 2: mean and
    softplus⁻¹ of the standard deviation), ``"lomax"``, ``"student_t"``; or any callable
    returning a ``torch.distributions.Distribution`` whose batch shape is ``y``'s leading
    shape.
    """
    return resolve_head(distribution)


class TorchCore(nn.Module):
    """Wrap a user's recurrent module whose ``forward(x, state)`` returns ``(y, state)``.

    The state may be any pytree of tensors, batch leading on every leaf.

    Args:
        module: the recurrent core; ``module(x [B, ...], state) -> (y [B, ...], state)``.
        initial_state: either a callable ``batch_size -> state`` or a state pytree for a
            *single* episode, without the batch axis, which is repeated ``B`` times
            (e.g. ``torch.zeros(64)`` for a 64-unit state).
        distribution: the predictive distribution the outputs parameterise, for log-loss
            training and KL comparisons: ``"bernoulli"``, ``"categorical"``, ``"normal"``
            (see :func:`resolve_distribution`) or a callable ``y -> Distribution``. With
            None the machine has no ``distribution`` attribute, and comparisons use a
            normalised output error instead of KL.

    Example:
        >>> machine = TorchCore(MyCore(), initial_state=lambda b: torch.zeros(b, 64),
        ...                     distribution="bernoulli")
    """

    def __init__(self, module: nn.Module, initial_state: Callable[[int], sm.State] | sm.State,
                 *, distribution: DistributionArg = None):
        super().__init__()
        family = resolve_distribution(distribution)
        if family is not None:
            self.distribution = family
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
