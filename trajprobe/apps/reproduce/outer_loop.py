"""The outer-loop view (Rabinowitz §6, Figs. 14-16): inner learning at successive checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr

from trajprobe import plots
from trajprobe.apps.training import load_model
from trajprobe.dynamics import steps_to_threshold

__all__ = ["outer_loop_spectra", "plot_outer_loop"]


def outer_loop_spectra(
    build_model: Callable[[], torch.nn.Module],
    checkpoints: list[tuple[int, Path]],
    measure: Callable[[torch.nn.Module], xr.Dataset],
    cutoff: float,
    *,
    device: torch.device | str | None = None,
    var: str = "q",
    dim: str = "mode",
) -> xr.Dataset:
    """Measure every checkpoint of a meta-training run the same way.

    Args:
        build_model: a fresh model of the run's architecture (weights are loaded into it).
        checkpoints: ``(outer step, path)`` pairs, e.g. from
            :func:`trajprobe.apps.training.list_checkpoints`.
        measure: model → Dataset with ``var`` ``(episode, t, dim)`` (e.g.
            :func:`trajprobe.effective_spectra` on fixed episodes).
        cutoff: c of the steps-to-threshold summary.

    Returns:
        Dataset over ``(checkpoint, dim)``: ``steps_to_threshold`` (first inner step t with
        the episode-mean ``var`` > c; inf if never), ``final`` (episode-mean ``var`` at the
        last t) and ``curve (checkpoint, t, dim)``; coordinate ``checkpoint`` = outer step.
    """
    if not checkpoints:
        raise ValueError("checkpoints: expected at least one (step, path) pair, got none")
    steps, finals, curves = [], [], []
    for _, path in checkpoints:
        model = load_model(path, build_model(), map_location=str(device or "cpu"))
        mean = measure(model)[var].mean("episode")
        curves.append(mean)
        steps.append(steps_to_threshold(mean, cutoff))
        finals.append(mean.isel(t=-1, drop=True))
    coord = {"checkpoint": np.array([s for s, _ in checkpoints])}
    return xr.Dataset(
        {"steps_to_threshold": xr.concat(steps, "checkpoint").assign_coords(coord),
         "final": xr.concat(finals, "checkpoint").assign_coords(coord),
         "curve": xr.concat(curves, "checkpoint").assign_coords(coord)},
        attrs={"cutoff": cutoff, "variable": var},
    ).transpose("checkpoint", ...)


def plot_outer_loop(ds: xr.Dataset, cutoff: float, *, label: str = "mode",
                    dim: str = "mode") -> plt.Figure:
    """Fig. 14b-style: inner steps to threshold, and the final q, against outer steps."""
    if "seed" in ds.dims:
        ds = ds.mean("seed")
    fig, axes = plots.subplots(1, 2, figsize=(10, 3.6))
    x = np.maximum(ds["checkpoint"].values, 1)
    for value in ds[dim].values:
        sel = ds.sel({dim: value})
        axes[0].plot(x, np.where(np.isfinite(sel["steps_to_threshold"]),
                                 sel["steps_to_threshold"], np.nan), marker="o",
                     label=f"{label} {value}")
        axes[1].plot(x, sel["final"], marker="o", label=f"{label} {value}")
    if not np.isfinite(ds["steps_to_threshold"].values).any():
        axes[0].text(0.5, 0.5, f"no {label} reached q > {cutoff}\nat any checkpoint",
                     ha="center", va="center", transform=axes[0].transAxes, color="0.4")
    axes[0].set_ylabel(f"inner steps until q > {cutoff}")
    axes[1].set_ylabel("q at the last inner step")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("outer (meta-training) step")
        ax.legend(fontsize="small")
    fig.suptitle("Outer loop: inner learning at successive checkpoints")
    fig.tight_layout()
    return fig
