"""Flags, scores and the labelled result of :func:`~.simulation`.

Every row (the map, the best constant map's bound, the shuffled null, the untrained
baseline) is checked by :func:`row_reasons`; the reasons are stated in words, and a
direction is ``reliable`` only when its map and its nulls are.

One unit-free scale for every pair, task and length (:func:`simulation_scores`): the
output simulation score of a fold,

    score = 1 − D_o / D_o(best constant map)     (1 = exact, 0 = no better than the best
                                                  constant map; < 0 = worse, flagged),

both D_o on the same held-out episodes, mean ± s.e. over folds. Where D_o is a KL
(Mikulik et al. 2020 eq. 2: a sum over t in nats), also in bits per step:
D_o / (T ln 2).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict

import numpy as np
import xarray as xr

from trajprobe._version import __version__
from trajprobe.compare.simulation_folds import KINDS, DirectionResult
from trajprobe.compare.simulation_outputs import top_share
from trajprobe.dynamics import mean_sem

__all__ = ["FINDING_FACTOR", "NEARLY_CONSTANT", "TOP_SHARE_LIMIT", "build_dataset",
           "finite_mean_sem", "output_finding", "row_reasons", "simulation_scores"]

TOP_SHARE_LIMIT = 0.5
"""D_o is flagged when the top 1 % of held-out items carry more than this share of it."""

NEARLY_CONSTANT = 1e-2
"""The source's outputs are nearly constant when their variance is below this share of the
target's, and a gap is small when it is below this share of the source's output level."""

FINDING_FACTOR = 2.0
"""A finding is stated when the best constant's D_o is at least this multiple of always
predicting the source's mean output."""

NAMES = {"map": "", "constant": "_constant", "shuffled": "_shuffled"}
"""Suffix of each kind's variables."""


def finite_mean_sem(values: list[float]) -> tuple[float, float]:
    """Mean and standard error over the finite values (NaN where undefined)."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return math.nan, math.nan
    mean, sem = mean_sem(arr.tolist())
    return mean, math.nan if sem is None else sem


def row_reasons(r: DirectionResult, kind: str, dst: str, tolerance: float,
                defined: bool = True) -> list[str]:
    """Why a row (``kind`` of :data:`KINDS` but the constant) is unreliable, in words;
    ``defined=False``: D_o is undefined for a reason already given (no output checks)."""
    reasons = []
    items = r.out_item[KINDS.index(kind)]
    bad = float(np.isnan(items).mean()) if defined else 0.0
    if bad == 1:
        reasons.append(f"every embedded state gave invalid or non-finite outputs of machine "
                       f"{dst}: D_o is undefined")
    elif bad > 0:
        reasons.append(f"{bad:.1%} of the embedded states gave invalid or non-finite "
                       f"outputs of machine {dst} (left out of D_o)")
    d_o = finite_mean_sem(r.d_o[kind])[0]
    bound = finite_mean_sem(r.d_o["constant"])[0]
    excess, excess_sem = finite_mean_sem(np.subtract(r.d_o[kind], r.d_o["constant"]))
    noise = 2 * excess_sem if np.isfinite(excess_sem) else 0.0
    if d_o > bound * (1 + tolerance) + 1e-9 and excess > noise:
        reasons.append(
            f"D_o = {d_o:.3g} exceeds the best constant map's {bound:.3g} on the same held-out "
            f"episodes by more than {tolerance:.0%} and 2 s.e. over folds: the map "
            "extrapolates (its validation episodes did not represent the held-out ones)")
    heavy = top_share(items)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        level = np.nanmean(items) if not np.isnan(items).all() else 0.0
    if heavy > TOP_SHARE_LIMIT and level > 1e-3:
        reasons.append(
            f"D_o is dominated by a few states: the top 1 % of held-out items carry "
            f"{heavy:.0%} of it (machine {dst}'s output function may be ill-conditioned there)")
    if kind == "map":
        d_s = finite_mean_sem(r.d_s["map"])[0]
        if d_s > 1:
            reasons.append(
                f"D_s = {d_s:.3g} > 1 on held-out episodes: the map places states worse than "
                f"machine {dst}'s mean state (it was chosen for its outputs; see D_o)")
    return reasons


def output_finding(r: DirectionResult, scorer, names: tuple[str, str], n_t: int
                   ) -> tuple[str, list[str]]:
    """What a bound above "predicting the source's mean output" means: ``(finding,
    reasons)``.

    When even the target's best constant state (:mod:`.simulation_constant`) scores
    :data:`FINDING_FACTOR` times worse than always predicting the source's mean output
    (D_o 1 under the error; KL to the mean probabilities under a categorical or Bernoulli
    KL), either no state of the target
    produces outputs near the source's — a finding about the pair, returned as
    ``finding`` — or, under the error, the source's outputs are nearly constant and the
    target comes within a small gap of them that the normalised error divides by that
    small variance — a fragile number, returned as a reliability reason.
    """
    src, dst = names
    bound = finite_mean_sem(r.d_o["constant"])[0]
    reference = scorer.mean_prediction_loss()
    per_item = bound / n_t if scorer.measure == "kl" else bound
    if not (np.isfinite(per_item) and np.isfinite(reference)) \
            or per_item < FINDING_FACTOR * reference:
        return "", []
    if scorer.measure == "error":
        gap = math.sqrt(bound * scorer.variance)
        if scorer.variance < NEARLY_CONSTANT * scorer.variance_dst \
                and gap <= NEARLY_CONSTANT * scorer.level:
            return "", [
                f"machine {src}'s outputs are nearly constant (variance {scorer.variance:.2g}, "
                f"machine {dst}'s {scorer.variance_dst:.2g}): machine {dst}'s best constant "
                f"state comes within {gap:.2g} of them (their level {scorer.level:.2g}), and "
                "the normalised error divides that small gap by the smaller variance"]
        mean = f"predicting machine {src}'s mean output (1)"
    else:
        mean = (f"predicting machine {src}'s mean probabilities "
                f"({reference * n_t:.3g} nats over {n_t} steps)")
    return (f"no state of machine {dst} produces outputs near machine {src}'s: its best "
            f"constant state (every visited state tried, and refined) scores D_o = "
            f"{bound:.3g}, at least {FINDING_FACTOR:g}× worse than {mean}; D_o measures "
            "that gap — a property of the pair, not a fault of the map"), []


def simulation_scores(d_o: list[float], bound: list[float]) -> np.ndarray:
    """Per-fold output simulation scores 1 − D_o / D_o(best constant) (module docstring);
    NaN where the bound is 0 or either value is undefined."""
    d_o, bound = np.asarray(d_o, dtype=np.float64), np.asarray(bound, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - d_o / bound
    return np.where(np.isfinite(score) & (bound > 0), score, np.nan)


def _scores(results: dict, config, measure: str, n_t: int, n_folds: int) -> dict:
    """The unit-free variables, first in the Dataset: the score (map, shuffled null) with
    its s.e. and folds; under KL, D_o and the bound in bits per step."""
    data: dict = {}
    kinds = ["map"] + (["shuffled"] if config.shuffled_null else [])
    for kind in kinds:
        per = [simulation_scores(r.d_o[kind], r.d_o["constant"]) if r is not None
               else np.full(n_folds, np.nan) for r in results.values()]
        pairs = [finite_mean_sem(p) for p in per]
        name = f"output_simulation_score{NAMES[kind]}"
        data[name] = (("direction",), np.array([p[0] for p in pairs]))
        data[f"{name}_sem"] = (("direction",), np.array([p[1] for p in pairs]))
        if kind == "map":
            data[f"{name}_fold"] = (("direction", "fold"), np.stack(per))
    if measure == "kl":
        for kind in ("map", "constant"):
            pairs = [finite_mean_sem(np.asarray(r.d_o[kind]) / (n_t * math.log(2)))
                     if r is not None else (math.nan, math.nan) for r in results.values()]
            name = f"output_dissimilarity{NAMES[kind]}_bits_per_step"
            data[name] = (("direction",), np.array([p[0] for p in pairs]))
            data[f"{name}_sem"] = (("direction",), np.array([p[1] for p in pairs]))
    return data


def _stats(results: dict, config) -> dict:
    stats = {}
    kinds = [k for k in KINDS if k != "shuffled" or config.shuffled_null]
    for kind in kinds:
        for name, attr in (("state_dissimilarity", "d_s"), ("output_dissimilarity", "d_o")):
            pairs = [finite_mean_sem(getattr(r, attr)[kind]) if r is not None
                     else (math.nan, math.nan) for r in results.values()]
            stats[f"{name}{NAMES[kind]}"] = np.array([p[0] for p in pairs])
            stats[f"{name}{NAMES[kind]}_sem"] = np.array([p[1] for p in pairs])
    return stats


def _per_fold(results: dict, n_folds: int, fn, default) -> np.ndarray:
    return np.stack([np.asarray(fn(r)) if r is not None else np.full(n_folds, default)
                     for r in results.values()])


def _step_curve(r: DirectionResult | None, which: str, n_t: int) -> np.ndarray:
    if r is None:
        return np.full(n_t, np.nan)
    arr = r.sq_step if which == "s" else r.out_item[0]
    if np.isnan(arr).all():
        return np.full(n_t, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(arr, axis=0)


def build_dataset(results: dict, flags: dict, display: dict, vec: dict, outputs: dict,
                  n_folds: int, config, attrs: dict, measure: str) -> xr.Dataset:
    """The Dataset of :func:`~.simulation` (variables documented there); the unit-free
    score first."""
    n_ep, n_t = vec["a"].shape[:2]
    data_vars = _scores(results, config, measure, n_t, n_folds)
    data_vars.update({name: (("direction",), value)
                      for name, value in _stats(results, config).items()})
    for name, attr in (("state_dissimilarity", "d_s"), ("output_dissimilarity", "d_o")):
        for kind in ("map", "constant"):
            data_vars[f"{name}{NAMES[kind]}_fold"] = (("direction", "fold"), _per_fold(
                results, n_folds, lambda r, a=attr, k=kind: getattr(r, a)[k], math.nan))
    data_vars.update({
        "state_dissimilarity_per_step": (("direction", "t"), np.stack(
            [_step_curve(r, "s", n_t) for r in results.values()])),
        "output_dissimilarity_per_step": (("direction", "t"), np.stack(
            [_step_curve(r, "o", n_t) for r in results.values()])),
        "invalid_output_fraction": (("direction",), np.array(
            [float(np.isnan(r.out_item[0]).mean()) if r is not None else math.nan
             for r in results.values()])),
        "n_components": (("direction",), np.array(
            [int(np.median(r.n_components)) if r is not None else 0
             for r in results.values()], dtype=int)),
        "best_epoch": (("direction", "fold"), _per_fold(
            results, n_folds, lambda r: r.best_epoch, 0).astype(int)),
        "ridge_strength": (("direction", "fold"), _per_fold(
            results, n_folds, lambda r: r.strength, math.nan)),
        "output_ridge_strength": (("direction", "fold"), _per_fold(
            results, n_folds, lambda r: r.output_strength, math.nan)),
        "map_coordinates": (("direction", "fold"), _per_fold(
            results, n_folds, lambda r: np.array(r.coordinates, dtype=object), "")),
        "rank_a": ((), display["a"].rank_),
        "rank_b": ((), display["b"].rank_),
        "explained_variance_ratio_a": (("pc_a",), display["a"].explained_variance_ratio_),
        "explained_variance_ratio_b": (("pc_b",), display["b"].explained_variance_ratio_),
    })
    for name, values in flags.items():
        dtype = bool if name.startswith("reliable") else str if name == "finding" else object
        data_vars[name] = (("direction",), np.array(values, dtype=dtype))
    data_vars.update(_figure_data(results, vec, outputs, display, n_ep, n_t))
    return xr.Dataset(
        data_vars,
        coords={"direction": list(results), "fold": np.arange(n_folds),
                "episode": np.arange(n_ep), "t": np.arange(1, n_t + 1)},
        attrs=attrs,
    )


def _figure_data(results, vec, outputs, display, n_ep: int, n_t: int) -> dict:
    """Figure data in the all-episode whitening (first k display components): whitened
    and embedded states, own and embedded outputs, per machine and direction. Output
    feature dimensions are ``feature_a``/``feature_b`` (never a variable's own name)."""
    data_vars = {}
    k = {key: display[key].n_components_ for key in ("a", "b")}
    for key in ("a", "b"):
        data_vars[f"whitened_{key}"] = (("episode", "t", f"component_{key}"),
                                        display[key].transform(vec[key])[..., : k[key]])
        data_vars[f"output_{key}"] = (("episode", "t", f"feature_{key}"),
                                      outputs[key].reshape(n_ep, n_t, -1).double().numpy())
    for direction, r in results.items():
        src, dst = direction.split("→")
        if r is None:
            continue
        data_vars[f"embedded_{dst}_from_{src}"] = (
            ("episode", "t", f"component_{dst}"),
            display[dst].transform(r.embedded)[..., : k[dst]])
        data_vars[f"output_{dst}_from_{src}"] = (("episode", "t", f"feature_{dst}"), r.outputs)
    return data_vars


def attrs_of(measure: str, note: str, n_folds: int, config, invariances: dict) -> dict:
    """The Dataset's attrs: what D_o measures, conventions, invariances and the config."""
    return {
        "output_measure": "sum_t KL(pi^source || pi^target at embedded state), mean over "
                          "episodes (eq. 2), nats" if measure == "kl" else
                          "normalised output error: mean ||g(y^source) - g(y^target at "
                          "embedded state)||^2 / Var(g(y^source)); 1 = predicting the mean",
        "output_measure_note": note,
        "direction_convention": "a→b: phi maps a's states into b's state space (b simulates a)",
        "time_alignment": "step t of a and of b is the same moment: states s_{t-1}, outputs y_t",
        "state_dissimilarity_units": "target's whitened PCA units on its reported components, "
                                     "in its natural coordinates (log where logged; 0 exact, "
                                     "1 = the target's mean state)",
        "map_selection": "ridge path (relative strengths config_ridge_path, inf = constant) "
                         "in raw and log coordinates, and constant training states; kept: "
                         "the lowest validation D_s among those whose validation D_o is no "
                         "worse than the best constant map's; MLP residual kept only if it "
                         "lowers D_s within that bound",
        "null_constant": "the best constant map on validation episodes (every source state "
                         "sent to one target state), scored on the held-out episodes: the "
                         "bound D_o should not exceed",
        "null_shuffled": "closed-form map fitted and selected on time-shuffled pairs (target "
                         "states permuted in time within each training episode), scored on "
                         "the aligned held-out pairs",
        "n_folds": n_folds,
        "trajprobe_version": __version__,
        **{f"invariances_{name}": ", ".join(k for k, v in flags.items() if v)
           for name, flags in invariances.items()},
        **{f"config_{key}": (str(value) if isinstance(value, (bool, tuple)) else value)
           for key, value in asdict(config).items()},
    }
