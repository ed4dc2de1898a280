"""The task protocol: what a task says about itself, so that every machine can be measured on it.

A core module beside :mod:`trajprobe.machine` (the machine's protocol): the engine
(:mod:`trajprobe.traces`, :mod:`trajprobe.probing`, :mod:`trajprobe.measurement`) imports
it, and so do the tasks of :mod:`trajprobe.tasks`, which re-exports its names; it imports
nothing from the engine. It holds the three records the engine and a task exchange
(:class:`Episodes`, what a task draws; :class:`Trace`, what a machine did on them;
:class:`Probed`, what ``summarise`` reads) and the three protocols (:class:`Task`,
:class:`Measured`, :class:`Environment`); :mod:`trajprobe.task_checks` checks what a
user's task returns.

A task owns everything task-specific (``docs/design.md``, "Tasks own their
measurement"); nothing else in the library chooses
behaviour by a task's class or name.

* **Sampling.** An open-loop :class:`Task` draws :class:`Episodes` (inputs in the
  machine's encoding, targets, latent parameters). An :class:`Environment` (a bandit)
  instead samples its latent parameters and contexts, encodes what the agent has seen and
  rewards actions; :func:`trajprobe.interact` runs any machine in it and records the
  stream, which any other machine can then replay open-loop.
* **Measurement** (:class:`Measured`, optional). ``probe_inputs`` builds the
  counterfactual inputs of every step t (substituting the counterfactual part of x_t,
  keeping the history), and ``summarise`` turns the probe outputs into the task's
  labelled measurement: an effective spectrum (Rabinowitz eqs. 3, 5), a Fourier
  projection (eq. 10), a per-context policy (eqs. 12–14), or a user's own.
  :func:`trajprobe.measure` is the one front door that calls them.

The smallest complete task is in ``docs/design.md`` and the tutorial
``docs/tutorials/measure-your-own-task.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
import xarray as xr

from trajprobe import machine as sm
from trajprobe.labelled import feature_dims
from trajprobe.randomness import Seed, make_generator

if TYPE_CHECKING:
    from trajprobe.machine import Policy, StateMachine

# Seed and make_generator live in trajprobe.randomness; they stay importable from here.
__all__ = [
    "Environment", "Episodes", "Measured", "Probed", "Seed", "Task", "Trace", "is_environment",
    "make_generator", "output_size",
]


@dataclass(frozen=True)
class Episodes:
    """A batch of sampled episodes.

    Attributes:
        inputs: ``[E, T, input_size]`` the machine's inputs (the task's encoding).
        targets: ``[E, T, ...]`` what a learner should predict at step t (e.g. y_t); None
            for an environment's recorded stream (its feedback is in the rewards).
        params: ground truth per episode, every value with ``E`` leading (e.g. ``"W"``
            ``[E, N_y, N_x]`` for linear regression).
    """

    inputs: torch.Tensor
    targets: torch.Tensor | None
    params: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Trace:
    """Everything a machine did on a batch of episodes.

    Attributes:
        inputs: ``[E, T, ...]`` the inputs x_1..x_T.
        outputs: ``[E, T, ...]`` the outputs y_1..y_T.
        states: a state pytree whose leaves are ``[E, T+1, ...]``: s_0..s_T, where s_t
            is the state after t observations. Probing "at t" uses s_{t-1}.
        attrs: free-form metadata carried into :meth:`to_dataset`.
        actions: ``[E, T]`` (long) actions taken, closed loop only (:func:`interact`).
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


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


@dataclass(frozen=True)
class Probed:
    """Everything a task's ``summarise`` reads.

    Attributes:
        machine: the machine measured (for ``distribution`` or ``state_vector``).
        episodes: the episodes: inputs ``[E, T, ...]``, targets (None for an environment)
            and the latent parameters (``E`` leading).
        trace: the machine's run on them (closed loop: with actions, rewards, contexts).
        probe_inputs: ``[E, T, N, ...]`` from the task's ``probe_inputs`` (or None).
        outputs: ``[E, T, N, ...]`` the probe outputs, f(probe_inputs[e, t, n], s_{t-1}[e])
            (or None without probes).
        policy: outputs → action distribution, for environments (the caller's, else
            :func:`~trajprobe.machine.default_policy`).
    """

    machine: StateMachine
    episodes: Episodes
    trace: Trace
    probe_inputs: torch.Tensor | None
    outputs: torch.Tensor | None
    policy: Policy

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """The episodes' parameters on the outputs' device and floating dtype."""
        ref = self.trace.outputs
        return {k: v.to(device=ref.device, dtype=ref.dtype) if v.is_floating_point()
                else v.to(ref.device) for k, v in self.episodes.params.items()}


@runtime_checkable
class Task(Protocol):
    """An open-loop task distribution: episodes whose inputs do not depend on the machine."""

    input_size: int
    output_size: int

    def sample(
        self,
        n_episodes: int,
        n_steps: int,
        *,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Episodes:
        """Draw ``n_episodes`` episodes of ``n_steps`` steps; same seed, same episodes."""
        ...


@runtime_checkable
class Measured(Protocol):
    """A task that owns a measurement: its probe inputs and how to read the probe outputs.

    :func:`trajprobe.measure` samples episodes (or runs the environment), rolls the
    machine out, calls ``probe_inputs``, probes every state s_{t-1} with them
    (:func:`trajprobe.probe`) and hands everything to ``summarise``.
    """

    def probe_inputs(
        self, episodes: Episodes, n_probes: int | None, *, seed: Seed
    ) -> torch.Tensor | None:
        """Counterfactual inputs ``[E, T, N, input_size]`` for the probe at every step t.

        Probe n at step t replaces the counterfactual part of x_t and keeps the history
        (e.g. y_{t-1}). ``n_probes`` is the caller's N (None: the task's default); a task
        with a fixed probe set (a grid, every context) raises if given another N. Draw
        random probes from ``seed`` (:func:`make_generator`; measure passes its generator).
        Return None for a measurement that needs no probes (e.g. a log-loss).
        """
        ...

    def summarise(self, probed: Probed) -> xr.Dataset:
        """The measurement: a Dataset with dims ``episode, t`` (1..T) and the task's own.

        ``probed`` holds the machine, its trace, the episodes, the probe inputs and the
        probe outputs ``[E, T, N, ...]`` (see :class:`Probed`).
        """
        ...


@runtime_checkable
class Environment(Protocol):
    """A closed-loop task: a machine's outputs choose actions, which decide rewards.

    The machine's input at step t encodes what it has seen: the context of step t (if
    any), the previous action and the previous reward (zeros at t = 1). Methods see one
    row per episode; with M samples per step (an SGD Learner's minibatch)
    :func:`trajprobe.interact` calls them on E·M rows, each episode's parameters repeated
    M times.
    """

    input_size: int
    n_actions: int

    def sample_params(
        self, n_episodes: int, *, generator: torch.Generator, device: torch.device | str | None
    ) -> dict[str, torch.Tensor]:
        """Ground truth per episode (e.g. correct action per context), ``E`` leading."""
        ...

    def contexts(
        self, params: dict[str, torch.Tensor], n_steps: int, *, generator: torch.Generator
    ) -> torch.Tensor | None:
        """Context index ``[E, T]`` (long) shown at every step, or None without contexts."""
        ...

    def reward(
        self,
        params: dict[str, torch.Tensor],
        context: torch.Tensor | None,
        action: torch.Tensor,
        *,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Reward ``[E]`` for ``action`` ``[E]`` (long) taken in ``context`` ``[E]`` (or None)."""
        ...

    def encode(
        self,
        context: torch.Tensor | None,
        prev_action: torch.Tensor | None,
        prev_reward: torch.Tensor | None,
        *,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Machine input ``[E, input_size]``; ``prev_action``/``prev_reward`` None at t = 1."""
        ...

    def expected_reward(
        self, params: dict[str, torch.Tensor], context: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean reward of every action ``[E, n_actions]`` in ``context`` ``[E]`` (or None)."""
        ...


def is_environment(task: Any) -> bool:
    """Whether ``task`` runs closed loop: the one place that tells the two kinds apart.

    True for an :class:`Environment` (the machine's actions decide its rewards and next
    inputs: :func:`trajprobe.histories` runs it with :func:`trajprobe.interact`), False for
    an open-loop :class:`Task` (sampled, then :func:`trajprobe.rollout`).

    Raises:
        TypeError: ``task`` is neither (naming the methods it lacks).
    """
    if isinstance(task, Environment):
        return True
    if isinstance(task, Task):
        return False
    kinds = {"an open-loop task": _TASK_MEMBERS, "an environment": _ENVIRONMENT_MEMBERS}
    lacks = {kind: [m for m in members if not hasattr(task, m)] for kind, members in kinds.items()}
    kind = min(lacks, key=lambda k: len(lacks[k]))
    raise TypeError(f"task: expected an open-loop task ({', '.join(_TASK_MEMBERS)}) or an "
                    f"environment ({', '.join(_ENVIRONMENT_MEMBERS)}); {type(task).__name__} "
                    f"is closest to {kind} but lacks {', '.join(lacks[kind])}")


_TASK_MEMBERS = ("input_size", "output_size", "sample")
_ENVIRONMENT_MEMBERS = ("input_size", "n_actions", "sample_params", "contexts", "reward",
                        "encode", "expected_reward")


def output_size(task: Any) -> int:
    """The size of a machine's output on ``task``: ``output_size`` for an open-loop task,
    ``n_actions`` (one logit per action) for an environment."""
    return task.n_actions if is_environment(task) else task.output_size
