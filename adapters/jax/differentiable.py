"""A JAX machine whose step torch autograd can differentiate, its backward pass by ``jax.vjp``.

:class:`~trajprobe.adapters.jax.JaxMachine` hands torch plain tensors (DLPack), so no
gradient flows back through it. :func:`differentiable` wraps it in a
``torch.autograd.Function``: the forward pass is the machine's jitted step, the backward
pass the vector-Jacobian product of the same pure step, ``jax.vjp``, jitted too. Then
everything in trajprobe that differentiates a step — :func:`trajprobe.fixed_points`,
:func:`trajprobe.linearise` — analyses a Haiku, Flax or Equinox model as it does a torch one.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import torch

from trajprobe.adapters.jax.bridge import to_jax, to_torch
from trajprobe.adapters.jax.machine import _MAX_PIECE, JaxMachine, _pad, _padded

__all__ = ["DifferentiableJaxMachine", "differentiable"]


class DifferentiableJaxMachine:
    """A :class:`JaxMachine` with gradients: the same ``initial_state``, ``step`` and
    ``output``, differentiable in the input and in every floating state leaf.

    Args:
        machine: the JAX machine (its parameters stay fixed; gradients reach x and the
            state only).

    Attributes:
        machine: the wrapped machine.
    """

    def __init__(self, machine: JaxMachine):
        if not isinstance(machine, JaxMachine):
            raise TypeError(f"machine: expected a JaxMachine, got {type(machine).__name__}")
        self.machine = machine
        self._vjp = jax.jit(self._pullback)
        if callable(getattr(machine, "distribution", None)):
            self.distribution = machine.distribution

    def initial_state(self, batch_size: int) -> Any:
        """s_0 for ``batch_size`` episodes: the wrapped machine's."""
        return self.machine.initial_state(batch_size)

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One step, x ``[B, ...]`` and s_{t-1} to (y_t, s_t), differentiable by autograd."""
        codec = self.machine._codec
        leaves = codec.torch_leaves(state, "state")
        y, *new = _JaxStep.apply(self, x, *leaves)
        return y, codec.unflatten(list(new))

    def output(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        """The output function, y_t = f(x_t, s_{t-1}), differentiable by autograd."""
        return self.step(x, state)[0]

    def __repr__(self) -> str:
        return f"differentiable({self.machine!r})"

    def _pullback(self, params, x, leaves, grad_y, grad_leaves):
        def step(x, leaves):
            return self.machine._traced_step(params, x, leaves)

        _, pullback = jax.vjp(step, x, leaves)
        return pullback((grad_y, grad_leaves))


def differentiable(machine: JaxMachine) -> DifferentiableJaxMachine:
    """``machine`` with a step torch autograd can differentiate (backward by ``jax.vjp``).

    Example:
        >>> points = trajprobe.fixed_points(differentiable(jax_machine), x, trace)
    """
    return DifferentiableJaxMachine(machine)


class _JaxStep(torch.autograd.Function):
    """(y, s_t leaves) = step(x, s_{t-1} leaves), with the backward pass on JAX."""

    @staticmethod
    def forward(ctx, owner: DifferentiableJaxMachine, x: torch.Tensor, *leaves: torch.Tensor):
        machine = owner.machine
        y, new = machine.step(x.detach(), machine._codec.unflatten([v.detach() for v in leaves]))
        ctx.owner = owner
        ctx.save_for_backward(x, *leaves)
        new_leaves = machine._codec.torch_leaves(new, "state")
        ctx.mark_non_differentiable(*[v for v in new_leaves if not v.is_floating_point()])
        return (y, *new_leaves)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor | None, *grad_leaves: torch.Tensor | None):
        owner = ctx.owner
        machine = owner.machine
        x, *leaves = ctx.saved_tensors
        dev = machine._jax_device
        if grad_y is None:
            y = machine.output(x.detach(), machine._codec.unflatten([v.detach() for v in leaves]))
            grad_y = torch.zeros_like(y)
        grads = [torch.zeros_like(v) if g is None else g for v, g in zip(leaves, grad_leaves,
                                                                           strict=True)]
        tensors = [x.detach(), *[v.detach() for v in leaves], grad_y, *grads]
        n = x.shape[0]
        if machine.pad_batches and n <= _MAX_PIECE:  # one compiled pullback per bucket
            tensors = [_pad(t, _padded(n)) if _padded(n) != n else t for t in tensors]
        k = len(leaves)
        xs, ls, gy, gs = tensors[0], tensors[1:1 + k], tensors[1 + k], tensors[2 + k:]
        gx, gl = owner._vjp(machine.params, to_jax(xs, dev), [to_jax(v, dev) for v in ls],
                            to_jax(gy.contiguous(), dev),
                            [_cotangent(g, v, dev) for g, v in zip(gs, ls, strict=True)])
        return (None, _grad(gx, x, n), *[_grad(g, v, n) for g, v in zip(gl, leaves, strict=True)])


def _cotangent(grad: torch.Tensor, leaf: torch.Tensor, device: jax.Device) -> jax.Array:
    if leaf.is_floating_point():
        return to_jax(grad.contiguous(), device)
    return np.zeros(tuple(leaf.shape), dtype=jax.dtypes.float0)


def _grad(grad: jax.Array, like: torch.Tensor, n: int) -> torch.Tensor | None:
    if not like.is_floating_point():
        return None
    return to_torch(grad, like.device, copy=True)[:n]
