"""The state-machine protocol and helpers for batched, pytree-valued states.

Every learner trajprobe measures is a Mealy machine (``docs/design.md``'s opening)::

    y_t = f(x_t, s_{t-1})      output function
    s_t = g(x_t, s_{t-1})      transition function

A machine exposes ``initial_state(batch_size)`` and ``step(x, state) -> (y, state)``.
The state is a pytree (tensor, tuple, named tuple, list or dict of tensors) whose every
leaf has the batch as its leading axis, ``[B, ...]``. Forking a state means indexing or
repeating along that axis; nothing is copied deeply and nothing is mutated in place.

**Optional hooks.** Everything else a machine may define, the library reads with
``getattr`` where it needs it, and a machine without it gets the default. This is the
whole list; a new ``getattr(machine, ...)`` in the library belongs in it.

| hook | signature | used by | default |
|---|---|---|---|
| `output` | `(x, s) -> y`: f alone | probe, interact, compare (1) | `step(x, s)[0]` |
| `output_many` | `(x [B, N, ...], s) -> [B, N, ...]` | probe, compare (2) | `output` per input |
| `state_vector` | `(s) -> [B, S]` | Trace, linearise, fixed points (3) | leaves, flattened |
| `state_from_vector` | `(v [B, S]) -> s` | linearise, fixed points (3) | split like s_0 |
| `distribution` | `(y) -> torch Distribution` | policy, compare, losses (4) | none (4) |
| `feedback` | attribute, `"next"` / `"same"` | interact (5) | `"next"` |
| `positive` | attribute, `[S]` booleans | compare's coordinates (6) | found from data |
| `unroll` | `(x [E, T, ...], s=None) -> (y [E, T, ...], s_T)` | training (7) | `step` loop |
| `lstm_core` | `() -> (pre, nn.LSTM, post)` | policy-gradient play (8) | `step`, `unroll` |
| `with_params` | `(params) -> machine` | linearise's error (9) | (a torch machine) |

1. :func:`output`: :func:`trajprobe.probe` evaluates f on the probe inputs from each
   s_{t-1}; ``interact`` acts through it for a ``feedback = "same"`` machine; the
   simulations of ``trajprobe.compare``; the reproduce targets' Learner probes.
2. ``output_many`` shares one state's work across its N probe inputs (a transformer's
   cache, a network's read-in); compare's constant-state simulation uses it too. Without it
   every (state, input) item is a row of one batched ``output``.
3. :func:`state_vector` / :func:`state_from_vector`: ``Trace.state_vectors`` and
   ``to_dataset``, :func:`trajprobe.linearise`, :func:`trajprobe.fixed_points`,
   compare's simulation maps and outputs, the policy-gradient baseline. The default
   concatenates the flattened leaves in pytree order (an LSTM: all h, then all c) and
   splits a vector along the leaves of ``initial_state(1)`` (shapes, dtype, device).
4. ``distribution``: outputs are the parameters of a predictive distribution.
   :func:`default_policy` (``interact`` and ``measure`` on environments), compare's KL
   and D_o on distributions, ``trajprobe.sufficiency``, ``trajprobe.posterior_error``,
   training's ``log_loss`` and the JAX ``differentiable`` wrapper read it. Without it
   the outputs are the prediction and a policy is softmax(y) (:func:`logits_policy`);
   ``log_loss`` and ``posterior_error`` refuse such a machine with an error that says so.
5. ``feedback``: ``"next"``, a_t and r_t enter the input of step t+1 (a Meta-Learner, a
   Bayes agent); ``"same"``, the machine acts from s_{t-1} and then updates on what it
   just did (an SGD Learner: ``adapters.Learner``, ``adapters.BanditLearner``).
   ``interact(feedback=...)`` overrides it.
6. ``positive``: the state entries that are positive by construction (a posterior's
   counts, ``reference_models.conjugate``); compare's coordinates take their log.
   Undeclared, an entry positive on every fitting state with max / min ≥ 100 is logged.
7. ``unroll``: whole sequences at once, differentiable in the parameters
   (``trajprobe.apps.training.losses.unroll``: the supervised loss and the
   policy-gradient replay); the default steps in a Python loop, to the same numbers.
8. ``lstm_core``: y = post(h), (h, c) = LSTM(pre(x)) with a one-layer ``nn.LSTM``:
   ``trajprobe.apps.training.closed_loop.play`` steps it with fused arithmetic and
   keeps the gates for the backward pass; any other machine is stepped by ``step`` and
   replayed by ``unroll``.
9. ``with_params`` marks a JAX machine: ``linearise``'s error for a step outside
   torch's autograd then names ``adapters.jax.differentiable``.

Torch modules are found, for evaluation mode (``trajprobe.guard.eval_mode``), on the
machine when it is an ``nn.Module``, else among its attributes (one level).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch.utils import _pytree as pytree

from trajprobe.validation import check_positive_int

__all__ = [
    "LSTMState",
    "Policy",
    "State",
    "StateMachine",
    "batch_size_of",
    "check_finite",
    "check_state",
    "concat",
    "default_policy",
    "fork",
    "index",
    "logits_policy",
    "machine_device",
    "output",
    "repeat",
    "stack",
    "state_from_vector",
    "state_vector",
    "tree_leaves",
    "tree_map",
]

State = Any
"""A pytree of tensors, batch leading on every leaf."""


class LSTMState(NamedTuple):
    """An LSTM's state, batch leading: ``hidden`` and ``cell``.

    Both are ``[B, H]`` for one layer (an ``nn.LSTMCell``, the models' LSTMs) and
    ``[B, L, H]`` for L stacked layers (:class:`~trajprobe.adapters.TorchRNN`; ``hidden``
    has the projection size when the LSTM has ``proj_size > 0``).
    """

    hidden: torch.Tensor
    cell: torch.Tensor


@runtime_checkable
class StateMachine(Protocol):
    """A recurrent learner: ``initial_state`` and ``step``.

    The optional hooks (``output``, ``output_many``, ``state_vector``,
    ``state_from_vector``, ``distribution``, ``feedback``, ``positive``, ``unroll``,
    ``lstm_core``, ``with_params``), who uses each and its default: the table in
    :mod:`trajprobe.machine`'s module docstring.
    """

    def initial_state(self, batch_size: int) -> State:
        """State s_0 for ``batch_size`` independent episodes; every leaf ``[B, ...]``."""
        ...

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One step: input ``x`` ``[B, ...]`` and s_{t-1} to output y_t ``[B, ...]`` and s_t."""
        ...


def tree_map(fn: Callable[[torch.Tensor], torch.Tensor], state: State) -> State:
    """Apply ``fn`` to every leaf of ``state``, keeping its structure."""
    return pytree.tree_map(fn, state)


def tree_leaves(state: State) -> list[torch.Tensor]:
    """The leaves of ``state`` in a fixed (flattening) order."""
    return pytree.tree_leaves(state)


def _check_leaves(state: State, name: str) -> list[torch.Tensor]:
    leaves = tree_leaves(state)
    if not leaves:
        raise ValueError(f"{name}: expected a state with at least one tensor leaf, got {state!r}")
    for leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            raise TypeError(
                f"{name}: expected every state leaf to be a torch.Tensor, got {type(leaf).__name__}"
            )
        if leaf.dim() == 0:
            raise ValueError(f"{name}: state leaves need a leading batch axis, got a scalar")
    return leaves


def batch_size_of(state: State, name: str = "state") -> int:
    """The common leading (batch) size of every leaf; ValueError if the leaves disagree."""
    sizes = {leaf.shape[0] for leaf in _check_leaves(state, name)}
    if len(sizes) != 1:
        shapes = [tuple(leaf.shape) for leaf in tree_leaves(state)]
        raise ValueError(f"{name}: leaves disagree on the batch size; leaf shapes {shapes}")
    return sizes.pop()


def check_finite(state: State, name: str = "state") -> None:
    """Raise ValueError if any leaf holds NaN or infinity."""
    for i, leaf in enumerate(_check_leaves(state, name)):
        if leaf.is_floating_point() and not bool(torch.isfinite(leaf).all()):
            raise ValueError(f"{name}: leaf {i} of shape {tuple(leaf.shape)} has NaN or inf")


def check_state(state: State, batch_size: int, name: str = "state") -> None:
    """Raise ValueError unless every leaf is a finite tensor with batch ``batch_size``."""
    given = batch_size_of(state, name)
    if given != batch_size:
        hint = ""
        if any(leaf.dim() >= 2 and leaf.shape[1] == batch_size for leaf in tree_leaves(state)):
            hint = ("; a leaf has the batch second, as in torch's [layers, batch, hidden]: "
                    "trajprobe states have the batch leading, [batch, layers, hidden] "
                    "(e.g. h.transpose(0, 1))")
        raise ValueError(f"{name}: expected batch size {batch_size}, got {given}{hint}")
    check_finite(state, name)


def index(state: State, idx: torch.Tensor | slice | int) -> State:
    """Select episodes along the batch axis: ``leaf[idx]`` on every leaf.

    Args:
        state: leaves ``[B, ...]``.
        idx: an integer tensor ``[B']``, a slice, or a boolean mask ``[B]``; an int keeps
            the axis (``[1, ...]``).
    """
    if isinstance(idx, int):
        idx = slice(idx, idx + 1 if idx != -1 else None)
    return tree_map(lambda leaf: leaf[idx], state)


def repeat(state: State, n: int) -> State:
    """Fork every episode ``n`` times: ``[B, ...] -> [B * n, ...]``, copies adjacent.

    Row ``b * n + k`` is the k-th copy of episode ``b``.
    """
    check_positive_int(n, "n")
    return tree_map(lambda leaf: leaf.repeat_interleave(n, dim=0), state)


def fork(state: State, n: int, idx: torch.Tensor | slice | None = None) -> State:
    """Select episodes ``idx`` (all if None) and fork each ``n`` times; never mutates."""
    if idx is not None:
        state = index(state, idx)
    return repeat(state, n)


def stack(states: Sequence[State], dim: int = 1) -> State:
    """Stack states over time: a sequence of ``[B, ...]`` states to ``[B, T, ...]`` leaves."""
    if not states:
        raise ValueError("states: expected at least one state to stack, got none")
    leaves = [tree_leaves(s) for s in states]
    spec = pytree.tree_structure(states[0])
    stacked = [torch.stack(group, dim=dim) for group in zip(*leaves, strict=True)]
    return pytree.tree_unflatten(stacked, spec)


def concat(states: Sequence[State], dim: int = 0) -> State:
    """Concatenate states along the batch axis: ``[B_i, ...]`` to ``[sum B_i, ...]``."""
    if not states:
        raise ValueError("states: expected at least one state to concatenate, got none")
    leaves = [tree_leaves(s) for s in states]
    spec = pytree.tree_structure(states[0])
    return pytree.tree_unflatten([torch.cat(g, dim=dim) for g in zip(*leaves, strict=True)], spec)


def _default_state_vector(state: State) -> torch.Tensor:
    leaves = _check_leaves(state, "state")
    batch = batch_size_of(state)
    return torch.cat([leaf.reshape(batch, -1) for leaf in leaves], dim=1)


def state_vector(machine: StateMachine, state: State) -> torch.Tensor:
    """Flatten a state to vectors ``[B, S]``.

    Uses ``machine.state_vector`` when defined; otherwise concatenates the flattened
    leaves in pytree order (for an LSTM: all h, then all c).
    """
    custom = getattr(machine, "state_vector", None)
    if callable(custom):
        return custom(state)
    return _default_state_vector(state)


def state_from_vector(machine: StateMachine, vector: torch.Tensor) -> State:
    """Inverse of :func:`state_vector`: vectors ``[B, S]`` back to a state pytree.

    Uses ``machine.state_from_vector`` when defined; otherwise splits ``vector`` along the
    leaves of ``machine.initial_state`` (shapes, dtypes and device taken from there).
    """
    custom = getattr(machine, "state_from_vector", None)
    if callable(custom):
        return custom(vector)
    if vector.dim() != 2:
        raise ValueError(f"vector: expected shape [batch, S], got {tuple(vector.shape)}")
    template = machine.initial_state(1)
    leaves, spec = pytree.tree_flatten(template)
    sizes = [math.prod(leaf.shape[1:]) for leaf in leaves]
    if sum(sizes) != vector.shape[1]:
        raise ValueError(
            f"vector: expected {sum(sizes)} state features for this machine, "
            f"got {vector.shape[1]}"
        )
    parts = torch.split(vector, sizes, dim=1)
    out = [
        part.reshape(vector.shape[0], *leaf.shape[1:]).to(dtype=leaf.dtype, device=leaf.device)
        for part, leaf in zip(parts, leaves, strict=True)
    ]
    return pytree.tree_unflatten(out, spec)


def output(machine: StateMachine, x: torch.Tensor, state: State) -> torch.Tensor:
    """The output function f(x, s): ``machine.output`` if defined, else ``step(x, s)[0]``."""
    custom = getattr(machine, "output", None)
    if callable(custom):
        return custom(x, state)
    return machine.step(x, state)[0]


def machine_device(machine: StateMachine) -> torch.device:
    """The device a machine computes on: that of its initial state."""
    return tree_leaves(machine.initial_state(1))[0].device


def machine_dtype(machine: StateMachine) -> torch.dtype:
    """The floating dtype of a machine's initial state (its first floating leaf)."""
    for leaf in tree_leaves(machine.initial_state(1)):
        if leaf.is_floating_point():
            return leaf.dtype
    return torch.get_default_dtype()


Policy = Callable[[torch.Tensor], "torch.distributions.Distribution | torch.Tensor"]
"""Outputs ``[..., A]`` to a categorical distribution (anything with ``.probs``) or to
probabilities ``[..., A]``."""


def default_policy(machine: StateMachine) -> Policy:
    """``machine.distribution`` when the machine has one, else softmax of its outputs."""
    custom = getattr(machine, "distribution", None)
    return custom if callable(custom) else logits_policy


def logits_policy(y: torch.Tensor) -> torch.distributions.Categorical:
    """The policy of a network whose outputs ``[..., A]`` are the logits: Categorical(logits)."""
    return torch.distributions.Categorical(logits=y)
