"""Any Gymnasium environment as a closed-loop task: ``interact`` runs a machine in it.

:class:`GymEnvironment` makes a Gymnasium environment (``pip install ".[gymnasium]"``)
with a ``Discrete`` action space and a ``Box`` observation space an
:class:`~trajprobe.task_protocol.Environment`, so :func:`trajprobe.interact` (and
:func:`trajprobe.histories`, :func:`trajprobe.compare.simulation`, ...) run any machine in
it: the machine's outputs are the logits of a policy over the ``n`` actions (its
``distribution``, else softmax), the action drawn is stepped in the environment and its
reward recorded. Neurogym's tasks are Gymnasium environments and run the same way.

**Batching.** One environment instance per episode, built by ``make`` and reset with the
episode's own seed (``params["seed"]`` ``[E]``, drawn by ``sample_params`` from the
interaction's generator, or given: ``interact(..., params={"seed": seeds})`` replays
them). The episodes are stepped one after the other in Python; Gymnasium's vector
environments are not used, so every environment, including one that keeps its own random
state (neurogym's, seeded through its legacy ``seed(s)`` as well as ``reset(seed=s)``),
gives exactly the rewards it gives when run by hand with the same seed and actions.

**Encoding.** The machine's input at step t is the observation o_t it acts on, flattened
``[E, obs_size]`` (o_1 is the reset observation), and with ``with_feedback=True`` also
``[one_hot(a_{t-1}), r_{t-1}]`` (zeros at t = 1), the meta-RL input of Wang et al. (2018):
``input_size`` = obs_size (+ n + 1). Action index a is stepped as ``action_space.start + a``.

**A fixed T and episodes that end.** ``interact`` runs every episode for exactly T steps;
an environment may terminate or truncate before. With ``on_done="hold"`` (the default),
an ended episode is not stepped again: its reward is 0 and its observation stays the last
one for the remaining steps. With ``on_done="reset"``, it is reset at once (continuing its
own random stream, ``reset()`` without a seed, as Gymnasium's vector environments do) and
the next input is the new episode's first observation. :attr:`GymEnvironment.last_run`
keeps, per step, whether the step was taken in a live episode and whether it terminated
or truncated it.

Limits: one interaction at a time per ``GymEnvironment`` (the live environments are its
state between ``contexts``, which resets them, and the last ``reward``); only
``feedback="next"`` machines (a machine's input at t + 1 is the observation that followed
its action; an SGD Learner's ``"same"`` loop would pair a_t with o_{t+1}, and is refused
at its second step); one sample per step (no ``n_samples``). ``expected_reward`` is
unknown for a general environment.

:func:`trajprobe.measure` reads the run's rewards, returns and the policy's entropy
(``summarise``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from trajprobe.labelled import Label, describe

__all__ = ["GymEnvironment", "GymRun"]


@dataclass(frozen=True)
class GymRun:
    """What the environments did during the last interaction (``E`` episodes, t = 1..T).

    Attributes:
        seeds: ``[E]`` the reset seed of every episode.
        live: ``[E, T]`` (bool) step t was taken in a running episode (False: held after
            the end, ``on_done="hold"``).
        terminated: ``[E, T]`` (bool) step t terminated the episode (the MDP's end).
        truncated: ``[E, T]`` (bool) step t truncated it (a time limit).
    """

    seeds: torch.Tensor
    live: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor


class GymEnvironment:
    """A Gymnasium environment (Discrete actions, Box observations) as an ``Environment``.

    Args:
        env: a Gymnasium id (``"CartPole-v1"``, made with ``gymnasium.make(env, **kwargs)``),
            a callable returning a new environment (a function or an environment class), or
            an environment instance (deep-copied for every episode).
        with_feedback: append ``[one_hot(a_{t-1}), r_{t-1}]`` to the observation (module
            docstring).
        on_done: ``"hold"`` or ``"reset"``: what an episode that ends before T does.
        **kwargs: passed to ``gymnasium.make`` with an id.

    Raises:
        TypeError: the action space is not ``Discrete`` or the observation space not ``Box``.
        ValueError: a bad ``on_done``.
    """

    def __init__(self, env: str | Callable[[], Any] | Any, *, with_feedback: bool = False,
                 on_done: Literal["hold", "reset"] = "hold", **kwargs: Any) -> None:
        if on_done not in ("hold", "reset"):
            raise ValueError(f"on_done: expected 'hold' or 'reset', got {on_done!r}")
        self._make = _factory(env, kwargs)
        probe = self._make()
        self.n_actions, self.action_start, self.observation_shape = _spaces(probe)
        probe.close()
        self.with_feedback = bool(with_feedback)
        self.on_done = on_done
        self.obs_size = int(np.prod(self.observation_shape))
        self.input_size = self.obs_size + (self.n_actions + 1 if self.with_feedback else 0)
        self.name = env if isinstance(env, str) else type(probe.unwrapped).__name__
        self._envs: list[Any] = []
        self._obs: np.ndarray | None = None
        self._record: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (f"GymEnvironment({self.name!r}, with_feedback={self.with_feedback}, "
                f"on_done={self.on_done!r})")

    def sample_params(self, n_episodes: int, *, generator: torch.Generator,
                      device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """A reset seed per episode: ``{"seed": [E]}`` (long), from ``generator``."""
        seeds = torch.randint(0, 2**31 - 1, (n_episodes,), generator=generator,
                              device=generator.device)
        return {"seed": seeds.to(device)}

    def contexts(self, params: dict[str, torch.Tensor], n_steps: int, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Start the run: one environment per episode, reset with ``params["seed"]``.

        Returns a single constant context, zeros ``[E, T]`` (long), as the bandits without
        contexts do: the observations are the inputs, and :func:`trajprobe.interact` draws
        contexts once per run only when there are some.
        """
        seeds = params.get("seed")
        if not isinstance(seeds, torch.Tensor) or seeds.dim() != 1:
            raise ValueError("params: expected {'seed': [E] reset seeds} (from sample_params), "
                             f"got keys {sorted(params)}")
        for env in self._envs:
            env.close()
        self._envs = [self._make() for _ in range(seeds.shape[0])]
        first = [_reset(env, int(seed)) for env, seed in zip(self._envs, seeds.tolist(),
                                                              strict=True)]
        self._obs = np.stack([self._flat(o) for o in first])
        self._record = {"seeds": seeds.detach().cpu(), "live": [], "terminated": [],
                        "truncated": [], "done": np.zeros(len(self._envs), dtype=bool)}
        return torch.zeros(seeds.shape[0], n_steps, dtype=torch.long, device=seeds.device)

    def encode(self, context: torch.Tensor | None, prev_action: torch.Tensor | None,
               prev_reward: torch.Tensor | None, *,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The current observation of every episode ``[E, input_size]`` (module docstring).

        Raises:
            ValueError: asked for an input without the previous action after a step (a
                ``feedback="same"`` machine, which this environment cannot serve).
        """
        obs = torch.as_tensor(self._current(), dtype=dtype)
        if prev_action is None and self._record["live"]:
            raise ValueError(f"{self!r}: runs machines with feedback='next' only (input t + 1 "
                             "is the observation after action t); a feedback='same' machine "
                             "(an SGD Learner) would pair an action with the next observation")
        if not self.with_feedback:
            return obs
        feedback = torch.zeros(obs.shape[0], self.n_actions + 1, dtype=dtype)
        if prev_action is not None:
            feedback[:, :self.n_actions] = torch.nn.functional.one_hot(
                prev_action.long().cpu(), self.n_actions).to(dtype)
            feedback[:, -1] = prev_reward.detach().cpu().to(dtype)
        return torch.cat([obs, feedback], dim=1)

    def reward(self, params: dict[str, torch.Tensor], context: torch.Tensor | None,
               action: torch.Tensor, *, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """Step every live episode with its action ``[E]``; its reward ``[E]`` (float64).

        An episode held after its end (``on_done="hold"``) is not stepped and gets 0.
        """
        obs = self._current()
        if action.shape != (len(self._envs),):
            raise ValueError(f"action: expected shape [{len(self._envs)}], got "
                             f"{tuple(action.shape)}")
        done, rec = self._record["done"], self._record
        rewards, ended = np.zeros(len(self._envs)), np.zeros((2, len(self._envs)), dtype=bool)
        rec["live"].append(~done)
        for e, (env, a) in enumerate(zip(self._envs, action.tolist(), strict=True)):
            if done[e]:
                continue
            o, r, terminated, truncated, _ = env.step(self.action_start + int(a))
            rewards[e], ended[:, e] = float(r), (terminated, truncated)
            if (terminated or truncated) and self.on_done == "reset":
                o, _ = env.reset()
            else:
                done[e] = terminated or truncated
            obs[e] = self._flat(o)
        rec["terminated"].append(ended[0])
        rec["truncated"].append(ended[1])
        return torch.as_tensor(rewards, dtype=torch.float64, device=action.device)

    def expected_reward(self, params: dict[str, torch.Tensor],
                        context: torch.Tensor | None) -> torch.Tensor:
        """Unknown for a general environment: raises NotImplementedError."""
        raise NotImplementedError(f"{self!r}: the mean reward of every action is not known for "
                                  "a general Gymnasium environment")

    def probe_inputs(self, episodes: Any, n_probes: int | None = None, *,
                     seed: Any = None) -> None:
        """None: measured on the run itself (its rewards), without probes."""
        if n_probes is not None:
            raise ValueError(f"n_probes: {self!r} is measured without probes, got {n_probes}")
        return None

    def summarise(self, probed: Any) -> xr.Dataset:
        """The rewards of the run and the policy's entropy, per episode and step.

        Returns:
            ``reward (episode, t)``, ``return (episode)`` (the sum over the T steps) and
            ``policy_entropy (episode, t)`` (nats) of the policy the actions were drawn from.
        """
        rewards = probed.trace.rewards.to(torch.float64)
        entropy = _entropy(probed.policy(probed.trace.outputs.to(torch.float64)))
        ds = xr.Dataset({"reward": (("episode", "t"), rewards.cpu().numpy()),
                         "return": ("episode", rewards.sum(1).cpu().numpy()),
                         "policy_entropy": (("episode", "t"), entropy.cpu().numpy())},
                        attrs={"measure": "reward"})
        return describe(ds, {"reward": Label("reward r_t", "1", "the environment's"),
                             "return": Label("return", "1", "sum of r_t over the T steps"),
                             "policy_entropy": Label("policy entropy", "nats",
                                                     "H(policy(y_t))")})

    @property
    def last_run(self) -> GymRun:
        """What the environments did during the last interaction (:class:`GymRun`)."""
        if not self._record:
            raise ValueError(f"{self!r}: no interaction has run yet (trajprobe.interact)")
        rec = self._record
        steps = [np.stack(rec[k], axis=1) if rec[k] else np.zeros((len(self._envs), 0), bool)
                 for k in ("live", "terminated", "truncated")]
        return GymRun(rec["seeds"], *(torch.as_tensor(s) for s in steps))

    def close(self) -> None:
        """Close the live environments."""
        for env in self._envs:
            env.close()
        self._envs = []

    def _current(self) -> np.ndarray:
        if self._obs is None:
            raise ValueError(f"{self!r}: no run started; contexts(params, n_steps) resets the "
                             "environments (trajprobe.interact calls it)")
        return self._obs

    def _flat(self, obs: Any) -> np.ndarray:
        flat = np.asarray(obs, dtype=np.float64).reshape(-1)
        if flat.shape != (self.obs_size,):
            raise ValueError(f"{self!r}: an observation of shape {np.shape(obs)}, expected "
                             f"{self.observation_shape}")
        return flat


def _factory(env: Any, kwargs: dict[str, Any]) -> Callable[[], Any]:
    if isinstance(env, str):
        import gymnasium

        return lambda: gymnasium.make(env, **kwargs)
    if kwargs:
        raise TypeError(f"kwargs: only for a Gymnasium id, got {sorted(kwargs)} with "
                        f"{type(env).__name__}")
    if isinstance(env, type) or (callable(env) and not hasattr(env, "step")):
        return env  # a factory: a function or an environment class
    if hasattr(env, "step") and hasattr(env, "reset"):
        return lambda: copy.deepcopy(env)
    raise TypeError(f"env: expected a Gymnasium id, a callable returning an environment or an "
                    f"environment, got {type(env).__name__}")


def _spaces(env: Any) -> tuple[int, int, tuple[int, ...]]:
    """``(n_actions, action start, observation shape)``, refusing other spaces."""
    from gymnasium import spaces

    if not isinstance(env.action_space, spaces.Discrete):
        raise TypeError(f"env: expected a Discrete action space, got {env.action_space}")
    if not isinstance(env.observation_space, spaces.Box):
        raise TypeError(f"env: expected a Box observation space, got {env.observation_space}")
    return (int(env.action_space.n), int(env.action_space.start),
            tuple(env.observation_space.shape))


def _reset(env: Any, seed: int) -> Any:
    """``env.reset(seed=seed)``; an environment with its own legacy ``seed(s)`` (neurogym's
    trial generator) is seeded through it first, since ``reset`` seeds only ``np_random``."""
    legacy = getattr(env.unwrapped, "seed", None)
    if callable(legacy):
        legacy(seed)
    obs, _ = env.reset(seed=seed)
    return obs


def _entropy(policy: Any) -> torch.Tensor:
    """The entropy of a policy given as a distribution or as probabilities ``[..., A]``."""
    if isinstance(policy, torch.distributions.Distribution):
        return policy.entropy()
    return torch.distributions.Categorical(probs=policy).entropy()
