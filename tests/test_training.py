"""Meta-training: models, BPTT and actor-critic loops, checkpoints, exact resume."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import trajprobe
from trajprobe import io
from trajprobe.apps.models import MikulikNet, RabinowitzLSTM
from trajprobe.apps.training import (
    OptimiserConfig,
    PolicyGradientConfig,
    SupervisedConfig,
    checkpoint_schedule,
    discounted_returns,
    list_checkpoints,
    load_model,
    resolve_device,
    train_policy_gradient,
    train_supervised,
)

F64 = torch.float64

# Tiny tasks, defined as source so a subprocess can use the very same classes.
TASKS = textwrap.dedent('''
    import torch
    from trajprobe.task_protocol import Episodes, make_generator

    class TinyRegression:
        """y = W x + noise, W ~ MN(0, I, I) (or one fixed W); input [x_t, y_{t-1}]."""
        input_size = 4
        output_size = 2

        def __init__(self, fixed=False):
            self.fixed = fixed

        def sample(self, n_episodes, n_steps, *, seed=None, device=None, dtype=torch.float32):
            g = make_generator(seed, device)
            w = torch.randn(n_episodes, 2, 2, generator=g, dtype=dtype)
            if self.fixed:
                w = torch.tensor([[1.5, 0.5], [-0.5, 1.0]], dtype=dtype).expand_as(w)
            x = torch.randn(n_episodes, n_steps, 2, generator=g, dtype=dtype)
            y = torch.einsum("eij,etj->eti", w, x)
            y = y + 0.01 * torch.randn(y.shape, generator=g, dtype=dtype)
            prev = torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], 1)
            return Episodes(torch.cat([x, prev], -1), y, {"W": w})

    class CoinFlips:
        """x_t ~ Bernoulli(p), p ~ Beta(1, 1); input [x_{t-1}, 1 if t > 1]."""
        input_size = 2
        output_size = 1

        def sample(self, n_episodes, n_steps, *, seed=None, device=None, dtype=torch.float32):
            g = make_generator(seed, device)
            p = torch.rand(n_episodes, 1, generator=g, dtype=dtype)
            x = (torch.rand(n_episodes, n_steps, generator=g, dtype=dtype) < p).to(dtype)
            prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)
            seen = torch.ones_like(prev)
            seen[:, 0] = 0
            return Episodes(torch.stack([prev, seen], -1), x, {"p": p})

    class TwoArms:
        """Two arms, no contexts; arm `best` pays 1 w.p. 0.9, the other w.p. 0.1."""
        input_size = 3
        n_actions = 2

        def __init__(self, fixed=False):
            self.fixed = fixed

        def sample_params(self, n_episodes, *, generator, device):
            best = torch.randint(2, (n_episodes,), generator=generator)
            return {"best": torch.zeros_like(best) if self.fixed else best}

        def contexts(self, params, n_steps, *, generator):
            return None

        def reward(self, params, context, action, *, generator):
            p = torch.where(action == params["best"], 0.9, 0.1)
            return (torch.rand(p.shape, generator=generator) < p).float()

        def encode(self, context, prev_action, prev_reward, *, dtype=torch.float32):
            if prev_action is None:
                return torch.zeros(1, 3, dtype=dtype)
            onehot = torch.nn.functional.one_hot(prev_action, 2).to(dtype)
            return torch.cat([onehot, prev_reward.to(dtype)[:, None]], 1)

        def expected_reward(self, params, context):
            best = torch.nn.functional.one_hot(params["best"], 2).float()
            return 0.1 + 0.8 * best
''')
exec(TASKS)  # defines TinyRegression, CoinFlips, TwoArms


def _two_arms(fixed):
    """TwoArms whose one-row input at t = 1 is expanded to the batch."""
    task = TwoArms(fixed)  # noqa: F821
    encode = task.encode

    def batched(context, prev_action, prev_reward, *, dtype=torch.float32):
        x = encode(context, prev_action, prev_reward, dtype=dtype)
        return x.expand(_two_arms.batch, -1) if x.shape[0] == 1 else x

    task.encode = batched
    return task


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("cls", [RabinowitzLSTM, MikulikNet])
def test_unroll_equals_stepping_and_is_a_state_machine(cls):
    model = cls(3, 2, 8, seed=0).double()
    x = torch.randn(4, 7, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    fast, final = model.unroll(x)
    trace = trajprobe.rollout(model, x)
    torch.testing.assert_close(trace.outputs, fast, rtol=0, atol=1e-12)
    torch.testing.assert_close(trace.state_at(7).hidden, final.hidden, rtol=0, atol=1e-12)
    assert isinstance(model, trajprobe.StateMachine)
    assert trace.state_vectors(model).shape == (4, 8, 16)  # [h, c]


def test_models_are_seeded_not_global():
    torch.manual_seed(123)
    a = MikulikNet(2, 1, 8, seed=5)
    torch.manual_seed(999)
    b = MikulikNet(2, 1, 8, seed=5)
    c = MikulikNet(2, 1, 8, seed=6)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k], rtol=0, atol=0)
    assert not torch.equal(a.lstm.weight_hh_l0, c.lstm.weight_hh_l0)
    assert RabinowitzLSTM(4, 2).hidden_size == 64  # Rabinowitz A.2
    assert MikulikNet(2, 1).pre[0].out_features == 32  # Mikulik N = 32


def test_log_loss_is_the_bernoulli_negative_log_likelihood():
    from trajprobe.apps.training.losses import log_loss

    model = MikulikNet(2, 1, 4, distribution="bernoulli")
    y = torch.tensor([[[0.0], [2.0]], [[-1.0], [0.5]]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.sigmoid(y[..., 0])
    expected = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    torch.testing.assert_close(log_loss(model, y, target), expected)
    torch.testing.assert_close(log_loss(model, y, target[..., None]), expected)


# --------------------------------------------------------------------------- pure pieces


def test_checkpoint_schedule_is_log_spaced_and_ends_at_the_last_step():
    assert checkpoint_schedule(1000, 4) == [0, 1, 10, 100, 1000]
    assert checkpoint_schedule(7, 0) == [0]
    assert checkpoint_schedule(5, 10)[-1] == 5


def test_discounted_returns_by_hand():
    r = torch.tensor([[1.0, 0.0, 2.0]])
    torch.testing.assert_close(discounted_returns(r, 0.5), torch.tensor([[1.5, 1.0, 2.0]]))
    torch.testing.assert_close(discounted_returns(r, 1.0), torch.tensor([[3.0, 2.0, 2.0]]))


def test_config_validation_names_the_argument():
    with pytest.raises(ValueError, match="batch_size: expected a positive int, got 0"):
        SupervisedConfig(n_episodes=10, batch_size=0)
    with pytest.raises(ValueError, match="discount"):
        PolicyGradientConfig(n_episodes=10, discount=1.5)
    with pytest.raises(ValueError, match="name: expected 'sgd' or 'adam'"):
        OptimiserConfig("rmsprop")
    with pytest.raises(ValueError, match=r"warmup: expected a fraction of the steps in \[0, 1\)"):
        OptimiserConfig("adam", 1e-3, warmup=1.0)


def test_learning_rate_warms_up_linearly_then_follows_its_schedule():
    cosine = OptimiserConfig("adam", 1.0, "cosine", warmup=0.2)  # 10 steps: 2 warm, 8 cosine
    rates = [cosine.lr_at(k, 10) for k in range(10)]
    expected = [0.5, 1.0, *(0.5 * (1 + math.cos(math.pi * j / 8)) for j in range(8))]
    assert rates == pytest.approx(expected)
    constant = OptimiserConfig("sgd", 0.1, warmup=0.5)
    assert [constant.lr_at(k, 4) for k in range(4)] == pytest.approx([0.05, 0.1, 0.1, 0.1])
    plain = OptimiserConfig("adam", 1.0, "cosine")
    assert [plain.lr_at(k, 10) for k in range(10)] == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * k / 10)) for k in range(10)])


def test_curriculum_gives_each_stage_its_share_of_the_outer_steps():
    config = SupervisedConfig(1000, n_steps=20, batch_size=100, curriculum=((0.3, 5), (0.2, 10)))
    assert [config.length_at(k, 10) for k in range(10)] == [5, 5, 5, 10, 10, 20, 20, 20, 20, 20]
    assert [SupervisedConfig(1000, n_steps=7).length_at(k, 10) for k in (0, 9)] == [7, 7]
    with pytest.raises(ValueError, match=r"curriculum: .* got the stage \(0.5, 0\)"):
        SupervisedConfig(10, curriculum=((0.5, 0),))
    with pytest.raises(ValueError, match="curriculum: the shares add up to more than 1"):
        SupervisedConfig(10, curriculum=((0.6, 5), (0.6, 10)))


def test_cuda_asked_but_absent_is_refused_before_training():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="device: 'cuda' was asked for but CUDA is not"):
        train_supervised(RabinowitzLSTM(4, 2, 8), TinyRegression(), _small_regression(),  # noqa: F821
                         device="cuda", progress=False)
    assert resolve_device(None) == torch.device("cpu")  # one device policy (trajprobe.devices)


# --------------------------------------------------------------------------- training


def _small_regression(**kw):
    defaults = dict(n_episodes=32 * 12, n_steps=6, batch_size=32, n_checkpoints=3,
                    save_every=1, log_every=4, optimiser=OptimiserConfig("adam", 1e-2))
    return SupervisedConfig(**{**defaults, **kw})


def test_supervised_training_learns_regression_and_writes_its_files(tmp_path):
    model = RabinowitzLSTM(4, 2, 16, seed=0)
    config = _small_regression(n_episodes=64 * 60, batch_size=64, log_every=10, save_every=100,
                               optimiser=OptimiserConfig("adam", 3e-2))
    task = TinyRegression(fixed=True)  # noqa: F821
    result = train_supervised(model, task, config, tmp_path, progress=False)
    m = result.metrics
    # predicting 0 costs ||W x||^2 = ||W||_F^2 = 3.75 per step; learning the map does better
    assert float(m.loss[0]) > 2.0
    assert float(m.loss[-1]) < 0.3 * 3.75
    assert list(m.step.values) == list(range(10, 61, 10))
    assert list(m.episodes.values) == [64 * s for s in range(10, 61, 10)]
    assert (m.episodes_per_s > 0).all()
    steps = [s for s, _ in list_checkpoints(tmp_path)]
    assert steps == checkpoint_schedule(60, 3) == [0, 1, 8, 60]
    saved = io.load_dataset(tmp_path / "metrics.nc")
    assert saved.attrs["config"]["batch_size"] == 64
    torch.testing.assert_close(torch.tensor(saved.loss.values), torch.tensor(m.loss.values))
    fresh = load_model(tmp_path / "checkpoint_00000060.pt", RabinowitzLSTM(4, 2, 16, seed=9))
    for k, v in _params(model).items():
        torch.testing.assert_close(fresh.state_dict()[k], v, rtol=0, atol=0)


def test_log_loss_training_on_coin_flips_beats_the_uniform_predictor():
    model = MikulikNet(2, 1, 8, distribution="bernoulli", seed=0)
    config = SupervisedConfig(n_episodes=64 * 60, n_steps=10, batch_size=64, loss="log_loss",
                              log_every=20, optimiser=OptimiserConfig("adam", 2e-2))
    result = train_supervised(model, CoinFlips(), config, progress=False)  # noqa: F821
    # the uniform predictor pays log 2 = 0.693 per step; learning p from the flips does better
    assert float(result.metrics.loss[-1]) < math.log(2) - 0.03


class _Interrupt(Exception):
    pass


class _Stopping:
    """Wraps a task; raises after `after` samples, like an interrupted process."""

    def __init__(self, task, after):
        self.task, self.after, self.calls = task, after, 0
        self.input_size, self.output_size = task.input_size, task.output_size

    def sample(self, *args, **kwargs):
        self.calls += 1
        if self.calls > self.after:
            raise _Interrupt
        return self.task.sample(*args, **kwargs)


@pytest.mark.parametrize("save_every", [1, 5])
def test_resume_equals_an_uninterrupted_run(tmp_path, save_every):
    config = _small_regression(save_every=save_every)
    whole = RabinowitzLSTM(4, 2, 8, seed=0)
    ref = train_supervised(whole, TinyRegression(), config, tmp_path / "a", progress=False)  # noqa: F821

    first = RabinowitzLSTM(4, 2, 8, seed=0)
    with pytest.raises(_Interrupt):
        train_supervised(first, _Stopping(TinyRegression(), 7), config, tmp_path / "b",  # noqa: F821
                         progress=False)
    latest = io.load_checkpoint(tmp_path / "b" / "latest.pt")
    assert latest["step"] == (7 if save_every == 1 else 5)
    second = RabinowitzLSTM(4, 2, 8, seed=42)  # weights come from the checkpoint
    res = train_supervised(second, TinyRegression(), config, tmp_path / "b", progress=False)  # noqa: F821
    for k, v in _params(whole).items():
        torch.testing.assert_close(second.state_dict()[k], v, rtol=0, atol=0)
    torch.testing.assert_close(torch.tensor(res.metrics.loss.values),
                               torch.tensor(ref.metrics.loss.values), rtol=0, atol=0)
    assert list(res.metrics.step.values) == list(ref.metrics.step.values)


def test_resume_refuses_another_config_and_a_truncated_checkpoint(tmp_path):
    config = _small_regression()
    train_supervised(RabinowitzLSTM(4, 2, 8), TinyRegression(), config, tmp_path, progress=False)  # noqa: F821
    other = _small_regression(n_steps=7)
    with pytest.raises(ValueError, match=r"config: differs .*n_steps: checkpoint 6, given 7"):
        train_supervised(RabinowitzLSTM(4, 2, 8), TinyRegression(), other, tmp_path)  # noqa: F821
    with pytest.raises(ValueError, match=r"model: the checkpoint .* does not fit"):
        load_model(tmp_path / "latest.pt", RabinowitzLSTM(4, 2, 9))
    latest = tmp_path / "latest.pt"
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        train_supervised(RabinowitzLSTM(4, 2, 8), TinyRegression(), config, tmp_path)  # noqa: F821
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_model(latest, RabinowitzLSTM(4, 2, 8))


class _Lengths:
    """TinyRegression that records the episode length of every outer step."""

    input_size, output_size = 4, 2

    def __init__(self):
        self.task, self.lengths = TinyRegression(), []  # noqa: F821

    def sample(self, n_episodes, n_steps, **kwargs):
        self.lengths.append(n_steps)
        return self.task.sample(n_episodes, n_steps, **kwargs)


def test_curriculum_training_resumes_exactly_on_its_schedule(tmp_path):
    config = _small_regression(curriculum=((0.25, 2), (0.25, 4)))  # 12 steps: 3, 3, then 6
    whole, task = RabinowitzLSTM(4, 2, 8, seed=0), _Lengths()
    train_supervised(whole, task, config, tmp_path / "a", progress=False)
    assert task.lengths == [2] * 3 + [4] * 3 + [6] * 6
    first = RabinowitzLSTM(4, 2, 8, seed=0)
    with pytest.raises(_Interrupt):
        train_supervised(first, _Stopping(TinyRegression(), 5), config, tmp_path / "b",  # noqa: F821
                         progress=False)
    second, rest = RabinowitzLSTM(4, 2, 8, seed=1), _Lengths()
    train_supervised(second, rest, config, tmp_path / "b", progress=False)
    assert rest.lengths == [4] + [6] * 6  # steps 6..12
    for k, v in _params(whole).items():
        torch.testing.assert_close(second.state_dict()[k], v, rtol=0, atol=0)


class _Poisoned:
    """TinyRegression whose targets turn NaN from the third outer step on."""

    input_size, output_size = 4, 2

    def __init__(self):
        self.task, self.calls = TinyRegression(), 0  # noqa: F821

    def sample(self, *args, **kwargs):
        self.calls += 1
        episodes = self.task.sample(*args, **kwargs)
        if self.calls >= 3:
            episodes.targets[0, 0, 0] = float("nan")
        return episodes


def test_a_non_finite_loss_stops_training_with_the_step(tmp_path):
    config = _small_regression(save_every=100, log_every=2)
    with pytest.raises(ValueError, match="loss became nan at outer step 3"):
        train_supervised(RabinowitzLSTM(4, 2, 8), _Poisoned(), config, tmp_path, progress=False)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [0, 1]  # none after the NaN


def test_policy_gradient_learns_a_two_armed_bandit(tmp_path):
    _two_arms.batch = 32
    model = RabinowitzLSTM(3, 2, 8, seed=0)
    config = PolicyGradientConfig(n_episodes=32 * 30, n_steps=5, batch_size=32, discount=0.9,
                                  log_every=1, entropy_cost=0.001,
                                  optimiser=OptimiserConfig("adam", 5e-2))
    result = train_policy_gradient(model, _two_arms(fixed=True), config, tmp_path,
                                   progress=False)
    reward = result.metrics.reward.values
    # untrained: its policy pulls the better arm w.p. ~0.61 (expected reward ~0.59,
    # s.e. 0.04 over 160 pulls); trained: pulls the better arm (0.9 when always right)
    assert abs(reward[0] - 0.59) < 0.12
    assert reward[-1] > 0.8
    assert result.baseline is not None and result.baseline.in_features == 16
    saved = io.load_checkpoint(tmp_path / "latest.pt")
    assert "baseline" in saved["extra"]


def test_policy_gradient_meta_learns_which_arm_is_better():
    # the better arm is drawn per episode: only a policy that stays with a rewarded arm
    # and leaves an unrewarded one beats chance (0.5); Bayes-optimal play earns ~0.86
    _two_arms.batch = 64
    model = RabinowitzLSTM(3, 2, 8, seed=0)
    config = PolicyGradientConfig(n_episodes=64 * 150, n_steps=10, batch_size=64, discount=0.5,
                                  log_every=1, optimiser=OptimiserConfig("adam", 3e-2))
    reward = train_policy_gradient(model, _two_arms(fixed=False), config,
                                   progress=False).metrics.reward.values
    assert abs(reward[:3].mean() - 0.5) < 0.05
    assert reward[-10:].mean() > 0.75


class _SteppingOnly(torch.nn.Module):
    """A machine without ``unroll``: the loss is built step by step."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def initial_state(self, batch_size):
        return self.model.initial_state(batch_size)

    def step(self, x, state):
        return self.model.step(x, state)


@pytest.mark.parametrize("cls", [RabinowitzLSTM, MikulikNet])
def test_policy_gradient_replay_equals_stepping(cls):
    # an LSTM core is trained through its recorded gates (hand-written BPTT, and for
    # MikulikNet also through its encoder); a machine with only `step` is replayed by
    # autograd: both draw the same numbers, so both runs must end with the same weights
    _two_arms.batch = 16
    config = PolicyGradientConfig(n_episodes=16 * 4, n_steps=6, batch_size=16, log_every=1,
                                  optimiser=OptimiserConfig("adam", 1e-2))
    fast = cls(3, 2, 8, seed=0).double()
    slow = _SteppingOnly(cls(3, 2, 8, seed=0).double())
    a = train_policy_gradient(fast, _two_arms(fixed=False), config, progress=False)
    b = train_policy_gradient(slow, _two_arms(fixed=False), config, progress=False)
    for key, value in fast.state_dict().items():
        torch.testing.assert_close(slow.model.state_dict()[key], value, rtol=0, atol=1e-10)
    torch.testing.assert_close(a.metrics.loss.values, b.metrics.loss.values, rtol=0, atol=1e-10)
    torch.testing.assert_close(a.baseline.weight, b.baseline.weight, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- kill and resume

CONFIG = textwrap.dedent('''
    from trajprobe.apps.training import OptimiserConfig, SupervisedConfig
    config = SupervisedConfig(n_episodes=32 * 120, n_steps=6, batch_size=32, n_checkpoints=3,
                              save_every=1, log_every=4,
                              optimiser=OptimiserConfig("adam", 1e-2))
''')
SCRIPT = TASKS + CONFIG + textwrap.dedent('''
    import sys
    from trajprobe.apps.models import RabinowitzLSTM
    from trajprobe.apps.training import train_supervised
    train_supervised(RabinowitzLSTM(4, 2, 8, seed=0), TinyRegression(), config, sys.argv[1],
                     progress=False)
''')


@pytest.mark.slow  # 9 s on an idle 2-core CPU, over 30 s when the cores are shared
def test_a_killed_run_resumes_with_nothing_lost_or_repeated(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=dict(os.environ))
    latest = out / "latest.pt"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if latest.exists() and io.load_checkpoint(latest)["step"] >= 20:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the training subprocess wrote no checkpoint in 60 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = io.load_checkpoint(latest)["step"]
    assert 20 <= killed_at < 120, killed_at  # killed mid-run
    # a kill mid-write can leave only a hidden temp file; every file under its final name
    # is complete
    for path in out.glob("*.pt"):
        io.load_checkpoint(path)

    namespace: dict = {}
    exec(CONFIG, namespace)
    config = namespace["config"]
    resumed = RabinowitzLSTM(4, 2, 8, seed=1)
    res = train_supervised(resumed, TinyRegression(), config, out, progress=False)  # noqa: F821
    whole = RabinowitzLSTM(4, 2, 8, seed=0)
    ref = train_supervised(whole, TinyRegression(), config, tmp_path / "whole", progress=False)  # noqa: F821
    for k, v in _params(whole).items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=0)
    assert list(res.metrics.step.values) == list(range(4, 121, 4))  # each step once
    torch.testing.assert_close(torch.tensor(res.metrics.loss.values),
                               torch.tensor(ref.metrics.loss.values), rtol=0, atol=0)


def test_resume_accepts_a_run_saved_before_a_defaulted_field_existed(tmp_path):
    from trajprobe.apps.training.run_dirs import check_same_config as _check_same_config

    config = SupervisedConfig(100, optimiser=OptimiserConfig("adam", 1e-3))
    saved = dataclasses.asdict(config)
    del saved["optimiser"]["schedule"]  # as written before OptimiserConfig.schedule existed
    del saved["optimiser"]["warmup"]  # ... and before OptimiserConfig.warmup
    _check_same_config({"kind": "supervised", "config": saved}, "supervised", config,
                       tmp_path / "latest.pt")
    cosine = SupervisedConfig(100, optimiser=OptimiserConfig("adam", 1e-3, "cosine"))
    with pytest.raises(ValueError, match="config: differs from the run being resumed"):
        _check_same_config({"kind": "supervised", "config": saved}, "supervised", cosine,
                           tmp_path / "latest.pt")


def test_the_training_package_imports_nothing_from_measurement_or_dynamics():
    """Research-specific stages (the bandit recipe's "confused" one) are passed in by the
    recipes (trajprobe.apps.recipes.curricula); the engine measures nothing itself."""
    import ast
    from pathlib import Path

    import trajprobe.apps.training as package

    forbidden = ("trajprobe.measurement", "trajprobe.dynamics", "trajprobe.apps.recipes")
    found = []
    for path in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [(path.name, n) for n in names if n.startswith(forbidden)]
    assert len(list(Path(package.__file__).parent.glob("*.py"))) >= 8
    assert not found
