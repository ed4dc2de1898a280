"""The lean closed-loop player of policy-gradient training and its taped LSTM."""

from __future__ import annotations

import pytest
import torch

import trajprobe
from trajprobe.apps.models import MikulikNet, RabinowitzLSTM
from trajprobe.apps.training.closed_loop import lstm_core, play, taped_lstm
from trajprobe.tasks import ContextualBandit

F64 = torch.float64


def _played(model, task, n_episodes=32, n_steps=12, seed=0):
    return play(model, task, n_episodes, n_steps, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cls", [RabinowitzLSTM, MikulikNet])
def test_the_tape_is_the_machine_run_open_loop_on_the_played_inputs(cls):
    task = ContextualBandit(3, 4)
    model = cls(task.input_size, task.n_actions, 8, seed=1).double()
    played = _played(model, task)
    trace = trajprobe.rollout(model, played.inputs)
    torch.testing.assert_close(played.state_vectors, trace.state_vectors(model)[:, 1:],
                               rtol=0, atol=1e-12)
    h = played.tape.h[1:].transpose(0, 1)
    torch.testing.assert_close(model.post(h), trace.outputs, rtol=0, atol=1e-12)


def test_inputs_encode_the_played_history_and_rewards_follow_the_task():
    task = ContextualBandit(3, 4, p_correct=1.0, p_incorrect=0.0)  # reward = correct or not
    model = RabinowitzLSTM(task.input_size, task.n_actions, 8, seed=1)
    played = _played(model, task, n_episodes=64, n_steps=20)
    c, a, r = task.n_contexts, task.n_actions, played.rewards
    contexts = played.inputs[..., :c].argmax(-1)
    torch.testing.assert_close(played.inputs[:, 1:, c:c + a].argmax(-1), played.actions[:, :-1],
                               rtol=0, atol=0)
    torch.testing.assert_close(played.inputs[:, 1:, -1].double(), r[:, :-1], rtol=0, atol=0)
    assert played.inputs[:, 0, c:].abs().sum() == 0  # a_0, r_0 are zeros
    # a reward of 1 exactly when the action is that context's correct one (consistent over
    # the episode: one correct action per context)
    for e in range(8):
        for k in range(c):
            shown = contexts[e] == k
            rewarded = played.actions[e][shown][r[e][shown] == 1]
            assert rewarded.unique().numel() <= 1


class _FixedLogits(torch.nn.Module):
    """A machine with fixed logits and no LSTM core: stepped by its own ``step``."""

    def __init__(self, probs):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(probs).log())

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 1)

    def step(self, x, state):
        return self.logits.expand(x.shape[0], -1), state


def test_actions_are_drawn_from_the_softmax_of_the_outputs():
    task = ContextualBandit(2, 3)
    model = _FixedLogits([0.6, 0.3, 0.1])
    assert lstm_core(model) is None
    played = _played(model, task, n_episodes=400, n_steps=50)
    freq = torch.bincount(played.actions.flatten(), minlength=3) / played.actions.numel()
    torch.testing.assert_close(freq, torch.tensor([0.6, 0.3, 0.1]), rtol=0, atol=0.01)
    assert played.tape is None and played.state_vectors.shape == (400, 50, 1)


def test_same_generator_seed_same_episodes_and_another_seed_others():
    task = ContextualBandit(3, 4)
    model = RabinowitzLSTM(task.input_size, task.n_actions, 8, seed=1)
    a, b, c = (_played(model, task, seed=s) for s in (3, 3, 4))
    assert torch.equal(a.actions, b.actions) and torch.equal(a.inputs, b.inputs)
    assert not torch.equal(a.actions, c.actions)


def test_taped_bptt_equals_autograd_through_nn_lstm():
    task = ContextualBandit(3, 4)
    model = MikulikNet(task.input_size, task.n_actions, 8, seed=2).double()
    played = _played(model, task, n_episodes=5, n_steps=9)
    weights = torch.randn(5, 9, task.n_actions, dtype=F64,
                          generator=torch.Generator().manual_seed(0))
    pre, lstm, post = lstm_core(model)

    def grads(outputs):
        model.zero_grad()
        (outputs * weights).sum().backward()
        return {k: p.grad.clone() for k, p in model.named_parameters()}

    taped = grads(post(taped_lstm(pre(played.inputs), lstm, played.tape)))
    reference = grads(model.unroll(played.inputs)[0])
    assert set(taped) == set(reference)
    for key, value in reference.items():
        torch.testing.assert_close(taped[key], value, rtol=0, atol=1e-12, msg=key)
