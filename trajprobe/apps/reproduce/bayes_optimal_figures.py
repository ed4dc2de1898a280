"""The figures of the Mikulik et al. 2020 reproduction (:mod:`.bayes_optimal`), Figs. 2-4.

:mod:`trajprobe.apps.reproduce.bayes_optimal` trains the Meta-Learners, compares them with the
Bayes-optimal agents and returns labelled datasets; this module only draws those datasets, so
the plotting layer sits apart from the computation (nothing here trains or measures). Fig. 2
(:func:`plot_convergence`) shows one task's within-episode dissimilarity, the MDS view of runs
over checkpoints beside the Bayes-optimal agent, and the training curves; Fig. 3 draws both
state spaces and both embeddings with :func:`trajprobe.compare.plots.plot_simulation`, a
one-logit RNN output shown as a probability (:func:`as_probabilities`); Fig. 4
(:func:`plot_summary`) summarises every task's behavioural dissimilarity, D_s and D_o, untrained
against trained. The agent and direction labels are arguments, given by the caller.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import xarray as xr
from matplotlib.ticker import NullFormatter

from trajprobe import plots
from trajprobe.compare.plots import plot_simulation
from trajprobe.reference_models import catalogue

__all__ = ["as_probabilities", "figures", "plot_convergence", "plot_summary"]


def figures(ds: xr.Dataset, conv: dict[str, xr.Dataset], fig3: dict[str, xr.Dataset], *,
            agents: tuple[str, ...], directions: tuple[str, ...]) -> dict[str, plt.Figure]:
    """Figs. 2-4 by name: the summary of ``ds`` (the comparison dataset), one convergence
    figure per dataset of ``conv`` and one simulation figure per dataset of ``fig3``;
    ``agents`` and ``directions`` are the order of the bars and of the panels."""
    out = {"fig4_summary": plot_summary(ds, agents=agents, directions=directions)}
    for task, c in conv.items():
        out[f"fig2_convergence_{task}"] = plot_convergence(c)
    for task, sim in fig3.items():
        bandit = catalogue.get(task).kind == "bandit"
        fig = plot_simulation(as_probabilities(sim), names=("Bayes", "RNN"), output_index=0,
                              output_label="P(first arm)" if bandit else "P(x = 1)")
        fig.suptitle(f"Fig. 3 — {task}: Bayes states (top left), RNN states (bottom right), "
                     f"embeddings off the diagonal\ncolour: the output emitted there, "
                     + ("probability of pulling the first arm" if bandit else
                        "predicted probability of x = 1"), fontsize=9)
        fig.tight_layout()
        out[f"fig3_simulation_{task}"] = fig
    return out


def as_probabilities(sim: xr.Dataset) -> xr.Dataset:
    """For a figure: a one-logit RNN output (Bernoulli prediction) as its probability."""
    if sim.sizes["feature_b"] != 1:
        return sim
    return sim.assign(output_b=1 / (1 + np.exp(-sim["output_b"])),
                      output_b_from_a=1 / (1 + np.exp(-sim["output_b_from_a"])))


def plot_summary(ds: xr.Dataset, *, agents: tuple[str, ...],
                 directions: tuple[str, ...]) -> plt.Figure:
    """Fig. 4: per task, median over seeds (bars) and 5-95 % range, untrained vs trained."""
    panels = [("behavioural_dissimilarity", None, "behaviour\nKL (eq. 2) / |Δr| (eq. 3)")]
    panels += [(var, d, f"{label} {d}") for d in directions
               for var, label in (("state_dissimilarity", "D_s"),
                                  ("output_dissimilarity", "D_o"))]
    n_tasks = ds.sizes["task"]
    n_prediction = int((ds["kind"] == "prediction").sum())
    fig, axes = plots.subplots(1, len(panels), figsize=(3.2 * len(panels), 0.35 * n_tasks + 1.8),
                             sharey=True)
    for i, (ax, (var, direction, title)) in enumerate(zip(axes, panels, strict=True)):
        da = ds[var] if direction is None else ds[var].sel(direction=direction, drop=True)
        frame = da.drop_vars("kind").rename("value").to_dataframe().reset_index()
        frame["value"] = frame["value"].clip(lower=1e-6)
        sns.barplot(data=frame, y="task", x="value", hue="agent", estimator="median",
                    errorbar=("pi", 90), orient="h", ax=ax, hue_order=list(agents),
                    palette={"untrained": "0.7", "trained": "tab:blue"}, legend=i == 0)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.axhline(n_prediction - 0.5, color="0.3", lw=0.8, ls="--")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("dissimilarity (log)")
        ax.set_ylabel("")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    fig.legend(handles, labels, title="Meta-Learner", loc="upper right", fontsize=8,
               ncols=2, frameon=False)
    fig.suptitle("Fig. 4 — behavioural and structural comparison with the Bayes-optimal agent "
                 "(bars: median over seeds, whiskers: 5–95 %; lower = more similar;\n"
                 "above the dashed line prediction tasks, below it two-armed bandits)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def plot_convergence(ds: xr.Dataset) -> plt.Figure:
    """Fig. 2: within-episode dissimilarity (seed 0), MDS of runs × checkpoints, training."""
    task, kind = ds.attrs["task"], ds.attrs["kind"]
    fig, axes = plots.subplots(1, 3, figsize=(15, 4.2))
    within = ds["within_episode"].isel(seed=0)
    n_ckpt = within.sizes["checkpoint"]
    palette = sns.color_palette("crest", n_colors=n_ckpt)
    for c in range(n_ckpt):
        axes[0].plot(within["t"], within.isel(checkpoint=c), color=palette[c],
                     label=f"{int(within['checkpoint'][c]):,} ep")
    axes[0].set_xlabel("step t in the episode")
    axes[0].set_ylabel("KL(π_Bayes ‖ π_RNN)" if kind == "prediction"
                       else "regret_t(RNN) − regret_t(Bayes)")
    axes[0].set_title("within-episode dissimilarity, seed 0\n(light → dark: later checkpoints)",
                      fontsize=9)
    axes[0].legend(fontsize=7, title="training episodes", title_fontsize=7)
    if kind == "prediction":
        axes[0].set_yscale("log")
    emb = ds["embedding"]
    for seed in emb["seed"].values:
        xy = emb.sel(seed=seed).values
        axes[1].plot(xy[:, 0], xy[:, 1], color="0.6", lw=1, zorder=1)
        axes[1].scatter(xy[:, 0], xy[:, 1], c=palette, s=22, zorder=2)
        axes[1].annotate(f"seed {seed}", xy[0], fontsize=7, color="0.4")
    ref = ds["reference_embedding"].values
    axes[1].scatter([ref[0]], [ref[1]], marker="*", s=220, color="crimson", zorder=3,
                    label="Bayes-optimal")
    axes[1].set_xlabel("MDS 1")
    axes[1].set_ylabel("MDS 2")
    axes[1].set_aspect("equal", adjustable="datalim")
    axes[1].legend(fontsize=8, loc="best", markerscale=0.6)
    axes[1].set_title("runs over checkpoints (MDS of "
                      + ("JS distances" if kind == "prediction" else "|regret differences|")
                      + ")", fontsize=9)
    curve = ds["training_curve"]
    for seed in curve["seed"].values:
        axes[2].plot(curve["step"], curve.sel(seed=seed), label=f"seed {seed}", lw=1)
    linthresh = max(float(curve["step"].min()), 1.0)
    axes[2].set_xscale("symlog", linthresh=linthresh)
    axes[2].set_xlabel(f"training episodes (symlog: linear below {linthresh:g})")
    axes[2].set_ylabel("training log-loss" if kind == "prediction" else "mean reward per step")
    axes[2].set_title("training curves", fontsize=9)
    axes[2].legend(fontsize=8)
    fig.suptitle(f"Fig. 2 — convergence towards the Bayes-optimal agent: {task}", fontsize=11)
    fig.tight_layout()
    return fig
