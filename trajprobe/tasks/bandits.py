"""Contextual bandits with one correct action per context (Rabinowitz 2019 §5).

Encoding (keep it): the input at step t is ``[one-hot c_t (C), one-hot a_{t-1} (A),
r_{t-1} (1)]`` with a_0 = the zero vector and r_0 = 0; the machine's outputs are logits
over the A actions. Taking the correct action pays 1 with probability ``p_correct``,
any other action with probability ``p_incorrect``. The context shown at every step is
drawn uniformly at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional

from trajprobe.tasks._sampling import rand
from trajprobe.tasks.base import Episodes
from trajprobe.validation import as_tensor, check_positive_int

__all__ = ["ContextualBandit"]


@dataclass(frozen=True)
class ContextualBandit:
    """A :class:`~trajprobe.tasks.BanditTask` with C contexts and A actions.

    Args:
        n_contexts: C (paper: 5).
        n_actions: A (paper: 5).
        p_correct: reward probability of the correct action (paper: 0.8).
        p_incorrect: reward probability of any other action (paper: 0.2).
        conflicting: False: the correct action of every context is drawn independently
            and uniformly per episode (the meta-learner's distribution, §5.2.1). True:
            every context has a unique correct action (a random injection of contexts
            into actions, §5.1.1), which needs C <= A.

    ``params``: ``"correct"`` ``[E, C]`` (long), the correct action of every context.
    """

    n_contexts: int = 5
    n_actions: int = 5
    p_correct: float = 0.8
    p_incorrect: float = 0.2
    conflicting: bool = False

    def __post_init__(self) -> None:
        check_positive_int(self.n_contexts, "n_contexts")
        check_positive_int(self.n_actions, "n_actions")
        for name in ("p_correct", "p_incorrect"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {p!r}")
        if self.conflicting and self.n_contexts > self.n_actions:
            raise ValueError(
                f"n_contexts: a conflicting bandit needs n_contexts <= n_actions = "
                f"{self.n_actions}, got {self.n_contexts}"
            )

    @property
    def input_size(self) -> int:
        """C + A + 1."""
        return self.n_contexts + self.n_actions + 1

    @property
    def output_size(self) -> int:
        """A logits."""
        return self.n_actions

    def sample_params(
        self,
        n_episodes: int,
        *,
        generator: torch.Generator,
        device: torch.device | str | None = None,
    ) -> dict[str, torch.Tensor]:
        """``{"correct": [E, C] long}``: independent uniform draws, or a random injection."""
        check_positive_int(n_episodes, "n_episodes")
        shape = (n_episodes, self.n_actions if self.conflicting else self.n_contexts)
        u = rand(shape, generator, device=device, dtype=torch.float64)
        if self.conflicting:
            correct = u.argsort(dim=1)[:, : self.n_contexts]
        else:
            correct = (u * self.n_actions).long().clamp_max(self.n_actions - 1)
        return {"correct": correct}

    def contexts(
        self, params: dict[str, torch.Tensor], n_steps: int, *, generator: torch.Generator
    ) -> torch.Tensor:
        """Context shown at every step ``[E, T]`` (long), uniform over the C contexts."""
        check_positive_int(n_steps, "n_steps")
        correct = params["correct"]
        u = rand((correct.shape[0], n_steps), generator, device=correct.device,
                 dtype=torch.float64)
        return (u * self.n_contexts).long().clamp_max(self.n_contexts - 1)

    def expected_reward(
        self, params: dict[str, torch.Tensor], context: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean reward of every action ``[E, A]`` in ``context`` ``[E]`` (float64)."""
        if context is None:
            raise ValueError("context: a contextual bandit needs the context index [E], got None")
        correct = params["correct"]
        best = correct.gather(1, context.long().reshape(-1, 1))
        hit = torch.arange(self.n_actions, device=correct.device) == best
        return torch.where(hit, self.p_correct, self.p_incorrect).to(torch.float64)

    def reward(
        self,
        params: dict[str, torch.Tensor],
        context: torch.Tensor | None,
        action: torch.Tensor,
        *,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Bernoulli reward ``[E]`` (float64, 0 or 1) for ``action`` ``[E]`` in ``context``."""
        p = self.expected_reward(params, context).gather(1, action.long().reshape(-1, 1))[:, 0]
        u = rand(tuple(p.shape), generator, device=p.device, dtype=torch.float64)
        return (u < p).to(torch.float64)

    def encode(
        self,
        context: torch.Tensor | None,
        prev_action: torch.Tensor | None,
        prev_reward: torch.Tensor | None,
        *,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Input ``[E, C + A + 1]``; ``prev_action``/``prev_reward`` None (zeros) at t = 1."""
        if context is None:
            raise ValueError("context: a contextual bandit needs the context index [E], got None")
        context = context.long()
        one_hot_c = functional.one_hot(context, self.n_contexts).to(dtype)
        if prev_action is None:
            one_hot_a = torch.zeros(*context.shape, self.n_actions, dtype=dtype,
                                    device=context.device)
        else:
            one_hot_a = functional.one_hot(prev_action.long(), self.n_actions).to(dtype)
        if prev_reward is None:
            reward = torch.zeros(*context.shape, 1, dtype=dtype, device=context.device)
        else:
            reward = prev_reward.to(dtype).unsqueeze(-1)
        return torch.cat([one_hot_c, one_hot_a, reward], dim=-1)

    def probe_inputs(self, inputs: torch.Tensor | Episodes) -> torch.Tensor:
        """Every context at every step: ``[E, T, C, C + A + 1]`` (§5.2.2).

        Probe c at step t shows context c and keeps a_{t-1}, r_{t-1} from the history.
        """
        if isinstance(inputs, Episodes):
            inputs = inputs.inputs
        inputs = as_tensor(inputs, "inputs")
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise ValueError(
                f"inputs: expected shape [E, T, {self.input_size}], got {tuple(inputs.shape)}"
            )
        n_episodes, n_steps = inputs.shape[:2]
        c = self.n_contexts
        eye = torch.eye(c, dtype=inputs.dtype, device=inputs.device)
        history = inputs[:, :, None, c:].expand(-1, -1, c, -1)
        return torch.cat([eye.expand(n_episodes, n_steps, c, c), history], dim=-1)
