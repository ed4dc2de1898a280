"""A contextual bandit that shows K of its C contexts, and the policy-gradient curriculum."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from trajprobe import io
from trajprobe.models import RabinowitzLSTM
from trajprobe.tasks import ContextualBandit
from trajprobe.training import (
    OptimiserConfig,
    PolicyGradientConfig,
    describe_task,
    train_policy_gradient,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_a_stage_shows_only_its_episode_s_contexts_and_each_of_them():
    task = ContextualBandit(5, 5, n_shown=2)
    params = task.sample_params(300, generator=_gen())
    shown = params["shown"]
    assert shown.shape == (300, 2)
    assert (shown[:, 0] != shown[:, 1]).all()
    contexts = task.contexts(params, 200, generator=_gen(1))
    assert ((contexts[..., None] == shown[:, None]).any(-1)).all()
    for k in range(2):  # both contexts appear, about half of the steps each
        share = (contexts == shown[:, k:k + 1]).double().mean()
        assert abs(share - 0.5) < 0.02
    # every context is drawn into the shown set about equally often (2/5 of episodes)
    counts = torch.bincount(shown.flatten(), minlength=5) / 300
    assert torch.allclose(counts, torch.full((5,), 0.4, dtype=counts.dtype), atol=0.1)


def test_showing_all_or_none_leaves_the_correct_actions_and_encoding_alone():
    full = ContextualBandit(5, 5)
    for k in (1, 3, 5):
        part = full.showing(k)
        assert part.n_shown == k and part.input_size == full.input_size == 11
        torch.testing.assert_close(part.sample_params(50, generator=_gen(3))["correct"],
                                   full.sample_params(50, generator=_gen(3))["correct"])
    assert full.showing(None) == full
    params = full.sample_params(4, generator=_gen())
    assert set(params) == {"correct"}  # as before n_shown existed: same draws, same runs


def test_n_shown_is_checked_and_described_only_when_set():
    with pytest.raises(ValueError, match="n_shown: expected None or at most n_contexts = 5"):
        ContextualBandit(5, 5, n_shown=6)
    with pytest.raises(ValueError, match="n_shown"):
        ContextualBandit(5, 5, n_shown=0)
    task = ContextualBandit(5, 5, n_shown=2)
    with pytest.raises(ValueError, match=r"params: n_shown = 2 needs params\['shown'\]"):
        task.contexts(ContextualBandit(5, 5).sample_params(3, generator=_gen()), 4,
                      generator=_gen())
    assert "n_shown" not in describe_task(ContextualBandit(5, 5))  # older run dirs match
    assert describe_task(task)["n_shown"] == 2


def test_the_schedule_gives_each_stage_its_share_of_the_outer_steps():
    config = PolicyGradientConfig(1000, n_steps=100, batch_size=100,
                                  curriculum=((0.3, 100, 2), (0.2, 50, None)))
    stages = [config.stage_at(k, 10) for k in range(10)]
    assert stages == [(100, 2)] * 3 + [(50, None)] * 2 + [(100, None)] * 5
    assert PolicyGradientConfig(10).stage_at(0, 1) == (100, None)


@pytest.mark.parametrize("stage", [(0.5, 10), (0.0, 10, 2), (0.5, 0, 2), (0.5, 10, 0),
                                   (0.5, 10, True), (0.5, 10, 2.5)])
def test_a_malformed_stage_is_refused(stage):
    with pytest.raises(ValueError, match=r"curriculum: expected .* got the stage"):
        PolicyGradientConfig(10, curriculum=(stage,))


def test_shares_over_one_and_a_task_without_showing_are_refused():
    with pytest.raises(ValueError, match="curriculum: the shares add up to more than 1"):
        PolicyGradientConfig(10, curriculum=((0.6, 5, 2), (0.6, 5, 3)))
    with pytest.raises(TypeError, match="curriculum: expected a tuple"):
        PolicyGradientConfig(10, curriculum="2 then 5")

    class Plain(ContextualBandit):
        showing = None

    config = PolicyGradientConfig(40, n_steps=4, batch_size=20, curriculum=((0.5, 4, 2),))
    with pytest.raises(ValueError, match="curriculum: a stage shows 2 contexts, but Plain"):
        train_policy_gradient(RabinowitzLSTM(11, 5, 8), Plain(5, 5), config, progress=False)


class _Interrupt(Exception):
    pass


@dataclasses.dataclass
class _Log:
    """What every outer step played, shared by a task and its stages."""

    stages: list[tuple[int, int | None, frozenset[int]]] = dataclasses.field(
        default_factory=list)
    stop_after: int | None = None


class _Recorded:
    """A ContextualBandit that logs (T, K, contexts shown) per outer step and can stop."""

    def __init__(self, task: ContextualBandit, log: _Log):
        self.task, self.log = task, log
        self.input_size, self.n_actions = task.input_size, task.n_actions

    def showing(self, n_shown):
        return _Recorded(self.task.showing(n_shown), self.log)

    def sample_params(self, n_episodes, *, generator, device=None):
        if self.log.stop_after is not None and len(self.log.stages) >= self.log.stop_after:
            raise _Interrupt
        return self.task.sample_params(n_episodes, generator=generator, device=device)

    def contexts(self, params, n_steps, *, generator):
        contexts = self.task.contexts(params, n_steps, generator=generator)
        per_episode = {len(set(row.tolist())) for row in contexts}
        self.log.stages.append((n_steps, self.task.n_shown, frozenset(per_episode)))
        return contexts

    def reward(self, *args, **kwargs):
        return self.task.reward(*args, **kwargs)

    def encode(self, *args, **kwargs):
        return self.task.encode(*args, **kwargs)

    def expected_reward(self, *args, **kwargs):
        return self.task.expected_reward(*args, **kwargs)


def test_curriculum_plays_its_stages_and_resumes_exactly_across_a_boundary(tmp_path):
    # 10 outer steps: 3 of T 6 showing 1 context, 3 of T 12 showing 2, then 4 of T 12 with 3
    config = PolicyGradientConfig(10 * 8, n_steps=12, batch_size=8, log_every=1, save_every=1,
                                  curriculum=((0.3, 6, 1), (0.3, 12, 2)),
                                  optimiser=OptimiserConfig("adam", 1e-2))
    bandit = ContextualBandit(3, 3)
    log = _Log()
    whole = RabinowitzLSTM(7, 3, 8, seed=0)
    ref = train_policy_gradient(whole, _Recorded(bandit, log), config, tmp_path / "a",
                                progress=False)
    assert [(t, k) for t, k, _ in log.stages] == [(6, 1)] * 3 + [(12, 2)] * 3 + [(12, None)] * 4
    assert [n for _, _, n in log.stages[:3]] == [frozenset({1})] * 3  # one context shown
    assert all(n <= {1, 2} for _, _, n in log.stages[3:6])
    assert 3 in log.stages[-1][2]

    stopped = _Log(stop_after=4)  # dies in the second stage; latest.pt holds step 4
    with pytest.raises(_Interrupt):
        train_policy_gradient(RabinowitzLSTM(7, 3, 8, seed=0), _Recorded(bandit, stopped),
                              config, tmp_path / "b", progress=False)
    assert io.load_checkpoint(tmp_path / "b" / "latest.pt")["step"] == 4
    rest = _Log()
    second = RabinowitzLSTM(7, 3, 8, seed=5)  # weights come from the checkpoint
    res = train_policy_gradient(second, _Recorded(bandit, rest), config, tmp_path / "b",
                                progress=False)
    assert [(t, k) for t, k, _ in rest.stages] == [(12, 2)] * 2 + [(12, None)] * 4
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(second.state_dict()[key], value, rtol=0, atol=0)
    torch.testing.assert_close(res.metrics.loss.values, ref.metrics.loss.values, rtol=0, atol=0)


def test_the_smoke_preset_keeps_the_quick_curriculum_within_its_episodes():
    """The coupled Meta-Learner's quick curriculum (issue 17) shortened, not dropped, at
    smoke: the same shares and contexts shown, each stage at most smoke's 20 steps."""
    from trajprobe import recipes

    name = "contextual-bandits/meta-learner-coupled"
    quick = recipes.get(name, "quick").training
    smoke = recipes.get(name, "smoke").training
    assert quick.curriculum == ((0.1, 30, 1), (0.2, 50, 2), (0.2, 100, 3))
    assert smoke.n_steps == 20
    assert smoke.curriculum == ((0.1, 20, 1), (0.2, 20, 2), (0.2, 20, 3))
