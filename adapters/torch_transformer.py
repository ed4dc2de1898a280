"""Causal (decoder-only) transformers as state machines whose state is the key/value cache.

A causal transformer reading one machine input per step is a Mealy machine: the state
s_t is every layer's keys and values of the tokens seen so far, the output function
attends the new token(s) to them. :class:`CausalTransformer` keeps that cache
preallocated to the episode length (``max_len`` steps) with a slot counter, so

* one ``step`` costs the new token(s) only (attention to the cache, never a re-run of
  the prefix), and a probe from s_{t-1} is exact;
* forking a state is indexing its batch-leading leaves (:class:`KVState`);
* ``output_many(x [B, N, ...], state)`` attends N probe queries to one shared cache per
  state, instead of N copies of it (used by :func:`trajprobe.probe`).

One machine step may append several tokens (:class:`Interleaved`: Garg et al. 2022's
layout, an x token then a y token per example). The transformer's layers are seen
through a small protocol, :class:`CachedBlock`: ``qkv`` (the block up to its attention
projections) and ``finish`` (the rest, from the attended values). Adapters:

* :class:`EncoderLayerBlock` — ``nn.TransformerEncoderLayer`` (pre- or post-norm);
  :func:`wrap_transformer` wraps an ``nn.TransformerEncoder`` (or a list of layers)
  run with a causal mask, with your read-in, positions and read-out;
* :class:`GPT2BlockAdapter` — a Hugging Face ``GPT2Block``; :func:`wrap_gpt2` wraps a
  ``GPT2Model`` driven through ``inputs_embeds`` with read-in / read-out layers (no import
  of ``transformers`` happens here: install ``trajprobe[transformers]`` to build one);
* your own block: any module with ``n_heads``, ``scale``, ``qkv`` and ``finish``.

:class:`CacheSummary` gives a transformer a fixed-size state vector (the mean cached key
and value per layer and head) for state comparisons (:func:`trajprobe.compare.simulation`);
:class:`CacheReadout` a functional one: what every layer's attention reads from the cache
for a fixed bank of probe inputs, i.e. what the outputs at those inputs are computed from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from trajprobe.adapters.torch_transformer_checks import (
    check_input,
    check_position_table,
    check_state,
    check_unroll,
)
from trajprobe.adapters.transformer_attention import attend_cached
from trajprobe.adapters.transformer_blocks import (
    CachedBlock,
    EncoderLayerBlock,
    GPT2BlockAdapter,
)
from trajprobe.adapters.transformer_layouts import Interleaved, OneToken
from trajprobe.validation import check_positive_int

__all__ = [
    "CacheReadout",
    "CacheSummary",
    "CachedBlock",
    "CausalTransformer",
    "EncoderLayerBlock",
    "GPT2BlockAdapter",
    "Interleaved",
    "KVState",
    "OneToken",
    "wrap_gpt2",
    "wrap_transformer",
]


class KVState(NamedTuple):
    """A causal transformer's state: its key/value cache, batch leading.

    Attributes:
        keys: ``[B, L, H, S, d_head]`` for L layers, H heads and S = ``max_len`` ×
            tokens per step preallocated slots.
        values: ``[B, L, H, S, d_head]``.
        valid: ``[B, S]`` bool, slot s holds a real token (written and not absent).
        length: ``[B]`` long, slots written so far (t × tokens per step after step t).
    """

    keys: torch.Tensor
    values: torch.Tensor
    valid: torch.Tensor
    length: torch.Tensor


class CausalTransformer(nn.Module):
    """A decoder-only transformer as a machine; state: :class:`KVState`, the KV cache.

    Per step t, with the layout's P tokens ``z = layout.tokens(x_t)``::

        h = read_in(z) + position(p)            p: positions of the present tokens
        h = finish_l(h, attend(qkv_l(h), cache_l ∪ new))   for each block l
        y_t = read_out(final_norm(h)[output_token])

    Attention is causal over present tokens: the cache slots marked ``valid`` and the
    step's earlier present tokens. Keys and values of the new tokens are written into
    the next P slots of s_t; s_{t-1} is never mutated.

    Args:
        blocks: the layers, each a :class:`CachedBlock` (``EncoderLayerBlock``,
            ``GPT2BlockAdapter`` or your own).
        read_in: maps tokens ``[..., P, token_size]`` to ``[..., P, D]`` (e.g. ``nn.Linear``).
        read_out: maps the output token's final hidden state ``[..., D]`` to ``y``.
        max_len: the longest episode, in machine steps; the cache holds
            ``max_len × tokens_per_step`` slots.
        position: maps positions ``[..., P]`` (long) to ``[..., P, D]`` added after
            ``read_in`` (e.g. ``nn.Embedding``); None for none.
        final_norm: applied before ``read_out`` (e.g. GPT-2's ``ln_f``); None for none.
        embed_dropout: applied to the embeddings (e.g. GPT-2's ``drop``); None for none.
        layout: :class:`OneToken` (default) or :class:`Interleaved`, or your own with
            ``tokens_per_step``, ``output_token``, ``tokens(x)`` and ``present(step)``.

    Also ``unroll(inputs [E, T, D_in]) -> (outputs [E, T, ...], final state)``: the
    whole sequence in one causal forward pass (teacher-forced training), equal to stepping.
    """

    def __init__(
        self,
        blocks: Sequence[CachedBlock],
        *,
        read_in: nn.Module,
        read_out: nn.Module,
        max_len: int,
        position: nn.Module | None = None,
        final_norm: nn.Module | None = None,
        embed_dropout: nn.Module | None = None,
        layout: OneToken | Interleaved | None = None,
    ):
        super().__init__()
        blocks = list(blocks)
        if not blocks:
            raise ValueError("blocks: expected at least one transformer layer, got none")
        for i, block in enumerate(blocks):
            if not isinstance(block, CachedBlock) or not isinstance(block, nn.Module):
                raise TypeError(
                    f"blocks[{i}]: expected an nn.Module with n_heads, scale, qkv(h) and "
                    f"finish(h, attended) (CachedBlock), got {type(block).__name__}"
                )
        check_positive_int(max_len, "max_len")
        for name, module in (("read_in", read_in), ("read_out", read_out)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name}: expected an nn.Module, got {type(module).__name__}")
        self.blocks = nn.ModuleList(blocks)
        self.read_in = read_in
        self.read_out = read_out
        self.position = position
        self.final_norm = final_norm
        self.embed_dropout = embed_dropout
        self.layout = layout if layout is not None else OneToken()
        self.max_len = max_len
        check_position_table(position, max_len, self.layout.tokens_per_step)
        self._shape = self._cache_shape()

    # -- geometry -------------------------------------------------------------------
    def _reference(self) -> torch.Tensor:
        for p in self.read_in.parameters():
            return p
        for p in self.parameters():
            return p
        raise ValueError("read_in: the transformer has no parameters to take a dtype from")

    def _cache_shape(self) -> tuple[int, int, int, int, int]:
        """(L, H, S, d_head, token_size), from one probe of the first block."""
        ref = self._reference()
        token_size = getattr(self.read_in, "in_features", None)
        if token_size is None:
            raise ValueError(
                "read_in: cannot tell its input width; give an nn.Linear (in_features)"
            )
        with torch.no_grad():
            h = self.read_in(torch.zeros(1, 1, token_size, dtype=ref.dtype, device=ref.device))
            q, _, _ = self.blocks[0].qkv(h)
        slots = self.max_len * self.layout.tokens_per_step
        return len(self.blocks), q.shape[-2], slots, q.shape[-1], token_size

    @property
    def input_size(self) -> int:
        """Width of one machine input x_t."""
        return self.layout.input_size(self._shape[4])

    # -- the machine ------------------------------------------------------------------
    def initial_state(self, batch_size: int) -> KVState:
        """An empty cache: zeros ``[B, L, H, S, d_head]``, nothing valid, length 0."""
        layers, heads, slots, d_head, _ = self._shape
        ref = self._reference()
        kv = torch.zeros(batch_size, layers, heads, slots, d_head, dtype=ref.dtype,
                         device=ref.device)
        return KVState(
            kv, kv.clone(),
            torch.zeros(batch_size, slots, dtype=torch.bool, device=ref.device),
            torch.zeros(batch_size, dtype=torch.long, device=ref.device),
        )

    def step(self, x: torch.Tensor, state: KVState) -> tuple[torch.Tensor, KVState]:
        """x ``[B, D_in]`` → (y ``[B, ...]``, s_t with the step's tokens appended)."""
        self._check_input(x, 2)
        y, keys, values, present = self._forward(x.unsqueeze(1), state)
        per_step = self.layout.tokens_per_step
        slots = state.length.unsqueeze(1) + torch.arange(per_step, device=x.device)  # [B, P]
        # keys [B, 1, L, P, H, dh] → [B, L, H, P, dh], scattered into slots [B, P].
        new_k = keys[:, 0].transpose(2, 3)
        new_v = values[:, 0].transpose(2, 3)
        index = slots[:, None, None, :, None].expand_as(new_k)
        new_state = KVState(
            state.keys.scatter(3, index, new_k),
            state.values.scatter(3, index, new_v),
            state.valid.scatter(1, slots, present),
            state.length + per_step,
        )
        return y[:, 0], new_state

    def output(self, x: torch.Tensor, state: KVState) -> torch.Tensor:
        """The output function alone: y ``[B, ...]`` (no cache written)."""
        self._check_input(x, 2)
        return self._forward(x.unsqueeze(1), state)[0][:, 0]

    def output_many(self, x: torch.Tensor, state: KVState) -> torch.Tensor:
        """N inputs per state, x ``[B, N, D_in]`` → ``[B, N, ...]``: N queries, one cache."""
        self._check_input(x, 3)
        return self._forward(x, state)[0]

    def _check_input(self, x: torch.Tensor, ndim: int) -> None:
        check_input(x, self.input_size, ndim)

    def _forward(self, x: torch.Tensor, state: KVState, readouts: list | None = None):
        """x ``[B, N, D_in]`` from states ``[B]`` → (y ``[B, N, ...]``, keys, values
        ``[B, N, L, P, H, d_head]``, present ``[B, P]``); with a list ``readouts``, each
        layer's attended values at the output token ``[B, N, H · d_head]`` are appended."""
        per_step = self.layout.tokens_per_step
        check_state(state, x, self._shape[:4], self.max_len, per_step)
        step = state.length // per_step + 1  # [B], 1-based
        present = self.layout.present(step)  # [B, P]
        before = state.valid.sum(-1, keepdim=True)  # [B, 1] real tokens in the cache
        positions = (before + present.cumsum(-1) - 1).clamp_min(0)  # [B, P]
        # New tokens see the cache's valid slots and this step's present earlier tokens
        # (always themselves, so no row is empty).
        causal = torch.ones(per_step, per_step, dtype=torch.bool, device=x.device).tril()
        eye = torch.eye(per_step, dtype=torch.bool, device=x.device)
        new_mask = causal & (present[:, None, :] | eye)  # [B, P(query), P(key)]
        h = self._embed(x, positions[:, None])
        # Layer-major copies of the cache, once per call: each layer's [B, H, S, dh] is
        # then contiguous and its batch and head axes merge without a copy.
        cache_k = state.keys.transpose(0, 1).contiguous()
        cache_v = state.values.transpose(0, 1).contiguous()
        keys, values = [], []
        for layer, block in enumerate(self.blocks):
            q, k, v = block.qkv(h)  # [B, N, P, H, dh]
            attended = attend_cached(
                q, k, v, cache_k[layer], cache_v[layer], state.valid, new_mask, block.scale,
            )
            if readouts is not None:
                readouts.append(attended[..., self.layout.output_token, :])
            h = block.finish(h, attended)
            keys.append(k)
            values.append(v)
        y = self._read(h[..., self.layout.output_token, :])
        return y, torch.stack(keys, dim=2), torch.stack(values, dim=2), present

    def _embed(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Inputs ``[B, N, D_in]`` → hidden ``[B, N, P, D]``; positions ``[B, 1|N, P]``."""
        h = self.read_in(self.layout.tokens(x))
        if self.position is not None:
            h = h + self.position(positions)
        return self.embed_dropout(h) if self.embed_dropout is not None else h

    def _read(self, h: torch.Tensor) -> torch.Tensor:
        if self.final_norm is not None:
            h = self.final_norm(h)
        return self.read_out(h)

    # -- whole sequences ------------------------------------------------------------
    def unroll(
        self, inputs: torch.Tensor, state: KVState | None = None
    ) -> tuple[torch.Tensor, KVState]:
        """Whole episodes in one causal pass: inputs ``[E, T, D_in]`` → ``[E, T, ...]``.

        Equals stepping from an empty cache (what teacher-forced training uses); the
        returned state holds the cache after step T. Starting from a non-empty ``state``
        is stepped instead.
        """
        check_unroll(inputs, self.input_size, self.max_len)
        n_episodes, n_steps = inputs.shape[:2]
        if state is not None and bool((state.length > 0).any()):
            outputs = []
            for t in range(n_steps):
                y, state = self.step(inputs[:, t], state)
                outputs.append(y)
            return torch.stack(outputs, dim=1), state
        per_step = self.layout.tokens_per_step
        steps = torch.arange(1, n_steps + 1, device=inputs.device)
        present = self.layout.present(steps).flatten()  # [T·P]
        positions = (present.cumsum(0) - 1).clamp_min(0).expand(n_episodes, -1)
        h = self._embed(inputs, positions.reshape(n_episodes, n_steps, per_step))
        h = h.flatten(1, 2)  # [E, T·P, D]
        n_tok = h.shape[1]
        eye = torch.eye(n_tok, dtype=torch.bool, device=inputs.device)
        mask = torch.ones(n_tok, n_tok, dtype=torch.bool, device=inputs.device).tril()
        mask = mask & (present[None, :] | eye)
        keys, values = [], []
        for block in self.blocks:
            q, k, v = (part.transpose(1, 2) for part in block.qkv(h))  # [E, H, TP, dh]
            attended = nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, scale=block.scale)
            h = block.finish(h, attended.transpose(1, 2).flatten(-2))
            keys.append(k)
            values.append(v)
        h = h.unflatten(1, (n_steps, per_step))[:, :, self.layout.output_token]
        outputs = self._read(h)
        final = self.initial_state(n_episodes) if state is None else state
        used = n_steps * per_step
        final = KVState(
            torch.cat([torch.stack(keys, 1), final.keys[..., used:, :]], dim=3),
            torch.cat([torch.stack(values, 1), final.values[..., used:, :]], dim=3),
            torch.cat([present.expand(n_episodes, -1), final.valid[:, used:]], dim=1),
            torch.full_like(final.length, used),
        )
        return outputs, final


def _nan_where_summary_only(fn, x: torch.Tensor, state: KVState) -> torch.Tensor:
    """``fn(x, state)`` (an output function) with each row of a summary-only state
    (length < 0, from :meth:`CacheSummary.state_from_vector`) set to NaN: it has no cache."""
    unknown = state.length < 0
    y = fn(x, state._replace(length=state.length.clamp_min(0)))
    return y.masked_fill(unknown.view(-1, *([1] * (y.dim() - 1))), float("nan"))


class CacheSummary:
    """A :class:`CausalTransformer` whose state *vector* is a fixed-size summary of its cache.

    The state stays the full :class:`KVState` (steps, outputs and probes are the
    transformer's own); only :meth:`state_vector`, what state comparisons
    (:func:`trajprobe.compare.simulation`) read, changes. The summary is, for every
    layer l and head h, the mean over the n present tokens of the cached keys and values::

        z(s_t) = [ (1/n) Σ_{i ≤ n} k_i^{l,h} ,  (1/n) Σ_{i ≤ n} v_i^{l,h} ]_{l,h}
                 ∈ R^{2 · L · H · d_head}           (zeros for the empty cache s_0)

    Why this summary: it is a function of s_t alone (no extra bookkeeping), of fixed size
    whatever t, and, like Bayes' sufficient statistics (XᵀX, XᵀY), an average over the
    observed tokens; it is also what attention reads from the cache when the attention
    weights are uniform (softmax(q·k) → 1/n gives Σ v_i / n). The raw cache, by contrast, is
    a padded history buffer whose dimension (2 · L · D · max_len) exceeds the number of
    states a simulation map is fitted on. What it drops: the order of the tokens beyond what
    the positional embeddings put into k and v, and every higher moment.

    A summary has no inverse: :meth:`state_from_vector` returns a marked empty cache on
    which :meth:`output` is NaN, so D_o with the transformer as the *target* is reported as
    undefined (NaN, flagged unreliable) rather than computed on a made-up cache; D_s in both
    directions and D_o into the other machine are well defined.

    Args:
        transformer: the machine to summarise (shared, not copied).
    """

    def __init__(self, transformer: CausalTransformer):
        if not isinstance(transformer, CausalTransformer):
            raise TypeError(f"transformer: expected a CausalTransformer, got "
                            f"{type(transformer).__name__}")
        self.transformer = transformer

    def initial_state(self, batch_size: int) -> KVState:
        """The transformer's empty cache."""
        return self.transformer.initial_state(batch_size)

    def step(self, x: torch.Tensor, state: KVState) -> tuple[torch.Tensor, KVState]:
        """The transformer's step (x ``[B, D_in]``); refuses a summary-only state."""
        if bool((state.length < 0).any()):
            raise ValueError("state: a summary-only state (from state_from_vector) has no "
                             "cache to append to")
        return self.transformer.step(x, state)

    def output(self, x: torch.Tensor, state: KVState) -> torch.Tensor:
        """The transformer's output function; NaN on summary-only states (length < 0)."""
        return _nan_where_summary_only(self.transformer.output, x, state)

    def output_many(self, x: torch.Tensor, state: KVState) -> torch.Tensor:
        """N inputs per state, x ``[B, N, D_in]`` → ``[B, N, ...]`` (the transformer's);
        NaN on summary-only states, as :meth:`output`."""
        return _nan_where_summary_only(self.transformer.output_many, x, state)

    def state_vector(self, state: KVState) -> torch.Tensor:
        """The summary z(s) ``[B, 2 · L · H · d_head]``: mean cached keys, then values."""
        weight = state.valid.to(state.keys.dtype)[:, None, None, :, None]  # [B, 1, 1, S, 1]
        count = weight.sum(3).clamp_min(1.0)
        keys = (state.keys * weight).sum(3) / count  # [B, L, H, dh]
        values = (state.values * weight).sum(3) / count
        return torch.cat([keys.flatten(1), values.flatten(1)], dim=1)

    def state_from_vector(self, vector: torch.Tensor) -> KVState:
        """No inverse exists: an empty cache marked summary-only (length -1) per row."""
        if vector.dim() != 2:
            raise ValueError(f"vector: expected shape [batch, S], got {tuple(vector.shape)}")
        state = self.transformer.initial_state(vector.shape[0])
        return state._replace(length=torch.full_like(state.length, -1))


class CacheReadout(CacheSummary):
    """A :class:`CausalTransformer` whose state vector is what its attention reads from the
    cache for a fixed bank of probe inputs: a functional summary.

    For probe inputs x_1..x_N (fixed, e.g. N query points of the task), the summary of a
    state s is every layer l's attention read-out at the output token when the transformer
    evaluates x_j from s (its ``output_many``)::

        z(s) = [ Σ_i softmax_i(q_j^l · k_i^l / √d_head) v_i^l ]_{j, l}   ∈ R^{N · L · H · d_head}

    with q_j^l the transformer's own query for x_j at layer l (and i over the cached tokens
    and the probe's own). The outputs f(x_j, s) are computed from exactly these read-outs
    (the residual stream adds only x_j's own embedding), so whatever statistics of the
    history the outputs use — for in-context regression, XᵀX and XᵀY through the
    attention kernel — are in z(s) in the form the outputs read them, where
    :class:`CacheSummary`'s mean keys and values hold them only when attention is
    uniform. What it drops: anything the probes never query.

    Like :class:`CacheSummary` it has no inverse: D_o with the transformer as the *target*
    is undefined (NaN, flagged); D_s both ways and D_o into the other machine are defined.

    Args:
        transformer: the machine to summarise (shared, not copied).
        probes: ``[N, D_in]`` the probe inputs, in the transformer's input encoding.
    """

    def __init__(self, transformer: CausalTransformer, probes: torch.Tensor):
        super().__init__(transformer)
        probes = torch.as_tensor(probes)
        if probes.dim() != 2 or probes.shape[1] != transformer.input_size or probes.shape[0] < 1:
            raise ValueError(f"probes: expected shape [N >= 1, {transformer.input_size}], "
                             f"got {tuple(probes.shape)}")
        self.probes = probes

    def state_vector(self, state: KVState) -> torch.Tensor:
        """The read-outs z(s) ``[B, N · L · H · d_head]`` (probe-major, then layer); NaN for
        a full cache (after step ``max_len``: no probe fits, and no output follows it)."""
        model = self.transformer
        layers, heads, _, d_head = model._shape[:4]
        out = torch.full((state.length.shape[0], self.probes.shape[0] * layers * heads * d_head),
                         float("nan"), dtype=state.keys.dtype, device=state.keys.device)
        room = state.length + model.layout.tokens_per_step <= state.keys.shape[3]
        if bool(room.any()):
            rows = KVState(*(leaf[room] for leaf in state))
            x = self.probes.to(state.keys.device, state.keys.dtype)
            readouts: list[torch.Tensor] = []
            model._forward(x.unsqueeze(0).expand(int(room.sum()), *x.shape), rows, readouts)
            out[room] = torch.stack(readouts, dim=2).flatten(1)  # [B, N, L, H·dh] → [B, N·L·H·dh]
        return out


def wrap_transformer(
    layers: nn.TransformerEncoder | Sequence[nn.Module],
    *,
    read_in: nn.Module,
    read_out: nn.Module,
    max_len: int,
    position: nn.Module | None = None,
    final_norm: nn.Module | None = None,
    layout: OneToken | Interleaved | None = None,
) -> CausalTransformer:
    """Your own decoder-only torch transformer as a KV-cache machine.

    For a module that computes ``read_out(final_norm(encoder(read_in(z) + position(p),
    mask=causal)))`` with an ``nn.TransformerEncoder`` (or a list of
    ``nn.TransformerEncoderLayer``, pre- or post-norm; or your own
    :class:`CachedBlock` layers). The modules are shared, not copied.

    Args:
        layers: an ``nn.TransformerEncoder`` (its ``layers``, and its ``norm`` as
            ``final_norm`` unless given) or a sequence of layers.
        read_in, read_out, max_len, position, final_norm, layout: as
            :class:`CausalTransformer`.

    Example:
        >>> machine = wrap_transformer(model.encoder, read_in=model.read_in,
        ...                            read_out=model.read_out, position=model.pos,
        ...                            max_len=40)
    """
    if isinstance(layers, nn.TransformerEncoder):
        if final_norm is None:
            final_norm = layers.norm
        layers = list(layers.layers)
    if isinstance(layers, nn.Module) and not isinstance(layers, nn.ModuleList):
        layers = [layers]
    blocks = [
        EncoderLayerBlock(layer) if isinstance(layer, nn.TransformerEncoderLayer) else layer
        for layer in layers
    ]
    return CausalTransformer(blocks, read_in=read_in, read_out=read_out, max_len=max_len,
                             position=position, final_norm=final_norm, layout=layout)


def wrap_gpt2(
    model: nn.Module,
    *,
    read_in: nn.Module,
    read_out: nn.Module,
    max_len: int,
    layout: OneToken | Interleaved | None = None,
) -> CausalTransformer:
    """A Hugging Face ``GPT2Model`` driven through ``inputs_embeds`` as a KV-cache machine.

    The set-up of Garg et al. 2022: ``read_in`` (e.g. ``nn.Linear(n_dims, n_embd)``) makes
    ``inputs_embeds``, the GPT-2 backbone adds its learned positions (``wpe``) and runs its
    blocks and ``ln_f``, ``read_out`` maps the hidden state to the prediction. With
    ``layout=Interleaved(n_dims, 1)``, their x-then-y token sequence. Nothing is copied or
    edited: a model class built this way (e.g. their ``TransformerModel`` with
    ``_read_in``, ``_backbone``, ``_read_out``) wraps as::

        wrap_gpt2(m._backbone, read_in=m._read_in, read_out=m._read_out, max_len=T,
                  layout=Interleaved(n_dims, 1))

    Read-out of the Interleaved layout gives ``read_out(h) [..., 1]`` at each x token
    (their ``prediction[:, ::2, 0]`` keeps that one feature).

    Args:
        model: a ``GPT2Model`` (or any module with its ``h``, ``wpe``, ``drop``, ``ln_f``;
            a ``GPT2LMHeadModel``'s ``transformer``). Requires ``trajprobe[transformers]``
            to build; this function imports nothing from ``transformers``.
        read_in, read_out, max_len, layout: as :class:`CausalTransformer`.
    """
    backbone = getattr(model, "transformer", model)
    missing = [a for a in ("h", "wpe", "ln_f") if not hasattr(backbone, a)]
    if missing:
        raise TypeError(
            f"model: expected a transformers GPT2Model (with h, wpe, ln_f), got "
            f"{type(model).__name__} without {', '.join(missing)}"
        )
    layout = layout if layout is not None else OneToken()
    check_position_table(backbone.wpe, max_len, layout.tokens_per_step)
    blocks = [GPT2BlockAdapter(block) for block in backbone.h]
    return CausalTransformer(
        blocks, read_in=read_in, read_out=read_out, max_len=max_len,
        position=backbone.wpe, final_norm=backbone.ln_f,
        embed_dropout=getattr(backbone, "drop", None), layout=layout,
    )
