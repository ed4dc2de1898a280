"""Run a machine over fixed input sequences and keep every state: the ``Trace``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

from trajprobe import machine as sm
from trajprobe.tasks.base import BanditTask, Seed, make_generator
from trajprobe.validation import as_tensor, check_finite_tensor, check_ndim_at_least

__all__ = ["Trace", "rollout", "rollout_env"]


@dataclass(frozen=True)
class Trace:
    """Everything a machine did on a batch of episodes.

    Attributes:
        inputs: ``[E, T, ...]`` the inputs x_1..x_T.
        outputs: ``[E, T, ...]`` the outputs y_1..y_T.
        states: a state pytree whose leaves are ``[E, T+1, ...]``: s_0..s_T, where s_t
            is the state after t observations. Probing "at t" uses s_{t-1}.
        attrs: free-form metadata carried into :meth:`to_dataset`.
        actions: ``[E, T]`` (long) actions taken, closed loop only (:func:`rollout_env`).
        rewards: ``[E, T]`` rewards received, closed loop only.
        contexts: ``[E, T]`` (long) contexts shown, closed loop with contexts only.
        params: the environment's ground truth per episode (``E`` leading), closed loop only.
    """

    inputs: torch.Tensor
    outputs: torch.Tensor
    states: sm.State
    attrs: dict[str, Any] = field(default_factory=dict)
    actions: torch.Tensor | None = None
    rewards: torch.Tensor | None = None
    contexts: torch.Tensor | None = None
    params: dict[str, torch.Tensor] | None = None

    @property
    def n_episodes(self) -> int:
        """E, the number of episodes."""
        return self.inputs.shape[0]

    @property
    def n_steps(self) -> int:
        """T, the number of steps per episode."""
        return self.inputs.shape[1]

    def state_at(self, t: int) -> sm.State:
        """s_t for every episode (``t`` in 0..T): leaves ``[E, ...]``."""
        if not 0 <= t <= self.n_steps:
            raise ValueError(f"t: expected a step in 0..{self.n_steps}, got {t}")
        return sm.tree_map(lambda leaf: leaf[:, t], self.states)

    def state_vectors(self, machine: sm.StateMachine) -> torch.Tensor:
        """All states as vectors ``[E, T+1, S]`` (via :func:`trajprobe.machine.state_vector`)."""
        flat = sm.tree_map(lambda leaf: leaf.flatten(0, 1), self.states)
        vectors = sm.state_vector(machine, flat)
        return vectors.reshape(self.n_episodes, self.n_steps + 1, -1)

    def to_dataset(self, machine: sm.StateMachine | None = None) -> xr.Dataset:
        """The trace as an ``xarray.Dataset``.

        Variables ``inputs (episode, t, input)``, ``outputs (episode, t, output...)`` and,
        with ``t`` running 1..T, ``states (episode, t, state)`` = s_t after t observations
        plus ``initial_state (episode, state)`` = s_0. State vectors come from
        ``machine.state_vector`` when a machine is given, else the default flattening.
        """
        vectors = (
            self.state_vectors(machine)
            if machine is not None
            else sm._default_state_vector(sm.tree_map(lambda x: x.flatten(0, 1), self.states))
            .reshape(self.n_episodes, self.n_steps + 1, -1)
        )
        t = np.arange(1, self.n_steps + 1)
        coords = {"episode": np.arange(self.n_episodes), "t": t}
        return xr.Dataset(
            {
                "inputs": (("episode", "t", *feature_dims("input", self.inputs.dim() - 2)),
                           _numpy(self.inputs)),
                "outputs": (("episode", "t", *feature_dims("output", self.outputs.dim() - 2)),
                            _numpy(self.outputs)),
                "states": (("episode", "t", "state"), _numpy(vectors[:, 1:])),
                "initial_state": (("episode", "state"), _numpy(vectors[:, 0])),
            },
            coords=coords,
            attrs=dict(self.attrs),
        )


def feature_dims(prefix: str, n: int) -> tuple[str, ...]:
    """Names for ``n`` trailing feature axes: ``(prefix,)`` or ``(prefix_0, prefix_1, ...)``."""
    if n == 1:
        return (prefix,)
    return tuple(f"{prefix}_{i}" for i in range(n))


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def rollout(
    machine: sm.StateMachine,
    inputs: torch.Tensor | np.ndarray | xr.DataArray,
    *,
    initial_state: sm.State | None = None,
) -> Trace:
    """Run ``machine`` open-loop over fixed inputs, keeping every state.

    Runs without autograd (``torch.no_grad``; results are ordinary tensors) on the
    machine's device (that of its initial state): y_t = f(x_t, s_{t-1}),
    s_t = g(x_t, s_{t-1}) (DESIGN.md §1; Mikulik et al. eq. 1).

    Args:
        machine: any :class:`~trajprobe.StateMachine`.
        inputs: ``[E, T, ...]`` episodes × steps × input features (a DataArray must have
            dims ``episode, t`` leading).
        initial_state: s_0 with leaves ``[E, ...]``; ``machine.initial_state(E)`` if None.

    Returns:
        A :class:`Trace` with outputs ``[E, T, ...]`` and states ``[E, T+1, ...]`` per leaf.
    """
    if not isinstance(machine, sm.StateMachine):
        raise TypeError(
            "machine: expected a StateMachine (initial_state(batch_size) and step(x, state)), "
            f"got {type(machine).__name__}; wrap a torch module with trajprobe.adapters.wrap"
        )
    inputs = as_tensor(inputs, "inputs", dims=("episode", "t"))
    check_ndim_at_least(inputs, 3, "inputs", "[episode, t, features...]")
    n_episodes, n_steps = inputs.shape[:2]
    if n_steps < 1:
        raise ValueError(f"inputs: expected at least one step, got shape {tuple(inputs.shape)}")
    check_finite_tensor(inputs, "inputs")
    with torch.no_grad():
        state = machine.initial_state(n_episodes) if initial_state is None else initial_state
        sm.check_state(state, n_episodes, "initial_state")
        device = sm.tree_leaves(state)[0].device
        inputs = inputs.to(device=device, dtype=_input_dtype(inputs, state))
        states = [state]
        outputs = []
        for t in range(n_steps):
            y, state = machine.step(inputs[:, t], state)
            outputs.append(y)
            states.append(state)
        outputs_t = torch.stack(outputs, dim=1)
        states_t = sm.stack(states, dim=1)
    for i, leaf in enumerate(sm.tree_leaves(states_t)):
        if leaf.is_floating_point() and not bool(torch.isfinite(leaf).all()):
            bad = int((~torch.isfinite(leaf)).flatten(2).any(-1).any(0).nonzero()[0])
            raise ValueError(f"machine: state leaf {i} became NaN or inf at t={bad}")
    return Trace(inputs=inputs, outputs=outputs_t, states=states_t)


def _input_dtype(inputs: torch.Tensor, state: sm.State) -> torch.dtype:
    """Floating inputs take the state's floating dtype; others are left as they are."""
    if not inputs.is_floating_point():
        return inputs.dtype
    for leaf in sm.tree_leaves(state):
        if leaf.is_floating_point():
            return leaf.dtype
    return inputs.dtype


def rollout_env(
    machine: sm.StateMachine,
    task: BanditTask,
    n_episodes: int,
    n_steps: int,
    *,
    seed: Seed = None,
    policy: Callable[[torch.Tensor], torch.distributions.Distribution] | None = None,
) -> Trace:
    """Run ``machine`` closed-loop in ``task``'s environment, recording the input stream.

    At step t = 1..T::

        x_t = task.encode(c_t, a_{t-1}, r_{t-1})      (a_0, r_0 = None: zeros)
        y_t, s_t = machine.step(x_t, s_{t-1})
        a_t ~ policy(y_t)                              (seeded generator)
        r_t = task.reward(params, c_t, a_t)

    The returned trace's ``inputs`` can be replayed open-loop, ``rollout(other, trace.inputs)``,
    so a second machine sees exactly the same history (DESIGN.md §4).

    Args:
        machine: any :class:`~trajprobe.StateMachine` whose outputs parameterise a
            categorical policy over ``task.n_actions`` actions.
        task: a :class:`~trajprobe.tasks.BanditTask`.
        n_episodes, n_steps: E and T.
        seed: an int, a generator or None; one generator, on the machine's device, draws
            the task parameters, the contexts, then per step the action and the reward.
        policy: maps outputs ``[E, ...]`` to a categorical distribution (anything with
            ``.probs`` ``[E, A]``); default ``machine.distribution`` if the machine has it,
            else ``torch.distributions.Categorical(logits=y_t)``.

    Returns:
        A :class:`Trace` with ``inputs [E, T, input_size]``, ``outputs``, states, and
        ``actions [E, T]``, ``rewards [E, T]``, ``contexts [E, T]`` (None without
        contexts) and ``params``.
    """
    if not isinstance(machine, sm.StateMachine):
        raise TypeError(
            "machine: expected a StateMachine (initial_state(batch_size) and step(x, state)), "
            f"got {type(machine).__name__}"
        )
    if not isinstance(task, BanditTask):
        raise TypeError(
            "task: expected a BanditTask (sample_params, contexts, reward, encode, "
            f"expected_reward), got {type(task).__name__}"
        )
    for name, value in (("n_episodes", n_episodes), ("n_steps", n_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if policy is None:
        custom = getattr(machine, "distribution", None)
        policy = custom if callable(custom) else (
            lambda y: torch.distributions.Categorical(logits=y)
        )
    with torch.inference_mode():
        state = machine.initial_state(n_episodes)
        sm.check_state(state, n_episodes, "initial_state")
        device = sm.tree_leaves(state)[0].device
        dtype = sm.machine_dtype(machine)
        gen = make_generator(seed, device)
        params = task.sample_params(n_episodes, generator=gen, device=device)
        contexts = task.contexts(params, n_steps, generator=gen)
        states, outputs, inputs, actions, rewards = [state], [], [], [], []
        action = reward = None
        for t in range(n_steps):
            context = None if contexts is None else contexts[:, t]
            x = task.encode(context, action, reward, dtype=dtype)
            if tuple(x.shape[:1]) != (n_episodes,):
                raise ValueError(
                    f"task: encode returned shape {tuple(x.shape)}, expected [{n_episodes}, ...]"
                )
            y, state = machine.step(x, state)
            probs = getattr(policy(y), "probs", None)
            if not isinstance(probs, torch.Tensor) or tuple(probs.shape) != (
                n_episodes, task.n_actions
            ):
                raise ValueError(
                    f"policy: expected a categorical distribution with probs "
                    f"[{n_episodes}, {task.n_actions}] from outputs {tuple(y.shape)}, got "
                    f"{None if not isinstance(probs, torch.Tensor) else tuple(probs.shape)}"
                )
            action = torch.multinomial(probs.to(device), 1, generator=gen)[:, 0]
            reward = task.reward(params, context, action, generator=gen)
            inputs.append(x)
            outputs.append(y)
            states.append(state)
            actions.append(action)
            rewards.append(reward)
        trace = Trace(
            inputs=torch.stack(inputs, dim=1),
            outputs=torch.stack(outputs, dim=1),
            states=sm.stack(states, dim=1),
            actions=torch.stack(actions, dim=1),
            rewards=torch.stack(rewards, dim=1),
            contexts=contexts,
            params=params,
        )
    for i, leaf in enumerate(sm.tree_leaves(trace.states)):
        if leaf.is_floating_point() and not bool(torch.isfinite(leaf).all()):
            bad = int((~torch.isfinite(leaf)).flatten(2).any(-1).any(0).nonzero()[0])
            raise ValueError(f"machine: state leaf {i} became NaN or inf at t={bad}")
    return trace
