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

* :func:`filter_fixed_points` (:mod:`.wind_tunnel_fixed_points`, re-exported here): for
  HMM filtering, the fixed and slow points
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

import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from trajprobe.adapters import CausalTransformer
from trajprobe.apps.reproduce.base import SummaryRow
from trajprobe.apps.reproduce.wind_tunnel_comparison import (
    LN2,
    READOUT_PROBES,
    SETTINGS,
    SMOOTHING,
    CappedRuns,
    Smoothed,
    StructureSettings,
    check_bayes,
    check_learners,
    comparable,
    episode_length,
    readout_probes,
    summarised,
    untrained_copy,
)
from trajprobe.apps.reproduce.wind_tunnel_fixed_points import (
    belief_fixed_points,
    filter_fixed_points,
    no_fixed_point_reason,
)
from trajprobe.compare import SimulationConfig, simulation
from trajprobe.randomness import make_generator

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

DIRECTIONS = ("learner→Bayes", "Bayes→learner")
"""Labels of the ``direction`` dimension (module docstring): ``"learner→Bayes"`` maps the
learner's states into the Bayes machine's (does its state hold the sufficient statistic?),
``"Bayes→learner"`` the other way."""

_LIBRARY_DIRECTION = {"learner→Bayes": "b→a", "Bayes→learner": "a→b"}
"""The library's labels, with the Bayes machine as ``a`` and the learner as ``b``."""

UNTRAINED_HOLDS = 0.25
"""An untrained copy with D_s learner→Bayes below this already holds most of the statistic
(the notes then read D_s as saying little about training)."""


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
    learners = check_learners(learners)
    check_bayes(bayes)
    n_steps = episode_length(learners, settings, steps)
    generator = make_generator(seed)
    episodes = task.sample(settings.episodes, n_steps, seed=seed)
    inputs = episodes.inputs
    probes = readout_probes(inputs, generator)
    config = SimulationConfig(n_hidden_layers=0, n_folds=settings.folds,
                              shuffled_null=settings.shuffled_null, output_measure="kl",
                              n_constant_states=settings.constant_states)
    reference = comparable(bayes, inputs)
    smoothed = isinstance(reference, Smoothed)
    per_learner = []
    for learner in learners.values():
        compared = comparable(summarised(learner, probes), inputs)
        untrained = None
        if settings.untrained:
            copy_ = untrained_copy(learner, generator)
            untrained = None if copy_ is None else comparable(summarised(copy_, probes),
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
