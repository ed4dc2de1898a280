"""Gymnasium environments as closed-loop tasks (issue 37): a classic-control environment
round-trips through ``trajprobe.interact`` with the rewards and observations the
environment itself gives for the same seeds and actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

gym = pytest.importorskip("gymnasium")

import trajprobe  # noqa: E402
from trajprobe.adapters import wrap  # noqa: E402
from trajprobe.tasks.gym_env import GymEnvironment  # noqa: E402

pytestmark = pytest.mark.gymnasium


def _gru(env: GymEnvironment, seed: int = 0):
    torch.manual_seed(seed)
    return wrap(nn.GRU(env.input_size, 8, batch_first=True),
                readout=nn.Linear(8, env.n_actions), distribution="categorical")


def _replay(seed: int, actions: np.ndarray, on_done: str):
    """CartPole run by hand: the observation acted on and the reward, per step."""
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    seen, rewards, done = [], [], False
    for a in actions:
        seen.append(obs)
        if done:
            rewards.append(0.0)
            continue
        obs, r, terminated, truncated, _ = env.step(int(a))
        rewards.append(r)
        if terminated or truncated:
            if on_done == "reset":
                obs, _ = env.reset()
            else:
                done = True
    return np.array(seen), np.array(rewards)


@pytest.mark.parametrize("on_done", ["hold", "reset"])
def test_cartpole_round_trips_through_interact(on_done):
    env = GymEnvironment("CartPole-v1", on_done=on_done)
    trace = trajprobe.interact(_gru(env), env, 5, 60, seed=1)
    run = env.last_run
    assert int(run.terminated.any(1).sum()) >= 3  # an untrained policy soon drops the pole
    for e in range(5):
        seen, rewards = _replay(int(trace.params["seed"][e]), trace.actions[e].numpy(), on_done)
        np.testing.assert_array_equal(trace.rewards[e].numpy(), rewards)
        np.testing.assert_array_equal(trace.inputs[e].numpy(), seen.astype(np.float32))
    if on_done == "hold":
        for e in range(5):
            end = int(run.terminated[e].float().argmax()) if bool(run.terminated[e].any()) else 60
            assert bool(run.live[e, :end + 1].all()) and not bool(run.live[e, end + 1:].any())
            assert float(trace.rewards[e, end + 1:].abs().sum()) == 0.0
        # CartPole pays 1 per step of a running episode
        assert torch.equal(trace.rewards.sum(1), run.live.sum(1).double())
    else:
        assert bool(run.live.all()) and int(run.terminated.sum()) > 5  # several episodes


def test_same_seed_same_run_and_given_seeds_replay_it():
    env = GymEnvironment("CartPole-v1")
    machine = _gru(env)
    a = trajprobe.interact(machine, env, 3, 30, seed=4)
    b = trajprobe.interact(machine, env, 3, 30, seed=4)
    c = trajprobe.interact(machine, env, 3, 30, seed=9, params=a.params)
    assert torch.equal(a.actions, b.actions) and torch.equal(a.rewards, b.rewards)
    assert torch.equal(a.inputs[:, 0], c.inputs[:, 0])  # the same reset observations


def test_feedback_inputs_are_the_previous_action_and_reward():
    env = GymEnvironment("CartPole-v1", with_feedback=True)
    assert env.input_size == 4 + 2 + 1
    trace = trajprobe.interact(_gru(env), env, 4, 12, seed=2)
    x = trace.inputs
    assert float(x[:, 0, 4:].abs().sum()) == 0.0
    np.testing.assert_array_equal(x[:, 1:, 4:6].argmax(-1).numpy(), trace.actions[:, :-1].numpy())
    np.testing.assert_array_equal(x[:, 1:, 6].numpy(), trace.rewards[:, :-1].float().numpy())


def test_another_machine_replays_the_history_open_loop():
    env = GymEnvironment("CartPole-v1")
    trace = trajprobe.interact(_gru(env, 0), env, 3, 20, seed=0)
    _, replay = trajprobe.histories(_gru(env, 1), env, episodes=trace)
    assert torch.equal(replay.inputs, trace.inputs) and torch.equal(replay.rewards, trace.rewards)


def test_measure_reads_the_rewards_of_the_run():
    env = GymEnvironment("CartPole-v1")
    machine = _gru(env)
    ds = trajprobe.measure(machine, env, episodes=4, steps=30, seed=3)
    trace = trajprobe.interact(machine, env, 4, 30, seed=3)  # measure's run, again
    np.testing.assert_array_equal(ds["reward"].values, trace.rewards.numpy())
    np.testing.assert_array_equal(ds["return"].values, trace.rewards.sum(1).numpy())
    assert bool(((ds.policy_entropy > 0) & (ds.policy_entropy <= np.log(2) + 1e-6)).all())


def test_an_id_a_class_a_factory_and_an_instance_give_the_same_run():
    from gymnasium.envs.classic_control import CartPoleEnv

    runs = [trajprobe.interact(_gru(GymEnvironment("CartPole-v1")), env, 2, 15, seed=5)
            for env in (GymEnvironment("CartPole-v1"), GymEnvironment(CartPoleEnv),
                        GymEnvironment(lambda: gym.make("CartPole-v1")),
                        GymEnvironment(gym.make("CartPole-v1")))]
    for run in runs[1:]:
        assert torch.equal(run.inputs, runs[0].inputs) and torch.equal(run.rewards,
                                                                       runs[0].rewards)


def test_a_feedback_same_machine_is_refused():
    env = GymEnvironment("CartPole-v1")
    with pytest.raises(ValueError, match="feedback='next' only"):
        trajprobe.interact(_gru(env), env, 2, 5, feedback="same")


def test_continuous_actions_are_refused():
    with pytest.raises(TypeError, match="Discrete action space"):
        GymEnvironment("Pendulum-v1")
    with pytest.raises(ValueError, match="on_done"):
        GymEnvironment("CartPole-v1", on_done="restart")
