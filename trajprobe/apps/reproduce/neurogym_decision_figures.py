"""The figures of the neurogym-decision target (:mod:`.neurogym_decision`).

Only drawing: the psychometric curves, the D_s/D_o comparison, the slow points in the
trajectories' principal plane, and the state on the choice axis against the ideal
observer's log-odds. Nothing here trains or measures.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from trajprobe.apps.reproduce.neurogym_decision_geometry import at_condition

__all__ = ["figures", "plot_comparison", "plot_line", "plot_psychometric", "plot_slow_points"]

_COLOURS = {"ideal observer": "black", "GRU": "tab:blue", "LSTM": "tab:orange"}


def figures(measured: dict[str, Any], agents: tuple[str, ...], ideal: str
            ) -> dict[str, plt.Figure]:
    """Every figure by file stem, from one seed's measurements (``_measure``'s dict)."""
    out = {"psychometric": plot_psychometric(measured["psychometric"], (ideal, *agents)),
           "comparison": plot_comparison(measured["comparison"])}
    out["slow_points"] = plot_slow_points(measured, agents)
    out["line_vs_log_odds"] = plot_line(measured["line"], agents)
    return out


def plot_psychometric(ds: xr.Dataset, agents: tuple[str, ...]) -> plt.Figure:
    """Accuracy against coherence and P(choice 1) against signed coherence, per agent,
    with s.e. bars and the observer's closed form."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for agent in agents:
        colour = _COLOURS.get(agent)
        sel = ds.sel(agent=agent)
        left.errorbar(ds.coh, sel.accuracy, yerr=sel.accuracy_sem, marker="o", capsize=2,
                      color=colour, label=agent)
        right.errorbar(ds.signed_coh, sel.p_choice_1, yerr=sel.p_choice_1_sem, marker="o",
                       capsize=2, linestyle="none", color=colour, label=agent)
    right.plot(ds.signed_coh, ds.closed_form, color="grey", linestyle="--",
               label="closed form Φ(c√n / 100σ√2)")
    left.set(xlabel="coherence (%)", ylabel="accuracy", ylim=(0.4, 1.02),
             title="accuracy against coherence")
    right.set(xlabel="signed coherence (%) (+: evidence for choice 1)",
              ylabel="P(choice 1)", ylim=(-0.02, 1.02), title="psychometric curve")
    left.legend(fontsize=8)
    right.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_comparison(ds: xr.Dataset) -> plt.Figure:
    """Output simulation score, D_o (bits per step) and D_s per network and direction."""
    panels = [("output_simulation_score", "output simulation score (1 = exact)"),
              ("output_dissimilarity_bits_per_step", "D_o (bits per step)"),
              ("state_dissimilarity", "D_s")]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    agents, directions = list(ds.agent.values), list(ds.direction.values)
    width = 0.8 / len(directions)
    for ax, (var, title) in zip(axes, panels, strict=True):
        da = ds[var].mean("seed") if "seed" in ds[var].dims else ds[var]
        for j, direction in enumerate(directions):
            values = [float(da.sel(agent=a, direction=direction)) for a in agents]
            ax.bar(np.arange(len(agents)) + (j - (len(directions) - 1) / 2) * width, values,
                   width, label=direction)
        ax.set_xticks(np.arange(len(agents)), agents)
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle("each network against the ideal observer (direction a→b: b simulates a)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def _pca(states: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    centre = states.mean(0)
    _, _, vt = np.linalg.svd(states - centre, full_matrices=False)
    return centre, vt[:k]


def plot_slow_points(measured: dict[str, Any], agents: tuple[str, ...],
                     n_trials: int = 60) -> plt.Figure:
    """Per network: trials' trajectories (stimulus and decision steps) in the plane of the
    stimulus-period states' first two PCs, coloured by signed coherence, and the slow points
    of every input (filled: stable, hollow: unstable), the choice axis drawn."""
    fig, axes = plt.subplots(1, len(agents), figsize=(5.2 * len(agents), 4.4), squeeze=False)
    episodes, observer = measured["episodes"], measured["observer"]
    trial = observer.trial_steps
    stim0 = observer.periods["fixation"]
    coh = episodes.params["coh"].double().numpy()
    label = episodes.targets.numpy()
    cmap = plt.get_cmap("coolwarm")
    top = float(np.abs(coh).max()) or 1.0
    for ax, agent in zip(axes[0], agents, strict=True):
        vectors = measured["vectors"][agent].double().numpy()  # [E, T, S]: s_t after x_t
        n_ep, n_steps = vectors.shape[:2]
        stim = (np.arange(n_steps) % trial >= stim0) & (
            np.arange(n_steps) % trial < stim0 + observer.periods["stimulus"])
        centre, pcs = _pca(vectors[:, stim].reshape(-1, vectors.shape[-1]))
        shown = 0
        for e in range(n_ep):
            for start in range(0, n_steps - trial + 1, trial):
                if shown >= n_trials:
                    break
                end = start + trial
                gt = label[e, end - 1]
                signed = coh[e, start] * (1 if gt == 1 else -1)
                xy = (vectors[e, start + stim0 - 1:end] - centre) @ pcs.T
                ax.plot(xy[:, 0], xy[:, 1], color=cmap(0.5 + signed / (2 * top)), lw=0.6,
                        alpha=0.6)
                shown += 1
        points = measured["points"][agent]
        for condition in np.unique(points.condition.values):
            sel = at_condition(points, condition)
            xy = (sel.state.values - centre) @ pcs.T
            stable = sel.stable.values.astype(bool)
            colour = "black" if condition == "fixation" else cmap(
                0.5 + float(condition.split()[0]) / (2 * top))
            ax.scatter(xy[stable, 0], xy[stable, 1], s=14, color=colour, edgecolor="k",
                       linewidth=0.3, zorder=3)
            ax.scatter(xy[~stable, 0], xy[~stable, 1], s=14, facecolor="none",
                       edgecolor=colour, linewidth=0.8, zorder=3)
        line = measured["line"][agent]
        zero = at_condition(points, "+0 %")
        axis = line.axis.values
        span = np.array([float(line.on_axis.min()), float(line.on_axis.max())])
        mid = centre - (centre @ axis) * axis  # the axis through the states' centre
        xy = (mid + span[:, None] * axis - centre) @ pcs.T
        ax.plot(xy[:, 0], xy[:, 1], color="grey", linestyle="--", lw=1,
                label="choice axis (states' range)")
        ax.legend(fontsize=7, loc="lower right")
        ax.set(xlabel="PC 1", ylabel="PC 2",
               title=f"{agent}: {zero.sizes['point']} slow points at 0 %, "
                     f"{points.sizes['point']} in all")
    fig.suptitle("trajectories (colour: signed coherence, red = choice 1) and slow points "
                 "(filled: stable; black: fixation input)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_line(lines: dict[str, xr.Dataset], agents: tuple[str, ...]) -> plt.Figure:
    """Per network: its state on its choice axis against the observer's log-odds, every
    stimulus step, coloured by the step within the stimulus."""
    fig, axes = plt.subplots(1, len(agents), figsize=(4.6 * len(agents), 3.8), squeeze=False)
    for ax, agent in zip(axes[0], agents, strict=True):
        ds = lines[agent]
        n = min(ds.sizes["sample"], 6000)
        pick = np.random.default_rng(0).choice(ds.sizes["sample"], n, replace=False)
        sc = ax.scatter(ds.log_odds.values[pick], ds.on_axis.values[pick], s=2,
                        c=ds.step.values[pick], cmap="viridis", alpha=0.5)
        ax.set(xlabel="ideal observer's log-odds log P(1|x) − log P(2|x)",
               ylabel="state on the network's choice axis",
               title=f"{agent}: r = {float(ds.r_axis):.3f}, ρ = {float(ds.rho_axis):.3f}")
        fig.colorbar(sc, ax=ax, label="stimulus step")
    fig.tight_layout()
    return fig
