"""Closed-loop training episodes with little per-step work: the player of policy-gradient training.

:func:`play` runs ``E`` bandit episodes of ``T`` steps for one outer update of
:func:`trajprobe.apps.training.train_policy_gradient`. Everything random is drawn before the
first step, in one batched call each, from one generator:

1. the environment's parameters, ``task.sample_params`` (``E`` episodes);
2. the contexts of every step, ``task.contexts`` ``[E, T]``;
3. Gumbel noise ``[E, T, A]`` for the actions: a_t = argmax_a (y_t[a] + g_t[a]) is a draw
   from softmax(y_t) (the Gumbel-max trick), so no distribution object is built per step;
4. the reward of *every* action at every step, ``task.reward`` on ``E·T·A`` rows
   ``[E, T, A]``: the reward of the action taken is a draw from the task's own reward
   distribution, independent across steps, as if drawn after the action.

Per step only the machine runs, plus ``task.encode`` (x_t = encode(c_t, a_{t-1}, r_{t-1})),
an argmax and a gather. Interaction (:class:`trajprobe.traces.Interaction`) is the
driver of measurements, with its checks and its per-step draws; this is the lean loop of
training.

A machine with an LSTM core (``lstm_core() -> (pre, lstm, post)``, e.g.
:class:`~trajprobe.apps.models.RabinowitzLSTM`: y = post(h), (h, c) = LSTM(pre(x))) is stepped
with fused cell arithmetic that keeps its gates (:class:`LSTMTape`), and the loss is
backpropagated through those recorded gates by :func:`taped_lstm` (BPTT written out, the
weight gradients as one matrix product over all steps): the episode is computed once, not
played and then replayed. Any other machine is stepped by its own ``step`` and replayed
by its ``unroll``; both paths draw the same numbers, so they train identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trajprobe import machine as sm
from trajprobe import task_checks as checks
from trajprobe.machine import LSTMState
from trajprobe.task_protocol import Environment

__all__ = ["LSTMTape", "Played", "lstm_core", "play", "taped_lstm"]


@dataclass
class LSTMTape:
    """The forward pass of a single-layer LSTM over ``T`` steps, time-major.

    Attributes:
        x: ``[T, B, I]`` the LSTM's inputs (``pre(x_t)``).
        h: ``[T+1, B, H]`` hidden states h_0..h_T.
        c: ``[T+1, B, H]`` cell states c_0..c_T.
        gates: ``[T, B, 4, H]`` the activations i, f, g, o (σ, σ, tanh, σ) of every step.
        tanh_c: ``[T, B, H]`` tanh(c_t), t = 1..T.
    """

    x: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor
    gates: torch.Tensor
    tanh_c: torch.Tensor


def lstm_core(model: Any) -> tuple[nn.Module, nn.LSTM, nn.Module] | None:
    """``(pre, lstm, post)`` of a machine that declares an LSTM core the taped loop can step.

    The machine must compute y = post(h), (h, c) = lstm(pre(x), (h, c)) with a
    single-layer, unidirectional ``nn.LSTM`` with biases and no projection, from zero
    initial states. None for any other machine (it is stepped by its own ``step``).
    """
    declare = getattr(model, "lstm_core", None)
    if not callable(declare):
        return None
    pre, lstm, post = declare()
    if not (isinstance(lstm, nn.LSTM) and lstm.num_layers == 1 and not lstm.bidirectional
            and lstm.bias and lstm.proj_size == 0):
        return None
    return pre, lstm, post


class _Cell:
    """An LSTM's weights arranged for stepping into a tape, with every per-step view made
    once (a view costs as much as a small kernel): gates = b + x W_ih^T + h W_hh^T with
    the rows in the order (i, f, o, g) and the g rows doubled, so that one σ over all four
    gates gives σ(i), σ(f), σ(o) and tanh(g) = 2σ(2g) - 1 (on this project's CPU σ runs
    about three times faster than tanh, which also gives tanh(c) = 2σ(2c) - 1)."""

    def __init__(self, lstm: nn.LSTM, tape: LSTMTape):
        hidden = lstm.hidden_size
        order = torch.cat([torch.arange(0, 2 * hidden), torch.arange(3 * hidden, 4 * hidden),
                           torch.arange(2 * hidden, 3 * hidden)]).to(lstm.weight_ih_l0.device)
        scale = torch.ones(4 * hidden, dtype=lstm.weight_ih_l0.dtype,
                           device=lstm.weight_ih_l0.device)
        scale[3 * hidden:] = 2.0
        self.w_ih_t = (lstm.weight_ih_l0.detach()[order] * scale[:, None]).t().contiguous()
        self.w_hh_t = (lstm.weight_hh_l0.detach()[order] * scale[:, None]).t().contiguous()
        self.bias = (lstm.bias_ih_l0.detach() + lstm.bias_hh_l0.detach())[order] * scale
        n_steps, batch = tape.gates.shape[:2]
        self.gates = tape.gates.view(n_steps, batch, 4 * hidden).unbind(0)
        self.i, self.f, self.o, self.g = (v.unbind(0) for v in tape.gates.unbind(2))
        self.h, self.c, self.tanh_c = tape.h.unbind(0), tape.c.unbind(0), tape.tanh_c.unbind(0)

    def step(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """Step t (0-based) from h_t, c_t of the tape; fills step t, returns h_{t+1}."""
        gates = torch.addmm(self.bias, x, self.w_ih_t, out=self.gates[t])
        gates.addmm_(self.h[t], self.w_hh_t).sigmoid_()
        self.g[t].mul_(2).sub_(1)
        c = torch.mul(self.f[t], self.c[t], out=self.c[t + 1]).addcmul_(self.i[t], self.g[t])
        tanh_c = torch.mul(c, 2, out=self.tanh_c[t]).sigmoid_().mul_(2).sub_(1)
        return torch.mul(self.o[t], tanh_c, out=self.h[t + 1])


class _TapedLSTM(torch.autograd.Function):
    """h_1..h_T of a recorded LSTM pass, with BPTT through the recorded gates."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, tape):
        ctx.tape = tape
        ctx.save_for_backward(w_ih, w_hh)
        return tape.h[1:].transpose(0, 1).contiguous()

    @staticmethod
    def backward(ctx, grad_h):
        tape: LSTMTape = ctx.tape
        w_ih, w_hh = ctx.saved_tensors
        d_gates = _bptt(grad_h.transpose(0, 1), tape, w_hh)
        flat = d_gates.reshape(-1, d_gates.shape[-1])  # [T B, 4H]
        # small dimension first: X^T G runs several times faster than G^T X on the CPU
        d_w_hh = (tape.h[:-1].reshape(-1, tape.h.shape[-1]).t() @ flat).t()
        x1 = torch.cat([tape.x.reshape(-1, tape.x.shape[-1]), flat.new_ones(flat.shape[0], 1)],
                       dim=1)
        d_w_ih_b = (x1.t() @ flat).t()  # [4H, I + 1]: dW_ih and, last, db
        d_w_ih, d_b = d_w_ih_b[:, :-1], d_w_ih_b[:, -1]
        d_x = None
        if ctx.needs_input_grad[0]:
            d_x = (flat @ w_ih).reshape(*d_gates.shape[:2], -1).transpose(0, 1)
        return d_x, d_w_ih, d_w_hh, d_b, d_b, None


def _bptt(grad_h: torch.Tensor, tape: LSTMTape, w_hh: torch.Tensor) -> torch.Tensor:
    """dL/d(gate pre-activations) ``[T, B, 4H]`` (PyTorch's order i, f, g, o) from dL/dh_t
    ``[T, B, H]`` (t = 1..T).

    With i, f, g, o the gate activations and c_t = f c_{t-1} + i g, h_t = o tanh(c_t):
    dc_t = dc_{t+1} f_{t+1} + dh_t o (1 - tanh² c_t); d(pre_i) = dc i(1-i) g,
    d(pre_f) = dc f(1-f) c_{t-1}, d(pre_g) = dc i (1-g²), d(pre_o) = dh tanh(c_t) o(1-o);
    dh_{t-1} = d(pre) W_hh + dL/dh_{t-1}. The factors that do not depend on the recursion
    are computed for all steps at once, and every per-step view is made once.
    """
    n_steps, batch, hidden = grad_h.shape
    i, f, o, g = tape.gates.unbind(2)
    slope = torch.addcmul(tape.gates, tape.gates, tape.gates, value=-1)  # σ(1 - σ)
    factors = grad_h.new_empty(n_steps, batch, 4, hidden)  # PyTorch's order i, f, g, o
    torch.mul(slope[:, :, 0], g, out=factors[:, :, 0])
    torch.mul(slope[:, :, 1], tape.c[:-1], out=factors[:, :, 1])
    torch.addcmul(i, i, g.square(), value=-1, out=factors[:, :, 2])
    torch.mul(slope[:, :, 2], tape.tanh_c, out=factors[:, :, 3])
    from_h = torch.addcmul(o, o, tape.tanh_c.square(), value=-1).unbind(0)  # dc_t / dh_t
    from_c = factors[:, :, :3].unbind(0)  # [B, 3, H] per step, times dc_t
    out_gate = factors[:, :, 3].unbind(0)  # times dh_t
    d_gates = grad_h.new_empty(n_steps, batch, 4, hidden)
    d_ifg, d_o = d_gates[:, :, :3].unbind(0), d_gates[:, :, 3].unbind(0)
    flat = d_gates.view(n_steps, batch, 4 * hidden).unbind(0)
    forget, grads = f.unbind(0), grad_h.unbind(0)
    d_h = grads[-1]
    d_c = torch.zeros_like(d_h)
    for t in reversed(range(n_steps)):
        d_c = d_c.addcmul(d_h, from_h[t])
        torch.mul(d_c.unsqueeze(1), from_c[t], out=d_ifg[t])
        torch.mul(d_h, out_gate[t], out=d_o[t])
        if t:
            d_c = d_c.mul_(forget[t])
            d_h = torch.addmm(grads[t - 1], flat[t], w_hh)
    return d_gates.view(n_steps, batch, 4 * hidden)


def taped_lstm(x: torch.Tensor, lstm: nn.LSTM, tape: LSTMTape) -> torch.Tensor:
    """h_1..h_T ``[B, T, H]`` recorded in ``tape``, differentiable in ``x [B, T, I]`` (the
    LSTM's inputs, as recorded) and in ``lstm``'s weights, by BPTT through the tape."""
    return _TapedLSTM.apply(x, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0,
                            lstm.bias_hh_l0, tape)


@dataclass
class Played:
    """A batch of closed-loop episodes, recorded for the policy-gradient loss.

    Attributes:
        inputs: ``[E, T, input_size]`` x_1..x_T.
        actions: ``[E, T]`` (long) a_t.
        rewards: ``[E, T]`` r_t (as the task gives them).
        state_vectors: ``[E, T, S]`` the machine's state vector after each step, s_1..s_T.
        tape: the LSTM core's recorded pass (None: the machine was stepped by ``step``).
    """

    inputs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    state_vectors: torch.Tensor
    tape: LSTMTape | None = None


@dataclass
class _Draws:
    """Everything random about a batch of episodes, drawn before its first step.

    Attributes:
        gumbel: ``[T, E, A]`` Gumbel noise of the actions.
        rewards: ``[E, T, A]`` the reward every action would get at every step.
        inputs: ``[T, E, A, input_size]`` every input the machine can see: x_t if
            a_{t-1} = a, i.e. ``task.encode(c_t, a, rewards[:, t-1, a])`` (equal over a at
            t = 1, where a_0 and r_0 are None).
    """

    gumbel: torch.Tensor
    rewards: torch.Tensor
    inputs: torch.Tensor

    def __post_init__(self) -> None:
        n_steps, n_episodes, n_actions, size = self.inputs.shape
        self._rows = self.inputs.view(n_steps, n_episodes * n_actions, size).unbind(0)
        self._first_row = n_actions * torch.arange(n_episodes, device=self.inputs.device)

    def input_at(self, t: int, prev_action: torch.Tensor | None,
                 out: torch.Tensor | None = None) -> torch.Tensor:
        """x_t ``[E, input_size]`` (t 0-based) after ``prev_action`` ``[E]`` (None at t = 0)."""
        if prev_action is None:
            first = self.inputs[t, :, 0]
            return first if out is None else out.copy_(first)
        rows = torch.add(self._first_row, prev_action)
        return torch.index_select(self._rows[t], 0, rows, out=out)


def _draw(task: Environment, n_episodes: int, n_steps: int, generator: torch.Generator,
          device: torch.device, dtype: torch.dtype) -> _Draws:
    """Parameters, contexts, Gumbel noise and every action's reward, then every input."""
    n_actions = task.n_actions
    checks.check_methods(task, checks.ENVIRONMENT_METHODS, "an Environment")
    params = checks.params(task, task.sample_params(n_episodes, generator=generator,
                                                    device=device), n_episodes)
    contexts = checks.contexts(task, task.contexts(params, n_steps, generator=generator),
                               n_episodes, n_steps)
    u = torch.rand((n_steps, n_episodes, n_actions), generator=generator,
                   device=generator.device, dtype=torch.float64)
    gumbel = (-torch.log(-torch.log(u))).to(device=device, dtype=dtype)
    rows = n_steps * n_actions
    every = {k: v.repeat_interleave(rows, dim=0) for k, v in params.items()}
    actions = torch.arange(n_actions, device=device).repeat(n_episodes * n_steps)
    shown = (None if contexts is None else
             contexts.repeat_interleave(n_actions, dim=1).reshape(-1))
    rewards = checks.rewards(task, task.reward(every, shown, actions, generator=generator),
                             actions.numel())
    rewards = rewards.reshape(n_episodes, n_steps, n_actions).to(device)
    first = checks.encoded(task, task.encode(None if contexts is None else contexts[:, 0], None,
                                             None, dtype=dtype), n_episodes)
    inputs = torch.empty(n_steps, n_episodes, n_actions, first.shape[-1], dtype=dtype,
                         device=device)
    inputs[0] = first.to(device)[:, None]
    if n_steps > 1:
        later = (None if contexts is None else
                 contexts[:, 1:].repeat_interleave(n_actions, dim=1).reshape(-1))
        x = task.encode(later, actions[: n_episodes * (n_steps - 1) * n_actions],
                        rewards[:, :-1].reshape(-1), dtype=dtype)
        x = checks.encoded(task, x, n_episodes * (n_steps - 1) * n_actions)
        inputs[1:] = x.to(device).reshape(n_episodes, n_steps - 1, n_actions, -1).transpose(0, 1)
    return _Draws(gumbel, rewards, inputs)


def play(model: nn.Module, task: Environment, n_episodes: int, n_steps: int, *,
         generator: torch.Generator) -> Played:
    """Run ``n_episodes`` closed-loop episodes of ``n_steps`` without gradients (see module).

    Args:
        model: an ``nn.Module`` machine whose outputs ``[B, A]`` are the policy's logits.
        task: the environment; its ``encode``, ``reward`` and draws are used as they are.
        n_episodes, n_steps: E and T.
        generator: draws everything (on the model's device).

    Returns:
        :class:`Played`; with an LSTM core (:func:`lstm_core`) its ``tape`` is filled.
    """
    ref = next(model.parameters())
    draws = _draw(task, n_episodes, n_steps, generator, ref.device, ref.dtype)
    core = lstm_core(model)
    with torch.no_grad():
        actions, states, tape = (_play_steps(model, draws) if core is None else
                                 _play_taped(model, core, draws))
    actions = actions.t()
    rewards = draws.rewards.gather(2, actions[..., None])[..., 0]
    prev = actions[:, :-1, None, None].expand(-1, -1, 1, draws.inputs.shape[-1])
    later = draws.inputs[1:].transpose(0, 1).gather(2, prev)[:, :, 0]
    inputs = torch.cat([draws.inputs[0, :, 0][:, None], later], dim=1)
    return Played(inputs, actions, rewards, states, tape)


def _play_steps(model: nn.Module, draws: _Draws
                ) -> tuple[torch.Tensor, torch.Tensor, None]:
    """Actions ``[T, E]`` and state vectors ``[E, T, S]`` of a machine stepped by ``step``."""
    n_steps, n_episodes = draws.gumbel.shape[:2]
    state = model.initial_state(n_episodes)
    actions, states = [], []
    action = None
    for t in range(n_steps):
        y, state = model.step(draws.input_at(t, action), state)
        action = (y + draws.gumbel[t]).argmax(-1)
        actions.append(action)
        states.append(sm.state_vector(model, state))
    return torch.stack(actions), torch.stack(states, 1), None


class _Readout:
    """y_t + g_t: the logits plus the step's Gumbel noise ``[E, A]``; a linear ``post``
    adds its bias and the noise in the same kernel."""

    def __init__(self, post: nn.Module, gumbel: torch.Tensor):
        self.post = post
        if isinstance(post, nn.Linear):
            self.weight_t = post.weight.detach().t()
            bias = post.bias.detach() if post.bias is not None else 0
            self.noise = (gumbel + bias).unbind(0)
        else:
            self.weight_t, self.noise = None, gumbel.unbind(0)

    def __call__(self, h: torch.Tensor, t: int) -> torch.Tensor:
        if self.weight_t is not None:
            return torch.addmm(self.noise[t], h, self.weight_t)
        return self.post(h).add_(self.noise[t])


def _play_taped(model: nn.Module, core: tuple[nn.Module, nn.LSTM, nn.Module], draws: _Draws
                ) -> tuple[torch.Tensor, torch.Tensor, LSTMTape]:
    """Actions ``[T, E]``, state vectors ``[E, T, S]`` and the tape of an LSTM core."""
    pre, lstm, post = core
    n_steps, n_episodes = draws.gumbel.shape[:2]
    like = draws.gumbel
    hidden = lstm.hidden_size
    raw = torch.empty(n_steps, n_episodes, draws.inputs.shape[-1], dtype=like.dtype,
                      device=like.device)
    passthrough = isinstance(pre, nn.Identity)
    tape = LSTMTape(
        x=raw if passthrough else like.new_empty(n_steps, n_episodes, lstm.input_size),
        h=like.new_zeros(n_steps + 1, n_episodes, hidden),
        c=like.new_zeros(n_steps + 1, n_episodes, hidden),
        gates=like.new_empty(n_steps, n_episodes, 4, hidden),
        tanh_c=like.new_empty(n_steps, n_episodes, hidden),
    )
    cell = _Cell(lstm, tape)
    readout = _Readout(post, draws.gumbel)
    actions = torch.empty(n_steps, n_episodes, dtype=torch.long, device=like.device)
    action = None
    raws, xs, chosen = raw.unbind(0), tape.x.unbind(0), actions.unbind(0)
    for t in range(n_steps):
        x = draws.input_at(t, action, out=raws[t])
        if not passthrough:
            x = xs[t].copy_(pre(x))
        action = torch.argmax(readout(cell.step(x, t), t), -1, out=chosen[t])
    vectors = sm.state_vector(model, LSTMState(tape.h[1:].flatten(0, 1),
                                               tape.c[1:].flatten(0, 1)))
    return actions, vectors.reshape(n_steps, n_episodes, -1).transpose(0, 1), tape
