"""Structure of the wind-tunnel learners against the exact Bayes machine (issue 35).

Behaviour in bits (:func:`trajprobe.posterior_error`) says how close a learner's predictive
is to the exact posterior; this module asks whether it *computes* like the Bayes machine.

* :func:`structure_against_bayes`: D_s and D_o (Mikulik et al. 2020 §3.4,
  :func:`trajprobe.compare.simulation`) of every learner against the task's exact Bayes
  machine, in both directions, on the same held-out episodes:

  - ``learner→Bayes``: φ maps the learner's states into the Bayes machine's. D_s small:
    the learner's state holds the sufficient statistic (the HMM belief, the revealed
    pairs); D_o small: the Bayes output function at φ(s) reproduces the learner's
    predictive (the Bayes machine simulates the learner, Mikulik's "RNN → Opt").
  - ``Bayes→learner``: φ maps the Bayes states into the learner's. D_s small: the learner's
    state is a function of the sufficient statistic (nothing else in it); D_o small: the
    learner's own output function at φ(b) reproduces the Bayes predictive (the learner
    simulates the Bayes machine).

  The unit-free ``output_simulation_score`` = 1 − D_o / D_o(best constant map) is reported
  first (1 exact, 0 no better than the best constant state of the target); D_o is the
  summed KL of eq. 2, also given in bits per step. A transformer's state is its key/value
  cache, read through :class:`~trajprobe.adapters.CacheReadout` (the attention read-outs
  for inputs of the task's own episodes that cover every input feature): that summary has
  no inverse, so D_o *into* the transformer (Bayes→learner) is undefined (NaN).

* :func:`filter_fixed_points`: for HMM filtering, the fixed and slow points
  (:func:`trajprobe.fixed_points`, Sussillo & Barak 2013) of every recurrent learner under
  each observation symbol j held constant, beside the forward filter's own: under a
  constant j the belief converges to b*_j, the Perron left eigenvector of
  A_j = diag(E[:, j]) T normalised to sum 1 (b* = normalise(b* ⊙ E[:, j]) T ⇔
  b* A_j = (b*·E[:, j]) b*, rows of T summing to 1), whose predictive is b*_j E. Per
  learner and symbol: the number of fixed points and of stable ones, the *attractor* (the
  stable point nearest to where a long constant-j run ends), KL(b*_j E ‖ learner's
  predictive there) in bits, and the slowest mode |λ1| of the learner there beside the
  filter's own at b*_j. Learners without fixed points to find are skipped with a note: a
  state holding a position (an integer leaf: a cache that grows every step, the
  transformer) or a next state that does not depend on the parameters (a buffer of the
  last inputs, the MLP over a window).

Both return ``(Dataset, rows, figures, notes)`` for a reproduce target
(:class:`~trajprobe.apps.reproduce.base.TargetResult`); their sizes are presets
(:data:`SETTINGS`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr
from matplotlib.figure import Figure
from torch import nn
from torch.distributions import Categorical, kl_divergence

from trajprobe import machine as sm
from trajprobe.adapters import CacheReadout, CausalTransformer
from trajprobe.apps.presets import Presets
from trajprobe.apps.reproduce.base import SummaryRow
from trajprobe.compare import SimulationConfig, simulation
from trajprobe.fixed_point_search import fixed_points
from trajprobe.initialisers import torch_default_init
from trajprobe.randomness import make_generator
from trajprobe.tasks.wind_tunnel_posteriors import ChangePointBetaBernoulli, ChangePointState
from trajprobe.traces import rollout

__all__ = [
    "DIRECTIONS",
    "READOUT_PROBES",
    "SETTINGS",
    "CappedRuns",
    "Smoothed",
    "StructureSettings",
    "belief_fixed_points",
    "filter_fixed_points",
    "no_fixed_point_reason",
    "structure_against_bayes",
]

LN2 = math.log(2.0)

DIRECTIONS = ("learner→Bayes", "Bayes→learner")
"""Labels of the ``direction`` dimension (module docstring): ``"learner→Bayes"`` maps the
learner's states into the Bayes machine's (does its state hold the sufficient statistic?),
``"Bayes→learner"`` the other way."""

_LIBRARY_DIRECTION = {"learner→Bayes": "b→a", "Bayes→learner": "a→b"}
"""The library's labels, with the Bayes machine as ``a`` and the learner as ``b``."""

READOUT_PROBES = 12
"""At most this many inputs of the task's own episodes, chosen to cover every input feature
(:func:`_probes`), whose attention read-outs are a transformer's state vector
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

FIXED_POINT_NOISE = 0.05
"""Noise added to each initial state of the fixed-point search (to reach saddles too)."""

UNTRAINED_HOLDS = 0.25
"""An untrained copy with D_s learner→Bayes below this already holds most of the statistic
(the notes then read D_s as saying little about training)."""

SMOOTHING = 1e-3
"""ε of :class:`Smoothed`: the uniform weight mixed into a categorical Bayes predictive
that has zeros, so that D_o learner→Bayes stays finite."""

SLOW_Q = 1e-6
"""A point is kept when q = ½‖F(s) − s‖² is at most this (fixed or slow)."""


# ----------------------------------------------------------------------------- checks


def _check_learners(learners: Any) -> dict[str, Any]:
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


def _check_bayes(bayes: Any) -> None:
    missing = [m for m in ("initial_state", "step", "distribution")
               if not callable(getattr(bayes, m, None))]
    if missing:
        raise ValueError(f"bayes: expected the task's exact Bayes machine with initial_state, "
                         f"step and distribution, {type(bayes).__name__} lacks "
                         f"{', '.join(missing)}")


def _episode_length(learners: dict[str, Any], settings: StructureSettings,
                    steps: int | None) -> int:
    """T: ``steps`` if given, else the smallest learner ``max_len``, else the preset's."""
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise ValueError(f"steps: expected an int >= 2 or None, got {steps!r}")
        return steps
    limits = [m.max_len for m in learners.values() if isinstance(getattr(m, "max_len", None), int)]
    return min(limits) if limits else settings.steps


# ------------------------------------------------------------- D_s and D_o against Bayes


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


def _comparable(bayes: Any, inputs: torch.Tensor) -> Any:
    """A machine as compared: mapped states accepted (:class:`CappedRuns` for the
    change-point machine), a predictive with zeros smoothed (:class:`Smoothed`)."""
    if isinstance(bayes, ChangePointBetaBernoulli):
        bayes = CappedRuns(bayes)
    return _smoothed(bayes, inputs)


def _smoothed(machine: Any, inputs: torch.Tensor) -> Any:
    """``machine``, or :class:`Smoothed` ``(machine)`` when its predictive is categorical and
    rules a symbol out somewhere on ``inputs``."""
    dist = machine.distribution(rollout(machine, inputs).outputs)
    zeros = isinstance(dist, Categorical) and bool((dist.probs == 0).any())
    return Smoothed(machine) if zeros else machine


def _untrained(learner: Any, generator: torch.Generator) -> Any | None:
    """A copy of ``learner`` with its parameters re-drawn by PyTorch's default rules (None
    when it has no parameters: nothing to re-draw)."""
    if not isinstance(learner, nn.Module) or not any(True for _ in learner.parameters()):
        return None
    return torch_default_init(copy.deepcopy(learner), generator)


def _probes(inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
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


def _as_compared(learner: Any, probes: torch.Tensor) -> Any:
    """The machine whose states are compared: a transformer through its attention
    read-outs (its raw cache is a padded history buffer), anything else as it is."""
    if isinstance(learner, CausalTransformer):
        readout = CacheReadout(learner, probes.to(sm.machine_dtype(learner)))
        readout.distribution = learner.distribution  # the read-out keeps the outputs
        return readout
    return learner


_PER_DIRECTION = ("output_simulation_score", "output_simulation_score_sem",
                  "output_simulation_score_shuffled", "output_simulation_score_untrained",
                  "output_dissimilarity_bits_per_step", "output_dissimilarity_bits_per_step_sem",
                  "output_dissimilarity_constant_bits_per_step",
                  "state_dissimilarity", "state_dissimilarity_sem",
                  "state_dissimilarity_shuffled", "state_dissimilarity_untrained",
                  "state_dissimilarity_constant",
                  "output_dissimilarity", "output_dissimilarity_sem",
                  "output_dissimilarity_constant", "output_dissimilarity_untrained",
                  "reliable", "reliability_note", "finding")


def _kept(sim: xr.Dataset, *, invertible: bool) -> xr.Dataset:
    """The per-direction numbers and per-step curves of one comparison, relabelled.

    Without an inverse of the learner's state summary (a transformer's read-outs), only
    constant maps into its cache give outputs, so D_o into it (Bayes→learner) is set to
    NaN: undefined, not "no better than a constant"."""
    names = [n for n in _PER_DIRECTION if n in sim]
    ds = sim[names].copy()
    ds["output_dissimilarity_bits"] = sim["output_dissimilarity_per_step"] / LN2
    ds["state_dissimilarity_per_step"] = sim["state_dissimilarity_per_step"]
    ds = ds.sel(direction=[_LIBRARY_DIRECTION[d] for d in DIRECTIONS])
    ds = ds.assign_coords(direction=list(DIRECTIONS))
    for name in ("reliability_note", "finding"):
        if name in ds:
            ds[name] = ds[name].astype(str)
    if not invertible:
        into = ds["direction"] == "Bayes→learner"
        for name in ds.data_vars:
            if name.startswith("output_") and ds[name].dtype.kind == "f":
                ds[name] = ds[name].where(~into)
    return ds


def structure_against_bayes(
    learners: dict[str, Any],
    task: Any,
    bayes: Any,
    *,
    preset: str,
    seed: int,
    steps: int | None = None,
) -> tuple[xr.Dataset, list[SummaryRow], dict[str, Figure], list[str]]:
    """D_s and D_o of every learner against the exact Bayes machine, both directions.

    Every learner and the Bayes machine read the same held-out episodes of ``task``
    (module docstring for the directions and the transformer's read-outs).

    Args:
        learners: name → trained machine with ``distribution`` (e.g. ``"LSTM seed0"``).
        task: the wind tunnel (``task.sample``), whose inputs every machine reads.
        bayes: its exact Bayes machine (``task.bayes_machine()``).
        preset: ``"smoke"``, ``"quick"`` or ``"paper"`` (:data:`SETTINGS`).
        seed: draws the episodes, the folds and the maps.
        steps: episode length T (default: the smallest learner ``max_len``, else the
            preset's ``steps``).

    Returns:
        ``(ds, rows, figures, notes)``: ``ds`` over ``learner``, ``direction``
        (:data:`DIRECTIONS`), ``t``: ``output_simulation_score`` first (± ``_sem``),
        ``output_dissimilarity_bits_per_step``, ``state_dissimilarity`` (D_s),
        ``output_dissimilarity`` (D_o, nats summed over t), the constant-map bounds, the
        shuffled and untrained nulls (quick, paper), ``reliable`` and its note,
        ``output_dissimilarity_bits (learner, direction, t)`` (KL per step in bits) and
        ``state_dissimilarity_per_step``; rows (score and D_s per learner and direction);
        the figure ``wind_tunnel_structure_<task>``; notes interpreting the numbers.

    Raises:
        ValueError: empty ``learners``, a learner or ``bayes`` without ``distribution``,
            an unknown preset.
    """
    settings = SETTINGS[preset]
    learners = _check_learners(learners)
    _check_bayes(bayes)
    n_steps = _episode_length(learners, settings, steps)
    generator = make_generator(seed)
    episodes = task.sample(settings.episodes, n_steps, seed=seed)
    inputs = episodes.inputs
    probes = _probes(inputs, generator)
    config = SimulationConfig(n_hidden_layers=0, n_folds=settings.folds,
                              shuffled_null=settings.shuffled_null, output_measure="kl",
                              n_constant_states=settings.constant_states)
    reference = _comparable(bayes, inputs)
    smoothed = isinstance(reference, Smoothed)
    per_learner = []
    for learner in learners.values():
        compared = _comparable(_as_compared(learner, probes), inputs)
        untrained = None
        if settings.untrained:
            copy_ = _untrained(learner, generator)
            untrained = None if copy_ is None else _comparable(_as_compared(copy_, probes),
                                                             inputs)
        sim = simulation(reference, compared, inputs, config=config, untrained=untrained,
                         seed=seed)
        per_learner.append(_kept(sim, invertible=not isinstance(learner, CausalTransformer)))
    ds = xr.concat(per_learner, dim="learner", join="outer")
    ds = ds.assign_coords(learner=list(learners))
    ds.attrs = {key: per_learner[0].attrs[key] for key in ("map_selection",
                "state_dissimilarity_units", "time_alignment") if key in per_learner[0].attrs}
    ds.attrs.update(
        task=repr(task), preset=preset, seed=seed, episodes=settings.episodes,
        steps=n_steps, folds=settings.folds,
        directions=("learner→Bayes: φ maps the learner's states into the Bayes machine's "
                    "(does the learner's state hold the sufficient statistic; does the Bayes "
                    "machine simulate the learner); Bayes→learner: the other way"),
        output_measure="sum_t KL(learner ‖ target at φ(s)) in nats (D_o); "
                       "output_dissimilarity_bits: per step, in bits",
        bayes_smoothing=(f"the Bayes predictive rules symbols out: compared as (1 − ε) π + "
                         f"ε/V with ε = {SMOOTHING} (Smoothed)" if smoothed else "none"),
        transformer_state="CacheReadout over inputs of the task's episodes covering every "
                          "input feature; D_o into it (Bayes→learner) is undefined (NaN)",
    )
    label = type(task).__name__
    return ds, _structure_rows(ds, label), {
        f"wind_tunnel_structure_{label.lower()}": plot_structure(ds, label)}, \
        _structure_notes(ds, label)


def _value(row: xr.Dataset, name: str) -> float:
    """``row[name]`` as a float (NaN when absent)."""
    return float(row[name]) if name in row else math.nan


def _structure_rows(ds: xr.Dataset, label: str) -> list[SummaryRow]:
    """Per learner and direction: the output simulation score (first) and D_s."""
    rows = []
    for name in ds["learner"].values:
        for direction in DIRECTIONS:
            row = ds.sel(learner=name, direction=direction)
            parts = [f"D_o {_value(row, 'output_dissimilarity_bits_per_step'):.3g} bits/step",
                     "best constant "
                     f"{_value(row, 'output_dissimilarity_constant_bits_per_step'):.3g}"]
            untrained = _value(row, "output_simulation_score_untrained")
            if math.isfinite(untrained):
                parts.append(f"untrained copy {untrained:.3g}")
            if not bool(row["reliable"]):
                parts.append(f"unreliable: {row['reliability_note'].item()!s}")
            rows.append(SummaryRow(f"{label}: output simulation score, {direction}",
                                   str(name), _value(row, "output_simulation_score"), None,
                                   "; ".join(parts), _value(row, "output_simulation_score_sem")))
            untrained = _value(row, "state_dissimilarity_untrained")
            rows.append(SummaryRow(
                f"{label}: D_s, {direction}", str(name), _value(row, "state_dissimilarity"),
                None, f"untrained copy {untrained:.3g}" if math.isfinite(untrained) else "",
                _value(row, "state_dissimilarity_sem")))
    return rows


def _structure_notes(ds: xr.Dataset, label: str) -> list[str]:
    """What the numbers say, in words: per learner, whether its state carries the Bayes
    statistic, and whether an untrained copy's does too."""
    notes = [f"{label}, structure against the exact Bayes machine: learner→Bayes asks whether "
             "the learner's state holds the Bayes sufficient statistic (D_s near 0) and whether "
             "the Bayes machine's output function at the mapped state gives the learner's "
             "predictive (score near 1); Bayes→learner asks whether the learner's state is a "
             "function of that statistic and whether the learner's own output function "
             "reproduces the Bayes predictive from it. Scores are 1 − D_o / D_o(best constant "
             "map): 0 means no better than one fixed state of the target. A D_s that an "
             "untrained copy matches says the statistic is a near-linear function of recent "
             "inputs (any random recurrent state keeps it), not that training put it there."]
    for name in ds["learner"].values:
        into = ds.sel(learner=name, direction="learner→Bayes")
        back = _value(ds.sel(learner=name, direction="Bayes→learner"),
                      "output_simulation_score")
        d_in = _value(into, "state_dissimilarity")
        holds = ("holds the Bayes statistic" if d_in < 0.1 else
                 "holds part of the Bayes statistic" if d_in < 0.5 else
                 "does not hold the Bayes statistic linearly")
        back_text = ("undefined (the cache read-out has no inverse)" if math.isnan(back)
                     else f"{back:.2f}")
        text = (f"{name}: its state {holds} (D_s learner→Bayes {d_in:.2f}); scores "
                f"learner→Bayes {_value(into, 'output_simulation_score'):.2f}, "
                f"Bayes→learner {back_text}")
        d_u = _value(into, "state_dissimilarity_untrained")
        if math.isfinite(d_u):
            u_score = _value(into, "output_simulation_score_untrained")
            if d_in >= 0.5:
                text += f" (an untrained copy: D_s {d_u:.2f}, score {u_score:.2f})"
            elif d_u < UNTRAINED_HOLDS:
                text += (f"; an untrained copy's state already holds most of it (D_s "
                         f"{d_u:.2f}): recent inputs carry the statistic, so D_s says little "
                         f"about training here, the score does (untrained {u_score:.2f})")
            elif d_u > 1.5 * d_in + 0.05:
                text += (f"; an untrained copy holds much less of it (D_s {d_u:.2f}, score "
                         f"{u_score:.2f}): training put it there")
            else:
                text += (f"; an untrained copy holds about as much (D_s {d_u:.2f}, score "
                         f"{u_score:.2f})")
        notes.append(text + ".")
    return notes


def plot_structure(ds: xr.Dataset, label: str = "") -> Figure:
    """Heatmaps of the output simulation score and of D_s, learner × direction, and D_o
    per position t (KL in bits, learner→Bayes, log axis)."""
    names = [str(n) for n in ds["learner"].values]
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 1.6 + 0.38 * len(names)), squeeze=False,
                             constrained_layout=True, width_ratios=(1, 1, 1.2))
    panels = (("output_simulation_score", "output simulation score\n(1 exact, 0 best constant)",
               "viridis", (0.0, 1.0)),
              ("state_dissimilarity", "D_s (0 exact, 1 mean state)", "magma_r", (0.0, 1.0)))
    for ax, (name, title, cmap, (lo, hi)) in zip(axes[0, :2], panels, strict=True):
        values = ds[name].transpose("learner", "direction").values.astype(float)
        im = ax.imshow(np.clip(values, lo, hi), cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
        for (i, j), v in np.ndenumerate(values):
            r, g, b, _ = im.cmap(im.norm(np.clip(v, lo, hi))) if np.isfinite(v) else (1, 1, 1, 1)
            ax.text(j, i, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center", va="center",
                    fontsize=8, color="black" if 0.3 * r + 0.6 * g + 0.1 * b > 0.5 else "white")
        ax.set_xticks(range(len(DIRECTIONS)), DIRECTIONS, fontsize=8)
        ax.set_yticks(range(len(names)), names if ax is axes[0, 0] else [], fontsize=8)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    _plot_bits_per_step(axes[0, 2], ds)
    fig.suptitle(f"{label}: learners against the exact Bayes machine" if label else
                 "learners against the exact Bayes machine", fontsize=10)
    return fig


def _plot_bits_per_step(ax: plt.Axes, ds: xr.Dataset) -> None:
    """D_o per position t, learner→Bayes, in bits (a floor of 1e-6 on the log axis)."""
    bits = ds["output_dissimilarity_bits"].sel(direction="learner→Bayes")
    colours = plt.get_cmap("tab10")
    for i, name in enumerate(ds["learner"].values):
        ax.plot(ds["t"].values, np.maximum(bits.sel(learner=name).values, 1e-6),
                marker="o", ms=2.5, lw=1, color=colours(i % 10), label=str(name))
    ax.set_yscale("log")
    ax.set_xlabel("position t", fontsize=8)
    ax.set_ylabel("KL(learner ‖ Bayes at φ(s)), bits", fontsize=8)
    ax.set_title("D_o per step, learner→Bayes\n(floor 1e-6)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)


# ------------------------------------------------------------------ HMM fixed points


def belief_fixed_points(transition: Any, emission: Any) -> np.ndarray:
    """The forward filter's fixed belief under each symbol held constant, in closed form.

    b*_j = normalise(b*_j ⊙ E[:, j]) T ⇔ b*_j A_j = (b*_j · E[:, j]) b*_j with
    A_j = diag(E[:, j]) T: b*_j is the left Perron eigenvector of A_j, normalised to sum 1
    (its eigenvalue is b*_j · E[:, j], since the rows of T sum to 1).

    Args:
        transition: ``[K, K]`` T, rows summing to 1.
        emission: ``[K, M]`` E, rows summing to 1.

    Returns:
        ``[M, K]`` row j = b*_j.
    """
    t = np.asarray(transition, dtype=float)
    e = np.asarray(emission, dtype=float)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or e.ndim != 2 or e.shape[0] != t.shape[0]:
        raise ValueError(f"transition, emission: expected [K, K] and [K, M], got "
                         f"{list(t.shape)} and {list(e.shape)}")
    beliefs = []
    for j in range(e.shape[1]):
        values, vectors = np.linalg.eig((np.diag(e[:, j]) @ t).T)
        v = np.real(vectors[:, np.argmax(np.real(values))])
        beliefs.append(np.abs(v) / np.abs(v).sum())
    return np.stack(beliefs)


def no_fixed_point_reason(machine: Any) -> str:
    """Why ``machine`` has no fixed points worth finding ("" when it has).

    A state holding a position (an integer leaf) is a cache that grows every step; a next
    state that does not depend on the machine's parameters is a buffer of its inputs.
    """
    leaves = sm.tree_leaves(machine.initial_state(2))
    if any(not leaf.is_floating_point() for leaf in leaves):
        return ("its state holds a position (an integer leaf): a cache that grows every step, "
                "so a constant input has no fixed point")
    if not isinstance(machine, nn.Module):
        return ""
    params = [p for p in machine.parameters() if p.requires_grad]
    if not params:
        return ""
    gen = torch.Generator().manual_seed(0)
    vector = sm.state_vector(machine, machine.initial_state(2))
    state = sm.state_from_vector(machine, torch.randn(vector.shape, generator=gen).to(vector))
    size = int(getattr(machine, "input_size", 0)) or None
    if size is None:
        return ""
    x = torch.rand(2, size, generator=gen).to(vector)
    with torch.enable_grad():
        new = sm.state_vector(machine, machine.step(x, state)[1])
        grads = torch.autograd.grad(new.sum(), params, allow_unused=True) \
            if new.requires_grad else [None]
    if all(g is None or not bool(g.abs().gt(0).any()) for g in grads):
        return ("its next state does not depend on its parameters (a buffer of its last "
                "inputs, e.g. a fixed window): under a constant input it just fills with "
                "that input, no learned dynamics to analyse")
    return ""


def _symbol_inputs(task: Any) -> torch.Tensor:
    """``[M, M + 1]`` the HMM filtering input [one-hot j, flag 1] of every symbol j."""
    m = int(task.n_symbols)
    if int(task.input_size) != m + 1:
        raise ValueError(f"task: expected HMM filtering inputs [one-hot x_(t-1), flag] of "
                         f"size {m + 1}, got input_size {task.input_size}")
    return torch.cat([torch.eye(m), torch.ones(m, 1)], dim=1)


def _probs(machine: Any, y: torch.Tensor) -> torch.Tensor:
    return machine.distribution(y).probs.detach().double()


def _kl_bits(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) in bits between categorical probabilities ``[..., M]``."""
    return (kl_divergence(Categorical(probs=p), Categorical(probs=q)) / LN2).clamp_min(0.0)


def _leading_magnitude(eigenvalues: np.ndarray) -> float:
    return float(np.abs(eigenvalues).max()) if eigenvalues.size else math.nan


def _bayes_magnitude(bayes: Any, x: torch.Tensor, belief: np.ndarray) -> float:
    """|λ1| of the exact filter's step at its fixed belief (its slowest mode)."""
    b = torch.as_tensor(belief, dtype=torch.float64)[None]
    x = x[None].to(torch.float64)
    jac = torch.func.jacrev(lambda s: bayes.step(x, s)[1])(b)[0, :, 0]
    return _leading_magnitude(torch.linalg.eigvals(jac).numpy())


def _learner_points(learner: Any, symbols: torch.Tensor, trace: Any,
                    settings: StructureSettings, seed: int) -> list[dict[str, Any]]:
    """Per symbol: the fixed points of ``learner`` and its attractor (module docstring)."""
    out = []
    dtype = sm.machine_dtype(learner)
    n = trace.inputs.shape[0]
    for j in range(symbols.shape[0]):
        x = symbols[j].to(dtype)
        relax = rollout(learner, x.expand(n, settings.relax_steps, -1))
        ends = relax.state_vectors(learner)[:, -1]
        starts = torch.cat([trace.state_vectors(learner)[:, 1:].flatten(0, 1), ends])
        pick = torch.randperm(starts.shape[0], generator=make_generator(seed + j))
        starts = torch.cat([ends[:8], starts[pick[:settings.fixed_point_samples]]])
        points = fixed_points(learner, x, starts, noise=FIXED_POINT_NOISE,
                              max_iters=settings.fixed_point_iters, max_q=SLOW_Q, seed=seed)
        state = torch.as_tensor(points["state"].values)
        stable = points["stable"].values.astype(bool)
        centre = ends.double().median(0).values
        attractor = None
        if stable.any():
            distance = (state.double() - centre).norm(dim=1)
            distance[~torch.as_tensor(stable)] = math.inf
            attractor = int(distance.argmin())
        y_end = relax.outputs[:, -1]
        out.append({"points": points, "attractor": attractor, "end_state": centre,
                    "end_probs": _probs(learner, y_end).mean(0)})
    return out


def filter_fixed_points(
    learners: dict[str, Any],
    task: Any,
    *,
    preset: str,
    seed: int,
) -> tuple[xr.Dataset, list[SummaryRow], dict[str, Figure], list[str]]:
    """Fixed points of every recurrent learner under each symbol held constant, against the
    forward filter's fixed beliefs (module docstring).

    Args:
        learners: name → trained machine with ``distribution`` on an HMM filtering task.
        task: an :class:`~trajprobe.tasks.HMMFiltering` (``transition``, ``emission``,
            ``bayes_machine``, inputs [one-hot x_(t-1), flag]).
        preset: ``"smoke"``, ``"quick"`` or ``"paper"`` (:data:`SETTINGS`).
        seed: draws the episodes seeding the search and the search's noise.

    Returns:
        ``(ds, rows, figures, notes)``: ``ds`` over ``learner`` (the recurrent ones),
        ``symbol``, ``hidden``, ``observation``: ``belief_fixed_point (symbol, hidden)``
        b*_j, ``bayes_predictive (symbol, observation)`` b*_j E, ``bayes_magnitude
        (symbol)`` |λ1| of the filter at b*_j; ``n_fixed``, ``n_stable (learner, symbol)``
        (points with q ≤ :data:`SLOW_Q`), ``attractor_kl_bits`` KL(b*_j E ‖ learner's
        predictive at its attractor), ``attractor_magnitude`` |λ1| there,
        ``attractor_speed`` q there, ``long_run_kl_bits`` (the same KL after
        ``relax_steps`` of the symbol from the learner's initial state),
        ``learner_predictive (learner, symbol, observation)``; rows; the figure
        ``wind_tunnel_fixed_points``; notes (the skipped learners and why).

    Raises:
        ValueError: empty ``learners``, a learner without ``distribution``, a task that is
            not HMM filtering, an unknown preset.
    """
    settings = SETTINGS[preset]
    learners = _check_learners(learners)
    for name in ("transition", "emission", "bayes_machine", "n_symbols"):
        if getattr(task, name, None) is None:
            raise ValueError(f"task: expected HMM filtering (with transition, emission, "
                             f"n_symbols and bayes_machine), {type(task).__name__} has no "
                             f"{name}")
    symbols = _symbol_inputs(task)
    bayes = task.bayes_machine()
    beliefs = belief_fixed_points(task.transition, task.emission)
    emission = torch.as_tensor(np.asarray(task.emission), dtype=torch.float64)
    predictive = torch.as_tensor(beliefs) @ emission  # [M, M]
    bayes_mag = [_bayes_magnitude(bayes, symbols[j], beliefs[j]) for j in range(len(beliefs))]
    episodes = task.sample(settings.fixed_point_episodes, settings.steps, seed=seed)
    skipped, found = {}, {}
    for name, learner in learners.items():
        reason = no_fixed_point_reason(learner)
        if reason:
            skipped[name] = reason
            continue
        trace = rollout(learner, episodes.inputs)
        found[name] = (trace, _learner_points(learner, symbols, trace, settings, seed))
    ds = _fixed_point_dataset(learners, found, symbols, beliefs, predictive, bayes_mag)
    ds.attrs.update(task=repr(task), preset=preset, seed=seed, slow_q=SLOW_Q,
                    noise=FIXED_POINT_NOISE, relax_steps=settings.relax_steps,
                    skipped="; ".join(f"{k}: {v}" for k, v in skipped.items()))
    bayes_trace = rollout(bayes, episodes.inputs.double())
    figure = plot_filter_fixed_points(learners, found, bayes_trace, beliefs)
    return ds, _fixed_point_rows(ds), {"wind_tunnel_fixed_points": figure}, \
        _fixed_point_notes(ds, skipped)


def _fixed_point_dataset(learners: dict[str, Any], found: dict[str, Any],
                         symbols: torch.Tensor, beliefs: np.ndarray,
                         predictive: torch.Tensor, bayes_mag: list[float]) -> xr.Dataset:
    m, k = beliefs.shape
    names = list(found)
    shape = (len(names), m)
    n_fixed, n_stable = np.zeros(shape, int), np.zeros(shape, int)
    kl, mag, speed, long_kl = (np.full(shape, np.nan) for _ in range(4))
    probs = np.full((*shape, predictive.shape[1]), np.nan)
    for i, name in enumerate(names):
        learner = learners[name]
        for j, item in enumerate(found[name][1]):
            points = item["points"]
            n_fixed[i, j] = points.sizes["point"]
            n_stable[i, j] = int(points["stable"].sum())
            long_kl[i, j] = float(_kl_bits(predictive[j], item["end_probs"]))
            a = item["attractor"]
            if a is None:
                continue
            vector = torch.as_tensor(points["state"].values[a])[None]
            x = symbols[j][None].to(vector.dtype)
            with torch.no_grad():
                y, _ = learner.step(x, sm.state_from_vector(learner, vector))
            q = _probs(learner, y)[0]
            probs[i, j] = q.numpy()
            kl[i, j] = float(_kl_bits(predictive[j], q))
            mag[i, j] = _leading_magnitude(points["eigenvalues"].values[a])
            speed[i, j] = float(points["speed"].values[a])
    ds = xr.Dataset(
        {
            "belief_fixed_point": (("symbol", "hidden"), beliefs),
            "bayes_predictive": (("symbol", "observation"), predictive.numpy()),
            "bayes_magnitude": (("symbol",), np.asarray(bayes_mag)),
            "n_fixed": (("learner", "symbol"), n_fixed),
            "n_stable": (("learner", "symbol"), n_stable),
            "attractor_kl_bits": (("learner", "symbol"), kl),
            "attractor_magnitude": (("learner", "symbol"), mag),
            "attractor_speed": (("learner", "symbol"), speed),
            "long_run_kl_bits": (("learner", "symbol"), long_kl),
            "learner_predictive": (("learner", "symbol", "observation"), probs),
        },
        coords={"learner": names, "symbol": np.arange(m), "hidden": np.arange(k),
                "observation": np.arange(predictive.shape[1])},
    )
    ds["belief_fixed_point"].attrs["long_name"] = "b*_j: the forward filter's fixed belief " \
                                                  "under symbol j held constant"
    ds["attractor_kl_bits"].attrs["long_name"] = "KL(b*_j E ‖ learner at its attractor), bits"
    ds["bayes_magnitude"].attrs["long_name"] = "|λ1| of the exact filter's step at b*_j"
    return ds


def _fixed_point_rows(ds: xr.Dataset) -> list[SummaryRow]:
    rows = []
    for name in ds["learner"].values:
        row = ds.sel(learner=name)
        stable = row["n_stable"].values
        rows.append(SummaryRow(
            "HMM: symbols with exactly one stable fixed point", str(name),
            float((stable == 1).sum()), None,
            f"of {stable.size}; stable points per symbol {stable.tolist()}, fixed or slow "
            f"{row['n_fixed'].values.tolist()}"))
        kl = row["attractor_kl_bits"].values
        rows.append(SummaryRow(
            "HMM: KL(Bayes at b*_j ‖ learner at its attractor), bits, mean over symbols",
            str(name), float(np.nanmean(kl)) if np.isfinite(kl).any() else math.nan, None,
            f"per symbol {np.round(kl, 4).tolist()}; after a long constant run "
            f"{np.round(row['long_run_kl_bits'].values, 4).tolist()}"))
        rows.append(SummaryRow(
            "HMM: slowest mode |λ1| at the attractor, mean over symbols", str(name),
            float(np.nanmean(row["attractor_magnitude"].values))
            if np.isfinite(row["attractor_magnitude"].values).any() else math.nan,
            float(ds["bayes_magnitude"].mean()),
            "paper column: the exact forward filter's |λ1| at b*_j (mean over symbols)"))
    return rows


def _fixed_point_notes(ds: xr.Dataset, skipped: dict[str, str]) -> list[str]:
    mags = ", ".join(f"{v:.3f}" for v in ds["bayes_magnitude"].values)
    notes = [("HMM fixed points: under a constant observation symbol j the forward filter "
              "converges to one belief b*_j (the left Perron eigenvector of "
              "diag(E[:, j]) T), with slowest mode |λ1| = " + mags + " per symbol. A learner "
              "that filters like it has one stable fixed point per symbol whose predictive "
              "matches b*_j E (KL near 0 bits).")]
    for name in ds["learner"].values:
        row = ds.sel(learner=name)
        stable = row["n_stable"].values
        kl = row["attractor_kl_bits"].values
        shape = ("one stable fixed point per symbol" if (stable == 1).all() else
                 f"stable fixed points per symbol {stable.tolist()}")
        notes.append(f"{name}: {shape}; KL at its attractors {np.nanmean(kl):.3g} bits "
                     f"(max {np.nanmax(kl):.3g}); |λ1| there "
                     f"{np.nanmean(row['attractor_magnitude'].values):.3f} against the "
                     f"filter's {float(ds['bayes_magnitude'].mean()):.3f}."
                     if np.isfinite(kl).any() else f"{name}: {shape}; no stable point found.")
    for name, reason in skipped.items():
        notes.append(f"{name}: no fixed points searched — {reason}.")
    return notes


def _polygon(k: int) -> np.ndarray:
    """Vertices ``[K, 2]`` of a regular K-gon: the belief simplex's projection."""
    angle = np.pi / 2 + 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def plot_filter_fixed_points(learners: dict[str, Any], found: dict[str, Any], bayes_trace: Any,
                             beliefs: np.ndarray) -> Figure:
    """Per recurrent learner, its states (grey) and fixed points by symbol in its first two
    principal components (stable filled, unstable hollow, attractor ringed); last, the
    belief simplex (a regular K-gon) with the filter's beliefs and b*_j."""
    from sklearn.decomposition import PCA

    m, k = beliefs.shape
    colours = plt.get_cmap("tab10")(np.arange(m) % 10)
    panels = len(found) + 1
    cols = min(panels, 4)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.1 * rows), squeeze=False,
                             constrained_layout=True)
    for ax, (name, (trace, items)) in zip(axes.flat, found.items(), strict=False):
        states = trace.state_vectors(learners[name])[:, 1:].flatten(0, 1).double().numpy()
        pca = PCA(2).fit(states)
        xy = pca.transform(states)
        ax.scatter(xy[:, 0], xy[:, 1], s=3, c="0.8", lw=0)
        for j, item in enumerate(items):
            pts = item["points"]
            if pts.sizes["point"] == 0:
                continue
            p = pca.transform(pts["state"].values.astype(float))
            stable = pts["stable"].values.astype(bool)
            ax.scatter(p[stable, 0], p[stable, 1], s=30, color=colours[j],
                       label=f"x = {j}", zorder=3)
            ax.scatter(p[~stable, 0], p[~stable, 1], s=30, facecolors="none",
                       edgecolors=colours[j], zorder=3)
            if item["attractor"] is not None:
                a = p[item["attractor"]]
                ax.scatter([a[0]], [a[1]], s=120, facecolors="none", edgecolors="k", lw=1,
                           zorder=4)
        ax.set_title(f"{name}: states, fixed points", fontsize=9)
        ax.set_xlabel("PC 1", fontsize=8)
        ax.set_ylabel("PC 2", fontsize=8)
        ax.tick_params(labelsize=7)
    ax = axes.flat[len(found)]
    vertices = _polygon(k)
    ring = np.vstack([vertices, vertices[:1]])
    ax.plot(ring[:, 0], ring[:, 1], c="0.6", lw=0.8)
    b = bayes_trace.states[:, 1:].flatten(0, 1).double().numpy()
    xy = b @ vertices
    ax.scatter(xy[:, 0], xy[:, 1], s=3, c="0.8", lw=0)
    star = beliefs @ vertices
    for j in range(m):
        ax.scatter([star[j, 0]], [star[j, 1]], s=90, marker="*", color=colours[j],
                   label=f"b*, x = {j}", zorder=3)
    for i, v in enumerate(vertices):
        ax.annotate(f"z = {i}", v, fontsize=7, ha="center", va="center",
                    xytext=(1.12 * v[0], 1.12 * v[1]))
    ax.set_title("forward filter: beliefs, b*_j", fontsize=9)
    ax.set_aspect("equal")
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
    ax.axis("off")
    for extra in axes.flat[panels:]:
        extra.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(m, 6), fontsize=8,
                   title="observation held constant (filled stable, hollow unstable, "
                         "ring = attractor)", title_fontsize=8)
    fig.suptitle("HMM filtering: fixed points under each symbol held constant", fontsize=10)
    return fig

