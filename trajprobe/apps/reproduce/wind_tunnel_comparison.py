"""The machines of the wind-tunnel structure analyses, as compared; their settings and checks.

Shared by :mod:`.wind_tunnel_structure` (D_s/D_o against the exact Bayes machine) and
:mod:`.wind_tunnel_fixed_points` (the HMM filters' fixed points):

* :data:`SETTINGS`, the sizes of both per preset;
* the input checks (learners with ``distribution``, the Bayes machine);
* how a machine is compared: a transformer through its attention read-outs
  (:class:`~trajprobe.adapters.CacheReadout` for probes covering every input feature); a
  categorical predictive with exact zeros mixed with ε of uniform (:class:`Smoothed`); the
  change-point machine taking mapped states (:class:`CappedRuns`); an untrained copy.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.distributions import Categorical

from trajprobe import machine as sm
from trajprobe.adapters import CacheReadout, CausalTransformer
from trajprobe.apps.presets import Presets
from trajprobe.initialisers import torch_default_init
from trajprobe.tasks.wind_tunnel_posteriors import ChangePointBetaBernoulli, ChangePointState
from trajprobe.traces import rollout

__all__ = [
    "LN2",
    "READOUT_PROBES",
    "SETTINGS",
    "SMOOTHING",
    "CappedRuns",
    "Smoothed",
    "StructureSettings",
    "check_bayes",
    "check_learners",
    "comparable",
    "readout_probes",
    "summarised",
    "untrained_copy",
]

LN2 = math.log(2.0)

READOUT_PROBES = 12
"""At most this many inputs of the task's own episodes, chosen to cover every input feature
(:func:`readout_probes`), whose attention read-outs are a transformer's state vector
(:class:`~trajprobe.adapters.CacheReadout`)."""


@dataclass(frozen=True)
class StructureSettings:
    """Sizes of one preset.

    Attributes:
        episodes: held-out episodes of the comparison (folds split them).
        steps: episode length T when no learner has a ``max_len`` (else the smallest).
        folds: cross-validation folds of :func:`~trajprobe.compare.simulation`.
        shuffled_null: fit the time-shuffled null map.
        untrained: compare an untrained copy of every learner (its parameters re-drawn)
            the same way, as a baseline.
        constant_states: training states of the target tried as constant maps (the bound
            of D_o; :class:`~trajprobe.compare.SimulationConfig`'s ``n_constant_states``,
            whose screening dominates the cost on the categorical tasks).
        fixed_point_episodes: episodes whose states seed the fixed-point search.
        fixed_point_samples: initial states per symbol drawn from those episodes.
        fixed_point_iters: Levenberg–Marquardt steps at most.
        relax_steps: length of the constant-input run that locates each attractor.
    """

    episodes: int
    steps: int
    folds: int
    shuffled_null: bool
    untrained: bool
    constant_states: int
    fixed_point_episodes: int
    fixed_point_samples: int
    fixed_point_iters: int
    relax_steps: int


SETTINGS: Presets[StructureSettings] = Presets(
    smoke=StructureSettings(episodes=24, steps=8, folds=2, shuffled_null=False,
                            untrained=False, constant_states=32, fixed_point_episodes=8,
                            fixed_point_samples=24, fixed_point_iters=100, relax_steps=50),
    quick=StructureSettings(episodes=384, steps=20, folds=3, shuffled_null=True,
                            untrained=True, constant_states=128, fixed_point_episodes=32,
                            fixed_point_samples=96, fixed_point_iters=300, relax_steps=200),
    paper=StructureSettings(episodes=500, steps=50, folds=5, shuffled_null=True,
                            untrained=True, constant_states=512, fixed_point_episodes=128,
                            fixed_point_samples=512, fixed_point_iters=2000, relax_steps=500),
)
"""Per preset: smoke takes seconds; quick adds about 10 s per learner on one thread."""

SMOOTHING = 1e-3
"""ε of :class:`Smoothed`: the uniform weight mixed into a categorical Bayes predictive
that has zeros, so that D_o learner→Bayes stays finite."""


# ----------------------------------------------------------------------------- checks


def check_learners(learners: Any) -> dict[str, Any]:
    """The learners as a dict; refused with the reason when empty or not machines with
    ``distribution``."""
    if not isinstance(learners, Mapping):
        raise TypeError(f"learners: expected a dict name -> machine, got "
                        f"{type(learners).__name__}")
    if not learners:
        raise ValueError("learners: expected at least one machine, got an empty dict")
    for name, machine in learners.items():
        if not isinstance(name, str):
            raise TypeError(f"learners: expected str names, got {name!r}")
        missing = [m for m in ("initial_state", "step", "distribution")
                   if not callable(getattr(machine, m, None))]
        if missing:
            raise ValueError(
                f"learners[{name!r}]: expected a machine with initial_state, step and "
                f"distribution (KL against the Bayes predictive needs the distribution its "
                f"outputs parameterise: build it with distribution='categorical'), "
                f"{type(machine).__name__} lacks {', '.join(missing)}")
    return dict(learners)


def check_bayes(bayes: Any) -> None:
    missing = [m for m in ("initial_state", "step", "distribution")
               if not callable(getattr(bayes, m, None))]
    if missing:
        raise ValueError(f"bayes: expected the task's exact Bayes machine with initial_state, "
                         f"step and distribution, {type(bayes).__name__} lacks "
                         f"{', '.join(missing)}")


def episode_length(learners: dict[str, Any], settings: StructureSettings,
                    steps: int | None) -> int:
    """T: ``steps`` if given, else the smallest learner ``max_len``, else the preset's."""
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise ValueError(f"steps: expected an int >= 2 or None, got {steps!r}")
        return steps
    limits = [m.max_len for m in learners.values() if isinstance(getattr(m, "max_len", None), int)]
    return min(limits) if limits else settings.steps


class Smoothed:
    """A machine with its categorical predictive mixed with ε of uniform.

    An exact posterior that rules symbols out (bijection elimination, associative recall)
    makes KL(learner ‖ Bayes at φ(s)), D_o learner→Bayes, infinite for any learner that keeps
    a little mass on them; mixed, π_ε = (1 − ε) π + ε / V, each such item costs at most
    log(V / ε). Every compared machine whose predictive has exact zeros on the episodes is
    mixed (the Bayes machine, or a learner that is an exact machine), so the Bayes machine
    against itself stays exact. Everything but ``distribution`` is the wrapped machine's.

    Args:
        bayes: the machine (categorical ``distribution(y)`` with ``probs``).
        epsilon: ε, the uniform mixture weight.
    """

    def __init__(self, bayes: Any, epsilon: float = SMOOTHING):
        self.bayes, self.epsilon = bayes, float(epsilon)

    def initial_state(self, batch_size: int) -> Any:
        """The wrapped machine's."""
        return self.bayes.initial_state(batch_size)

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """The wrapped machine's."""
        return self.bayes.step(x, state)

    def distribution(self, y: torch.Tensor) -> torch.distributions.Distribution:
        """Categorical((1 − ε) y + ε / V) from probabilities ``y`` ``[..., V]``."""
        probs = self.bayes.distribution(y).probs
        return Categorical(probs=(1 - self.epsilon) * probs + self.epsilon / probs.shape[-1])

    def __getattr__(self, name: str) -> Any:
        if name == "bayes":
            raise AttributeError(name)
        return getattr(self.bayes, name)


class CappedRuns:
    """A :class:`~trajprobe.tasks.wind_tunnel_posteriors.ChangePointBetaBernoulli` that takes
    states mapped in by a simulation map.

    The change-point machine refuses a step whose run-length posterior has mass at its
    horizon (an episode longer than it is exact for). A mapped state can have such mass (a
    map in log coordinates gives every run length some); here it is dropped before each
    step. A state of an episode of up to ``horizon`` steps has none there, so on the
    episodes this is the exact machine. Everything but ``step`` and ``output`` is the
    wrapped machine's.
    """

    def __init__(self, machine: ChangePointBetaBernoulli):
        self.machine = machine

    def initial_state(self, batch_size: int) -> ChangePointState:
        """The wrapped machine's."""
        return self.machine.initial_state(batch_size)

    def step(self, x: torch.Tensor, state: ChangePointState
             ) -> tuple[torch.Tensor, ChangePointState]:
        """The wrapped step, from the state with no mass at run length ``horizon − 1``."""
        weights, heads = state
        weights = torch.cat([weights[:, :-1], torch.zeros_like(weights[:, -1:])], dim=1)
        return self.machine.step(x, ChangePointState(weights, heads))

    def output(self, x: torch.Tensor, state: ChangePointState) -> torch.Tensor:
        """The output function of :meth:`step`."""
        return self.step(x, state)[0]

    def __getattr__(self, name: str) -> Any:
        if name == "machine":
            raise AttributeError(name)
        return getattr(self.machine, name)


def comparable(bayes: Any, inputs: torch.Tensor) -> Any:
    """A machine as compared: mapped states accepted (:class:`CappedRuns` for the
    change-point machine), a predictive with zeros smoothed (:class:`Smoothed`)."""
    if isinstance(bayes, ChangePointBetaBernoulli):
        bayes = CappedRuns(bayes)
    return smoothed_if_zeros(bayes, inputs)


def smoothed_if_zeros(machine: Any, inputs: torch.Tensor) -> Any:
    """``machine``, or :class:`Smoothed` ``(machine)`` when its predictive is categorical and
    rules a symbol out somewhere on ``inputs``."""
    dist = machine.distribution(rollout(machine, inputs).outputs)
    zeros = isinstance(dist, Categorical) and bool((dist.probs == 0).any())
    return Smoothed(machine) if zeros else machine


def untrained_copy(learner: Any, generator: torch.Generator) -> Any | None:
    """A copy of ``learner`` with its parameters re-drawn by PyTorch's default rules (None
    when it has no parameters: nothing to re-draw)."""
    if not isinstance(learner, nn.Module) or not any(True for _ in learner.parameters()):
        return None
    return torch_default_init(copy.deepcopy(learner), generator)


def readout_probes(inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Distinct inputs ``[N, D]`` of episodes ``[E, T, D]`` that together cover every input
    feature the episodes use (greedy set cover, in a random order, at most
    :data:`READOUT_PROBES`): every query symbol of a one-hot task is probed, so the read-outs
    can show every binding the cache holds."""
    flat = torch.unique(inputs.flatten(0, 1), dim=0)
    flat = flat[torch.randperm(flat.shape[0], generator=generator)]
    uncovered = (flat != 0).any(0)
    chosen: list[int] = []
    while bool(uncovered.any()) and len(chosen) < READOUT_PROBES:
        gain = ((flat != 0) & uncovered).sum(1)
        best = int(gain.argmax())
        if int(gain[best]) == 0:
            break
        chosen.append(best)
        uncovered &= flat[best] == 0
    return flat[chosen]


def summarised(learner: Any, probes: torch.Tensor) -> Any:
    """The machine whose states are compared: a transformer through its attention
    read-outs (its raw cache is a padded history buffer), anything else as it is."""
    if isinstance(learner, CausalTransformer):
        readout = CacheReadout(learner, probes.to(sm.machine_dtype(learner)))
        readout.distribution = learner.distribution  # the read-out keeps the outputs
        return readout
    return learner


