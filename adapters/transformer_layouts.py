"""Token layouts of a :class:`~trajprobe.adapters.torch_transformer.CausalTransformer`:
how one machine input becomes the tokens of a step, and which token the output reads.

* :class:`OneToken` — one token per step (the default);
* :class:`Interleaved` — Garg et al. 2022's x token then y token per example.

A layout of your own needs ``tokens_per_step``, ``output_token``, ``tokens(x)``,
``present(step)`` and ``input_size(token_size)``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Interleaved", "OneToken"]


class OneToken:
    """Layout: each machine input ``x [..., D_in]`` is one token; the output reads it."""

    tokens_per_step = 1
    output_token = 0

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., D_in]`` → ``[..., 1, D_in]``."""
        return x.unsqueeze(-2)

    def present(self, step: torch.Tensor) -> torch.Tensor:
        """Which of a step's tokens exist, per row: ``step [B]`` (1-based) → ``[B, 1]`` bool."""
        return torch.ones(step.shape[0], 1, dtype=torch.bool, device=step.device)

    def input_size(self, token_size: int) -> int:
        """Machine input width for tokens of ``token_size`` features."""
        return token_size


class Interleaved:
    """Garg et al. 2022's layout: one x token, then one y token, per example.

    The machine input at step t is ``[x_t, y_{t-1}]`` (``x_size + y_size``; trajprobe's
    regression encoding); it appends two tokens, y_{t-1} then x_t, and the output is read
    at the x_t token. The y token is ``[y, 0, …, 0]`` padded to the token width
    (``x_size``), as in Garg et al.'s ``_combine``; at t = 1 there is no y_0, so that
    token is absent (masked out and not counted in the positions). The token sequence is
    therefore x_1, y_1, x_2, y_2, … with positions 0, 1, 2, …, exactly theirs.
    """

    tokens_per_step = 2
    output_token = 1

    def __init__(self, x_size: int, y_size: int = 1):
        if y_size < 1 or x_size < y_size:
            raise ValueError(
                f"x_size, y_size: expected 1 <= y_size <= x_size (a y token is y padded "
                f"to x_size), got {x_size}, {y_size}"
            )
        self.x_size, self.y_size = x_size, y_size

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., x_size + y_size]`` → ``[..., 2, x_size]``: (padded y_{t-1}, x_t)."""
        if x.shape[-1] != self.x_size + self.y_size:
            raise ValueError(
                f"x: expected {self.x_size + self.y_size} features [x_t, y_{{t-1}}], "
                f"got shape {tuple(x.shape)}"
            )
        x_token, y = x.split([self.x_size, self.y_size], dim=-1)
        y_token = nn.functional.pad(y, (0, self.x_size - self.y_size))
        return torch.stack([y_token, x_token], dim=-2)

    def present(self, step: torch.Tensor) -> torch.Tensor:
        """The y token exists from step 2 on; the x token always."""
        return torch.stack([step > 1, torch.ones_like(step, dtype=torch.bool)], dim=-1)

    def input_size(self, token_size: int) -> int:
        """``x_size + y_size``."""
        return self.x_size + self.y_size
