"""What every task provides: sampled episodes (open loop) or an environment (closed loop).

A task knows its own input encoding, so the same inputs drive a meta-learner, a Bayes
reference machine and any other machine. Two kinds:

* :class:`Task` (open loop: regression, sequential prediction). ``sample`` draws
  episodes whose inputs do not depend on the machine's outputs.
* :class:`BanditTask` (closed loop). The next input depends on the action taken;
  :func:`trajprobe.rollout.rollout_env` runs a machine in it and records the stream,
  which can then be replayed open-loop through any other machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

__all__ = ["BanditTask", "Episodes", "Seed", "Task", "make_generator"]

Seed = int | torch.Generator | None
"""A seed: an int, a ``torch.Generator`` (used as is), or None (fresh entropy)."""


def make_generator(seed: Seed, device: torch.device | str | None = None) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` from an int seed, a generator, or None."""
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator(device=torch.device(device) if device is not None else "cpu")
    if seed is None:
        gen.seed()
    elif isinstance(seed, int) and not isinstance(seed, bool):
        gen.manual_seed(seed)
    else:
        raise TypeError(f"seed: expected an int, a torch.Generator or None, got {seed!r}")
    return gen


@dataclass(frozen=True)
class Episodes:
    """A batch of sampled episodes.

    Attributes:
        inputs: ``[E, T, input_size]`` the machine's inputs (the task's encoding).
        targets: ``[E, T, ...]`` what a learner should predict at step t (e.g. y_t).
        params: ground truth per episode, every value with ``E`` leading (e.g. ``"W"``
            ``[E, N_y, N_x]`` for linear regression).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    params: dict[str, torch.Tensor] = field(default_factory=dict)


@runtime_checkable
class Task(Protocol):
    """An open-loop task distribution."""

    input_size: int
    output_size: int

    def sample(
        self,
        n_episodes: int,
        n_steps: int,
        *,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Episodes:
        """Draw ``n_episodes`` episodes of ``n_steps`` steps; same seed, same episodes."""
        ...


@runtime_checkable
class BanditTask(Protocol):
    """A closed-loop task: a machine's outputs choose actions, which decide rewards.

    The machine's input at step t encodes what it has seen: the context of step t (if
    any), the previous action and the previous reward (zeros at t = 1).
    """

    input_size: int
    n_actions: int

    def sample_params(
        self, n_episodes: int, *, generator: torch.Generator, device: torch.device | str | None
    ) -> dict[str, torch.Tensor]:
        """Ground truth per episode (e.g. correct action per context), ``E`` leading."""
        ...

    def contexts(
        self, params: dict[str, torch.Tensor], n_steps: int, *, generator: torch.Generator
    ) -> torch.Tensor | None:
        """Context index ``[E, T]`` (long) shown at every step, or None without contexts."""
        ...

    def reward(
        self,
        params: dict[str, torch.Tensor],
        context: torch.Tensor | None,
        action: torch.Tensor,
        *,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Reward ``[E]`` for ``action`` ``[E]`` (long) taken in ``context`` ``[E]`` (or None)."""
        ...

    def encode(
        self,
        context: torch.Tensor | None,
        prev_action: torch.Tensor | None,
        prev_reward: torch.Tensor | None,
        *,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Machine input ``[E, input_size]``; ``prev_action``/``prev_reward`` None at t = 1."""
        ...

    def expected_reward(
        self, params: dict[str, torch.Tensor], context: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean reward of every action ``[E, n_actions]`` in ``context`` ``[E]`` (or None)."""
        ...
