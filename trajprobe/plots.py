"""The paper's figure types, drawn from the measurement Datasets alone (seaborn).

* :func:`plot_learning_curves` — per-mode ŝ_k(t) or q_k(t), mean ± s.e. over episodes
  (Rabinowitz 2019 Fig. 1a–b, 3, 8a–b, 9).
* :func:`plot_steps_to_threshold` — steps until q_k(t) > c against the mode's singular
  value or frequency, one line per cut-off (Fig. 1c, 8c, 12c).
* :func:`plot_progress` — q_k against progress measured as −loss (Fig. 4, 10).
* :func:`plot_ordered_contexts` — q of the k-th learned context on a log time axis (Fig. 12).
* :func:`plot_measurement` — any :func:`trajprobe.measure` result, chosen by its variables.

Every function takes an optional matplotlib ``ax`` and returns the axes it drew on.
:func:`subplots` makes figures for files without ``pyplot`` (so without touching the
user's backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import xarray as xr
from matplotlib.figure import Figure

from trajprobe.dynamics import steps_to_threshold

__all__ = [
    "plot_learning_curves",
    "plot_measurement",
    "plot_ordered_contexts",
    "plot_progress",
    "plot_steps_to_threshold",
    "subplots",
]


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """``(figure, axes)`` like ``plt.subplots`` but outside ``pyplot``: the figure renders
    through the Agg canvas whatever the backend, and no window or global figure is made.

    ``figsize`` goes to the figure; the other keywords to ``Figure.subplots``.
    """
    fig = Figure(figsize=kwargs.pop("figsize", None))
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _check_var(ds: xr.Dataset, var: str, dims: Sequence[str]) -> xr.DataArray:
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds: expected an xarray.Dataset, got {type(ds).__name__}")
    if var not in ds:
        raise ValueError(f"var: expected one of {sorted(map(str, ds.data_vars))}, got {var!r}")
    missing = [d for d in dims if d not in ds[var].dims]
    if missing:
        raise ValueError(f"ds[{var!r}]: expected dims {tuple(dims)}, got {ds[var].dims}")
    return ds[var]


def _axes(ax: plt.Axes | None) -> plt.Axes:
    return ax if ax is not None else plt.subplots()[1]


def plot_learning_curves(
    ds: xr.Dataset,
    var: str = "q",
    *,
    dim: str = "mode",
    ax: plt.Axes | None = None,
    palette: str = "rocket",
) -> plt.Axes:
    """Curves of ``ds[var]`` over ``t``, one per entry of ``dim``, mean ± s.e. over episodes."""
    da = _check_var(ds, var, ("episode", "t", dim))
    ax = _axes(ax)
    frame = da.to_dataframe(name=var).reset_index()
    # drop the palette's lightest shade: it vanishes on a white background
    colours = sns.color_palette(palette, da.sizes[dim] + 1)[: da.sizes[dim]]
    sns.lineplot(data=frame, x="t", y=var, hue=dim, errorbar="se", palette=colours, ax=ax)
    if var == "q":
        ax.axhline(1.0, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("step t (observations + 1)")
    return ax


def plot_steps_to_threshold(
    ds: xr.Dataset,
    thresholds: Sequence[float] = (0.5, 0.7, 0.9),
    var: str = "q",
    *,
    dim: str = "mode",
    x: str | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Steps until the episode-mean curve exceeds each cut-off, against the mode's target.

    Args:
        x: a variable with ``dim`` (e.g. ``"s"`` singular values) averaged over episodes
            for the abscissa; default the ``dim`` coordinate (e.g. the frequency k).
            Curves that never cross are left out.
    """
    da = _check_var(ds, var, ("episode", "t", dim))
    ax = _axes(ax)
    steps = steps_to_threshold(da.mean("episode"), list(thresholds))
    abscissa = ds[x].mean("episode") if x is not None else ds[dim]
    frame = steps.to_dataframe(name="steps").reset_index()
    target = dict(zip(ds[dim].values.tolist(), np.asarray(abscissa.values).tolist(), strict=True))
    frame["target"] = frame[dim].map(target)
    frame = frame[np.isfinite(frame["steps"])]
    if frame.empty:
        ax.text(0.5, 0.5, f"no curve reached {var} > {min(thresholds)}", ha="center",
                va="center", transform=ax.transAxes, color="0.4")
    else:
        sns.lineplot(data=frame, x="target", y="steps", hue="threshold", marker="o", ax=ax,
                     palette="crest")
    ax.set_xlabel(x if x is not None else dim)
    ax.set_ylabel(f"steps until {var} > c")
    return ax


def plot_progress(
    ds: xr.Dataset,
    var: str = "q",
    progress: str = "loss",
    *,
    dim: str = "mode",
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Episode-mean ``var`` per mode against progress −mean(``progress``) at every t."""
    da = _check_var(ds, var, ("episode", "t", dim))
    loss = _check_var(ds, progress, ("episode", "t"))
    ax = _axes(ax)
    neg = -loss.mean("episode")
    mean = da.mean("episode")
    palette = sns.color_palette("rocket", mean.sizes[dim])
    for colour, label in zip(palette, mean[dim].values, strict=True):
        ax.plot(neg.values, mean.sel({dim: label}).values, marker=".", color=colour,
                label=str(label))
    ax.legend(title=dim)
    ax.set_xlabel(f"progress (−{progress})")
    ax.set_ylabel(var)
    return ax


def plot_ordered_contexts(
    ds: xr.Dataset,
    var: str = "q_ordered",
    *,
    dim: str = "rank",
    ax: plt.Axes | None = None,
    log_time: bool = True,
) -> plt.Axes:
    """q_k(t) of the k-th learned context, mean ± s.e. over episodes, log time axis (Fig. 12)."""
    ax = plot_learning_curves(ds, var, dim=dim, ax=ax, palette="flare")
    if log_time:
        ax.set_xscale("log")
    ax.set_ylabel("P(correct action)")
    return ax


def plot_measurement(ds: xr.Dataset) -> Figure:
    """A figure of any :func:`trajprobe.measure` result, chosen by what the Dataset holds.

    ``q (episode, t, mode)`` → learning curves per mode (:func:`plot_learning_curves`);
    ``q_ordered (episode, t, rank)`` → ordered contexts (:func:`plot_ordered_contexts`);
    otherwise every ``(episode, t)`` variable (a user's own task's too) against t, mean ±
    s.e. over episodes, one panel each.
    """
    if "q" in ds and "mode" in ds["q"].dims:
        fig, ax = subplots(figsize=(5, 3.6))
        plot_learning_curves(ds, "q", ax=ax)
        return fig
    if "q_ordered" in ds:
        fig, ax = subplots(figsize=(5, 3.6))
        plot_ordered_contexts(ds, ax=ax)
        return fig
    names = [v for v in ds.data_vars if set(ds[v].dims) == {"episode", "t"}]
    if not names:
        raise ValueError(f"ds: nothing to plot, no (episode, t) variable in {list(ds.data_vars)}")
    fig, axes = subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        frame = ds[name].to_dataframe(name=name).reset_index()
        sns.lineplot(data=frame, x="t", y=name, errorbar="se", ax=ax)
        ax.set_xlabel("step t (observations + 1)")
        ax.set_title(ds[name].attrs.get("description", name), fontsize=8)
    fig.tight_layout()
    return fig
