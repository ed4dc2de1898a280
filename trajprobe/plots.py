"""The paper's figure types, drawn from the measurement Datasets alone (matplotlib, seaborn
palettes), labelled from the variables' ``long_name`` and ``units`` attrs.

* :func:`plot_learning_curves` — per-mode ŝ_k(t) or q_k(t), mean ± s.e. over episodes
  (Rabinowitz 2019 Fig. 1a–b, 3, 8a–b, 9); modes named by their singular values.
* :func:`plot_steps_to_threshold` — steps until q_k(t) > c against the mode's singular
  value or frequency, one line per cut-off (Fig. 1c, 8c, 12c).
* :func:`plot_progress` — q_k against progress measured as −loss (Fig. 4, 10).
* :func:`plot_ordered_contexts` — q of the k-th learned context on a log time axis (Fig. 12).
* :func:`plot_measurement` — any :func:`trajprobe.measure` result, chosen by its variables;
  overlays agents, seeds and a reference machine, one y-range for the whole figure.

Every curve is a mean with a shaded band of ± one standard error, over episodes, or over
seeds when the Dataset has a ``seed`` dim (the legend says which). Proportions (q) get the
q = 1 line ("target learned") and a y-range that always holds 0 and 1, so a 10 % overshoot
looks like 10 %. The x-axis is the step t = 1..T, whose prediction is made after t − 1
observations (:data:`trajprobe.labelled.STEP_LABEL`).

Every function takes an optional matplotlib ``ax`` and returns the axes it drew on.
:func:`subplots` makes figures for files without ``pyplot`` (so without touching the
user's backend).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from trajprobe.dynamics import mean_sem, steps_to_threshold
from trajprobe.labelled import STEP_LABEL, axis_label

__all__ = [
    "plot_learning_curves",
    "plot_measurement",
    "plot_ordered_contexts",
    "plot_progress",
    "plot_steps_to_threshold",
    "subplots",
]

_GROUPS = ("agent", "seed")
"""Dims that :func:`plot_measurement` overlays (agent) or averages over (seed)."""


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


def _is_proportion(var: str) -> bool:
    """q-like variables (q, q_ordered): proportions whose target is 1."""
    return var == "q" or var.startswith("q_")


def _mean_band(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray, str]:
    """Mean over episodes (and seeds) along ``t`` and its standard error, with what it is
    over: ``seed`` when present (each seed's episode mean is one sample), else ``episode``.
    ``da`` has dims ``t`` plus ``episode`` and/or ``seed`` only."""
    over = "seed" if "seed" in da.dims else "episode"
    if over == "seed" and "episode" in da.dims:
        da = da.mean("episode")
    mean, sem = mean_sem(da.transpose("t", over), over, skipna=True)
    n_over = da.sizes[over]
    band = f"± s.e. over {n_over} {over}{'s' if n_over != 1 else ''}"
    return mean.values.astype(float), np.nan_to_num(sem.values.astype(float)), band


def _curve(ax: plt.Axes, da: xr.DataArray, colour: Any, label: str, *, name_band: bool = False,
           **line: Any) -> str:
    """Draw the mean of ``da`` over ``t`` with a ± s.e. band; returns what the band is
    (also added to the curve's legend entry with ``name_band``)."""
    mean, sem, band = _mean_band(da)
    t = da["t"].values
    ax.plot(t, mean, color=colour, label=f"{label}, band {band}" if name_band else label, **line)
    ax.fill_between(t, mean - sem, mean + sem, color=colour, alpha=0.2, lw=0)
    return band


def _curve_labels(ds: xr.Dataset, dim: str, label_by: str | None) -> tuple[list[str], str]:
    """Legend entries for the ``dim`` entries and the legend's title.

    ``label_by`` (e.g. ``"s"``) names each entry by its value when that variable has the
    same value in every episode ("s = 2.5"); otherwise entries are the ``dim`` labels.
    """
    values = ds[dim].values.tolist()
    title = ds[dim].attrs.get("long_name", dim)
    if label_by is not None and label_by in ds and dim in ds[label_by].dims:
        by = ds[label_by]
        flat = np.asarray(by.transpose(dim, ...).values, dtype=float).reshape(len(values), -1)
        if np.allclose(flat, flat[:, :1], equal_nan=True):
            name = by.attrs.get("long_name", label_by)
            return [f"{label_by} = {v:.3g}" for v in flat[:, 0]], name
    return [str(v) for v in values], title


def _band_handle(band: str) -> Patch:
    return Patch(facecolor="0.5", alpha=0.3, label=f"band: {band}")


def _target_line(ax: plt.Axes) -> None:
    ax.axhline(1.0, color="0.35", lw=0.9, ls=":", label="q = 1 (target learned)", zorder=0)


def _limits(values: np.ndarray, proportion: bool) -> tuple[float, float]:
    """A y-range that holds the data and 0 (and 1 for proportions), padded by 5 %."""
    finite = values[np.isfinite(values)]
    lo, hi = finite.min(initial=0.0), finite.max(initial=0.0)
    if proportion:
        lo, hi = min(lo, 0.0), max(hi, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def plot_learning_curves(
    ds: xr.Dataset,
    var: str = "q",
    *,
    dim: str = "mode",
    ax: plt.Axes | None = None,
    palette: str = "rocket",
    label_by: str | None = "s",
) -> plt.Axes:
    """Curves of ``ds[var] (episode, t, dim)`` over ``t``, one per entry of ``dim``, mean ±
    s.e. over episodes (over seeds when ``ds`` has a ``seed`` dim), with the q = 1 line
    for proportions.

    Args:
        label_by: a variable with ``dim`` (default ``"s"``, the singular values) that names
            each curve when it is the same in every episode ("s = 2.5"); else the ``dim``
            coordinate names them.
    """
    da = _check_var(ds, var, ("episode", "t", dim))
    ax = _axes(ax)
    # drop the palette's lightest shade: it vanishes on a white background
    colours = sns.color_palette(palette, da.sizes[dim] + 1)[: da.sizes[dim]]
    labels, title = _curve_labels(ds, dim, label_by)
    band = ""
    for i, (colour, label) in enumerate(zip(colours, labels, strict=True)):
        band = _curve(ax, da.isel({dim: i}), colour, label)
    handles = list(ax.get_legend_handles_labels()[0])
    if _is_proportion(var):
        _target_line(ax)
        ax.set_ylim(*_limits(np.array([ax.dataLim.y0, ax.dataLim.y1]), True))
        handles.append(ax.lines[-1])
    ax.legend(handles=[*handles, _band_handle(band)], title=title, fontsize="small",
              title_fontsize="small")
    ax.set_xlabel(axis_label(ds["t"], STEP_LABEL))
    ax.set_ylabel(axis_label(da))
    return ax


def plot_steps_to_threshold(
    ds: xr.Dataset,
    thresholds: Sequence[float] = (0.5, 0.7, 0.9),
    var: str = "q",
    *,
    dim: str = "mode",
    x: str | None = None,
    ax: plt.Axes | None = None,
    interpolate: bool = False,
) -> plt.Axes:
    """Steps until the episode-mean curve exceeds each cut-off, against the mode's target.

    Args:
        x: a variable with ``dim`` (e.g. ``"s"`` singular values) averaged over episodes
            for the abscissa; default the ``dim`` coordinate (e.g. the frequency k).
            Curves that never cross are left out.
        interpolate: crossing times interpolated between steps (see
            :func:`~trajprobe.dynamics.steps_to_threshold`); False: the first step above.
    """
    da = _check_var(ds, var, ("episode", "t", dim))
    ax = _axes(ax)
    steps = steps_to_threshold(da.mean("episode"), list(thresholds), interpolate=interpolate)
    abscissa = ds[x].mean("episode") if x is not None else ds[dim]
    frame = steps.to_dataframe(name="steps").reset_index()
    target = dict(zip(ds[dim].values.tolist(), np.asarray(abscissa.values).tolist(), strict=True))
    frame["target"] = frame[dim].map(target)
    frame = frame[np.isfinite(frame["steps"])]
    if frame.empty:
        ax.text(0.5, 0.5, f"no curve reached {var} > {min(thresholds)}", ha="center",
                va="center", transform=ax.transAxes, color="0.4")
    else:
        frame = frame.rename(columns={"threshold": "cut-off c"})
        sns.lineplot(data=frame, x="target", y="steps", hue="cut-off c", marker="o", ax=ax,
                     palette="crest")
    ax.set_xlabel(axis_label(ds[x] if x is not None else ds[dim], x or dim))
    ax.set_ylabel(f"steps t until {var} > c")
    return ax


def plot_progress(
    ds: xr.Dataset,
    var: str = "q",
    progress: str = "loss",
    *,
    dim: str = "mode",
    ax: plt.Axes | None = None,
    label_by: str | None = "s",
) -> plt.Axes:
    """Episode-mean ``var`` per mode against progress −mean(``progress``) at every t."""
    da = _check_var(ds, var, ("episode", "t", dim))
    loss = _check_var(ds, progress, ("episode", "t"))
    ax = _axes(ax)
    neg = -loss.mean("episode")
    mean = da.mean("episode")
    palette = sns.color_palette("rocket", mean.sizes[dim])
    labels, title = _curve_labels(ds, dim, label_by)
    for i, (colour, label) in enumerate(zip(palette, labels, strict=True)):
        ax.plot(neg.values, mean.isel({dim: i}).values, marker=".", color=colour, label=label)
    ax.legend(title=title, fontsize="small", title_fontsize="small")
    ax.set_xlabel(f"progress: −({axis_label(loss)}), episode mean")
    ax.set_ylabel(axis_label(da))
    return ax


def plot_ordered_contexts(
    ds: xr.Dataset,
    var: str = "q_ordered",
    *,
    dim: str = "rank",
    ax: plt.Axes | None = None,
    log_time: bool = True,
) -> plt.Axes:
    """q_k(t) of the k-th learned context, mean ± s.e. over episodes, log time axis (Fig. 12).

    The steps t start at 1, so the log axis keeps every step."""
    ax = plot_learning_curves(ds, var, dim=dim, ax=ax, palette="flare", label_by=None)
    if log_time:
        ax.set_xscale("log")
        ax.set_xlabel(f"{axis_label(ds['t'], STEP_LABEL)}, log scale")
    ax.set_ylabel("P(correct action)")
    return ax


def _as_dataset(ds: xr.Dataset | Mapping[str, xr.Dataset]) -> xr.Dataset:
    """A Dataset, or agents by name stacked along a new ``agent`` dim."""
    if isinstance(ds, xr.Dataset):
        return ds
    if not isinstance(ds, Mapping) or not ds:
        raise TypeError(f"ds: expected an xarray.Dataset or a non-empty dict of them by agent "
                        f"name, got {type(ds).__name__}")
    names = list(ds)
    return xr.concat([ds[n] for n in names], dim="agent", join="outer",
                     combine_attrs="drop_conflicts").assign_coords(agent=names)


def _panels(ds: xr.Dataset, variables: Sequence[str] | None) -> list[tuple[str, str | None]]:
    """``(variable, extra dim)`` to draw: the q curves when present, else every variable
    with dims ``episode, t`` (and agent/seed) only."""
    if variables is None:  # per-mode q, else contexts in learning order (Fig. 12), else q
        candidates = [n for n in ("q", "q_ordered") if n in ds]
        if "q" in ds and "mode" not in ds["q"].dims and "q_ordered" in ds:
            candidates = ["q_ordered"]
        for name in candidates:
            if "episode" in ds[name].dims and "t" in ds[name].dims:
                variables = [name]
                break
        else:
            variables = [v for v in map(str, ds.data_vars)
                         if set(ds[v].dims) - set(_GROUPS) == {"episode", "t"}]
    out = []
    for name in variables:
        if name not in ds:
            raise ValueError(f"variables: expected names from {sorted(map(str, ds.data_vars))},"
                             f" got {name!r}")
        extra = [d for d in ds[name].dims if d not in ("episode", "t", *_GROUPS)]
        if "episode" not in ds[name].dims or "t" not in ds[name].dims or len(extra) > 1:
            raise ValueError(f"ds[{name!r}]: expected dims (episode, t) and at most one other "
                             f"(mode, context, rank), got {ds[name].dims}")
        out.append((name, extra[0] if extra else None))
    if not out:
        raise ValueError(f"ds: nothing to plot, no (episode, t) variable in {list(ds.data_vars)}")
    return out


def plot_measurement(
    ds: xr.Dataset | Mapping[str, xr.Dataset],
    *,
    reference: xr.Dataset | None = None,
    reference_name: str = "reference",
    variables: Sequence[str] | None = None,
    label_by: str | None = "s",
) -> Figure:
    """A figure of any :func:`trajprobe.measure` result, chosen by what the Dataset holds.

    One machine: ``q (episode, t, mode)`` → one panel, a curve per mode named by its
    singular value (:func:`plot_learning_curves`); ``q_ordered (episode, t, rank)`` →
    ordered contexts (:func:`plot_ordered_contexts`); otherwise every ``(episode, t)``
    variable (a user's own task's too) against t, one panel each.

    Several: ``ds`` with an ``agent`` dim, or a dict of Datasets by agent name, draws one
    curve per agent; a ``seed`` dim draws each seed's episode mean thinly and the mean over
    seeds with ± s.e. over seeds; ``reference`` (e.g. the Bayes-optimal machine measured on
    the same task) is a black dashed curve named ``reference_name``. Then every mode (or
    context) gets its own panel. Panels whose variables share units share one y-range,
    which always holds 0 (and 1 for proportions, with the q = 1 line).

    Args:
        variables: the variables to draw (default: ``q`` or ``q_ordered`` if present, else
            every ``(episode, t)`` variable).
        label_by: names modes by this variable's value when constant over episodes.

    Returns:
        A ``matplotlib.figure.Figure`` (no pyplot): ``fig.savefig(path)``.
    """
    data = _as_dataset(ds)
    panels = _panels(data, variables)
    overlay = reference is not None or any(g in data.dims for g in _GROUPS)
    if not overlay and len(panels) == 1 and panels[0][1] is not None:
        fig, ax = subplots(figsize=(5.4, 3.8))
        var, dim = panels[0]
        if var == "q_ordered":
            plot_ordered_contexts(data, var, dim=dim, ax=ax)
        else:
            plot_learning_curves(data, var, dim=dim, ax=ax, label_by=label_by)
        fig.tight_layout()
        return fig
    items = [(var, dim, i) for var, dim in panels
             for i in (range(data.sizes[dim]) if dim is not None else [None])]
    ncols = min(len(items), 4)
    nrows = -(-len(items) // ncols)
    fig, axes = subplots(nrows, ncols, figsize=(4.2 * ncols, 3.5 * nrows), squeeze=False)
    for ax in axes.flat[len(items):]:
        ax.set_visible(False)
    for ax, (var, dim, i) in zip(axes.flat, items, strict=False):
        _overlay_panel(ax, data, reference, reference_name, var, dim, i, label_by)
    _share_limits(axes.flat[: len(items)], [data[var] for var, _, _ in items],
                  [_is_proportion(var) for var, _, _ in items])
    _figure_legend(fig, axes.flat[0].get_legend_handles_labels()[0], 3.5 * nrows)
    return fig


def _figure_legend(fig: Figure, handles: list[Any], height: float) -> None:
    """One legend for the figure, below the panels (room made for it: ``height`` inches)."""
    ncol = 1 if len(handles) < 3 or fig.get_figwidth() < 8 else 2
    rows = -(-len(handles) // ncol)
    bottom = (0.22 * rows + 0.1) / (height + 0.22 * rows + 0.1)
    fig.set_figheight(height + 0.22 * rows + 0.1)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize="small",
               frameon=False, bbox_to_anchor=(0.5, 0.0))


def _overlay_panel(ax: plt.Axes, data: xr.Dataset, reference: xr.Dataset | None,
                   reference_name: str, var: str, dim: str | None, i: int | None,
                   label_by: str | None) -> None:
    """One panel of :func:`plot_measurement`: a curve per agent (and seed), the reference;
    each legend entry says what its band is over."""
    da = data[var] if dim is None else data[var].isel({dim: i})
    agents = data["agent"].values.tolist() if "agent" in da.dims else [None]
    colours = sns.color_palette("colorblind", len(agents))
    for colour, agent in zip(colours, agents, strict=True):
        one = da if agent is None else da.sel(agent=agent)
        name = str(data.attrs.get("machine", "machine")) if agent is None else str(agent)
        if "seed" in one.dims:
            per_seed = one.mean("episode").transpose("t", "seed")
            ax.plot(one["t"].values, per_seed.values, color=colour, lw=0.6, alpha=0.4)
            name += ", thin: each seed"
        _curve(ax, one.dropna("t", how="all"), colour, name, name_band=True, lw=1.6)
    if reference is not None:
        if var not in reference:
            raise ValueError(f"reference: expected a variable {var!r} like ds's, got "
                             f"{sorted(map(str, reference.data_vars))}")
        ref = reference[var] if dim is None else reference[var].isel({dim: i})
        _curve(ax, ref, "black", reference_name, name_band=True, ls="--", lw=1.2)
    if _is_proportion(var):
        _target_line(ax)
    if dim is not None:
        labels, title = _curve_labels(data, dim, label_by)
        ax.set_title(labels[i] if labels[i].startswith(f"{label_by} =") else
                     f"{title} = {labels[i]}", fontsize=10)
    ax.set_xlabel(axis_label(data["t"], STEP_LABEL))
    ax.set_ylabel(axis_label(data[var]))


def _share_limits(axes: Sequence[plt.Axes], variables: Sequence[xr.DataArray],
                  proportion: Sequence[bool]) -> None:
    """One y-range for all panels whose variables have the same units."""
    groups: dict[str, list[int]] = {}
    for k, da in enumerate(variables):
        groups.setdefault(str(da.attrs.get("units", da.name)), []).append(k)
    for members in groups.values():
        bounds = np.array([[axes[k].dataLim.y0, axes[k].dataLim.y1] for k in members])
        limits = _limits(bounds.ravel(), any(proportion[k] for k in members))
        for k in members:
            axes[k].set_ylim(*limits)


# ------------------------------------------------------------------ fixed points (issue 28)

__all__ += ["plot_eigenvalue_spectra", "plot_fixed_points", "plot_time_constants"]


def plot_fixed_points(
    points: xr.Dataset,
    trajectories: xr.DataArray | np.ndarray | None = None,
    *,
    components: int = 3,
    episodes: int = 20,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Trajectories in their top principal components, fixed points marked by stability
    (FixedPointFinder's figure; Sussillo & Barak 2013 Fig. 2).

    Args:
        points: from :func:`trajprobe.fixed_points` (``state (point, unit)``, ``stable``).
        trajectories: state vectors ``[E, T, S]``, e.g. ``trace.to_dataset(machine).states``;
            the principal components are fitted to them (else to the points).
        components: 2 or 3 (a 3-D axes; pass ``ax`` made with ``projection="3d"``).
        episodes: how many trajectories to draw.
        ax: the axes to draw on.
    """
    from sklearn.decomposition import PCA

    state = _check_var(points, "state", ("point", "unit")).values
    if components not in (2, 3):
        raise ValueError(f"components: expected 2 or 3, got {components!r}")
    traj = None if trajectories is None else np.asarray(trajectories, dtype=float)
    if traj is not None and (traj.ndim != 3 or traj.shape[2] != state.shape[1]):
        raise ValueError(f"trajectories: expected [episode, t, {state.shape[1]}] state "
                         f"vectors, got shape {traj.shape}")
    fit_on = traj.reshape(-1, traj.shape[2]) if traj is not None else state
    pca = PCA(min(components, *fit_on.shape)).fit(fit_on)
    if ax is None:
        ax = plt.figure().add_subplot(projection="3d" if components == 3 else None)
    if traj is not None:
        for episode in traj[:episodes]:
            ax.plot(*pca.transform(episode).T, color="tab:blue", alpha=0.3, linewidth=0.7)
    stable = points["stable"].values.astype(bool)
    for mask, style in ((stable, dict(color="black", marker="o", label="stable")),
                        (~stable, dict(color="tab:red", marker="x", label="unstable"))):
        if mask.any():
            proj = pca.transform(state[mask])
            ax.scatter(*proj.T, s=30, **{**style, "label": f"{style['label']} ({mask.sum()})"})
    ratio = pca.explained_variance_ratio_
    setters = (ax.set_xlabel, ax.set_ylabel, getattr(ax, "set_zlabel", None))
    for k, (setter, share) in enumerate(zip(setters, ratio, strict=False)):
        setter(f"PC{k + 1} ({100 * share:.0f} % var.)")
    ax.legend(loc="best", frameon=False)
    return ax


def plot_eigenvalue_spectra(
    points: xr.Dataset, *, stable_only: bool = True, ax: plt.Axes | None = None
) -> plt.Axes:
    """The eigenvalues of ∂F/∂s at each fixed point in the complex plane, against the unit
    circle (|λ| < 1: the mode decays). ``stable_only``: the stable points alone."""
    lam = _check_var(points, "eigenvalues", ("point", "mode"))
    if stable_only:
        lam = lam.sel(point=points["stable"].values.astype(bool))
    ax = _axes(ax)
    angle = np.linspace(0, 2 * np.pi, 256)
    ax.plot(np.cos(angle), np.sin(angle), color="grey", linestyle="--", linewidth=0.8)
    colours = sns.color_palette("husl", max(lam.sizes["point"], 1))
    for colour, point in zip(colours, lam.point.values, strict=False):
        values = lam.sel(point=point).values
        ax.scatter(values.real, values.imag, s=12, color=colour, alpha=0.8,
                   label=f"point {point}")
    ax.set_aspect("equal")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    kind = "stable fixed points" if stable_only else "fixed points"
    ax.set_title(f"∂F/∂s at {lam.sizes['point']} {kind}")
    return ax


def plot_time_constants(
    linearised: xr.Dataset, *, modes: int = 3, ax: plt.Axes | None = None
) -> plt.Axes:
    """The time constants τ = −1/log|λ| of the leading modes against t: median over
    episodes with the inter-quartile band (robust to τ = ∞), on a log axis."""
    from matplotlib import ticker

    tau = _check_var(linearised, "timescale", ("episode", "t", "mode"))
    ax = _axes(ax)
    colours = sns.color_palette("viridis", modes)
    for k, colour in zip(range(min(modes, tau.sizes["mode"])), colours, strict=False):
        values = tau.isel(mode=k).values
        low, mid, high = np.nanquantile(values, [0.25, 0.5, 0.75], axis=0)
        t = tau.t.values
        ax.plot(t, mid, color=colour, label=f"mode {k + 1}")
        ax.fill_between(t, low, high, color=colour, alpha=0.2)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    ax.set_xlabel(STEP_LABEL)
    ax.set_ylabel("time constant τ (steps)")
    ax.legend(frameon=False)
    return ax
