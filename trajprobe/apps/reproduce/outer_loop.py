"""The outer-loop view (Rabinowitz §6, Figs. 14-16): inner learning at successive checkpoints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr

from trajprobe import plots
from trajprobe.apps.runs import load_run
from trajprobe.dynamics import steps_to_threshold

__all__ = ["outer_loop_spectra", "plot_outer_loop"]


def outer_loop_spectra(
    recipe: Any,
    checkpoints: list[tuple[int, Path]],
    measure: Callable[[torch.nn.Module], xr.Dataset],
    cutoff: float,
    *,
    device: torch.device | str | None = None,
    var: str = "q",
    dim: str = "mode",
    interpolate: bool = True,
) -> xr.Dataset:
    """Measure every checkpoint of a meta-training run the same way.

    Args:
        recipe: the :class:`~trajprobe.apps.recipes.MetaLearnerRecipe` that trained the run
            (each checkpoint is loaded by :func:`~trajprobe.apps.load_run`, which checks
            the run's record against it).
        checkpoints: ``(outer step, path)`` pairs, e.g. from
            :func:`trajprobe.apps.training.list_checkpoints`.
        measure: model → Dataset with ``var`` ``(episode, t, dim)`` (e.g.
            :func:`trajprobe.effective_spectra` on fixed episodes).
        cutoff: c of the steps-to-threshold summary.
        interpolate: crossing times interpolated between inner steps, as in the reports'
            time ratios (False: the first step above;
            :func:`~trajprobe.dynamics.steps_to_threshold`).

    Returns:
        Dataset over ``(checkpoint, dim)``: ``steps_to_threshold`` (the inner time t at
        which the episode-mean ``var`` first exceeds c; inf if never), ``final``
        (episode-mean ``var`` at the last t) and ``curve (checkpoint, t, dim)``;
        coordinate ``checkpoint`` = outer step.
    """
    if not checkpoints:
        raise ValueError("checkpoints: expected at least one (step, path) pair, got none")
    steps, finals, curves = [], [], []
    for _, path in checkpoints:
        model = load_run(path, recipe=recipe, device=device).machine
        mean = measure(model)[var].mean("episode")
        curves.append(mean)
        steps.append(steps_to_threshold(mean, cutoff, interpolate=interpolate))
        finals.append(mean.isel(t=-1, drop=True))
    coord = {"checkpoint": np.array([s for s, _ in checkpoints])}
    return xr.Dataset(
        {"steps_to_threshold": xr.concat(steps, "checkpoint").assign_coords(coord),
         "final": xr.concat(finals, "checkpoint").assign_coords(coord),
         "curve": xr.concat(curves, "checkpoint").assign_coords(coord)},
        attrs={"cutoff": cutoff, "variable": var, "interpolated": int(interpolate)},
    ).transpose("checkpoint", ...)


def plot_outer_loop(ds: xr.Dataset, cutoff: float, *, label: str = "mode",
                    dim: str = "mode", names: Sequence[str] | None = None) -> plt.Figure:
    """Fig. 14b-style: inner steps to threshold, and the final q, against outer steps.

    The outer-step axis is symlog (linear from 0 to 1, logarithmic beyond), so checkpoint 0,
    the untrained network, stays on it. Curves are named ``names`` (e.g. ``"s = 2.5"``),
    else ``"{label} {value}"``; with a ``seed`` dim they are means over seeds.
    """
    n_seeds = ds.sizes.get("seed", 1)
    if "seed" in ds.dims:
        ds = ds.mean("seed")
    if names is None:
        names = [f"{label} {value}" for value in ds[dim].values]
    fig, axes = plots.subplots(1, 2, figsize=(10, 3.8))
    x = ds["checkpoint"].values
    for value, name in zip(ds[dim].values, names, strict=True):
        sel = ds.sel({dim: value})
        axes[0].plot(x, np.where(np.isfinite(sel["steps_to_threshold"]),
                                 sel["steps_to_threshold"], np.nan), marker="o", label=name)
        axes[1].plot(x, sel["final"], marker="o", label=name)
    if not np.isfinite(ds["steps_to_threshold"].values).any():
        axes[0].text(0.5, 0.5, f"no {label} reached q > {cutoff}\nat any checkpoint",
                     ha="center", va="center", transform=axes[0].transAxes, color="0.4")
    axes[0].set_ylabel(f"inner steps t until q > {cutoff}")
    axes[1].set_ylabel("q at the last inner step")
    axes[1].axhline(1.0, color="0.35", lw=0.9, ls=":", label="q = 1 (target learned)")
    final = ds["final"].values[np.isfinite(ds["final"].values)]
    low, high = min(final.min(initial=0.0), 0.0), max(final.max(initial=1.0), 1.0)
    axes[1].set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
    for ax in axes:
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(0, max(float(x.max()), 1.0) * 1.6)
        ax.set_xlabel("outer (meta-training) step, symlog: linear 0–1")
    axes[1].legend(fontsize="small")
    seeds = f", mean of {n_seeds} seeds" if n_seeds > 1 else ""
    fig.suptitle(f"Outer loop: inner learning at successive checkpoints{seeds}")
    fig.tight_layout()
    return fig
