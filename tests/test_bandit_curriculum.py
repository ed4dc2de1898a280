"""A contextual bandit that shows K of its C contexts, and the policy-gradient curriculum."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from trajprobe import io
from trajprobe.apps.models import RabinowitzLSTM
from trajprobe.apps.recipes import curricula
from trajprobe.apps.recipes.curricula import CONFUSION_EPISODES, STAGES
from trajprobe.apps.training import (
    OptimiserConfig,
    PolicyGradientConfig,
    describe_task,
    train_policy_gradient,
)
from trajprobe.randomness import step_seed
from trajprobe.tasks import ContextualBandit


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
    pairs: set[tuple[int, ...]] = dataclasses.field(default_factory=set)


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

    def only(self, contexts):
        return _Recorded(self.task.only(contexts), self.log)

    def __getattr__(self, name):  # what measuring a 'confused' stage reads
        return getattr(self.task, name)

    def contexts(self, params, n_steps, *, generator):
        contexts = self.task.contexts(params, n_steps, generator=generator)
        if len(contexts) == CONFUSION_EPISODES:  # the confusion measured, not a training step
            return contexts
        if self.task.shown_contexts is not None:
            self.log.pairs.add(self.task.shown_contexts)
        per_episode = {len(set(row.tolist())) for row in contexts}
        self.log.stages.append((n_steps, self.task.n_shown, frozenset(per_episode)))
        return contexts

    def reward(self, *args, **kwargs):
        return self.task.reward(*args, **kwargs)

    def encode(self, *args, **kwargs):
        return self.task.encode(*args, **kwargs)

    def expected_reward(self, *args, **kwargs):
        return self.task.expected_reward(*args, **kwargs)


def _whole_then_resumed(config: PolicyGradientConfig, bandit: ContextualBandit, tmp_path,
                        stop_after: int) -> tuple[_Log, _Log, int]:
    """Train RabinowitzLSTM(7, 3, 8) to the end in ``tmp_path / "a"``; then in ``"b"`` die
    after ``stop_after`` outer steps and resume. Asserts the resumed run ends with the same
    weights and losses, bit for bit; returns both logs and the step resumed from."""
    log = _Log()
    whole = RabinowitzLSTM(7, 3, 8, seed=0)
    ref = train_policy_gradient(whole, _Recorded(bandit, log), config, tmp_path / "a",
                                progress=False, stages=STAGES)
    with pytest.raises(_Interrupt):
        train_policy_gradient(RabinowitzLSTM(7, 3, 8, seed=0),
                              _Recorded(bandit, _Log(stop_after=stop_after)), config,
                              tmp_path / "b", progress=False, stages=STAGES)
    resumed_from = io.load_checkpoint(tmp_path / "b" / "latest.pt")["step"]
    rest = _Log()
    second = RabinowitzLSTM(7, 3, 8, seed=5)  # weights come from the checkpoint
    res = train_policy_gradient(second, _Recorded(bandit, rest), config, tmp_path / "b",
                                progress=False, stages=STAGES)
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(second.state_dict()[key], value, rtol=0, atol=0)
    torch.testing.assert_close(res.metrics.loss.values, ref.metrics.loss.values, rtol=0, atol=0)
    return log, rest, resumed_from


def test_curriculum_plays_its_stages_and_resumes_exactly_across_a_boundary(tmp_path):
    # 10 outer steps: 3 of T 6 showing 1 context, 3 of T 12 showing 2, then 4 of T 12 with 3
    config = PolicyGradientConfig(10 * 8, n_steps=12, batch_size=8, log_every=1, save_every=1,
                                  curriculum=((0.3, 6, 1), (0.3, 12, 2)),
                                  optimiser=OptimiserConfig("adam", 1e-2))
    # dies in the second stage
    log, rest, resumed_from = _whole_then_resumed(config, ContextualBandit(3, 3), tmp_path, 4)
    assert [(t, k) for t, k, _ in log.stages] == [(6, 1)] * 3 + [(12, 2)] * 3 + [(12, None)] * 4
    assert [n for _, _, n in log.stages[:3]] == [frozenset({1})] * 3  # one context shown
    assert all(n <= {1, 2} for _, _, n in log.stages[3:6])
    assert 3 in log.stages[-1][2]
    assert resumed_from == 4
    assert [(t, k) for t, k, _ in rest.stages] == [(12, 2)] * 2 + [(12, None)] * 4


def test_the_smoke_preset_keeps_the_quick_curriculum_within_its_episodes():
    """The coupled Meta-Learner's quick curriculum (issue 17) shortened, not dropped, at
    smoke: the same shares and contexts shown, each stage at most smoke's 20 steps."""
    from trajprobe.apps import recipes

    name = "contextual-bandits/meta-learner-coupled"
    quick = recipes.get(name, "quick").training
    smoke = recipes.get(name, "smoke").training
    assert quick.curriculum == ((0.083, 30, 1), (0.167, 50, 2), (0.167, 100, 3),
                                (0.333, 100, None), (0.083, 50, "confused"))
    assert smoke.n_steps == 20
    assert smoke.curriculum == ((0.083, 20, 1), (0.167, 20, 2), (0.167, 20, 3),
                                (0.333, 20, None), (0.083, 20, "confused"))


def test_only_shows_the_same_contexts_in_every_episode_and_checks_them():
    task = ContextualBandit(5, 5).only((4, 1))
    assert (task.n_shown, task.shown_contexts) == (2, (4, 1))
    params = task.sample_params(50, generator=_gen(3))
    whole = ContextualBandit(5, 5).sample_params(50, generator=_gen(3))
    torch.testing.assert_close(params["correct"], whole["correct"])  # the same draws
    contexts = task.contexts(params, 100, generator=_gen(1))
    assert set(contexts.flatten().tolist()) == {1, 4}
    assert task.showing(3).shown_contexts is None  # showing(K) draws K per episode again
    assert describe_task(task)["shown_contexts"] == "(4, 1)"
    for bad in ((), (1, 1), (5,), (-1, 2)):
        with pytest.raises(ValueError, match="shown_contexts: expected a tuple of distinct"):
            ContextualBandit(5, 5).only(bad)
    with pytest.raises(TypeError, match="contexts: expected context indices"):
        ContextualBandit(5, 5).only((1.5, 2))
    with pytest.raises(ValueError, match=r"n_shown: expected len\(shown_contexts\) = 2"):
        ContextualBandit(5, 5, n_shown=3, shown_contexts=(1, 2))


class _SharedMemory(torch.nn.Module):
    """A bandit policy with one memory per group of contexts: the last rewarded action seen
    in any context of the group, played greedily (uniform before the first reward).
    ``groups = (0, 1, 0)``: contexts 0 and 2 share one memory, a planted merge."""

    def __init__(self, groups: tuple[int, ...], n_actions: int):
        super().__init__()
        self.groups, self.n_actions = torch.tensor(groups), n_actions
        self.n_contexts, self.n_groups = len(groups), max(groups) + 1

    def initial_state(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.zeros(batch_size, self.n_groups, self.n_actions),
                torch.zeros(batch_size, dtype=torch.long))  # memories, previous group

    def step(self, x, state):
        memory, before = state
        c = self.n_contexts
        context, action, reward = x[:, :c].argmax(1), x[:, c:-1], x[:, -1:]
        rows = torch.arange(x.shape[0])
        rewarded = (reward > 0) & (action.sum(1, keepdim=True) > 0)
        memory = memory.clone()
        memory[rows, before] = torch.where(rewarded, action, memory[rows, before])
        group = self.groups[context]
        return 20.0 * memory[rows, group], (memory, group)


def test_most_confused_finds_the_two_contexts_that_share_a_memory():
    most_confused = curricula.most_confused
    task = ContextualBandit(3, 3, p_correct=1.0, p_incorrect=0.0)
    model = _SharedMemory((0, 1, 0), 3)
    assert most_confused(model, task, 30, seed=0) == (0, 2)
    assert most_confused(_SharedMemory((0, 0, 1), 3), task, 30, seed=0) == (0, 1)


def test_a_confused_stage_shows_the_measured_pair_and_resumes_exactly(tmp_path, monkeypatch):
    measured = []
    real = curricula.most_confused

    def counted(model, task, n_steps, **kwargs):
        measured.append(n_steps)
        return real(model, task, n_steps, **kwargs)

    monkeypatch.setattr(curricula, "most_confused", counted)
    # 10 outer steps: 2 on all 3 contexts, 5 on the confused pair (T 6), 3 on all again
    config = PolicyGradientConfig(10 * 8, n_steps=12, batch_size=8, log_every=1, save_every=1,
                                  curriculum=((0.2, 12, None), (0.5, 6, "confused")),
                                  optimiser=OptimiserConfig("adam", 1e-2))
    bandit = ContextualBandit(3, 3)
    # dies two steps into the confused stage
    log, rest, resumed_from = _whole_then_resumed(config, bandit, tmp_path, 4)
    # once per run, at the stage's start, on episodes of n_steps; the resumed run reuses
    # the checkpoint's pair
    assert measured == [12, 12] and resumed_from == 4
    pair = tuple(io.load_checkpoint(tmp_path / "a" / "latest.pt")["extra"]["focus"]
                 ["contexts"].tolist())
    assert log.pairs == rest.pairs == {pair} and pair[0] < pair[1]
    start = io.load_checkpoint(tmp_path / "a" / "checkpoint_00000002.pt", required=("model",))
    at_start = RabinowitzLSTM(7, 3, 8)
    at_start.load_state_dict(start["model"])  # the pair of the model at the stage's start
    assert pair == real(at_start, bandit, 12, seed=step_seed(step_seed(0, 2), 1))
    assert [(t, k) for t, k, _ in log.stages] == [(12, None)] * 2 + [(6, 2)] * 5 + [(12, None)] * 3
    assert all(n <= {1, 2} for _, _, n in log.stages[2:7])


def test_a_confused_stage_needs_a_task_with_only(tmp_path):
    class Plain(ContextualBandit):
        only = None

    config = PolicyGradientConfig(40, n_steps=4, batch_size=20,
                                  curriculum=((0.5, 4, "confused"),))
    with pytest.raises(ValueError, match="'confused' pair of contexts, but Plain has no only"):
        train_policy_gradient(RabinowitzLSTM(11, 5, 8), Plain(5, 5), config, tmp_path,
                              progress=False, stages=STAGES)
    assert not list(tmp_path.iterdir())  # refused before anything was written
    with pytest.raises(ValueError, match=r"curriculum: expected .* got the stage"):
        PolicyGradientConfig(40, curriculum=((0.5, 4, "not a name"),))


def test_a_named_stage_must_be_given_and_be_a_stage():
    config = PolicyGradientConfig(40, n_steps=4, batch_size=20,
                                  curriculum=((0.5, 4, "confusion"),))
    model, task = RabinowitzLSTM(11, 5, 8), ContextualBandit(5, 5)
    with pytest.raises(ValueError, match=r"a stage is named 'confusion', but stages= gives "
                                         r"\['confused'\]; did you mean 'confused'\?"):
        train_policy_gradient(model, task, config, progress=False, stages=STAGES)
    with pytest.raises(ValueError, match=r"gives none; the bandit recipes' stages are in "
                                         r"trajprobe.apps.recipes.curricula"):
        train_policy_gradient(model, task, config, progress=False)
    with pytest.raises(TypeError, match="stages: 'confusion' made a dict, not a Stage"):
        train_policy_gradient(model, task, config, progress=False, stages={"confusion": dict})


class _FirstTwo:
    """A user's stage with no measurement: shows contexts (0, 1) from its first step."""

    key = "first_two"

    def __init__(self):
        self.starts = []

    def check(self, task):
        pass

    def task(self, model, task, start):
        self.starts.append((start.step, start.n_steps))
        return task.only((0, 1))

    def state_dict(self):
        return {}

    def load_state_dict(self, state_dict):
        pass


def test_a_user_stage_is_called_once_at_its_start_and_plays_its_task():
    made = []

    def factory():
        made.append(_FirstTwo())
        return made[-1]

    log = _Log()
    config = PolicyGradientConfig(10 * 8, n_steps=12, batch_size=8,
                                  curriculum=((0.3, 6, None), (0.4, 6, "first_two")))
    train_policy_gradient(RabinowitzLSTM(7, 3, 8), _Recorded(ContextualBandit(3, 3), log),
                          config, progress=False, stages={"first_two": factory})
    assert len(made) == 1 and made[0].starts == [(3, 12)]
    assert log.pairs == {(0, 1)}
    assert [t for t, _, _ in log.stages] == [6] * 7 + [12] * 3
