"""Softmax attention of a step's new tokens to a shared key/value cache and to each other,
for :class:`~trajprobe.adapters.torch_transformer.CausalTransformer` (N probe queries per
cache without N copies of it)."""

from __future__ import annotations

import torch

__all__ = ["attend_cached"]


def attend_cached(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cache_k: torch.Tensor,
    cache_v: torch.Tensor,
    valid: torch.Tensor,
    new_mask: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """Softmax attention of new tokens to a shared cache and to each other.

    Args:
        q, k, v: ``[B, N, P, H, dh]``, N inputs per state, P new tokens each.
        cache_k, cache_v: ``[B, H, S, dh]``, one cache per state (shared by its N inputs).
        valid: ``[B, S]`` which cache slots attend.
        new_mask: ``[B, P, P]`` which new tokens (key) each new token (query) sees.

    Returns:
        ``[B, N, P, H · dh]``.
    """
    batch, n, p, heads, d_head = q.shape
    slots = cache_k.shape[2]

    def by_head(x: torch.Tensor) -> torch.Tensor:  # [B, N, P, H, dh] → [B·H, N·P, dh]
        return x.permute(0, 3, 1, 2, 4).reshape(batch * heads, n * p, d_head)

    q_h, k_h, v_h = by_head(q), by_head(k), by_head(v)
    # Cache part: all N·P queries of a state against its one cache, masked by validity.
    bias = torch.zeros(batch, 1, 1, slots, dtype=q.dtype, device=q.device)
    bias = bias.masked_fill_(~valid[:, None, None, :], float("-inf"))
    bias = bias.expand(batch, heads, 1, slots).reshape(batch * heads, 1, slots)
    cached = torch.baddbmm(bias, q_h, cache_k.reshape(batch * heads, slots, d_head).mT,
                           alpha=scale)  # [B·H, N·P, S]
    # New part: each input's P tokens against each other ([P, P] per input).
    new = torch.matmul(q_h.view(batch * heads, n, p, d_head),
                       k_h.view(batch * heads, n, p, d_head).mT).mul_(scale)
    new_bias = torch.zeros(batch, 1, 1, p, p, dtype=q.dtype, device=q.device)
    new_bias = new_bias.masked_fill_(~new_mask[:, None, None], float("-inf"))
    new = new.view(batch, heads, n, p, p).add_(new_bias).view(batch * heads, n * p, p)
    probs = torch.cat([cached, new], dim=-1).softmax(-1)  # [B·H, N·P, S + P]
    out = torch.bmm(probs[..., :slots], cache_v.reshape(batch * heads, slots, d_head))
    from_new = torch.matmul(probs[..., slots:].reshape(batch * heads, n, p, p),
                            v_h.view(batch * heads, n, p, d_head))
    out = out.add_(from_new.view(batch * heads, n * p, d_head))
    return out.view(batch, heads, n, p, d_head).permute(0, 2, 3, 1, 4).flatten(-2)
