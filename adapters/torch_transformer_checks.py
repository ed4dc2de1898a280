"""Checks for :class:`~trajprobe.adapters.torch_transformer.CausalTransformer`: its
position table against ``max_len``, inputs against its width, and a state (the key/value
cache) against the machine's geometry, the input's batch and the steps left.

Each error names the argument, the expected and the given, and how to fix it, instead of
``index out of range in self`` from a position table or a broadcasting error inside the
attention.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["check_input", "check_position_table", "check_state", "check_unroll"]


def check_position_table(position: Any, max_len: int, tokens_per_step: int) -> None:
    """Raise ValueError if ``position`` (e.g. ``nn.Embedding``, GPT-2's ``wpe``) has fewer
    rows than the ``max_len × tokens_per_step`` positions the cache can hold."""
    rows = getattr(position, "num_embeddings", None)
    needed = max_len * tokens_per_step
    if isinstance(rows, int) and needed > rows:
        raise ValueError(
            f"max_len: {max_len} steps × {tokens_per_step} tokens need {needed} positions, "
            f"but the position table ({type(position).__name__}) has {rows} (n_positions); "
            f"build the machine with max_len <= {rows // tokens_per_step}, or give the model "
            "a longer position table"
        )


def check_input(x: Any, input_size: int, ndim: int) -> None:
    """Raise unless ``x`` is a tensor ``[batch, input_size]`` (ndim 2) or
    ``[batch, N, input_size]`` (ndim 3)."""
    axes = "batch, " if ndim == 2 else "batch, N, "
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a tensor [{axes}{input_size}], got {type(x).__name__}")
    if x.dim() != ndim or x.shape[-1] != input_size:
        raise ValueError(f"x: expected shape [{axes}{input_size}], got {tuple(x.shape)}")


def check_state(state: Any, x: torch.Tensor, geometry: tuple[int, ...], max_len: int,
                tokens_per_step: int) -> None:
    """Raise unless ``state`` is a cache of this machine with ``x``'s batch and room for a
    step.

    Args:
        state: a ``KVState`` (keys, values ``[B, L, H, S, d_head]``, valid, length).
        x: the step's input, batch leading.
        geometry: the machine's ``(L, H, S, d_head)``.
        max_len, tokens_per_step: the cache holds ``S = max_len × tokens_per_step`` slots.
    """
    keys = getattr(state, "keys", None)
    length = getattr(state, "length", None)
    if not isinstance(keys, torch.Tensor) or not isinstance(length, torch.Tensor):
        raise TypeError(f"state: expected a KVState (keys, values, valid, length) from this "
                        f"machine's initial_state, got {type(state).__name__}")
    if keys.dim() != 5 or tuple(keys.shape[1:]) != tuple(geometry):
        layers, heads, slots, d_head = geometry
        raise ValueError(f"state: a cache of shape {list(keys.shape)} does not fit this "
                         f"transformer's [batch, {layers}, {heads}, {slots}, {d_head}] "
                         "(layers, heads, slots, d_head); use this machine's initial_state")
    if keys.shape[0] != x.shape[0]:
        raise ValueError(f"x: a batch of {x.shape[0]} rows for a state (cache) of "
                         f"{keys.shape[0]}; the batch of x and of the state must agree "
                         "(fork or index the state to the input's rows)")
    if bool((length + tokens_per_step > geometry[2]).any()):
        raise ValueError(f"state: the cache holds {max_len} steps (max_len) and is full "
                         f"after step {int(length.max()) // tokens_per_step}; run at most "
                         f"{max_len} steps, or build the machine with a larger max_len")


def check_unroll(inputs: Any, input_size: int, max_len: int) -> None:
    """Raise unless ``inputs`` is ``[episode, t, input_size]`` with t <= ``max_len``."""
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3 or \
            inputs.shape[2] != input_size:
        got = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ValueError(f"inputs: expected shape [episode, t, {input_size}], got {got}")
    if inputs.shape[1] > max_len:
        raise ValueError(f"inputs: {inputs.shape[1]} steps exceed max_len={max_len} of this "
                         "transformer; build it with a larger max_len")
