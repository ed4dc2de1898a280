"""Figures for the comparison results (Mikulik et al. 2020 Figs. 2, 3 and 4).

Plotting is a layer on top of the labelled results: every function takes a Dataset or
DataArray from :mod:`trajprobe.compare` and returns a ``matplotlib.figure.Figure``. The
figures are built without ``pyplot`` (``Figure()`` renders through the Agg canvas), so
they work without a display and never change the global backend or open windows; save
with ``fig.savefig(path)``.
"""

from __future__ import annotations

import numpy as np
import seaborn as sns
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["plot_agents_mds", "plot_bar_summary", "plot_mds_trajectories", "plot_simulation"]


def _colour(values: np.ndarray, output_index: int) -> np.ndarray:
    """One colour value per state: output feature ``output_index`` (``[K, T, O]`` → ``[K·T]``)."""
    return values[..., output_index].reshape(-1)


def plot_simulation(
    result: xr.Dataset,
    *,
    names: tuple[str, str] = ("a", "b"),
    output_index: int = 0,
    n_lines: int = 3,
    components: tuple[int, int] = (0, 1),
    output_label: str | None = None,
) -> Figure:
    """Fig. 3: both state spaces and both embeddings, coloured by the output emitted there.

    Row i shows machine i's (whitened) principal-component space, column j the source
    machine: the diagonal holds each machine's own states; off the diagonal, the other
    machine's states embedded by φ, coloured by *this* machine's output evaluated at the
    embedded state. With a = Bayes and b = RNN this is the paper's layout (Bayes top-left,
    RNN bottom-right, RNN→Bayes top-right, Bayes→RNN bottom-left). Panel titles carry the
    D_s of each embedding. Points are the reported (whitened) components of a whitening
    fitted on all episodes; a machine with a single reported component is drawn against
    the step t. Lines trace the first ``n_lines`` episodes.

    Args:
        result: from :func:`trajprobe.compare.simulation`.
        names: display names of machines a and b.
        output_index: which output feature colours the points (e.g. 0 for a Bernoulli
            probability; a logit for a bandit policy).
        n_lines: episodes drawn as white lines.
        components: the two components on the axes.
        output_label: what the colour is (e.g. ``"P(x = 1)"``); the colourbar reads
            "<machine>: <output_label>" (default "<machine> output <output_index>").
    """
    c0, c1 = components
    panels = {
        (0, 0): (result["whitened_a"].values, result["output_a"].values, f"{names[0]} states"),
        (1, 1): (result["whitened_b"].values, result["output_b"].values, f"{names[1]} states"),
    }
    for (row, col), (src, dst) in (((0, 1), ("b", "a")), ((1, 0), ("a", "b"))):
        name = f"embedded_{dst}_from_{src}"
        if name not in result:
            continue
        direction = f"{src}→{dst}"
        panels[(row, col)] = (
            result[name].values, result[f"output_{dst}_from_{src}"].values,
            f"{names['ab'.index(src)]} → {names['ab'.index(dst)]}  D_s = "
            f"{float(result['state_dissimilarity'].sel(direction=direction)):.3g}")
    fig = Figure(figsize=(8, 8))
    axes = fig.subplots(2, 2, squeeze=False)
    for (row, col), (z, y, title) in panels.items():
        ax = axes[row][col]
        if z.shape[-1] == 0:
            ax.set_title(f"{title}\n(no variance)", fontsize=9)
            continue
        x_axis = z[..., c0]
        # A machine with one reported component is drawn against the step t.
        y_axis = z[..., c1] if z.shape[-1] > c1 else np.broadcast_to(
            np.arange(1, z.shape[1] + 1), z.shape[:2])
        points = ax.scatter(x_axis.reshape(-1), y_axis.reshape(-1),
                            c=_colour(y, output_index), s=6, cmap="viridis")
        for k in range(min(n_lines, z.shape[0])):
            ax.plot(x_axis[k], y_axis[k], color="white", lw=1.0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"PC {c0 + 1} (whitened)")
        ax.set_ylabel(f"PC {c1 + 1} (whitened)" if z.shape[-1] > c1 else "step t")
        colour = f"output {output_index}" if output_label is None else output_label
        fig.colorbar(points, ax=ax, fraction=0.046, label=f"{names[row]}: {colour}")
    fig.tight_layout()
    return fig


def plot_mds_trajectories(result: xr.Dataset, *, reference_name: str = "Bayes") -> Figure:
    """Fig. 2 (top right): each run's checkpoints as a curve in the 2-D MDS embedding.

    Args:
        result: from :func:`trajprobe.compare.prediction_convergence` or
            :func:`~trajprobe.compare.regret_convergence`.
        reference_name: legend label of the reference point (a star).
    """
    emb = result["embedding"]
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    palette = sns.color_palette("crest", n_colors=emb.sizes["checkpoint"])
    for run in emb["run"].values:
        xy = emb.sel(run=run).values
        ax.plot(xy[:, 0], xy[:, 1], color="0.6", lw=1, zorder=1)
        ax.scatter(xy[:, 0], xy[:, 1], c=palette, s=18, zorder=2)
    ref = result["reference_embedding"].values
    ax.scatter([ref[0]], [ref[1]], marker="*", s=200, color="crimson", zorder=3,
               label=reference_name)
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.legend(frameon=False)
    ax.set_title("runs over checkpoints (light → dark)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_agents_mds(result: xr.Dataset) -> Figure:
    """Agents as points in the 2-D MDS embedding of their symmetrised D_s, and the D_s
    matrix beside it (rows: source agent; columns: the agent that simulates it).

    Args:
        result: from :func:`trajprobe.compare.pairwise_simulation`.
    """
    emb = result["embedding"]
    names = [str(n) for n in result["agent"].values]
    fig = Figure(figsize=(10, 4.5))
    ax, heat = fig.subplots(1, 2)
    xy = emb.values
    ax.scatter(xy[:, 0], xy[:, 1], s=40, color="crimson", zorder=2)
    for name, (x, y) in zip(names, xy, strict=True):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_title("agents by ½(D_s(i→j) + D_s(j→i))", fontsize=9)
    sns.heatmap(result["state_dissimilarity"].values, ax=heat, annot=len(names) <= 8,
                fmt=".2g", xticklabels=names, yticklabels=names, cmap="crest")
    heat.set_xlabel("simulated by (target)")
    heat.set_ylabel("agent (source)")
    heat.set_title("D_s (agent → other_agent)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_bar_summary(values: xr.DataArray, *, hue: str | None = None,
                     ylabel: str | None = None) -> Figure:
    """Fig. 4: per task, the median over runs as a bar and the 5–95 % range as error bars.

    Args:
        values: a DataArray with dims ``task`` and ``run`` (and ``hue`` if given, e.g.
            ``direction`` or ``agent``), e.g. D_o of every task and run.
        hue: an extra dimension drawn as side-by-side bars.
        ylabel: y-axis label (the DataArray's name if None).
    """
    needed = {"task", "run"} | ({hue} if hue else set())
    if not needed <= set(values.dims) or len(values.dims) != len(needed):
        raise ValueError(
            f"values: expected dims {sorted(needed)}, got {list(values.dims)}"
        )
    frame = values.rename("value").to_dataframe().reset_index()
    fig = Figure(figsize=(max(4, 0.8 * values.sizes["task"] + 2), 4))
    ax = fig.subplots()
    sns.barplot(data=frame, x="task", y="value", hue=hue, estimator="median",
                errorbar=("pi", 90), ax=ax)
    ax.set_ylabel(ylabel or (values.name or "value"))
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig
