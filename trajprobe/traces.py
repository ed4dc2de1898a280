"""Run a machine and keep every state: open loop over fixed inputs (:func:`rollout`) or
closed loop in an environment (:func:`interact`, the one closed-loop driver).

Both return a :class:`Trace`, the record defined beside :class:`~trajprobe.task_protocol.Episodes`
in :mod:`trajprobe.task_protocol` (a task's ``summarise`` reads it) and importable from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from trajprobe import machine as sm
from trajprobe import resources
from trajprobe import task_checks as checks
from trajprobe.guard import check_outputs, checked_step, eval_mode
from trajprobe.machine import Policy, default_policy
from trajprobe.randomness import Seed, make_generator
from trajprobe.task_protocol import Environment, Episodes, Trace, is_environment
from trajprobe.validation import (
    as_tensor,
    check_finite_tensor,
    check_ndim_at_least,
    check_positive_int,
    renamed_arguments,
)

__all__ = ["Interaction", "Step", "Trace", "histories", "interact", "rollout", "step_through"]


def rollout(
    machine: sm.StateMachine,
    inputs: torch.Tensor | np.ndarray | xr.DataArray,
    *,
    initial_state: sm.State | None = None,
) -> Trace:
    """Run ``machine`` open-loop over fixed inputs, keeping every state.

    Runs without autograd (``torch.no_grad``; results are ordinary tensors) on the
    machine's device (that of its initial state): y_t = f(x_t, s_{t-1}),
    s_t = g(x_t, s_{t-1}) (``docs/design.md``'s opening; Mikulik et al. eq. 1).

    Args:
        machine: any :class:`~trajprobe.StateMachine`.
        inputs: ``[E, T, ...]`` episodes × steps × input features (a DataArray must have
            dims ``episode, t`` leading).
        initial_state: s_0 with leaves ``[E, ...]``; ``machine.initial_state(E)`` if None.

    Returns:
        A :class:`Trace` with outputs ``[E, T, ...]`` and states ``[E, T+1, ...]`` per leaf.
    """
    _check_machine_protocol(machine)
    inputs = as_tensor(inputs, "inputs", dims=("episode", "t"))
    check_ndim_at_least(inputs, 3, "inputs", "[episode, t, features...]")
    n_episodes, n_steps = inputs.shape[:2]
    if n_steps < 1 or n_episodes < 1:
        raise ValueError(f"inputs: expected at least one episode and one step, got shape "
                         f"{tuple(inputs.shape)}")
    check_finite_tensor(inputs, "inputs")
    with torch.no_grad(), eval_mode(machine):
        state = machine.initial_state(n_episodes) if initial_state is None else initial_state
        sm.check_state(state, n_episodes, "initial_state")
        device = sm.tree_leaves(state)[0].device
        inputs = inputs.to(device=device, dtype=_input_dtype(inputs, state))
        outputs_t, states = step_through(machine, inputs, state)
        states_t = sm.stack(states, dim=1)
    _check_finite_states(states_t)
    return Trace(inputs=inputs, outputs=outputs_t, states=states_t)


def step_through(machine: sm.StateMachine, inputs: torch.Tensor, state: sm.State, *,
                 checked: bool = True, keep_states: bool = True
                 ) -> tuple[torch.Tensor, list[sm.State] | None]:
    """The open-loop step loop: y_t, s_t = step(x_t, s_{t-1}) for t = 1..T.

    The one loop over given inputs: :func:`rollout` runs it without autograd and keeps
    every state; training (``trajprobe.apps.training.losses.unroll``, for a machine
    without an ``unroll`` hook) runs it with autograd, unchecked, keeping no states.

    Args:
        machine: any :class:`~trajprobe.StateMachine`.
        inputs: ``[E, T, ...]`` on the machine's device and dtype.
        state: s_0, leaves ``[E, ...]``.
        checked: wrap every step's exceptions with the machine, t and shapes and stop at a
            non-finite output (:mod:`trajprobe.guard`); False steps bare (training).
        keep_states: return s_0..s_T; False returns None in their place.

    Returns:
        ``(outputs [E, T, ...], [s_0, ..., s_T] or None)``.
    """
    states = [state] if keep_states else None
    outputs = []
    for t in range(inputs.shape[1]):
        if checked:
            y, state = checked_step(machine, inputs[:, t], state, t + 1)
            check_outputs(y, machine, t + 1)
        else:
            y, state = machine.step(inputs[:, t], state)
        outputs.append(y)
        if states is not None:
            states.append(state)
    return torch.stack(outputs, dim=1), states


def _check_finite_states(states: sm.State) -> None:
    """Raise on the first step at which a floating state leaf ``[E, T+1, ...]`` is not finite."""
    for i, leaf in enumerate(sm.tree_leaves(states)):
        if leaf.is_floating_point() and not bool(torch.isfinite(leaf).all()):
            bad = int((~torch.isfinite(leaf)).flatten(2).any(-1).any(0).nonzero()[0])
            raise ValueError(f"machine: state leaf {i} became NaN or inf at t={bad}")


def _input_dtype(inputs: torch.Tensor, state: sm.State) -> torch.dtype:
    """Floating inputs take the state's floating dtype; others are left as they are."""
    if not inputs.is_floating_point():
        return inputs.dtype
    for leaf in sm.tree_leaves(state):
        if leaf.is_floating_point():
            return leaf.dtype
    return inputs.dtype



@dataclass(frozen=True)
class Step:
    """One step t of an interaction, for every episode (and sample).

    Attributes:
        t: the step, 1..T.
        state: s_{t-1}, the state the machine acted from.
        context: c_t ``[E]`` or ``[E, M]`` (long), or None for an environment without contexts.
        input: x_t, what the machine was stepped on: ``[E, input_size]`` or ``[E, M, input_size]``.
        output: y_t, the outputs the action was drawn from.
        action: a_t ``[E]`` or ``[E, M]`` (long).
        reward: r_t ``[E]`` or ``[E, M]``.
        next_state: s_t.
    """

    t: int
    state: sm.State
    context: torch.Tensor | None
    input: torch.Tensor
    output: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_state: sm.State


class Interaction:
    """A machine acting in an environment, one :class:`Step` at a time (the closed loop).

    Iterate over it to stream the steps (an SGD Learner trained for 10⁵ steps need not
    keep them); :func:`interact` keeps them all in a :class:`Trace`. The environment's
    parameters are drawn when the interaction is created (``params``), then, at every
    step t = 1..T, with ``feedback="next"`` (a meta-learner or a Bayes agent)::

        x_t = task.encode(c_t, a_{t-1}, r_{t-1})      (a_0, r_0 = None: zeros)
        y_t, s_t = machine.step(x_t, s_{t-1});  a_t ~ policy(y_t);  r_t = task.reward(c_t, a_t)

    and with ``feedback="same"`` (an SGD Learner, whose step is an update on the
    minibatch it has just acted on; Rabinowitz §5.1)::

        y_t = machine.output(task.encode(c_t, None, None), s_{t-1});  a_t ~ policy(y_t)
        r_t = task.reward(c_t, a_t);  s_t = machine.step(task.encode(c_t, a_t, r_t), s_{t-1})

    With ``n_samples`` = M every episode sees M contexts per step (inputs ``[E, M, ...]``);
    the task's methods are called on E·M rows, each episode's parameters repeated M times.

    Args:
        machine: any :class:`~trajprobe.StateMachine`; ``feedback`` defaults to its
            ``feedback`` attribute, else ``"next"``.
        task: an :class:`~trajprobe.tasks.Environment`.
        episodes, steps: E and T (the old names ``n_episodes``, ``n_steps`` still work,
            deprecated).
        seed: one generator, on the machine's device, draws the parameters (unless given),
            the contexts, then per step the actions and the rewards (default 0; None:
            fresh randomness).
        policy: outputs ``[..., A]`` → a categorical distribution or probabilities;
            default :func:`default_policy`.
        params: the environment's parameters (``E`` leading) instead of a draw.
        n_samples: M contexts per episode and step (None: one, inputs ``[E, ...]``).
        feedback: ``"next"`` or ``"same"`` (see above).
    """

    @renamed_arguments(n_episodes="episodes", n_steps="steps")
    def __init__(
        self,
        machine: sm.StateMachine,
        task: Environment,
        episodes: int,
        steps: int,
        *,
        seed: Seed = 0,
        policy: Policy | None = None,
        params: dict[str, torch.Tensor] | None = None,
        n_samples: int | None = None,
        feedback: Literal["next", "same"] | None = None,
    ) -> None:
        _check_machine_protocol(machine)
        checks.check_methods(task, checks.ENVIRONMENT_METHODS, "an Environment")
        if not is_environment(task):
            raise TypeError(
                "task: expected an Environment (sample_params, contexts, reward, encode, "
                f"expected_reward), got {type(task).__name__}"
            )
        n_episodes = check_positive_int(episodes, "episodes")
        n_steps = check_positive_int(steps, "steps")
        if n_samples is not None:
            check_positive_int(n_samples, "n_samples")
        self.feedback = feedback or getattr(machine, "feedback", "next")
        if self.feedback not in ("next", "same"):
            raise ValueError(f"feedback: expected 'next' or 'same', got {self.feedback!r}")
        if n_samples is not None and self.feedback == "next":
            raise ValueError("n_samples: several samples per step need feedback='same' "
                             "(a machine that acts on a minibatch, e.g. an SGD Learner)")
        self.machine, self.task = machine, task
        self.n_episodes, self.n_steps, self.n_samples = n_episodes, n_steps, n_samples
        self.policy = policy or default_policy(machine)
        with torch.no_grad():
            self.initial_state = machine.initial_state(n_episodes)
        sm.check_state(self.initial_state, n_episodes, "initial_state")
        self.device = sm.tree_leaves(self.initial_state)[0].device
        self.dtype = sm.machine_dtype(machine)
        self.generator = make_generator(seed, self.device)
        if params is None:
            params = checks.params(task, task.sample_params(
                n_episodes, generator=self.generator, device=self.device), n_episodes)
        self.params = params
        rows = 1 if n_samples is None else n_samples
        self._rows = {k: v.repeat_interleave(rows, dim=0) for k, v in params.items()}
        # one sample per step: every context drawn up front, [E, T]; else step by step
        self.contexts = (checks.contexts(task, task.contexts(params, n_steps,
                                                             generator=self.generator),
                                         n_episodes, n_steps) if n_samples is None else None)

    def __iter__(self) -> Iterator[Step]:
        state, action, reward = self.initial_state, None, None
        # not inference_mode: the stream may be replayed with autograd
        with torch.no_grad(), eval_mode(self.machine):
            for t in range(1, self.n_steps + 1):
                step = self._step(t, state, action, reward)
                yield step
                state, action, reward = step.next_state, step.action, step.reward

    def _step(self, t: int, state: sm.State, action: torch.Tensor | None,
              reward: torch.Tensor | None) -> Step:
        task, shape = self.task, self._shape()
        context = (self.contexts[:, t - 1] if self.contexts is not None else
                   checks.contexts(task, task.contexts(self._rows, 1, generator=self.generator),
                                   self.n_episodes * (self.n_samples or 1), 1))
        context = None if context is None else context.reshape(-1)
        if self.feedback == "next":  # a_{t-1}, r_{t-1} in x_t
            x = self._encode(context, action, reward)
            y, next_state = checked_step(self.machine, x, state, t)
        else:  # act from s_{t-1}, then step on what was done
            y = sm.output(self.machine, self._encode(context, None, None), state)
        check_outputs(y, self.machine, t)
        action = self._act(y)
        reward = checks.rewards(task, task.reward(self._rows, context, action.reshape(-1),
                                                  generator=self.generator), action.numel())
        if self.feedback == "same":
            x = self._encode(context, action, reward)
            _, next_state = checked_step(self.machine, x, state, t)
        return Step(t, state, None if context is None else context.reshape(shape), x, y,
                    action, reward.reshape(shape), next_state)

    def _shape(self) -> tuple[int, ...]:
        return (self.n_episodes,) if self.n_samples is None else (self.n_episodes,
                                                                   self.n_samples)

    def _encode(self, context: torch.Tensor | None, action: torch.Tensor | None,
                reward: torch.Tensor | None) -> torch.Tensor:
        flat = [None if v is None else v.reshape(-1) for v in (action, reward)]
        rows = self.n_episodes * (self.n_samples or 1)
        x = checks.encoded(self.task, self.task.encode(context, *flat, dtype=self.dtype),
                           rows).to(self.device)
        return x.reshape(*self._shape(), *x.shape[1:])

    def _act(self, y: torch.Tensor) -> torch.Tensor:
        dist = self.policy(y)
        probs = dist.probs if isinstance(dist, torch.distributions.Distribution) else dist
        n_actions = self.task.n_actions
        if not isinstance(probs, torch.Tensor) or tuple(probs.shape) != (*self._shape(),
                                                                          n_actions):
            got = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
            raise ValueError(
                f"policy: expected a categorical distribution with probs "
                f"[{', '.join(map(str, self._shape()))}, {n_actions}] from outputs "
                f"{tuple(y.shape)}, got {got}"
            )
        flat = probs.to(self.device).reshape(-1, n_actions)
        return torch.multinomial(flat, 1, generator=self.generator)[:, 0].reshape(self._shape())


@renamed_arguments(n_episodes="episodes", n_steps="steps")
def interact(
    machine: sm.StateMachine,
    task: Environment,
    episodes: int,
    steps: int,
    *,
    seed: Seed = 0,
    policy: Policy | None = None,
    params: dict[str, torch.Tensor] | None = None,
    n_samples: int | None = None,
    feedback: Literal["next", "same"] | None = None,
) -> Trace:
    """Run ``machine`` closed-loop in ``task``'s environment and keep every step (a Trace).

    The one closed-loop driver (see :class:`Interaction` for the equations and the
    arguments). The trace's ``inputs`` can be replayed open-loop,
    ``rollout(other, trace.inputs)``, so a second machine sees exactly the same history
    (``docs/design.md``, "The engine").

    Returns:
        A :class:`Trace` with ``inputs [E, T, (M,) input_size]``, ``outputs``, states
        ``[E, T+1, ...]``, ``actions [E, T, (M)]``, ``rewards [E, T, (M)]``,
        ``contexts [E, T, (M)]`` (None without contexts) and ``params``.
    """
    run = Interaction(machine, task, episodes, steps, seed=seed, policy=policy,
                      params=params, n_samples=n_samples, feedback=feedback)
    steps = list(run)
    states = sm.stack([run.initial_state] + [s.next_state for s in steps], dim=1)
    _check_finite_states(states)
    has_context = steps[0].context is not None
    return Trace(
        inputs=torch.stack([s.input for s in steps], dim=1),
        outputs=torch.stack([s.output for s in steps], dim=1),
        states=states,
        actions=torch.stack([s.action for s in steps], dim=1),
        rewards=torch.stack([s.reward for s in steps], dim=1),
        contexts=torch.stack([s.context for s in steps], dim=1) if has_context else None,
        params=run.params,
    )


def histories(
    machine: sm.StateMachine,
    task: Any,
    *,
    episodes: int | Episodes | Trace = 100,
    steps: int = 20,
    seed: Seed = 0,
    policy: Policy | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[Episodes, Trace]:
    """The history of any machine on any task: the one driver behind every measurement.

    An open-loop :class:`~trajprobe.tasks.Task` is sampled (``task.sample``) and the
    machine rolled out over the episodes (:func:`rollout`); an
    :class:`~trajprobe.tasks.Environment` is run closed loop (:func:`interact`), its
    inputs depending on the machine's actions. Which one a task is, is the task's to say
    (:func:`trajprobe.task_protocol.is_environment`).

    Args:
        machine: any :class:`~trajprobe.StateMachine`.
        task: an open-loop task or an environment.
        episodes: E, the number of episodes to draw; or given :class:`Episodes` (rolled
            out as they are); or a closed-loop :class:`Trace` from :func:`interact`,
            replayed open loop (the same history for a second machine).
        steps: T, steps per episode (ignored when episodes are given).
        seed: draws the episodes, or runs the environment (parameters, contexts, actions,
            rewards); a generator is used as is, so a caller can continue its stream.
        policy: closed loop only: outputs → action distribution (default
            :func:`~trajprobe.machine.default_policy`).
        device, dtype: open loop only: of the sampled episodes (default: the machine's,
            i.e. of its initial state).

    Returns:
        ``(episodes, trace)``: the episodes (inputs ``[E, T, input_size]`` as the machine
        saw them, on its device and in its dtype; targets None and the environment's
        parameters for a closed loop) and the machine's :class:`Trace` on them.

    Raises:
        TypeError: ``task`` is neither an open-loop task nor an environment.
        ValueError: a bad size, or a Trace that did not come from :func:`interact`.
    """
    _check_machine_protocol(machine)
    if isinstance(episodes, Trace):
        if episodes.params is None or episodes.actions is None:
            raise ValueError("episodes: a Trace to replay must come from trajprobe.interact "
                             "(with params and actions)")
        trace = replace(rollout(machine, episodes.inputs), actions=episodes.actions,
                        rewards=episodes.rewards, contexts=episodes.contexts,
                        params=episodes.params)
        return Episodes(trace.inputs, None, episodes.params), trace
    if isinstance(episodes, Episodes):
        if episodes.inputs.dim() < 3 or episodes.inputs.shape[-1] != task.input_size:
            raise ValueError(f"episodes: expected inputs [E, T, {task.input_size}], "
                             f"got {tuple(episodes.inputs.shape)}")
        trace = rollout(machine, episodes.inputs)
        return replace(episodes, inputs=trace.inputs), trace
    check_positive_int(episodes, "episodes")
    check_positive_int(steps, "steps")
    resources.check_measure(machine, task, episodes, steps, None, "the history")  # memory
    if is_environment(task):
        trace = interact(machine, task, episodes, steps, seed=seed, policy=policy)
        return Episodes(trace.inputs, None, trace.params or {}), trace
    checks.check_methods(task, checks.TASK_METHODS, "an open-loop task or an environment")
    if device is None or dtype is None:
        with torch.no_grad():
            leaves = sm.tree_leaves(machine.initial_state(1))
        device = leaves[0].device if device is None else device
        dtype = sm.machine_dtype(machine) if dtype is None else dtype
    run = checks.episodes(task, task.sample(episodes, steps, seed=make_generator(seed, device),
                                            device=device, dtype=dtype), episodes, steps)
    trace = rollout(machine, run.inputs)
    return replace(run, inputs=trace.inputs), trace


def _check_machine_protocol(machine: Any) -> None:
    if not isinstance(machine, sm.StateMachine):
        raise TypeError(
            "machine: expected a StateMachine (initial_state(batch_size) and step(x, state)), "
            f"got {type(machine).__name__}; wrap a torch module with trajprobe.adapters.wrap"
        )
