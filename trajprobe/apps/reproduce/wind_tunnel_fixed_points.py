"""Fixed points of the wind-tunnel HMM filters against the forward filter's own (issue 35).

For HMM filtering, the fixed and slow points (:func:`trajprobe.fixed_points`, Sussillo &
Barak 2013) of every recurrent learner under each observation symbol j held constant,
beside the forward filter's: under a constant j the belief converges to b*_j, the Perron
left eigenvector of A_j = diag(E[:, j]) T normalised to sum 1 (b* = normalise(b* ⊙ E[:, j]) T
⇔ b* A_j = (b*·E[:, j]) b*, rows of T summing to 1), whose predictive is b*_j E. Per
learner and symbol: the number of fixed points and of stable ones, the *attractor* (the
stable point nearest to where a long constant-j run ends), KL(b*_j E ‖ learner's predictive
there) in bits, and the slowest mode |λ1| of the learner there beside the filter's own at
b*_j. Learners without fixed points to find are skipped with a note: a state holding a
position (an integer leaf: a cache that grows every step, the transformer) or a next state
that does not depend on the parameters (a buffer of the last inputs, the MLP over a
window). :mod:`.wind_tunnel_structure` re-exports :func:`filter_fixed_points`.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr
from matplotlib.figure import Figure
from torch import nn
from torch.distributions import Categorical, kl_divergence

from trajprobe import machine as sm
from trajprobe.apps.reproduce.base import SummaryRow
from trajprobe.apps.reproduce.wind_tunnel_comparison import (
    LN2,
    SETTINGS,
    StructureSettings,
    check_learners,
)
from trajprobe.fixed_point_search import fixed_points
from trajprobe.randomness import make_generator
from trajprobe.traces import rollout

__all__ = [
    "FIXED_POINT_NOISE",
    "SLOW_Q",
    "belief_fixed_points",
    "filter_fixed_points",
    "no_fixed_point_reason",
    "plot_filter_fixed_points",
]

FIXED_POINT_NOISE = 0.05
"""Noise added to each initial state of the fixed-point search (to reach saddles too)."""

SLOW_Q = 1e-6
"""A point is kept when q = ½‖F(s) − s‖² is at most this (fixed or slow)."""

def belief_fixed_points(transition: Any, emission: Any) -> np.ndarray:
    """The forward filter's fixed belief under each symbol held constant, in closed form.

    b*_j = normalise(b*_j ⊙ E[:, j]) T ⇔ b*_j A_j = (b*_j · E[:, j]) b*_j with
    A_j = diag(E[:, j]) T: b*_j is the left Perron eigenvector of A_j, normalised to sum 1
    (its eigenvalue is b*_j · E[:, j], since the rows of T sum to 1).

    Args:
        transition: ``[K, K]`` T, rows summing to 1.
        emission: ``[K, M]`` E, rows summing to 1.

    Returns:
        ``[M, K]`` row j = b*_j.
    """
    t = np.asarray(transition, dtype=float)
    e = np.asarray(emission, dtype=float)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or e.ndim != 2 or e.shape[0] != t.shape[0]:
        raise ValueError(f"transition, emission: expected [K, K] and [K, M], got "
                         f"{list(t.shape)} and {list(e.shape)}")
    beliefs = []
    for j in range(e.shape[1]):
        values, vectors = np.linalg.eig((np.diag(e[:, j]) @ t).T)
        v = np.real(vectors[:, np.argmax(np.real(values))])
        beliefs.append(np.abs(v) / np.abs(v).sum())
    return np.stack(beliefs)


def no_fixed_point_reason(machine: Any, input_size: int) -> str:
    """Why ``machine`` has no fixed points worth finding ("" when it has); ``input_size``
    is its task's (the width of x_t, for the test step).

    A state holding a position (an integer leaf) is a cache that grows every step; a next
    state that does not depend on the machine's parameters is a buffer of its inputs.
    """
    leaves = sm.tree_leaves(machine.initial_state(2))
    if any(not leaf.is_floating_point() for leaf in leaves):
        return ("its state holds a position (an integer leaf): a cache that grows every step, "
                "so a constant input has no fixed point")
    if not isinstance(machine, nn.Module):
        return ""
    params = [p for p in machine.parameters() if p.requires_grad]
    if not params:
        return ""
    gen = torch.Generator().manual_seed(0)
    vector = sm.state_vector(machine, machine.initial_state(2))
    state = sm.state_from_vector(machine, torch.randn(vector.shape, generator=gen).to(vector))
    x = torch.rand(2, input_size, generator=gen).to(vector)
    with torch.enable_grad():
        new = sm.state_vector(machine, machine.step(x, state)[1])
        grads = torch.autograd.grad(new.sum(), params, allow_unused=True) \
            if new.requires_grad else [None]
    if all(g is None or not bool(g.abs().gt(0).any()) for g in grads):
        return ("its next state does not depend on its parameters (a buffer of its last "
                "inputs, e.g. a fixed window): under a constant input it just fills with "
                "that input, no learned dynamics to analyse")
    return ""


def _symbol_inputs(task: Any) -> torch.Tensor:
    """``[M, M + 1]`` the HMM filtering input [one-hot j, flag 1] of every symbol j."""
    m = int(task.n_symbols)
    if int(task.input_size) != m + 1:
        raise ValueError(f"task: expected HMM filtering inputs [one-hot x_(t-1), flag] of "
                         f"size {m + 1}, got input_size {task.input_size}")
    return torch.cat([torch.eye(m), torch.ones(m, 1)], dim=1)


def _probs(machine: Any, y: torch.Tensor) -> torch.Tensor:
    return machine.distribution(y).probs.detach().double()


def _kl_bits(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) in bits between categorical probabilities ``[..., M]``."""
    return (kl_divergence(Categorical(probs=p), Categorical(probs=q)) / LN2).clamp_min(0.0)


def _leading_magnitude(eigenvalues: np.ndarray) -> float:
    return float(np.abs(eigenvalues).max()) if eigenvalues.size else math.nan


def _bayes_magnitude(bayes: Any, x: torch.Tensor, belief: np.ndarray) -> float:
    """|λ1| of the exact filter's step at its fixed belief (its slowest mode)."""
    b = torch.as_tensor(belief, dtype=torch.float64)[None]
    x = x[None].to(torch.float64)
    jac = torch.func.jacrev(lambda s: bayes.step(x, s)[1])(b)[0, :, 0]
    return _leading_magnitude(torch.linalg.eigvals(jac).numpy())


def _learner_points(learner: Any, symbols: torch.Tensor, trace: Any,
                    settings: StructureSettings, seed: int) -> list[dict[str, Any]]:
    """Per symbol: the fixed points of ``learner`` and its attractor (module docstring)."""
    out = []
    dtype = sm.machine_dtype(learner)
    n = trace.inputs.shape[0]
    for j in range(symbols.shape[0]):
        x = symbols[j].to(dtype)
        relax = rollout(learner, x.expand(n, settings.relax_steps, -1))
        ends = relax.state_vectors(learner)[:, -1]
        starts = torch.cat([trace.state_vectors(learner)[:, 1:].flatten(0, 1), ends])
        pick = torch.randperm(starts.shape[0], generator=make_generator(seed + j))
        starts = torch.cat([ends[:8], starts[pick[:settings.fixed_point_samples]]])
        points = fixed_points(learner, x, starts, noise=FIXED_POINT_NOISE,
                              max_iters=settings.fixed_point_iters, max_q=SLOW_Q, seed=seed)
        state = torch.as_tensor(points["state"].values)
        stable = points["stable"].values.astype(bool)
        centre = ends.double().median(0).values
        attractor = None
        if stable.any():
            distance = (state.double() - centre).norm(dim=1)
            distance[~torch.as_tensor(stable)] = math.inf
            attractor = int(distance.argmin())
        y_end = relax.outputs[:, -1]
        out.append({"points": points, "attractor": attractor, "end_state": centre,
                    "end_probs": _probs(learner, y_end).mean(0)})
    return out


def filter_fixed_points(
    learners: dict[str, Any],
    task: Any,
    *,
    preset: str,
    seed: int,
) -> tuple[xr.Dataset, list[SummaryRow], dict[str, Figure], list[str]]:
    """Fixed points of every recurrent learner under each symbol held constant, against the
    forward filter's fixed beliefs (module docstring).

    Args:
        learners: name → trained machine with ``distribution`` on an HMM filtering task.
        task: an :class:`~trajprobe.tasks.HMMFiltering` (``transition``, ``emission``,
            ``bayes_machine``, inputs [one-hot x_(t-1), flag]).
        preset: ``"smoke"``, ``"quick"`` or ``"paper"`` (:data:`SETTINGS`).
        seed: draws the episodes seeding the search and the search's noise.

    Returns:
        ``(ds, rows, figures, notes)``: ``ds`` over ``learner`` (the recurrent ones),
        ``symbol``, ``hidden``, ``observation``: ``belief_fixed_point (symbol, hidden)``
        b*_j, ``bayes_predictive (symbol, observation)`` b*_j E, ``bayes_magnitude
        (symbol)`` |λ1| of the filter at b*_j; ``n_fixed``, ``n_stable (learner, symbol)``
        (points with q ≤ :data:`SLOW_Q`), ``attractor_kl_bits`` KL(b*_j E ‖ learner's
        predictive at its attractor), ``attractor_magnitude`` |λ1| there,
        ``attractor_speed`` q there, ``long_run_kl_bits`` (the same KL after
        ``relax_steps`` of the symbol from the learner's initial state),
        ``learner_predictive (learner, symbol, observation)``; rows; the figure
        ``wind_tunnel_fixed_points``; notes (the skipped learners and why).

    Raises:
        ValueError: empty ``learners``, a learner without ``distribution``, a task that is
            not HMM filtering, an unknown preset.
    """
    settings = SETTINGS[preset]
    learners = check_learners(learners)
    for name in ("transition", "emission", "bayes_machine", "n_symbols"):
        if getattr(task, name, None) is None:
            raise ValueError(f"task: expected HMM filtering (with transition, emission, "
                             f"n_symbols and bayes_machine), {type(task).__name__} has no "
                             f"{name}")
    symbols = _symbol_inputs(task)
    bayes = task.bayes_machine()
    beliefs = belief_fixed_points(task.transition, task.emission)
    emission = torch.as_tensor(np.asarray(task.emission), dtype=torch.float64)
    predictive = torch.as_tensor(beliefs) @ emission  # [M, M]
    bayes_mag = [_bayes_magnitude(bayes, symbols[j], beliefs[j]) for j in range(len(beliefs))]
    episodes = task.sample(settings.fixed_point_episodes, settings.steps, seed=seed)
    skipped, found = {}, {}
    for name, learner in learners.items():
        reason = no_fixed_point_reason(learner, task.input_size)
        if reason:
            skipped[name] = reason
            continue
        trace = rollout(learner, episodes.inputs)
        found[name] = (trace, _learner_points(learner, symbols, trace, settings, seed))
    ds = _fixed_point_dataset(learners, found, symbols, beliefs, predictive, bayes_mag)
    ds.attrs.update(task=repr(task), preset=preset, seed=seed, slow_q=SLOW_Q,
                    noise=FIXED_POINT_NOISE, relax_steps=settings.relax_steps,
                    skipped="; ".join(f"{k}: {v}" for k, v in skipped.items()))
    bayes_trace = rollout(bayes, episodes.inputs.double())
    figure = plot_filter_fixed_points(learners, found, bayes_trace, beliefs)
    return ds, _fixed_point_rows(ds), {"wind_tunnel_fixed_points": figure}, \
        _fixed_point_notes(ds, skipped)


def _fixed_point_dataset(learners: dict[str, Any], found: dict[str, Any],
                         symbols: torch.Tensor, beliefs: np.ndarray,
                         predictive: torch.Tensor, bayes_mag: list[float]) -> xr.Dataset:
    m, k = beliefs.shape
    names = list(found)
    shape = (len(names), m)
    n_fixed, n_stable = np.zeros(shape, int), np.zeros(shape, int)
    kl, mag, speed, long_kl = (np.full(shape, np.nan) for _ in range(4))
    probs = np.full((*shape, predictive.shape[1]), np.nan)
    for i, name in enumerate(names):
        learner = learners[name]
        for j, item in enumerate(found[name][1]):
            points = item["points"]
            n_fixed[i, j] = points.sizes["point"]
            n_stable[i, j] = int(points["stable"].sum())
            long_kl[i, j] = float(_kl_bits(predictive[j], item["end_probs"]))
            a = item["attractor"]
            if a is None:
                continue
            vector = torch.as_tensor(points["state"].values[a])[None]
            x = symbols[j][None].to(vector.dtype)
            with torch.no_grad():
                y, _ = learner.step(x, sm.state_from_vector(learner, vector))
            q = _probs(learner, y)[0]
            probs[i, j] = q.numpy()
            kl[i, j] = float(_kl_bits(predictive[j], q))
            mag[i, j] = _leading_magnitude(points["eigenvalues"].values[a])
            speed[i, j] = float(points["speed"].values[a])
    ds = xr.Dataset(
        {
            "belief_fixed_point": (("symbol", "hidden"), beliefs),
            "bayes_predictive": (("symbol", "observation"), predictive.numpy()),
            "bayes_magnitude": (("symbol",), np.asarray(bayes_mag)),
            "n_fixed": (("learner", "symbol"), n_fixed),
            "n_stable": (("learner", "symbol"), n_stable),
            "attractor_kl_bits": (("learner", "symbol"), kl),
            "attractor_magnitude": (("learner", "symbol"), mag),
            "attractor_speed": (("learner", "symbol"), speed),
            "long_run_kl_bits": (("learner", "symbol"), long_kl),
            "learner_predictive": (("learner", "symbol", "observation"), probs),
        },
        coords={"learner": names, "symbol": np.arange(m), "hidden": np.arange(k),
                "observation": np.arange(predictive.shape[1])},
    )
    ds["belief_fixed_point"].attrs["long_name"] = "b*_j: the forward filter's fixed belief " \
                                                  "under symbol j held constant"
    ds["attractor_kl_bits"].attrs["long_name"] = "KL(b*_j E ‖ learner at its attractor), bits"
    ds["bayes_magnitude"].attrs["long_name"] = "|λ1| of the exact filter's step at b*_j"
    return ds


def _fixed_point_rows(ds: xr.Dataset) -> list[SummaryRow]:
    rows = []
    for name in ds["learner"].values:
        row = ds.sel(learner=name)
        stable = row["n_stable"].values
        rows.append(SummaryRow(
            "HMM: symbols with exactly one stable fixed point", str(name),
            float((stable == 1).sum()), None,
            f"of {stable.size}; stable points per symbol {stable.tolist()}, fixed or slow "
            f"{row['n_fixed'].values.tolist()}"))
        kl = row["attractor_kl_bits"].values
        rows.append(SummaryRow(
            "HMM: KL(Bayes at b*_j ‖ learner at its attractor), bits, mean over symbols",
            str(name), float(np.nanmean(kl)) if np.isfinite(kl).any() else math.nan, None,
            f"per symbol {np.round(kl, 4).tolist()}; after a long constant run "
            f"{np.round(row['long_run_kl_bits'].values, 4).tolist()}"))
        rows.append(SummaryRow(
            "HMM: slowest mode |λ1| at the attractor, mean over symbols", str(name),
            float(np.nanmean(row["attractor_magnitude"].values))
            if np.isfinite(row["attractor_magnitude"].values).any() else math.nan,
            float(ds["bayes_magnitude"].mean()),
            "paper column: the exact forward filter's |λ1| at b*_j (mean over symbols)"))
    return rows


def _fixed_point_notes(ds: xr.Dataset, skipped: dict[str, str]) -> list[str]:
    mags = ", ".join(f"{v:.3f}" for v in ds["bayes_magnitude"].values)
    notes = [("HMM fixed points: under a constant observation symbol j the forward filter "
              "converges to one belief b*_j (the left Perron eigenvector of "
              "diag(E[:, j]) T), with slowest mode |λ1| = " + mags + " per symbol. A learner "
              "that filters like it has one stable fixed point per symbol whose predictive "
              "matches b*_j E (KL near 0 bits).")]
    for name in ds["learner"].values:
        row = ds.sel(learner=name)
        stable = row["n_stable"].values
        kl = row["attractor_kl_bits"].values
        shape = ("one stable fixed point per symbol" if (stable == 1).all() else
                 f"stable fixed points per symbol {stable.tolist()}")
        notes.append(f"{name}: {shape}; KL at its attractors {np.nanmean(kl):.3g} bits "
                     f"(max {np.nanmax(kl):.3g}); |λ1| there "
                     f"{np.nanmean(row['attractor_magnitude'].values):.3f} against the "
                     f"filter's {float(ds['bayes_magnitude'].mean()):.3f}."
                     if np.isfinite(kl).any() else f"{name}: {shape}; no stable point found.")
    for name, reason in skipped.items():
        notes.append(f"{name}: no fixed points searched — {reason}.")
    return notes


def _polygon(k: int) -> np.ndarray:
    """Vertices ``[K, 2]`` of a regular K-gon: the belief simplex's projection."""
    angle = np.pi / 2 + 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def plot_filter_fixed_points(learners: dict[str, Any], found: dict[str, Any], bayes_trace: Any,
                             beliefs: np.ndarray) -> Figure:
    """Per recurrent learner, its states (grey) and fixed points by symbol in its first two
    principal components (stable filled, unstable hollow, attractor ringed); last, the
    belief simplex (a regular K-gon) with the filter's beliefs and b*_j."""
    from sklearn.decomposition import PCA

    m, k = beliefs.shape
    colours = plt.get_cmap("tab10")(np.arange(m) % 10)
    panels = len(found) + 1
    cols = min(panels, 4)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.1 * rows), squeeze=False,
                             constrained_layout=True)
    for ax, (name, (trace, items)) in zip(axes.flat, found.items(), strict=False):
        states = trace.state_vectors(learners[name])[:, 1:].flatten(0, 1).double().numpy()
        pca = PCA(2).fit(states)
        xy = pca.transform(states)
        ax.scatter(xy[:, 0], xy[:, 1], s=3, c="0.8", lw=0)
        for j, item in enumerate(items):
            pts = item["points"]
            if pts.sizes["point"] == 0:
                continue
            p = pca.transform(pts["state"].values.astype(float))
            stable = pts["stable"].values.astype(bool)
            ax.scatter(p[stable, 0], p[stable, 1], s=30, color=colours[j],
                       label=f"x = {j}", zorder=3)
            ax.scatter(p[~stable, 0], p[~stable, 1], s=30, facecolors="none",
                       edgecolors=colours[j], zorder=3)
            if item["attractor"] is not None:
                a = p[item["attractor"]]
                ax.scatter([a[0]], [a[1]], s=120, facecolors="none", edgecolors="k", lw=1,
                           zorder=4)
        ax.set_title(f"{name}: states, fixed points", fontsize=9)
        ax.set_xlabel("PC 1", fontsize=8)
        ax.set_ylabel("PC 2", fontsize=8)
        ax.tick_params(labelsize=7)
    ax = axes.flat[len(found)]
    vertices = _polygon(k)
    ring = np.vstack([vertices, vertices[:1]])
    ax.plot(ring[:, 0], ring[:, 1], c="0.6", lw=0.8)
    b = bayes_trace.states[:, 1:].flatten(0, 1).double().numpy()
    xy = b @ vertices
    ax.scatter(xy[:, 0], xy[:, 1], s=3, c="0.8", lw=0)
    star = beliefs @ vertices
    for j in range(m):
        ax.scatter([star[j, 0]], [star[j, 1]], s=90, marker="*", color=colours[j],
                   label=f"b*, x = {j}", zorder=3)
    for i, v in enumerate(vertices):
        ax.annotate(f"z = {i}", v, fontsize=7, ha="center", va="center",
                    xytext=(1.12 * v[0], 1.12 * v[1]))
    ax.set_title("forward filter: beliefs, b*_j", fontsize=9)
    ax.set_aspect("equal")
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
    ax.axis("off")
    for extra in axes.flat[panels:]:
        extra.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(m, 6), fontsize=8,
                   title="observation held constant (filled stable, hollow unstable, "
                         "ring = attractor)", title_fontsize=8)
    fig.suptitle("HMM filtering: fixed points under each symbol held constant", fontsize=10)
    return fig
