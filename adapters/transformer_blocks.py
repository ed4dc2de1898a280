"""The layers of a causal transformer seen through one small protocol, :class:`CachedBlock`.

:class:`~trajprobe.adapters.torch_transformer.CausalTransformer` runs its KV cache through
its layers without knowing what they are: each is split at its attention into ``qkv`` (the
block up to its query, key and value projections, split into heads) and ``finish`` (the
rest, from the attended values: output projection, residuals, norms, feed-forward), such
that ``finish(h, attend(*qkv(h)))`` is the layer's own forward. This module holds that
protocol and its two adapters, which reference (never copy) the layer they wrap:
:class:`EncoderLayerBlock` for ``nn.TransformerEncoderLayer`` (pre- or post-norm) and
:class:`GPT2BlockAdapter` for a Hugging Face ``GPT2Block`` (no import of ``transformers``
happens here). Your own layer is a block if it has ``n_heads``, ``scale``, ``qkv`` and
``finish``. The names are re-exported by :mod:`trajprobe.adapters.torch_transformer`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

__all__ = ["CachedBlock", "EncoderLayerBlock", "GPT2BlockAdapter"]

@runtime_checkable
class CachedBlock(Protocol):
    """One transformer layer, split at its attention.

    ``h' = finish(h, attend(*qkv(h)))`` must equal the layer's forward, where ``attend``
    is causal softmax attention ``softmax(scale · q kᵀ + mask) v`` over heads,
    concatenated back to ``[..., P, H · d_head]`` (before the output projection).

    Attributes:
        n_heads: H.
        scale: the factor on q·k (``d_head ** -0.5`` in most layers).
    """

    n_heads: int
    scale: float

    def qkv(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Hidden states ``[..., P, D]`` → queries, keys, values, each ``[..., P, H, d_head]``."""
        ...

    def finish(self, h: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """The layer's output ``[..., P, D]`` from its input ``h`` and ``attended``
        ``[..., P, H · d_head]`` (output projection, residuals, norms, feed-forward)."""
        ...


def _split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    return x.unflatten(-1, (n_heads, x.shape[-1] // n_heads))


class EncoderLayerBlock(nn.Module):
    """An ``nn.TransformerEncoderLayer`` (used with a causal mask) as a :class:`CachedBlock`.

    Reads the layer's own modules: ``self_attn`` (``nn.MultiheadAttention``: its in- and
    out-projections), ``norm1``, ``norm2``, ``linear1``, ``activation``, ``linear2`` and
    the dropouts, honouring ``norm_first`` (pre-norm) or not (post-norm). The layer is
    referenced, not copied: training it changes the machine.
    """

    def __init__(self, layer: nn.TransformerEncoderLayer):
        super().__init__()
        attn = getattr(layer, "self_attn", None)
        if not isinstance(attn, nn.MultiheadAttention):
            raise TypeError(
                f"layer: expected an nn.TransformerEncoderLayer (self_attn an "
                f"nn.MultiheadAttention), got {type(layer).__name__}; implement the "
                "CachedBlock protocol (n_heads, scale, qkv, finish) for your own layer"
            )
        if attn.bias_k is not None or attn.add_zero_attn or not attn._qkv_same_embed_dim:
            raise ValueError(
                "layer: self_attn with add_bias_kv, add_zero_attn or kdim/vdim != embed_dim "
                "is not supported; implement CachedBlock for it"
            )
        self.layer = layer
        self.n_heads = attn.num_heads
        self.scale = (attn.embed_dim // attn.num_heads) ** -0.5

    def qkv(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``in_proj`` of ``norm1(h)`` (pre-norm) or ``h`` (post-norm), split into heads."""
        layer, attn = self.layer, self.layer.self_attn
        x = layer.norm1(h) if layer.norm_first else h
        qkv = nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias)
        return tuple(_split_heads(part, self.n_heads) for part in qkv.chunk(3, dim=-1))

    def finish(self, h: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """Output projection, residuals, norms and feed-forward, as the layer's forward."""
        layer, attn = self.layer, self.layer.self_attn
        sa = layer.dropout1(attn.out_proj(attended))
        if layer.norm_first:
            h = h + sa
            return h + self._feed_forward(layer.norm2(h))
        h = layer.norm1(h + sa)
        return layer.norm2(h + self._feed_forward(h))

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        return layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(x)))))


class GPT2BlockAdapter(nn.Module):
    """A Hugging Face ``GPT2Block`` as a :class:`CachedBlock` (pre-norm).

    ``qkv = c_attn(ln_1(h))``; ``finish``: ``h + c_proj(a)``, then ``+ mlp(ln_2(·))``,
    calling the block's own modules; the scale is the block's ``attn.scaling`` (which
    includes ``scale_attn_by_inverse_layer_idx``). Cross-attention is not supported.
    """

    def __init__(self, block: nn.Module):
        super().__init__()
        attn = getattr(block, "attn", None)
        if attn is None or not all(hasattr(block, a) for a in ("ln_1", "ln_2", "mlp")):
            raise TypeError(f"block: expected a GPT2Block, got {type(block).__name__}")
        if hasattr(block, "crossattention"):
            raise ValueError("block: GPT-2 with add_cross_attention is not supported")
        self.block = block
        self.n_heads = attn.num_heads
        self.scale = float(attn.scaling)

    def qkv(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``c_attn(ln_1(h))`` split into queries, keys and values per head."""
        attn = self.block.attn
        parts = attn.c_attn(self.block.ln_1(h)).split(attn.split_size, dim=-1)
        return tuple(_split_heads(part, self.n_heads) for part in parts)

    def finish(self, h: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """Residual after ``c_proj``, then the MLP residual."""
        attn = self.block.attn
        h = h + attn.resid_dropout(attn.c_proj(attended))
        return h + self.block.mlp(self.block.ln_2(h))
