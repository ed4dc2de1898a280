"""The papers' Meta-Learner architectures as state machines that also unroll fast.

* :class:`RabinowitzLSTM` — one LSTM layer (64 units) and a linear readout
  (Rabinowitz 2019 A.2, A.4, A.6).
* :class:`MikulikNet` — encoder (fully connected) → LSTM → decoder (fully connected) →
  linear readout, every layer of width N (N = 32 for prediction, 256 for bandits;
  Mikulik et al. 2020 §3.1).
* :class:`GPT` — a small decoder-only transformer whose state is its key/value cache
  (a :class:`~trajprobe.adapters.CausalTransformer`), for in-context learning.
* :class:`GatedSSM` — a gated diagonal linear recurrence (Mamba-like state-space model).

Both are ``nn.Module`` machines: ``initial_state(B)``, ``step(x, s) -> (y, s)`` and
``unroll(inputs [E, T, D]) -> (outputs [E, T, ...], final state)``, which runs the whole
sequence through ``nn.LSTM`` at once (what training uses) and equals stepping. A model
built with ``distribution=`` also has ``distribution(y)``, the predictive distribution its
outputs parameterise (for log-loss training and KL comparisons); a model built without one
has no ``distribution`` attribute at all.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import distributions as D
from torch import nn

from trajprobe.adapters.torch_transformer import CausalTransformer, Interleaved, OneToken
from trajprobe.heads import resolve_head
from trajprobe.initialisers import torch_default_init
from trajprobe.machine import LSTMState
from trajprobe.randomness import Seed, make_generator
from trajprobe.validation import check_positive_int

__all__ = [
    "GPT",
    "GPTBlock",
    "GatedSSM",
    "MikulikNet",
    "RabinowitzLSTM",
    "unroll_step",
]


def unroll_step(model: nn.Module, x: torch.Tensor, state: object) -> tuple[torch.Tensor, object]:
    """One step of a model with ``unroll`` as an unroll of length 1.

    ``x`` ``[B, input_size]`` → (y ``[B, output_size]``, the new state); ``x`` of another
    shape is refused, naming the expected one.
    """
    if x.dim() != 2 or x.shape[1] != model.input_size:
        raise ValueError(f"x: expected shape [batch, {model.input_size}], got {tuple(x.shape)}")
    y, new_state = model.unroll(x.unsqueeze(1), state)
    return y[:, 0], new_state


class _LSTMMachine(nn.Module):
    """Shared machinery: ``pre`` → single-layer ``nn.LSTM`` → ``post``."""

    pre: nn.Module
    lstm: nn.LSTM
    post: nn.Module

    def __init__(self, input_size: int, output_size: int, distribution):
        super().__init__()
        self.input_size = check_positive_int(input_size, "input_size")
        self.output_size = check_positive_int(output_size, "output_size")
        self._distribution = resolve_head(distribution)
        if self._distribution is not None:
            # Only a model built with a family has distribution(y): code that asks
            # callable(getattr(model, "distribution", None)) then skips KL, not fails.
            self.distribution = self._distribution

    def _init_from(self, seed: Seed) -> None:
        """Re-draw every parameter with PyTorch's own rules, from ``seed`` (not the global RNG)."""
        if seed is None:
            return
        torch_default_init(self, make_generator(seed, next(self.parameters()).device))

    @property
    def hidden_size(self) -> int:
        """LSTM units H."""
        return self.lstm.hidden_size

    def lstm_core(self) -> tuple[nn.Module, nn.LSTM, nn.Module]:
        """``(pre, lstm, post)``: y = post(h), (h, c) = lstm(pre(x)) from zero states, so
        closed-loop training can step the LSTM with fused cell arithmetic
        (:func:`trajprobe.apps.training.closed_loop.play`)."""
        return self.pre, self.lstm, self.post

    def initial_state(self, batch_size: int) -> LSTMState:
        """Zeros: ``hidden`` and ``cell`` ``[B, H]``."""
        ref = self.lstm.weight_hh_l0
        h = torch.zeros(batch_size, self.hidden_size, dtype=ref.dtype, device=ref.device)
        return LSTMState(h, torch.zeros_like(h))

    def step(self, x: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """x ``[B, input_size]`` → (y ``[B, output_size]``, new state)."""
        return unroll_step(self, x, state)

    def unroll(
        self, inputs: torch.Tensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        """Whole sequences at once: inputs ``[E, T, input_size]`` → outputs ``[E, T, K]``."""
        if inputs.dim() != 3 or inputs.shape[2] != self.input_size:
            raise ValueError(
                f"inputs: expected shape [episode, t, {self.input_size}], got "
                f"{tuple(inputs.shape)}"
            )
        if state is None:
            state = self.initial_state(inputs.shape[0])
        hx = (state.hidden.unsqueeze(0).contiguous(), state.cell.unsqueeze(0).contiguous())
        out, (h, c) = self.lstm(self.pre(inputs), hx)
        return self.post(out), LSTMState(h[0], c[0])


class RabinowitzLSTM(_LSTMMachine):
    """Rabinowitz 2019 Meta-Learner: LSTM(``hidden_size``) + linear readout (A.2, A.4, A.6).

    y_t = W h_t + b with (h_t, c_t) = LSTM(x_t, (h_{t-1}, c_{t-1})). State
    :class:`~trajprobe.machine.LSTMState` ``([B, H], [B, H])``; ``state_vector`` = ``[h, c]``.

    Args:
        input_size: e.g. N_x + N_y for regression ([x_t, y_{t-1}]), K_c + K_a + 1 for
            contextual bandits ([one-hot c_t, one-hot a_{t-1}, r_{t-1}]).
        output_size: N_y, or K_a logits.
        hidden_size: 64 in the paper.
        distribution: predictive family of the outputs (a name in
            :data:`trajprobe.heads.HEADS` or a callable).
        seed: parameters drawn with PyTorch's default rules from this seed (None: from
            the global RNG, as ``nn.LSTM`` does).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden_size: int = 64,
        *,
        distribution: str | Callable[[torch.Tensor], D.Distribution] | None = None,
        seed: Seed = 0,
    ):
        super().__init__(input_size, output_size, distribution)
        self.pre = nn.Identity()
        self.lstm = nn.LSTM(self.input_size, hidden_size, batch_first=True)
        self.post = nn.Linear(hidden_size, self.output_size)
        self._init_from(seed)


class MikulikNet(_LSTMMachine):
    """Mikulik et al. 2020 Meta-Learner: encoder → LSTM → decoder → linear readout (§3.1).

    e_t = ReLU(W_e x_t + b_e); (h_t, c_t) = LSTM(e_t, (h_{t-1}, c_{t-1}));
    d_t = ReLU(W_d h_t + b_d); y_t = W_o d_t + b_o. Every layer has width N. The paper
    does not name the encoder/decoder nonlinearity; ReLU is used.

    Args:
        input_size, output_size: task encoding and output width (e.g. the family's
            :func:`trajprobe.heads.head_size`, or the number of arms for bandit logits).
        width: N (32 for prediction tasks, 256 for bandits in the paper).
        distribution, seed: as :class:`RabinowitzLSTM`.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        width: int = 32,
        *,
        distribution: str | Callable[[torch.Tensor], D.Distribution] | None = None,
        seed: Seed = 0,
    ):
        super().__init__(input_size, output_size, distribution)
        self.pre = nn.Sequential(nn.Linear(self.input_size, width), nn.ReLU())
        self.lstm = nn.LSTM(width, width, batch_first=True)
        self.post = nn.Sequential(nn.Linear(width, width), nn.ReLU(),
                                  nn.Linear(width, self.output_size))
        self._init_from(seed)


class GPTBlock(nn.Module):
    """A pre-norm GPT layer, split at its attention (:class:`~trajprobe.adapters.CachedBlock`).

    h ← h + W_o · attn(LN₁(h)); h ← h + FF(LN₂(h)), FF = Linear → GELU → Linear.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(
                f"d_model, n_heads: d_model must be divisible by n_heads, got {d_model}, "
                f"{n_heads}"
            )
        self.n_heads = n_heads
        self.scale = (d_model // n_heads) ** -0.5
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn_in = nn.Linear(d_model, 3 * d_model)
        self.attn_out = nn.Linear(d_model, d_model)
        self.ln_2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def qkv(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[..., P, D]`` → queries, keys, values ``[..., P, H, D/H]``."""
        parts = self.attn_in(self.ln_1(h)).chunk(3, dim=-1)
        return tuple(part.unflatten(-1, (self.n_heads, -1)) for part in parts)

    def finish(self, h: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """Attention residual, then the feed-forward residual."""
        h = h + self.attn_out(attended)
        return h + self.ff(self.ln_2(h))


class GPT(CausalTransformer):
    """A small decoder-only transformer Meta-Learner; state: its key/value cache.

    read-in (Linear) + learned positions → ``n_layers`` pre-norm :class:`GPTBlock` →
    LayerNorm → read-out (Linear). A :class:`~trajprobe.adapters.CausalTransformer`:
    ``step`` appends the step's token(s) to a cache preallocated for ``max_len`` steps
    (state :class:`~trajprobe.adapters.KVState`), ``output_many`` attends N probes to one
    cache, and ``unroll(inputs [E, T, D])`` runs whole episodes in one causal pass
    (teacher-forced training), equal to stepping.

    Args:
        input_size: e.g. ``2 * dim`` for regression's ``[x_t, y_{t-1}]``.
        output_size: e.g. ``dim``, or the head's :func:`~trajprobe.heads.head_size`.
        d_model, n_layers, n_heads: width, depth, heads (d_model divisible by n_heads).
        d_ff: feed-forward width (default ``4 * d_model``).
        max_len: longest episode in steps.
        layout: ``None`` (one token per step) or
            :class:`~trajprobe.adapters.Interleaved` (an x token, then a y token: Garg et
            al. 2022), whose ``x_size + y_size`` must equal ``input_size``.
        distribution, seed: as :class:`RabinowitzLSTM`.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        *,
        d_ff: int | None = None,
        max_len: int = 100,
        layout: OneToken | Interleaved | None = None,
        distribution: str | Callable[[torch.Tensor], D.Distribution] | None = None,
        seed: Seed = 0,
    ):
        if min(input_size, output_size, d_model, n_layers, n_heads) < 1:
            raise ValueError(
                "input_size, output_size, d_model, n_layers, n_heads: expected positive "
                f"sizes, got {input_size}, {output_size}, {d_model}, {n_layers}, {n_heads}"
            )
        layout = layout if layout is not None else OneToken()
        token_size = input_size if isinstance(layout, OneToken) else getattr(
            layout, "x_size", input_size)
        if layout.input_size(token_size) != input_size:
            raise ValueError(
                f"layout: its inputs have {layout.input_size(token_size)} features, "
                f"input_size is {input_size}"
            )
        blocks = [GPTBlock(d_model, n_heads, d_ff or 4 * d_model) for _ in range(n_layers)]
        super().__init__(
            blocks,
            read_in=nn.Linear(token_size, d_model),
            read_out=nn.Linear(d_model, output_size),
            max_len=max_len,
            position=nn.Embedding(max_len * layout.tokens_per_step, d_model),
            final_norm=nn.LayerNorm(d_model),
            layout=layout,
        )
        self.output_size = output_size
        self._distribution = resolve_head(distribution)
        if seed is not None:
            gen = make_generator(seed, self.read_in.weight.device)
            torch_default_init(self, gen)
            with torch.no_grad():  # learned positions ~ N(0, 0.02²), as GPT-2
                self.position.weight.normal_(0.0, 0.02, generator=gen)

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """The predictive distribution outputs ``y`` ``[..., K]`` parameterise."""
        if self._distribution is None:
            raise ValueError(
                "distribution: this GPT was built without a predictive distribution; "
                "pass distribution='normal' (or another family) to it"
            )
        return self._distribution(y)


class GatedSSM(nn.Module):
    """A gated diagonal linear recurrence (Mamba-like selective state space), pure torch.

    Per layer l, with width H and input u_t (x_t for the first layer)::

        v_t = W_v u_t,   g_t = σ(W_g u_t),   Δ_t = softplus(W_Δ u_t + b_Δ)
        a_t = exp(-Δ_t ⊙ exp(λ))                       (diagonal, input-dependent decay)
        h_t = a_t ⊙ h_{t-1} + (1 - a_t) ⊙ v_t           (linear in h: a state-space model)
        o_t = u_t' + W_o (g_t ⊙ h_t)                     (residual when widths agree)

    and ``y_t = W_y o_t^{(L)} + b``. State: ``[B, L, H]``, the h of every layer (s_0 = 0).
    The recurrence is linear and diagonal in h; the selectivity (Δ, g) depends on the
    input only, as in Mamba (Gu & Dao 2023), without its convolution. ``unroll`` computes
    every projection for the whole sequence at once and only the elementwise scan step
    by step.

    Args:
        input_size, output_size: as :class:`RabinowitzLSTM`.
        hidden_size: H, state channels per layer.
        n_layers: L.
        distribution, seed: as :class:`RabinowitzLSTM`.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden_size: int = 64,
        n_layers: int = 1,
        *,
        distribution: str | Callable[[torch.Tensor], D.Distribution] | None = None,
        seed: Seed = 0,
    ):
        super().__init__()
        if min(input_size, output_size, hidden_size, n_layers) < 1:
            raise ValueError(
                "input_size, output_size, hidden_size, n_layers: expected positive sizes, "
                f"got {input_size}, {output_size}, {hidden_size}, {n_layers}"
            )
        self.input_size, self.output_size = input_size, output_size
        self.hidden_size, self.n_layers = hidden_size, n_layers
        widths = [input_size] + [hidden_size] * n_layers
        self.mix = nn.ModuleList(
            nn.Linear(widths[i], 3 * hidden_size) for i in range(n_layers))  # v, g, Δ
        self.out = nn.ModuleList(
            nn.Linear(hidden_size, hidden_size) for _ in range(n_layers))
        self.log_rate = nn.Parameter(torch.zeros(n_layers, hidden_size))  # λ
        self.readout = nn.Linear(hidden_size, output_size)
        self._distribution = resolve_head(distribution)
        if seed is not None:
            gen = make_generator(seed, self.readout.weight.device)
            torch_default_init(self, gen)
            with torch.no_grad():  # decay rates spread over decades, as S4/Mamba
                self.log_rate.uniform_(-3.0, 1.0, generator=gen)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zeros ``[B, L, H]``."""
        ref = self.readout.weight
        return torch.zeros(batch_size, self.n_layers, self.hidden_size, dtype=ref.dtype,
                           device=ref.device)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x ``[B, input_size]`` → (y ``[B, output_size]``, new state ``[B, L, H]``)."""
        return unroll_step(self, x, state)

    def unroll(
        self, inputs: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole sequences: inputs ``[E, T, input_size]`` → (outputs ``[E, T, K]``, s_T)."""
        if inputs.dim() != 3 or inputs.shape[2] != self.input_size:
            raise ValueError(
                f"inputs: expected shape [episode, t, {self.input_size}], got "
                f"{tuple(inputs.shape)}"
            )
        if state is None:
            state = self.initial_state(inputs.shape[0])
        u, finals = inputs, []
        for layer in range(self.n_layers):
            v, g, decay = self._gates(layer, u)  # [E, T, H] each
            h, hs = state[:, layer], []
            for t in range(inputs.shape[1]):  # the elementwise scan
                h = torch.lerp(v[:, t], h, decay[:, t])  # a h + (1 - a) v
                hs.append(h)
            finals.append(h)
            u = self._mix_out(layer, u, g, torch.stack(hs, dim=1))
        return self.readout(u), torch.stack(finals, dim=1)

    def output_many(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """N inputs per state, x ``[B, N, input_size]`` → ``[B, N, output_size]``.

        Equals ``step`` on each (state, input) pair; each state h ``[B, L, H]`` is
        broadcast over its N inputs instead of being copied N times (used by
        :func:`trajprobe.probe`).
        """
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"x: expected shape [batch, N, {self.input_size}], got {tuple(x.shape)}")
        u = x
        for layer in range(self.n_layers):
            v, g, decay = self._gates(layer, u)  # [B, N, H]
            h = torch.lerp(v, state[:, layer, None], decay)
            u = self._mix_out(layer, u, g, h)
        return self.readout(u)

    def _gates(self, layer: int, u: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """v, g (pre-sigmoid) and the decay a = exp(-Δ ⊙ exp(λ)) of ``layer`` from u."""
        v, g, dt = self.mix[layer](u).chunk(3, dim=-1)
        return v, g, torch.exp(-nn.functional.softplus(dt) * self.log_rate[layer].exp())

    def _mix_out(self, layer: int, u: torch.Tensor, g: torch.Tensor, h: torch.Tensor
                 ) -> torch.Tensor:
        """o = u + W_o (σ(g) ⊙ h), the residual dropped when the widths differ."""
        o = self.out[layer](torch.sigmoid(g) * h)
        return u + o if u.shape[-1] == o.shape[-1] else o

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """The predictive distribution outputs ``y`` ``[..., K]`` parameterise."""
        if self._distribution is None:
            raise ValueError(
                "distribution: this GatedSSM was built without a predictive distribution; "
                "pass distribution='normal' (or another family) to it"
            )
        return self._distribution(y)
