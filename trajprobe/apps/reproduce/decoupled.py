"""The decoupled Meta-Learner: one single-context machine per context (Rabinowitz 2019 §5.2.3).

In the decoupled condition of Fig. 13 each context is learned by a separate Meta-Learner
outer-trained on a 1-context bandit. :class:`DecoupledMachine` runs C copies of such a
machine as one machine of the C-context task, so the same probes (``context_dynamics``)
measure it exactly as they measure the coupled Meta-Learner:

* input x_t = ``[one-hot c_t (C), one-hot a_{t-1} (A), r_{t-1} (1)]`` (the C-context
  encoding of :class:`~trajprobe.tasks.ContextualBandit`);
* (a_{t-1}, r_{t-1}) belong to the previous context c_{t-1}: they are held for that
  context's copy and delivered with its next step;
* copy c_t steps on its own 1-context input ``[1, one-hot a', r']`` where (a', r') is
  the last action and reward *in context c_t* (zeros the first time), and its output is
  the machine's output y_t; every other copy is left untouched.

Copy c therefore sees exactly the sub-sequence of context c, as a separately run
single-context machine would.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch.utils import _pytree as pytree

from trajprobe import machine as sm
from trajprobe.validation import check_positive_int

__all__ = ["DecoupledMachine", "DecoupledState"]


class DecoupledState(NamedTuple):
    """State of :class:`DecoupledMachine`.

    Attributes:
        cores: the single-context machine's state with leaves ``[B, C, ...]`` (copy c at
            index c of the second axis).
        pending: ``[B, C, A + 1]`` the last (one-hot action, reward) of every context, fed to
            that context's copy on its next step.
        prev_context: ``[B, C]`` one-hot c_{t-1} (zeros before the first step).
    """

    cores: Any
    pending: torch.Tensor
    prev_context: torch.Tensor


class DecoupledMachine:
    """C independent copies of a 1-context bandit machine, as one C-context machine.

    Args:
        core: a machine of the 1-context bandit (input ``[B, 1 + A + 1]``, output ``[B, ...]``),
            e.g. the Meta-Learner of ``contextual-bandits/meta-learner-decoupled`` or
            ``ContextualBanditPosterior(1, A)``.
        n_contexts: C, the number of copies.
        n_actions: A.

    Example:
        >>> single = recipes.get("contextual-bandits/meta-learner-decoupled").build_model(0)
        >>> machine = DecoupledMachine(single, n_contexts=5, n_actions=5)
        >>> ds = trajprobe.context_dynamics(machine, ContextualBandit(5, 5), policy=...)
    """

    def __init__(self, core: sm.StateMachine, n_contexts: int, n_actions: int):
        if not isinstance(core, sm.StateMachine):
            raise TypeError("core: expected a StateMachine (initial_state, step), got "
                            f"{type(core).__name__}")
        self.core = core
        self.n_contexts = check_positive_int(n_contexts, "n_contexts")
        self.n_actions = check_positive_int(n_actions, "n_actions")
        leaf = next((x for x in sm.tree_leaves(core.initial_state(1)) if x.is_floating_point()),
                    None)
        self._dtype = leaf.dtype if leaf is not None else torch.get_default_dtype()
        self._device = leaf.device if leaf is not None else torch.device("cpu")

    @property
    def input_size(self) -> int:
        """C + A + 1."""
        return self.n_contexts + self.n_actions + 1

    def initial_state(self, batch_size: int) -> DecoupledState:
        """Every copy at its own initial state; nothing pending; no previous context."""
        c = self.n_contexts
        single = self.core.initial_state(batch_size)
        cores = sm.tree_map(lambda x: x.unsqueeze(1).expand(-1, c, *x.shape[1:]).clone(), single)
        pending = torch.zeros(batch_size, c, self.n_actions + 1, dtype=self._dtype,
                              device=self._device)
        prev = torch.zeros(batch_size, c, dtype=self._dtype, device=self._device)
        return DecoupledState(cores, pending, prev)

    def step(self, x: torch.Tensor, state: DecoupledState) -> tuple[torch.Tensor, DecoupledState]:
        """x ``[B, C + A + 1]`` → (y of copy c_t ``[B, ...]``, new state)."""
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x: expected shape [batch, {self.input_size}], got "
                             f"{tuple(x.shape)}")
        cores, pending, prev = state
        batch = x.shape[0]
        c = self.n_contexts
        x = x.to(device=pending.device, dtype=pending.dtype)
        history = x[:, c:]  # (a_{t-1}, r_{t-1}), which belong to c_{t-1}
        pending = torch.where(prev[:, :, None] > 0.5, history[:, None, :], pending)
        which = x[:, :c].argmax(dim=1)  # c_t
        rows = torch.arange(batch, device=x.device)
        ones = torch.ones(batch, 1, dtype=x.dtype, device=x.device)
        sub_x = torch.cat([ones, pending[rows, which]], dim=1)
        y, new_core = self.core.step(sub_x, sm.tree_map(lambda leaf: leaf[rows, which], cores))
        chosen = torch.nn.functional.one_hot(which, c).to(torch.bool)
        old_leaves, spec = pytree.tree_flatten(cores)
        new_leaves = [
            torch.where(chosen.reshape(batch, c, *([1] * (old.dim() - 2))),
                        new.unsqueeze(1).to(old.dtype), old)
            for old, new in zip(old_leaves, sm.tree_leaves(new_core), strict=True)
        ]
        cores = pytree.tree_unflatten(new_leaves, spec)
        return y, DecoupledState(cores, pending, chosen.to(pending.dtype))

    def distribution(self, y: torch.Tensor) -> torch.distributions.Distribution:
        """The core's ``distribution(y)`` if it has one, else ``Categorical(logits=y)``."""
        custom = getattr(self.core, "distribution", None)
        if callable(custom):
            try:
                return custom(y)
            except ValueError:  # e.g. an LSTM built without a predictive family
                pass
        return torch.distributions.Categorical(logits=y)
