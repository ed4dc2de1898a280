"""Summaries of learning curves q(t): thresholds, time ratios, asymptotes, context ranks.

Rabinowitz 2019 measures how fast each mode (singular mode, frequency, context) is
learned as the number of steps until its proportion q_k(t) first exceeds a cut-off c
(Fig. 1c, 8c, 12c; read at a step, or interpolated between steps), compares modes by
ratios of those times (§3.2.4: "a 50× decrease in a mode's singular value causes the
Learner to take roughly 9× as long"), optionally
relative to each curve's own asymptote (Fig. A5), and orders contexts by their
time-averaged expected return (eq. 14).

All functions take and return ``xarray.DataArray`` objects and work on any dims.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from trajprobe.validation import check_positive_int

__all__ = [
    "asymptote",
    "context_confusion",
    "eval_schedule",
    "mean_sem",
    "most_confused_pair",
    "normalise_to_asymptote",
    "order_contexts",
    "steps_to_threshold",
    "summarise",
    "time_ratio",
]


def _check_dim(da: xr.DataArray, dim: str, name: str) -> None:
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"{name}: expected an xarray.DataArray, got {type(da).__name__}")
    if dim not in da.dims:
        raise ValueError(f"{name}: expected a dimension {dim!r}, got dims {da.dims}")


def eval_schedule(n_steps: int, per_decade: int = 60) -> np.ndarray:
    """Steps 1..n_steps at which to probe: every step up to 20, then log-spaced."""
    n_steps = check_positive_int(n_steps, "n_steps")
    dense = np.arange(1, min(n_steps, 20) + 1)
    decades = max(np.log10(n_steps), 1e-9)
    sparse = np.round(np.logspace(0, np.log10(n_steps), int(per_decade * decades) + 1))
    return np.unique(np.concatenate([dense, sparse.astype(int)]).clip(1, n_steps))


def steps_to_threshold(
    q: xr.DataArray,
    c: float | Sequence[float],
    dim: str = "t",
    *,
    never: float = np.inf,
    interpolate: bool = False,
) -> xr.DataArray:
    """The time at which q first exceeds c: Rabinowitz 2019's argmin t s.t. q(t) > c.

    The paper's crossing time (Fig. 1c, 8c, 12c; the caption of Fig. 14b reads "arg min t,
    s.t. q_k(t) > 0.8") is a training or episode step. Two readings of it:

    * the integer rule (``interpolate=False``): the ``dim`` coordinate t_j of the first
      sample with q(t_j) > c;
    * linear interpolation (``interpolate=True``): the fractional t at which the straight
      line between the last sample before the crossing, (t_i, q_i) with q_i <= c, and the
      first sample above, (t_j, q_j), reaches c:
      t = t_i + (c - q_i) / (q_j - q_i) · (t_j - t_i), in [t_i, t_j). The same crossing
      the integer rule finds, read between the two samples around it, so that two modes
      crossing within one step no longer get a ratio of 1 or of (t + 1) / t by the luck
      of the step. NaN samples are skipped (t_i is the last non-NaN sample before t_j);
      a curve already above c at its first (non-NaN) sample gives that sample's t (no
      sample below to interpolate from); where q_i or q_j is ±inf the integer t_j is kept.

    Args:
        q: learning curves with a ``dim`` axis (e.g. ``(episode, t, mode)``); average
            over episodes first to threshold the mean curve, as the paper does.
        c: one cut-off, or several (adds a ``threshold`` dim in the order given).
        dim: the time axis; its coordinate values are returned (t = 1..T in trajprobe
            results; 0..T-1 if the axis has no coordinate). Interpolation is linear in
            these values (log-spaced schedules included).
        never: the value for curves that never exceed c (inf by default; NaN is also
            sensible). NaN entries of q never count as a crossing.
        interpolate: read the crossing between samples (above); False: the integer rule.
            The reproduce reports use True.

    Returns:
        Steps (float), ``q``'s dims without ``dim`` (plus ``threshold``).
    """
    _check_dim(q, dim, "q")
    if np.ndim(c) == 0:
        cut = xr.DataArray(float(c))
    else:
        values = np.asarray(c, dtype=float)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"c: expected a number or a non-empty list of numbers, got {c!r}")
        cut = xr.DataArray(values, dims="threshold", coords={"threshold": values})
    coord = q[dim].values.astype(float) if dim in q.coords else np.arange(q.sizes[dim], dtype=float)
    out = xr.apply_ufunc(
        _crossing, q.astype(float), cut, input_core_dims=[[dim], []],
        kwargs={"t": coord, "never": float(never), "interpolate": bool(interpolate)},
    )
    if dim in out.coords:
        out = out.drop_vars(dim)
    out.name = "steps_to_threshold"
    how = ", interpolated between steps" if interpolate else ""
    out.attrs.update(long_name=f"steps until {q.name or 'q'} > c{how}", units="steps")
    return out


def _crossing(q: np.ndarray, cut: np.ndarray, *, t: np.ndarray, never: float,
              interpolate: bool) -> np.ndarray:
    """:func:`steps_to_threshold` on arrays: q ``[..., T]``, cut ``[...]`` and t ``[T]``
    give crossing times ``[...]``."""
    cut = np.asarray(cut)[..., None]
    above = q > cut  # NaN > c is False: NaNs never cross
    q = np.broadcast_to(q, above.shape)
    first = above.argmax(-1)
    steps = t[first]
    if interpolate:
        index = np.arange(q.shape[-1])
        before = ~np.isnan(q) & (index < first[..., None])
        last = np.where(before, index, -1).max(-1, initial=-1)
        prev = last.clip(0)
        q_i = np.take_along_axis(q, prev[..., None], -1)[..., 0]
        q_j = np.take_along_axis(q, first[..., None], -1)[..., 0]
        c = cut[..., 0]
        usable = (last >= 0) & np.isfinite(q_i) & np.isfinite(q_j)
        with np.errstate(invalid="ignore", divide="ignore"):
            between = t[prev] + (c - q_i) / (q_j - q_i) * (t[first] - t[prev])
        steps = np.where(usable, between, steps)
    return np.where(above.any(-1), steps, never)


def time_ratio(
    steps: xr.DataArray, dim: str = "mode", *, reference: int = 0
) -> xr.DataArray:
    """Steps of every entry along ``dim`` over those of the entry at position ``reference``.

    E.g. with modes ordered by decreasing singular value, ``time_ratio(steps).isel(mode=-1)``
    is "how many times as long the smallest mode takes" (§3.2.4). Curves that never cross
    give inf (this one never crosses, the reference does) or NaN (the reference never
    crosses: the ratio is undetermined).
    """
    _check_dim(steps, dim, "steps")
    if not -steps.sizes[dim] <= reference < steps.sizes[dim]:
        raise ValueError(
            f"reference: expected a position in 0..{steps.sizes[dim] - 1} along {dim!r}, "
            f"got {reference}"
        )
    ref = steps.isel({dim: reference}, drop=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = steps / ref
    ratio = ratio.where(np.isfinite(ref))  # reference never crossed: undetermined
    ratio.name = "time_ratio"
    ratio.attrs.update(long_name=f"time ratio to {dim} {steps[dim].values[reference]}",
                       units="1")
    return ratio


def asymptote(q: xr.DataArray, dim: str = "t", *, window: int = 1) -> xr.DataArray:
    """The value a curve settles at: the mean of its last ``window`` steps along ``dim``."""
    _check_dim(q, dim, "q")
    if not 1 <= window <= q.sizes[dim]:
        raise ValueError(f"window: expected 1..{q.sizes[dim]} steps, got {window}")
    return q.isel({dim: slice(-window, None)}).mean(dim, keep_attrs=True)


def normalise_to_asymptote(q: xr.DataArray, dim: str = "t", *, window: int = 1) -> xr.DataArray:
    """q(t) / q(∞): curves relative to their own asymptote (Fig. A5).

    Thresholding the result measures time constants independently of how far each mode
    gets by the end of the episode. A zero asymptote gives NaN or ±inf.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = q / asymptote(q, dim, window=window)
    ratio.attrs = {"long_name": f"{q.attrs.get('long_name', q.name or 'q')} / its asymptote",
                   "units": "1"}
    return ratio


def order_contexts(
    q: xr.DataArray,
    dim: str = "context",
    time_dim: str = "t",
    *,
    score: xr.DataArray | None = None,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Re-index contexts so that index k is the k-th learned context (eq. 14).

    Contexts are ranked, separately for every other index (e.g. every episode), by
    R_c = E_t E[r_c(t)]; since eq. 12 is increasing in q_c when p_correct > p_incorrect,
    this equals ranking by the time-average of q_c(t), which is the default ``score``.
    Ties keep the lower context index first.

    Args:
        q: curves with dims ``dim`` and ``time_dim`` (e.g. ``(episode, t, context)``).
        score: what to rank by, without ``time_dim`` (higher = learned earlier); default
            ``q.mean(time_dim)``.

    Returns:
        ``(ordered, order)``: ``ordered`` is q with ``dim`` replaced by ``rank`` (1..C);
        ``order`` gives the original context index at every rank, dims as ``score`` with
        ``dim`` replaced by ``rank``.
    """
    _check_dim(q, dim, "q")
    _check_dim(q, time_dim, "q")
    if score is None:
        score = q.mean(time_dim)
    _check_dim(score, dim, "score")
    if time_dim in score.dims:
        raise ValueError(f"score: expected no {time_dim!r} dim (one score per context), got "
                         f"dims {score.dims}")
    n = score.sizes[dim]
    # stable descending sort: argsort of -score keeps the lower index first among ties
    order_idx = xr.apply_ufunc(
        lambda s: np.argsort(-np.nan_to_num(s, nan=-np.inf), axis=-1, kind="stable"),
        score,
        input_core_dims=[[dim]],
        output_core_dims=[["rank"]],
    )
    order_idx = order_idx.assign_coords(rank=np.arange(1, n + 1))
    ordered = q.isel({dim: order_idx})
    ordered = ordered.drop_vars(dim, errors="ignore").transpose(
        *[d if d != dim else "rank" for d in q.dims]
    )
    ordered.attrs = dict(q.attrs)
    ordered["rank"].attrs.update(long_name="k-th learned context", units="1")
    labels = score[dim].values if dim in score.coords else np.arange(n)
    order = xr.DataArray(labels[order_idx.values], dims=order_idx.dims,
                         coords=order_idx.coords, name="context_order",
                         attrs={"long_name": "context index", "units": "1"})
    return ordered, order


def context_confusion(
    policy: xr.DataArray,
    correct: xr.DataArray,
    dim: str = "context",
    action_dim: str = "action",
    episode_dim: str = "episode",
) -> xr.DataArray:
    """How often the policy shown context c plays the correct action of another context c'.

    M[c, c'] = E_e[ π_e(a*_e(c') | c) | a*_e(c') ≠ a*_e(c) ]: the mean over the episodes
    in which the two contexts' correct actions differ (elsewhere playing a*(c') is right).
    A policy that keeps one memory per context has M[c, c'] ≈ (1 - q_c) / (A - 1); two
    contexts that share one memory have M[c, c'] and M[c', c] near ½, the signature of
    a merge (a per-context view of Rabinowitz 2019 §5.2's interference between contexts).

    Args:
        policy: π(action | context), dims ``(episode_dim, dim, action_dim)`` and any others
            (e.g. ``t``), e.g. ``context_dynamics(...)["policy"].isel(t=-1)``.
        correct: a*(c), integer actions with dims ``(episode_dim, dim)``.

    Returns:
        M with ``dim`` and ``other_context`` in place of ``episode_dim`` and
        ``action_dim``; NaN where the two correct actions never differ (the diagonal).
    """
    for da, name, dims in ((policy, "policy", (episode_dim, dim, action_dim)),
                           (correct, "correct", (episode_dim, dim))):
        for d in dims:
            _check_dim(da, d, name)
    if set(correct.dims) != {episode_dim, dim}:
        raise ValueError(f"correct: expected dims ({episode_dim!r}, {dim!r}), got {correct.dims}")
    other = correct.rename({dim: "other_context"})
    if dim in other.coords:
        other = other.drop_vars(dim)
    followed = policy.isel({action_dim: other.astype(int)})
    differ = correct != other
    confusion = followed.where(differ).mean(episode_dim)
    confusion.attrs = {"long_name": "P(playing a*(c') | context c)", "units": "1"}
    return confusion


def most_confused_pair(
    m: xr.DataArray, dim: str = "context", other_dim: str = "other_context"
) -> tuple[int, int, float]:
    """The pair ``(c, c')``, c < c', with the largest ½(M[c, c'] + M[c', c]) of a
    :func:`context_confusion` matrix ``m`` (dims exactly ``(dim, other_dim)``), and that value:
    ~½ when the two contexts share one memory, ~(1 - q) / (A - 1) for a policy with one
    memory per context. Ties keep the lowest indices."""
    _check_dim(m, dim, "m")
    _check_dim(m, other_dim, "m")
    if m.ndim != 2:
        raise ValueError(f"m: expected dims ({dim!r}, {other_dim!r}), got {m.dims}")
    values = m.transpose(dim, other_dim).values
    score = np.nan_to_num((values + values.T) / 2, nan=-np.inf)
    first, second = np.unravel_index(np.argmax(score), score.shape)
    return int(min(first, second)), int(max(first, second)), float(score[first, second])


def summarise(da: xr.DataArray, dim: str = "episode", *, skipna: bool = True) -> xr.Dataset:
    """Mean and standard error of the mean over ``dim`` as a Dataset: ``mean``, ``sem``, ``n``.

    :func:`mean_sem` over ``dim``, with its rules for one value, NaN and ±inf (stated
    there, once), labelled and with the count beside it. ``skipna=True`` (the default
    here: a summary over episodes of which some are undefined) drops non-finite values
    (NaN and ±inf) position by position and ``n`` counts the values left; with
    ``skipna=False`` they propagate and ``n`` is the size of ``dim``.
    """
    _check_dim(da, dim, "da")
    mean, sem = mean_sem(da, dim, skipna=skipna)
    n = (np.isfinite(da).sum(dim) if skipna
         else xr.full_like(mean, da.sizes[dim], dtype=int))
    name = da.attrs.get("long_name", da.name or "value")
    units = da.attrs.get("units", "1")
    mean.attrs = {"long_name": f"{name}, mean over {dim}", "units": units}
    sem.attrs = {"long_name": f"{name}, s.e. over {dim}", "units": units}
    n.attrs = {"long_name": f"number of {dim}s", "units": "1"}
    return xr.Dataset({"mean": mean, "sem": sem, "n": n})


def mean_sem(
    values: Sequence[float] | np.ndarray | xr.DataArray, dim: str | Sequence[str] | None = None,
    *, skipna: bool = False,
) -> tuple[Any, Any]:
    """Mean and standard error of the mean, s.e. = s.d. (ddof = 1) / sqrt(n): "mean ± s.e."

    The one mean ± s.e. of the library (over seeds, episodes or folds; :func:`summarise`
    is this as a labelled Dataset). Its meaning for the edge cases, everywhere:

    * **one value** (n = 1): the s.e. is undefined, NaN; the mean is the value.
    * **NaN** (a missing or undefined value, e.g. a mode that never crossed in a ratio):
      propagates: the mean and the s.e. are NaN. Drop missing values first if that is
      what is meant (``da.dropna(dim)``).
    * **±inf** (e.g. a mode that never crossed a threshold): the mean is ±inf (NaN if
      both signs occur) and the s.e. is NaN.

    With ``skipna=True`` non-finite values (NaN, ±inf) are dropped first, position by
    position, and n counts what is left (a figure's band over episodes where some are
    undefined); no values left gives NaN for both.

    Args:
        values: numbers (a sequence or an array, all reduced), or a DataArray.
        dim: DataArray only: the dim(s) to reduce (None: all of them).
        skipna: drop non-finite values before reducing (default: they propagate).

    Returns:
        ``(mean, sem)``: floats for numbers; DataArrays without ``dim`` for a DataArray.

    Raises:
        ValueError: no values, or ``dim`` is given for numbers or is not a dim of ``values``.
    """
    if isinstance(values, xr.DataArray):
        dims = list(values.dims) if dim is None else [dim] if isinstance(dim, str) else list(dim)
        missing = [d for d in dims if d not in values.dims]
        if missing:
            raise ValueError(f"dim: {missing} not in the values' dims {values.dims}")
        n = int(np.prod([values.sizes[d] for d in dims]))
        if n == 0:
            raise ValueError(f"values: expected at least one value along {dims}, got none")
        if skipna:
            finite = values.where(np.isfinite(values))
            count = finite.count(dims)
            with np.errstate(invalid="ignore", divide="ignore"):
                return (finite.mean(dims),
                        (finite.std(dims, ddof=1) / np.sqrt(count)).where(count > 1))
        with np.errstate(invalid="ignore"):  # inf - inf in the s.d.: masked just below
            mean = values.mean(dims, skipna=False)
            sem = (values.std(dims, ddof=1, skipna=False) / math.sqrt(n) if n > 1
                   else xr.full_like(mean, np.nan, dtype=float))
        return mean, sem.where(np.isfinite(values).all(dims))
    if dim is not None:
        raise ValueError(f"dim: only for a DataArray, got {dim!r} with {type(values).__name__}")
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise ValueError("values: expected at least one value, got none")
    if skipna:
        array = array[np.isfinite(array)]
        if array.size == 0:
            return math.nan, math.nan
    if array.size < 2 or not np.isfinite(array).all():
        return float(array.mean()), math.nan
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(array.size))
