"""Context-conditional policies from probed outputs (Rabinowitz 2019 §5, eq. 12–13).

Pure functions on tensors; the ordering of contexts (eq. 14) is in
:mod:`trajprobe.dynamics`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "correct_action_probability",
    "expected_context_reward",
    "expected_reward",
    "policy_probabilities",
]


def policy_probabilities(
    outputs: torch.Tensor,
    distribution: Callable[[torch.Tensor], torch.distributions.Distribution | torch.Tensor]
    | None = None,
) -> torch.Tensor:
    """Action probabilities ``[..., A]`` from outputs ``[..., A]``.

    Uses ``distribution(outputs).probs`` when given (e.g. a machine's ``distribution``
    method; it must be categorical, or return the probabilities themselves), else
    ``softmax(outputs)`` (outputs are logits).
    """
    if distribution is None:
        return torch.softmax(outputs, dim=-1)
    dist = distribution(outputs)
    probs = dist if isinstance(dist, torch.Tensor) else getattr(dist, "probs", None)
    if not isinstance(probs, torch.Tensor):
        raise TypeError(
            f"distribution: expected a categorical distribution with .probs, "
            f"got {type(dist).__name__}"
        )
    return probs


def correct_action_probability(probs: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """q_c(t) = π_t(a*(c) | c) (§5.1.2).

    Args:
        probs: ``[E, T, C, A]``, the policy at step t when shown context c.
        correct: ``[E, C]`` (long), the correct action a*(c) per episode.

    Returns:
        q ``[E, T, C]``.
    """
    if probs.dim() != 4 or correct.dim() != 2 or tuple(correct.shape) != (
        probs.shape[0], probs.shape[2]
    ):
        raise ValueError(
            f"correct: expected shape [E, C] = [{probs.shape[0] if probs.dim() else '?'}, "
            f"{probs.shape[2] if probs.dim() > 2 else '?'}] for probs [E, T, C, A] "
            f"{tuple(probs.shape)}, got {tuple(correct.shape)}"
        )
    index = correct.long()[:, None, :, None].expand(-1, probs.shape[1], -1, 1)
    return probs.gather(-1, index)[..., 0]


def expected_context_reward(
    q: torch.Tensor, p_correct: float, p_incorrect: float
) -> torch.Tensor:
    """E[r_c(t)] = q_c(t) p_correct + (1 - q_c(t)) p_incorrect (eq. 12), same shape as q."""
    return q * p_correct + (1 - q) * p_incorrect


def expected_reward(q: torch.Tensor, p_correct: float, p_incorrect: float) -> torch.Tensor:
    """E[r(t)] = (1/C) Σ_c E[r_c(t)] (eq. 13): q ``[..., C]`` to ``[...]``."""
    return expected_context_reward(q, p_correct, p_incorrect).mean(dim=-1)
