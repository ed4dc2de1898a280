"""A neurogym environment's supervised trials as an open-loop task.

neurogym (``pip install ".[neurogym]"``) trains networks on cognitive tasks with
supervised labels: ``neurogym.Dataset(env, batch_size, seq_len)`` concatenates trials,
each from ``env.new_trial()`` with its observations ``env.ob`` ``[L, obs]`` and its
ground-truth actions ``env.gt`` ``[L]``, and cuts the stream into sequences.
:class:`NeurogymTask` draws exactly those sequences as :class:`~trajprobe.Episodes`:

    inputs  ``[E, T, obs_size]``   the observations (float)
    targets ``[E, T]``             the ground-truth action at every step (long)
    params  ``trial [E, T]``       the trial each step belongs to (0, 1, ...), and every
                                   numeric entry of neurogym's trial dict per step, e.g.
                                   ``ground_truth``, ``coh`` ``[E, T]``

With an integer seed s, episode i is the stream of a copy of the environment reset and
seeded ``s + i``, which is what ``Dataset.seed(s)`` does to its i-th copy: the first batch
of a ``Dataset`` so seeded and refilled is ``task.sample(E, T, seed=s)``, transposed. A
batch a network was trained on converts with :meth:`NeurogymTask.episodes`.

**The output head.** A network trained with neurogym's loop
(``nn.CrossEntropyLoss`` on its outputs against the labels) outputs the logits over the
actions, so wrap it with ``distribution="categorical"`` (``trajprobe.adapters.wrap(...,
distribution="categorical")``): KL comparisons, ``posterior_error`` and the log-loss then
read it as the policy it was trained to be. The task's own ``distribution`` is that head.

The measurement (:func:`trajprobe.measure`) is the log-loss of the labels and whether the
argmax is the label, at every step; :meth:`NeurogymTask.psychometric` is the accuracy of
the choice against a trial parameter (coherence); ``task.bayes_machine()`` is the
environment's exact ideal observer where one is known
(:mod:`trajprobe.tasks.ideal_observers`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr
from torch import distributions as D

from trajprobe.dynamics import mean_sem
from trajprobe.heads import HEADS
from trajprobe.labelled import Label, describe, to_numpy
from trajprobe.task_protocol import Episodes, Seed, make_generator
from trajprobe.tasks.ideal_observers import ideal_observer
from trajprobe.traces import rollout
from trajprobe.validation import check_positive_int

if TYPE_CHECKING:
    from trajprobe.task_protocol import Probed

__all__ = ["NeurogymTask"]


class NeurogymTask:
    """The supervised trials of a neurogym environment (module docstring).

    Args:
        env: a neurogym id (``"PerceptualDecisionMaking-v0"``, made with
            ``neurogym.make(env, **kwargs)``) or an environment (deep-copied per episode,
            as ``neurogym.Dataset`` does).
        **kwargs: the environment's arguments, with an id (``dt``, ``timing``, ``sigma``,
            ``cohs``, ...).
    """

    def __init__(self, env: str | Any, **kwargs: Any) -> None:
        if isinstance(env, str):
            import neurogym

            env = neurogym.make(env, **kwargs)
        elif kwargs:
            raise TypeError(f"kwargs: only with a neurogym id, got {sorted(kwargs)}")
        if not callable(getattr(env.unwrapped, "new_trial", None)):
            raise TypeError(f"env: expected a neurogym TrialEnv (new_trial, ob, gt), got "
                            f"{type(env.unwrapped).__name__}")
        self.env = env
        self.input_size = int(np.prod(env.observation_space.shape))
        self.output_size = int(env.action_space.n)

    def __repr__(self) -> str:
        return f"NeurogymTask({type(self.env.unwrapped).__name__})"

    def sample(self, n_episodes: int, n_steps: int, *, seed: Seed = None,
               device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> Episodes:
        """Draw ``n_episodes`` streams of trials, each cut at ``n_steps`` (module docstring).

        Episode i is a copy of the environment, reset and seeded ``(s + i) mod 2³²``
        (neurogym's ``env.seed``, a numpy ``RandomState``), s the integer ``seed`` or drawn
        from a generator (None: fresh).

        Returns:
            :class:`Episodes`: inputs ``[E, T, obs_size]``, targets ``[E, T]`` (long),
            params ``trial`` and the trials' numeric entries ``[E, T]``.
        """
        check_positive_int(n_episodes, "n_episodes")
        check_positive_int(n_steps, "n_steps")
        base = seed if isinstance(seed, int) else _draw_seed(make_generator(seed))
        streams = [self._stream((base + i) % 2**32, n_steps) for i in range(n_episodes)]
        keys = set.intersection(*(set(s[2]) for s in streams))
        params = {k: torch.as_tensor(np.stack([s[2][k] for s in streams]), device=device)
                  for k in sorted(keys)}
        return Episodes(
            inputs=torch.as_tensor(np.stack([s[0] for s in streams]), device=device).to(dtype),
            targets=torch.as_tensor(np.stack([s[1] for s in streams]), device=device).long(),
            params={k: v.to(dtype) if v.is_floating_point() else v for k, v in params.items()})

    def episodes(self, inputs: Any, targets: Any, *, batch_first: bool = False,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> Episodes:
        """A ``neurogym.Dataset`` batch as :class:`Episodes` (without trial parameters).

        Args:
            inputs: ``[T, E, obs_size]`` (``[E, T, obs_size]`` with ``batch_first``).
            targets: ``[T, E]`` (``[E, T]``) ground-truth actions.
        """
        x, y = torch.as_tensor(np.asarray(inputs)), torch.as_tensor(np.asarray(targets))
        if not batch_first:
            x, y = x.transpose(0, 1), y.transpose(0, 1)
        if x.dim() != 3 or x.shape[-1] != self.input_size or tuple(y.shape) != tuple(x.shape[:2]):
            raise ValueError(f"inputs, targets: expected [T, E, {self.input_size}] and [T, E] "
                             f"(batch_first=False), got {tuple(np.shape(inputs))} and "
                             f"{tuple(np.shape(targets))}")
        return Episodes(x.to(device=device, dtype=dtype), y.to(device).long(), {})

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """The head of a network trained on the labels: Categorical(logits = y)."""
        return HEADS["categorical"](y)

    def bayes_machine(self, *, device: torch.device | str | None = None,
                      lapse: float = 0.0) -> Any:
        """The environment's exact ideal observer (:func:`~trajprobe.tasks.ideal_observers.
        ideal_observer`), with a lapse rate ``lapse`` (0: exact; see the observers);
        ValueError if none models it."""
        return ideal_observer(self.env, device=device, lapse=lapse)

    def psychometric(self, machine: Any, episodes: Episodes, *, by: str = "coh") -> xr.Dataset:
        """Accuracy of the machine's choice at the decision steps, per value of a trial
        parameter (a psychometric curve: accuracy against coherence).

        A decision step is one whose label is a choice (label > 0; 0 is "fixate"); the
        machine's choice there is the most probable of the choice actions, argmax of its
        outputs 1..A−1 (logits or probabilities alike).

        Args:
            machine: any machine reading the task's inputs.
            episodes: from :meth:`sample` (with the trial parameter ``by`` per step).
            by: the trial parameter to group by (``"coh"``, ``"coh_1"``, ``"context"``...).

        Returns:
            Dataset with dim ``by``: ``accuracy``, ``accuracy_sem`` (s.e. over the decision
            steps, :func:`trajprobe.dynamics.mean_sem`) and ``n_decisions``.
        """
        if by not in episodes.params:
            raise ValueError(f"by: expected a trial parameter of the episodes "
                             f"({', '.join(sorted(episodes.params))}), got {by!r}")
        outputs = rollout(machine, episodes.inputs).outputs
        labels = episodes.targets.to(outputs.device)
        decide = (labels > 0).cpu().numpy()
        correct = (outputs[..., 1:].argmax(-1) + 1 == labels).cpu().numpy()[decide]
        values = np.round(episodes.params[by].double().cpu().numpy()[decide], 6)
        levels = np.unique(values)
        rows = [mean_sem(correct[values == v].astype(np.float64)) for v in levels]
        ds = xr.Dataset({"accuracy": (by, [r[0] for r in rows]),
                         "accuracy_sem": (by, [r[1] for r in rows]),
                         "n_decisions": (by, [int((values == v).sum()) for v in levels])},
                        coords={by: levels})
        return describe(ds, {"accuracy": Label("accuracy of the choice", "1",
                                               "argmax of the choice actions = label"),
                             "accuracy_sem": Label("s.e. of the accuracy", "1", "sd / sqrt(n)"),
                             "n_decisions": Label("decision steps", "1", "steps with label > 0")})

    def probe_inputs(self, episodes: Episodes, n_probes: int | None = None, *,
                     seed: Seed = None) -> None:
        """None: measured on the real inputs (the labels' log-loss)."""
        if n_probes is not None:
            raise ValueError(f"n_probes: {self!r} is measured without probes, got {n_probes}")
        return None

    def summarise(self, probed: Probed) -> xr.Dataset:
        """Log-loss of the label and whether the MAP action is the label, at every step.

        Returns:
            ``log_loss (episode, t)`` (nats) and ``correct (episode, t)`` (0 or 1), read
            through ``machine.distribution`` (else the categorical head).
        """
        head = getattr(probed.machine, "distribution", None)
        dist = (head if callable(head) else self.distribution)(
            probed.trace.outputs.to(torch.float64))
        labels = probed.episodes.targets.to(probed.trace.outputs.device)
        correct = (dist.probs.argmax(-1) == labels).to(torch.float64)
        ds = xr.Dataset({"log_loss": (("episode", "t"), to_numpy(-dist.log_prob(labels))),
                         "correct": (("episode", "t"), to_numpy(correct))},
                        attrs={"measure": "log_loss"})
        return describe(ds, {
            "log_loss": Label("log-loss −log p(label_t)", "nats", "neurogym's supervised loss"),
            "correct": Label("MAP action is the label", "1", "argmax p = gt_t")})

    def _stream(self, seed: int, n_steps: int) -> tuple[np.ndarray, np.ndarray, dict]:
        """One episode: trials of a fresh copy seeded ``seed``, concatenated and cut."""
        env = copy.deepcopy(self.env)
        env.reset()
        env.unwrapped.seed(seed)
        top = _trial_env(env)
        obs, labels, info, filled, trial = [], [], {}, 0, 0
        while filled < n_steps:
            record = top.new_trial()
            ob, gt = env.unwrapped.ob, env.unwrapped.gt
            take = min(len(ob), n_steps - filled)
            obs.append(ob[:take].reshape(take, -1))
            labels.append(gt[:take])
            for key, value in {"trial": trial, **(record or {})}.items():
                if np.isscalar(value) and np.isreal(value):
                    info.setdefault(key, []).append(np.full(take, value))
            filled, trial = filled + take, trial + 1
        full = {k: np.concatenate(v) for k, v in info.items() if sum(map(len, v)) == n_steps}
        return np.concatenate(obs), np.concatenate(labels), full


def _trial_env(env: Any) -> Any:
    """The outermost wrapper (or the environment) whose class defines ``new_trial``: the one
    ``neurogym.Dataset`` calls (a neurogym wrapper may change the trials)."""
    while not hasattr(type(env), "new_trial") and hasattr(env, "env"):
        env = env.env
    return env


def _draw_seed(generator: torch.Generator) -> int:
    """A base seed for the environments' own generators, drawn from ``generator``."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator,
                             device=generator.device).item())
