"""The closed-form contextual-bandit Learner (Rabinowitz A.5) against the autograd Learner."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trajprobe.adapters.bandit_learner import (
    BanditLearner,
    multinomial_counts,
    train_bandit_learners,
)
from trajprobe.adapters.torch_learner import SGD, Adam, bandit_learner
from trajprobe.tasks import ContextualBandit
from trajprobe.traces import Interaction

F64 = torch.float64


def _same_start(generic_state: dict, coupled: bool, fast: BanditLearner) -> dict:
    """The autograd Learner's θ_0 in the closed-form layout (weight [B, C, A], bias)."""
    p = generic_state["params"]
    if coupled:  # nn.Linear: weight [B, A, C], bias [B, A]
        params = {"weight": p["weight"].transpose(1, 2).clone(), "bias": p["bias"][:, None].clone()}
    else:  # DecoupledLinearPolicy: network c's column c and bias
        n_c = p["bias"].shape[1]
        params = {"weight": torch.stack([p["weight"][:, c, :, c] for c in range(n_c)], 1),
                  "bias": p["bias"].clone()}
    return {"params": params, "opt": fast._init_opt(params)}


@pytest.mark.parametrize("coupled", [True, False])
@pytest.mark.parametrize("optimiser", [Adam(0.05), SGD(0.5)], ids=["adam", "sgd"])
def test_closed_form_update_equals_autograd_learner(coupled, optimiser):
    """Same rows, same θ_0: the outputs and every later policy equal the vmapped Learner's."""
    generic = bandit_learner(4, 5, coupled=coupled, optimiser=optimiser, seed=3, dtype=F64)
    fast = BanditLearner(4, 5, coupled=coupled, optimiser=optimiser, dtype=F64)
    run = Interaction(generic, ContextualBandit(4, 5, conflicting=True), 3, 6, seed=1,
                      n_samples=40)
    state = _same_start(run.initial_state, coupled, fast)
    for step in run:
        y, state = fast.step(step.input, state)
        torch.testing.assert_close(y, step.output, rtol=0, atol=1e-12)
    p = step.next_state["params"]
    if coupled:
        logits = p["weight"].transpose(1, 2) + p["bias"][:, None]
    else:
        logits = torch.stack([p["weight"][:, c, :, c] for c in range(4)], 1) + p["bias"]
    torch.testing.assert_close(fast.logits(state), logits, rtol=0, atol=1e-12)
    assert not torch.allclose(fast.logits(state), fast.logits(_same_start(
        run.initial_state, coupled, fast)))  # it did learn something


def test_baseline_is_subtracted_from_every_reward():
    """With β = the reward of every row, the REINFORCE gradient is zero: nothing moves."""
    learner = BanditLearner(3, 3, optimiser=SGD(1.0), baseline=1.0, dtype=F64)
    state = learner.initial_state(2)
    taken = torch.tensor([[[3.0, 1, 0], [0, 2, 2], [1, 1, 1]]], dtype=F64).expand(2, -1, -1)
    new = learner.update(taken.clone(), taken, state, minibatch=11)
    torch.testing.assert_close(learner.logits(new), learner.logits(state))


def test_initial_state_is_the_papers_truncated_normal_and_prefix_stable():
    learner = BanditLearner(5, 5, seed=4, dtype=F64)
    big, small = learner.initial_state(400), learner.initial_state(3)
    torch.testing.assert_close(small["params"]["weight"], big["params"]["weight"][:3])
    draws = torch.cat([big["params"]["weight"].flatten(), big["params"]["bias"].flatten()])
    sigma = 1 / math.sqrt(5)
    assert draws.abs().max() <= 2 * sigma
    # N(0, σ²) truncated at ±2σ has standard deviation 0.8796 σ
    assert abs(draws.std().item() / sigma - 0.8796) < 0.03
    assert big["params"]["bias"].shape == (400, 1, 5)
    assert BanditLearner(5, 5, coupled=False).initial_state(2)["params"]["bias"].shape == (2, 5, 5)


def test_multinomial_counts_sum_to_n_and_have_multinomial_moments():
    generator = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.5, 0.1, 0.0, 0.25, 0.15], dtype=F64).expand(20_000, 5)
    n = torch.full((20_000,), 40.0, dtype=F64)
    counts = multinomial_counts(n, probs, generator)
    assert torch.equal(counts.sum(-1), n)
    assert (counts[:, 2] == 0).all()
    mean, var = counts.mean(0), counts.var(0)
    p = probs[0]
    # mean 40 p, variance 40 p (1 - p); the mean's standard error is sqrt(var / 20000)
    assert ((mean - 40 * p).abs() <= 5 * (40 * p * (1 - p) / 20_000).sqrt() + 1e-12).all()
    torch.testing.assert_close(var, 40 * p * (1 - p), rtol=0.05, atol=1e-12)


def test_train_bandit_learners_learns_every_context_and_stops_at_the_rule():
    task = ContextualBandit(3, 3, conflicting=True)
    learner = BanditLearner(3, 3, optimiser=Adam(0.05), dtype=F64)
    threads = torch.get_num_threads()
    ds = train_bandit_learners(learner, task, 6, minibatch=60, max_steps=3000, stop_at=0.95,
                               seed=2, progress=False)
    assert ds["q"].dims == ("episode", "t", "context")
    steps = ds["steps_trained"].values
    assert (steps < 3000).all()  # every learner met the rule before the cap
    assert torch.get_num_threads() == threads  # one thread inside, restored after
    final = ds["q"].isel(t=-1).mean("context")
    assert (final >= 0.95).all() and (final < 0.99).all()  # frozen where it stopped
    # R_c is the mean of eq. 12 over the learner's own steps: between chance and p_correct
    score = ds["return_score"].values
    assert ((score > task.p_incorrect) & (score < task.p_correct)).all()
    # the same seed gives the same run
    again = train_bandit_learners(learner, task, 6, minibatch=60, max_steps=3000,
                                  stop_at=0.95, seed=2, progress=False)
    assert again["q"].equals(ds["q"])


def test_expected_gradient_of_the_sampled_tables_is_the_exact_policy_gradient():
    """Averaged over many draws, the update's gradient equals ∇ of eq. 13 (SGD, tiny lr)."""
    task = ContextualBandit(2, 3, conflicting=True)
    learner = BanditLearner(2, 3, optimiser=SGD(1e-6), dtype=F64, seed=1)
    state = learner.initial_state(1)
    logits = learner.logits(state).clone().requires_grad_(True)
    correct = torch.tensor([[2, 0]])
    p = torch.full((1, 2, 3), task.p_incorrect, dtype=F64)
    p.scatter_(2, correct[:, :, None], task.p_correct)
    (torch.softmax(logits, -1) * p).sum(-1).mean().backward()  # E[r] (eq. 13)
    generator = torch.Generator().manual_seed(0)
    draws, m = 4000, 50
    per_context = multinomial_counts(torch.full((draws,), float(m), dtype=F64),
                                     torch.full((draws, 2), 0.5, dtype=F64), generator)
    pi = learner.policy(state).expand(draws, -1, -1)
    taken = multinomial_counts(per_context, pi, generator)
    rewarded = torch.binomial(taken, p.expand(draws, -1, -1), generator=generator)
    grad = ((rewarded.sum(-1, keepdim=True) * pi - rewarded) / m).mean(0)  # of the loss
    torch.testing.assert_close(-grad, logits.grad[0], rtol=0, atol=4e-3)


@pytest.mark.parametrize("bad, match", [
    (dict(stop_at=1.5), "stop_at"),
    (dict(minibatch=0), "minibatch"),
])
def test_train_bandit_learners_rejects_bad_arguments(bad, match):
    task = ContextualBandit(3, 3, conflicting=True)
    with pytest.raises(ValueError, match=match):
        train_bandit_learners(BanditLearner(3, 3), task, 2, **bad)


def test_task_and_learner_sizes_must_agree():
    with pytest.raises(ValueError, match="contexts"):
        train_bandit_learners(BanditLearner(3, 3), ContextualBandit(5, 5), 2, max_steps=2)


def test_step_rejects_rows_without_the_outcome():
    learner = BanditLearner(3, 3)
    with pytest.raises(ValueError, match=r"\[B, M, 7\]"):
        learner.step(torch.zeros(2, 4, 3), learner.initial_state(2))


def test_single_context_minibatches_show_one_context_per_step():
    from trajprobe.adapters.bandit_learner import _Schedule

    generator = torch.Generator().manual_seed(0)
    single = _Schedule(30, 10, None, "single", np.arange(1, 11))
    counts = single.context_counts(7, 4, generator)  # [chunk, learners, contexts]
    assert torch.equal((counts > 0).sum(-1), torch.ones(counts.shape[:2], dtype=torch.long))
    assert torch.equal(counts.sum(-1), torch.full(counts.shape[:2], 30.0, dtype=F64))
    shown = counts.argmax(-1).flatten()
    assert set(shown.tolist()) == {0, 1, 2, 3}  # uniform over the contexts
    mixed = _Schedule(30, 10, None, "mixed", np.arange(1, 11)).context_counts(7, 4, generator)
    assert torch.equal(mixed.sum(-1), torch.full(mixed.shape[:2], 30.0, dtype=F64))
    assert ((mixed > 0).sum(-1) > 1).all()
