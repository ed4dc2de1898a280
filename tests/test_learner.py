"""Learners as machines: functional SGD/Adam on vmapped networks equal ordinary PyTorch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trajprobe
from trajprobe.adapters.torch_learner import (
    SGD,
    Adam,
    DecoupledLinearPolicy,
    Learner,
    LinearChainLearner,
    MSELoss,
    bandit_learner,
    linear_regression_learner,
    mlp_learner,
)
from trajprobe.tasks import ContextualBandit

F64 = torch.float64


def _regression_batches(n_learners, n_steps, m, n_x, n_y, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_learners, n_y, n_x, generator=g, dtype=F64)
    x = torch.randn(n_learners, n_steps, m, n_x, generator=g, dtype=F64)
    y = torch.einsum("bij,btmj->btmi", w, x) + 0.01 * torch.randn(
        n_learners, n_steps, m, n_y, generator=g, dtype=F64)
    return torch.cat([x, y], -1)


def _torch_loop(net, opt, batches, n_x, n_y):
    """An ordinary PyTorch training loop; returns the outputs and parameters per step."""
    outputs, params = [], []
    for batch in batches:
        pred = net(batch[:, :n_x])
        outputs.append(pred.detach().clone())
        loss = nn.functional.mse_loss(pred, batch[:, n_x:n_x + n_y])
        opt.zero_grad()
        loss.backward()
        opt.step()
        params.append({k: v.detach().clone() for k, v in net.named_parameters()})
    return outputs, params


@pytest.mark.parametrize("optimiser", [SGD(0.05), Adam(0.01)])
def test_linear_learner_equals_pytorch_loop(optimiser):
    learner = linear_regression_learner(2, 2, seed=3, dtype=F64, optimiser=optimiser)
    batches = _regression_batches(1, 25, 16, 2, 2, seed=0)
    trace = trajprobe.rollout(learner, batches)

    net = nn.Sequential(nn.Linear(2, 10, bias=False), nn.Linear(10, 2, bias=False)).double()
    net.load_state_dict(learner.parameters_of(learner.initial_state(1)))
    opt = (torch.optim.SGD(net.parameters(), lr=optimiser.lr) if isinstance(optimiser, SGD)
           else torch.optim.Adam(net.parameters(), lr=optimiser.lr))
    outputs, params = _torch_loop(net, opt, batches[0], 2, 2)

    for t in range(25):
        torch.testing.assert_close(trace.outputs[0, t], outputs[t], rtol=0, atol=1e-12)
        state_t = trajprobe.machine.tree_map(lambda leaf, t=t: leaf[:, t + 1], trace.states)
        for name, value in learner.parameters_of(state_t).items():
            torch.testing.assert_close(value, params[t][name], rtol=0, atol=1e-12)
    # the loop really learned: the effective map W2 W1 moved towards the target
    assert not torch.allclose(params[-1]["0.weight"], params[0]["0.weight"])


@pytest.mark.parametrize("optimiser", [SGD(0.05), Adam(0.01)])
def test_the_closed_form_linear_chain_equals_the_vmapped_autograd_learner(optimiser):
    closed = linear_regression_learner(3, 2, hidden=5, seed=4, dtype=F64, optimiser=optimiser)
    assert isinstance(closed, LinearChainLearner)
    generic = Learner(closed.module, optimiser, closed.loss, input_size=3, init=closed.init,
                      seed=4)
    batches = _regression_batches(4, 12, 7, 3, 2, seed=3)
    a, b = trajprobe.rollout(closed, batches), trajprobe.rollout(generic, batches)
    torch.testing.assert_close(a.outputs, b.outputs, rtol=0, atol=1e-13)
    for x, y in zip(trajprobe.machine.tree_leaves(a.states),
                    trajprobe.machine.tree_leaves(b.states), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-13)
    probe = torch.randn(4, 12, 2, 7, 5, dtype=F64)  # output() on other inputs, every state
    torch.testing.assert_close(trajprobe.probe(closed, a, probe),
                               trajprobe.probe(generic, b, probe), rtol=0, atol=1e-13)


def test_the_linear_chain_learner_refuses_biases_and_other_losses():
    with pytest.raises(ValueError, match=r"nn\.Linear layers without bias"):
        LinearChainLearner(nn.Sequential(nn.Linear(2, 3)), SGD(0.1), MSELoss(2, 3), input_size=2)
    with pytest.raises(TypeError, match="loss: expected an MSELoss"):
        LinearChainLearner(nn.Sequential(nn.Linear(2, 3, bias=False)), SGD(0.1),
                           lambda p, b: p.sum(), input_size=2)


def test_relu_mlp_adam_equals_pytorch_loop():
    learner = mlp_learner(n_layers=4, hidden=16, optimiser=Adam(1e-3), seed=1, dtype=F64)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 15, 8, 1, generator=g, dtype=F64) - 0.5
    batches = torch.cat([x, torch.sin(2 * torch.pi * x)], -1)
    trace = trajprobe.rollout(learner, batches)
    net = learner.module
    net.load_state_dict(learner.parameters_of(learner.initial_state(1)))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    outputs, params = _torch_loop(net, opt, batches[0], 1, 1)
    final = learner.parameters_of(trajprobe.machine.tree_map(lambda v: v[:, -1], trace.states))
    for name, value in final.items():
        torch.testing.assert_close(value, params[-1][name], rtol=0, atol=1e-12)
    torch.testing.assert_close(trace.outputs[0], torch.stack(outputs), rtol=0, atol=1e-12)


def test_vmapped_learners_equal_learners_one_at_a_time():
    learner = linear_regression_learner(3, 2, seed=7, dtype=F64, optimiser=Adam(0.01))
    batches = _regression_batches(3, 10, 8, 3, 2, seed=1)
    together = trajprobe.rollout(learner, batches)
    full_init = learner.initial_state(3)
    for b in range(3):
        init_b = trajprobe.machine.index(full_init, b)
        alone = trajprobe.rollout(learner, batches[b:b + 1], initial_state=init_b)
        torch.testing.assert_close(alone.outputs[0], together.outputs[b], rtol=0, atol=1e-13)
        for a, c in zip(trajprobe.machine.tree_leaves(alone.states),
                        trajprobe.machine.tree_leaves(together.states), strict=True):
            torch.testing.assert_close(a[0], c[b], rtol=0, atol=1e-13)


def test_initial_state_draws_do_not_depend_on_batch_size_and_differ_between_learners():
    learner = linear_regression_learner(2, 2, seed=11, dtype=F64)
    one, four = learner.initial_state(1), learner.initial_state(4)
    w1, w4 = one["params"]["0.weight"], four["params"]["0.weight"]
    # the same draws, transformed (truncation) in batches of other sizes, which vectorised
    # kernels may round differently: float64 round-off
    torch.testing.assert_close(w1[0], w4[0], rtol=1e-12, atol=1e-15)
    assert not torch.equal(w4[0], w4[1])
    # truncated normal at two standard deviations (sigma = 0.1)
    assert float(w4.abs().max()) <= 0.2 + 1e-12


def test_probe_at_t_with_the_real_minibatch_gives_the_trace_outputs():
    learner = linear_regression_learner(2, 2, seed=0, dtype=F64)
    batches = _regression_batches(2, 6, 5, 2, 2, seed=2)
    trace = trajprobe.rollout(learner, batches)
    probed = trajprobe.probe(learner, trace, batches.unsqueeze(2))  # [E, T, 1, M, D]
    torch.testing.assert_close(probed[:, :, 0], trace.outputs, rtol=0, atol=1e-13)


def test_reinforce_step_matches_the_closed_form_gradient():
    """Coupled policy, SGD: d/db [-r log softmax(Wc+b)_a] = -r (e_a - π(·|c))."""
    learner = bandit_learner(3, 4, coupled=True, optimiser=SGD(0.1), seed=0, dtype=F64)
    state = learner.initial_state(1)
    x = torch.zeros(1, 1, 3 + 4 + 1, dtype=F64)
    x[0, 0, 1] = 1  # context 1
    x[0, 0, 3 + 2] = 1  # action 2
    x[0, 0, -1] = 1  # reward 1
    logits, new = learner.step(x, state)
    pi = torch.softmax(logits[0, 0], -1)
    grad_b = -(torch.nn.functional.one_hot(torch.tensor(2), 4).double() - pi)
    torch.testing.assert_close(new["params"]["bias"][0], state["params"]["bias"][0] - 0.1 * grad_b)
    grad_w = grad_b[:, None] * x[0, 0, :3][None, :]
    torch.testing.assert_close(new["params"]["weight"][0],
                               state["params"]["weight"][0] - 0.1 * grad_w)


@pytest.mark.parametrize("coupled", [True, False])
def test_decoupled_policy_does_not_interfere_across_contexts(coupled):
    learner = bandit_learner(3, 3, coupled=coupled, optimiser=Adam(0.1), seed=2, dtype=F64)
    state = learner.initial_state(1)
    x = torch.zeros(1, 10, 7, dtype=F64)
    x[0, :, 0] = 1  # only context 0 is seen
    x[0, :, 3] = 1  # action 0
    x[0, :, -1] = 1  # rewarded
    _, new = learner.step(x, state)
    probe = torch.zeros(1, 3, 7, dtype=F64)
    probe[0, torch.arange(3), torch.arange(3)] = 1  # one row per context
    before, after = learner.output(probe, state), learner.output(probe, new)
    assert not torch.allclose(before[0, 0], after[0, 0])
    others_moved = not torch.allclose(before[0, 1:], after[0, 1:], rtol=0, atol=1e-12)
    assert others_moved == coupled


def test_decoupled_policy_is_tabular():
    net = DecoupledLinearPolicy(3, 2).double()
    with torch.no_grad():
        net.weight.copy_(torch.arange(18, dtype=F64).reshape(3, 2, 3))
        net.bias.copy_(torch.arange(6, dtype=F64).reshape(3, 2))
    ctx = torch.eye(3, dtype=F64)
    expected = torch.stack([net.weight[c, :, c] + net.bias[c] for c in range(3)])
    torch.testing.assert_close(net(ctx), expected)


def test_bandit_learners_learn_and_their_stream_replays_open_loop():
    learner = bandit_learner(3, 3, coupled=False, optimiser=SGD(1.0), seed=0, dtype=F64)
    correct = torch.tensor([[0, 1, 2], [2, 2, 0]])
    task = ContextualBandit(3, 3, p_correct=1.0, p_incorrect=0.0)
    trace = trajprobe.interact(learner, task, 2, 40, n_samples=32, params={"correct": correct},
                               seed=4)
    assert tuple(trace.inputs.shape) == (2, 40, 32, 7) and tuple(trace.rewards.shape) == (2, 40, 32)
    # the reward of every sample is 1 exactly when its action is its context's correct one
    ctx = trace.inputs[..., :3].argmax(-1)
    hit = trace.actions == correct.gather(1, ctx.flatten(1)).reshape(ctx.shape)
    assert torch.equal(trace.rewards.bool(), hit)
    replay = trajprobe.rollout(learner, trace.inputs)
    # the closed loop's vmapped forward against the replay's vmap(grad) step: two code
    # paths, float64 round-off of O(1) logits
    torch.testing.assert_close(replay.outputs, trace.outputs, rtol=1e-12, atol=1e-12)
    pi = torch.softmax(trace.outputs[:, -1], -1)  # [B, M, K_a]
    ctx = trace.inputs[:, -1, :, :3].argmax(-1)
    p_correct = pi.gather(2, correct.gather(1, ctx).unsqueeze(-1))
    assert float(p_correct.mean()) > 0.9


def test_learner_rejects_a_minibatch_without_the_learner_axis():
    learner = linear_regression_learner(2, 2)
    with pytest.raises(ValueError, match=r"x: expected a minibatch per learner \[B, M, D\]"):
        learner.step(torch.zeros(16, 4), learner.initial_state(1))
    with pytest.raises(ValueError, match="lr"):
        SGD(-1.0)
