"""Rabinowitz 2019 §3: effective spectra of the Learner, the Meta-Learner and Bayes (Figs. 1-6, 14).

Every agent is probed on the same targets: 2-D matrices W = U diag(s) Vᵀ with
Haar-random U, V and the spectra in :data:`SPECTRA`. The headline is the spectrum
(2.5, 0.05): how many times as long the mode with the 50× smaller singular value takes
to reach q > 0.8 (paper: Learner ≈ 9×, Meta-Learner ≈ 1.05×).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr
from matplotlib import ticker

from trajprobe import plots
from trajprobe.adapters.torch_learner import SGD, Adam, linear_regression_learner
from trajprobe.apps import recipes
from trajprobe.apps.reproduce.base import (
    INTERPOLATED,
    Presets,
    RunContext,
    SummaryRow,
    TargetResult,
)
from trajprobe.apps.reproduce.learners import eval_schedule, probe_learner
from trajprobe.apps.reproduce.outer_loop import outer_loop_spectra, plot_outer_loop
from trajprobe.apps.training import list_checkpoints
from trajprobe.dynamics import mean_sem, steps_to_threshold, time_ratio
from trajprobe.estimators.linear import effective_map, effective_spectrum, spectrum_ratio
from trajprobe.labelled import Label, describe
from trajprobe.measurement import effective_spectra
from trajprobe.plots import plot_learning_curves, plot_steps_to_threshold
from trajprobe.reference_models import BayesianLinearRegression
from trajprobe.tasks import LinearRegression, make_generator

__all__ = ["HEADLINE", "SETTINGS", "SPECTRA", "THRESHOLDS", "LinearSettings", "headline_ratio",
           "run"]

SPECTRA = ((2.5, 0.05), (2.0, 0.5), (1.0, 0.25), (1.5, 0.1))
"""Target spectra (descending): singular values from 0.05 to 2.5, all in-distribution."""
HEADLINE = 0
"""Index in :data:`SPECTRA` of the headline pair, a 50× ratio."""
THRESHOLDS = (0.5, 0.8, 0.9)
CUTOFF = 0.8
N_PROBES = 100


@dataclass(frozen=True)
class LinearSettings:
    """What a preset of this target evaluates (the training budgets live in the recipes).

    Attributes:
        n_eval: evaluation episodes of the Meta-Learners and Bayes (spectra cycling
            through :data:`SPECTRA`).
    """

    n_eval: int


SETTINGS: Presets[LinearSettings] = Presets(
    smoke=LinearSettings(n_eval=8), quick=LinearSettings(n_eval=200),
    paper=LinearSettings(n_eval=400),
)
"""This target's settings per preset."""

_META = "linear-regression-2d/meta-learner"
_LEARNER = "linear-regression-2d/learner"


def _spectra(n: int) -> torch.Tensor:
    """``[n, 2]`` spectra cycling through :data:`SPECTRA`; episode e has pair e mod 4."""
    pairs = torch.tensor(SPECTRA, dtype=torch.float64)
    return pairs[torch.arange(n) % len(SPECTRA)]


def _pair(ds: xr.Dataset) -> xr.DataArray:
    """Which :data:`SPECTRA` pair every episode had."""
    return xr.DataArray(np.arange(ds.sizes["episode"]) % len(SPECTRA), dims="episode")


def headline_ratio(q: xr.DataArray, c: float = CUTOFF, *, interpolate: bool = True) -> float:
    """Steps to q > c of the small mode over the large mode, for the headline pair.

    Crossing times are interpolated between steps by default (the integer rule with
    ``interpolate=False``; :func:`~trajprobe.dynamics.steps_to_threshold`): with T = 20
    in-context steps the integer rule makes two modes that cross within one step 1, 4/3
    or 3/2 times apart by the luck of the step.
    """
    pair = _pair(q.to_dataset(name="q"))
    mean = q.where(pair == HEADLINE, drop=True).mean("episode")
    steps = steps_to_threshold(mean, c, interpolate=interpolate)
    return float(time_ratio(steps, "mode").isel(mode=-1))


def learner_spectra(context: RunContext) -> xr.Dataset:
    """Train the preset's Learners (one W each) and probe them on the fly (eqs. 1-3)."""
    recipe = recipes.get(_LEARNER, context.preset)
    cfg, task = recipe.learner, recipe.task
    opt = SGD(cfg.lr) if cfg.optimiser == "sgd" else Adam(cfg.lr)
    learner = linear_regression_learner(task.dim, task.dim, hidden=cfg.hidden, optimiser=opt,
                                        seed=0, device=context.device)
    n = cfg.n_learners
    gen = make_generator(1, context.device)
    params = task.sample_params(n, spectrum=_spectra(n).float(), seed=gen,
                                 device=context.device)
    w = params["W"]

    def minibatch(t: int) -> torch.Tensor:
        x = torch.randn(n, cfg.minibatch, task.dim, generator=gen, device=context.device)
        noise = torch.randn(x.shape, generator=gen, device=context.device)
        y = torch.einsum("bij,bmj->bmi", w, x) + task.noise_std * noise
        return torch.cat([x, y], dim=-1)

    x_probe = torch.randn(n, N_PROBES, task.dim, generator=gen, device=context.device)
    probe_batch = torch.cat([x_probe, torch.zeros_like(x_probe)], dim=-1)
    steps = eval_schedule(cfg.n_steps)
    outputs = probe_learner(learner, learner.initial_state(n), minibatch, probe_batch, steps,
                            progress=context.progress, desc="Learners (SGD)")
    x = x_probe[:, None].expand(-1, len(steps), -1, -1)
    w_hat = effective_map(x, outputs, fit_intercept=False)
    s_hat = effective_spectrum(w_hat, params["U"][:, None], params["V"][:, None])
    q = spectrum_ratio(s_hat, params["s"][:, None])
    clean = torch.einsum("eij,etnj->etni", w, x)
    loss = (outputs - clean).square().sum(-1).mean(-1)
    ds = xr.Dataset(
        {"s_hat": (("episode", "t", "mode"), s_hat.cpu().numpy()),
         "q": (("episode", "t", "mode"), q.cpu().numpy()),
         "s": (("episode", "mode"), params["s"].cpu().numpy()),
         "loss": (("episode", "t"), loss.cpu().numpy())},
        coords={"episode": np.arange(n), "t": steps, "mode": [1, 2]},
        attrs={"agent": "learner", "recipe": _LEARNER, "n_steps": cfg.n_steps,
               "lr": cfg.lr, "optimiser": cfg.optimiser},
    )
    return describe(ds, {
        "s_hat": Label("effective singular value ŝ_k", "1", "diag(U^T W_hat V), eq. 5"),
        "q": Label("proportion learned q_k = ŝ_k / s_k", "1", "eq. 3"),
        "s": Label("target singular value s_k", "1"),
        "loss": Label("probe-set squared error", "1", "mean squared error against W x"),
        "mode": Label("singular mode k", "1"),
        "t": Label("training step t (after t − 1 updates)", "1"),
    })


def training_runs(context: RunContext) -> list[tuple[str, int]]:
    """The (recipe, seed) Meta-Learner runs :func:`run` trains."""
    return [(_META, seed) for seed in range(context.seeds)]


def run(context: RunContext) -> TargetResult:
    """Train, probe and compare the Learner, the Meta-Learner(s) and Bayes."""
    meta_recipe = recipes.get(_META, context.preset)
    task: LinearRegression = meta_recipe.task
    n_eval = SETTINGS[context.preset].n_eval
    episodes = task.sample(n_eval, 20, seed=12345, device=context.device,
                           spectrum=_spectra(n_eval).float())
    result = TargetResult(title="Linear regression: Learner vs Meta-Learner vs Bayes "
                                "(Rabinowitz 2019 §3)")

    learner = learner_spectra(context)
    metas, outer = [], []
    for seed in range(context.seeds):
        run_dir = context.run_dir(_META, seed)
        trained = meta_recipe.train(run_dir, seed=seed, device=context.device,
                                    progress=context.progress)
        metas.append(effective_spectra(trained.model, task, episodes=episodes,
                                       probes=N_PROBES, seed=seed, progress=context.progress))
        outer.append(outer_loop_spectra(
            meta_recipe, list_checkpoints(run_dir),
            lambda m: effective_spectra(m, task, episodes=_headline_episodes(episodes),
                                        probes=N_PROBES, seed=0, progress=False),
            CUTOFF, device=context.device))
        final_loss = float(trained.metrics["loss"].isel(step=-1))
        result.notes.append(f"Meta-Learner seed {seed}: final training loss {final_loss:.4g} "
                            f"after {int(trained.metrics['episodes'].isel(step=-1)):,} episodes.")
    meta = xr.concat(metas, dim="seed")
    bayes_machine = BayesianLinearRegression.from_task(task, device=context.device)
    bayes = effective_spectra(bayes_machine, task, episodes=episodes, probes=N_PROBES, seed=0,
                              progress=context.progress)
    outer_ds = xr.concat(outer, dim="seed")

    result.datasets = {"learner": learner, "meta_learner": meta, "bayes": bayes,
                       "outer_loop": outer_ds}
    ratios = {
        "Learner": ((headline_ratio(learner["q"]), None), 9.0),
        "Meta-Learner": (mean_sem([headline_ratio(m["q"]) for m in metas]), 1.05),
        "Bayes": ((headline_ratio(bayes["q"]), None), None),
    }
    for agent, ((ours, sem), paper) in ratios.items():
        result.rows.append(SummaryRow(
            f"time to q > {CUTOFF}: s = 0.05 vs s = 2.5 (50× smaller)", agent, ours, paper,
            "; ".join(part for part in (
                INTERPOLATED, f"mean ± s.e. over {context.seeds} seeds"
                if agent == "Meta-Learner" and context.seeds > 1 else "") if part),
            sem=sem))
    meta_loss = float(meta["loss"].mean())
    bayes_loss = float(bayes["loss"].mean())
    result.rows.append(SummaryRow("episode-average squared error on these spectra",
                                  "Meta-Learner", meta_loss, None,
                                  f"Bayes: {bayes_loss:.3g} ({meta_loss / bayes_loss - 1:+.1%})"))
    result.figures = _figures(learner, meta.isel(seed=0), bayes, outer_ds)
    result.notes.append(
        f"Preset {context.preset}: {learner.sizes['episode']} Learners for "
        f"{learner.attrs['n_steps']:,} {learner.attrs['optimiser'].upper()} steps "
        f"(lr {learner.attrs['lr']}); {context.seeds} Meta-Learner(s) probed on {n_eval} "
        f"episodes × 20 steps × {N_PROBES} probes; spectra {SPECTRA}.")
    return result


def _headline_episodes(episodes):
    """The episodes of the headline spectrum only (every 4th)."""
    from trajprobe.tasks import Episodes

    keep = slice(HEADLINE, None, len(SPECTRA))
    return Episodes(episodes.inputs[keep], episodes.targets[keep],
                    {k: v[keep] for k, v in episodes.params.items()})


def _figures(learner: xr.Dataset, meta: xr.Dataset, bayes: xr.Dataset,
             outer: xr.Dataset) -> dict[str, plt.Figure]:
    figures = {}
    agents = (("Learner", learner), ("Meta-Learner", meta), ("Bayes", bayes))
    head = {name: ds.where(_pair(ds) == HEADLINE, drop=True) for name, ds in agents}
    fig, axes = plots.subplots(1, 3, figsize=(13, 4.4))
    for ax, (name, ds) in zip(axes, head.items(), strict=True):
        plot_learning_curves(ds, "q", ax=ax)
        ax.set_title(f"{name}: spectrum (2.5, 0.05)")
        inside = ax.get_legend()  # moved below the panel: inside, it hid the Learner's rise
        ax.legend(handles=inside.legend_handles,
                  labels=[text.get_text() for text in inside.get_texts()],
                  title=inside.get_title().get_text(), fontsize="small",
                  title_fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2),
                  ncols=2)
    low = min(ax.get_ylim()[0] for ax in axes)
    high = max(ax.get_ylim()[1] for ax in axes)
    for ax in axes:  # one y-range: the panels compare the agents
        ax.set_ylim(low, high)
    axes[0].set_xscale("log")  # the Learner's t >= 1: no step 0 to lose
    axes[0].set_xlabel("training step t (after t − 1 updates), log scale")
    fig.tight_layout()
    figures["fig1b_learning_curves"] = fig

    fig, axes = plots.subplots(1, 3, figsize=(13, 3.6))
    for ax, (name, ds) in zip(axes, agents, strict=True):
        stacked = _by_singular_value(ds)
        plot_steps_to_threshold(stacked, THRESHOLDS, x="s", ax=ax, interpolate=True)
        ax.set_xscale("log")
        ax.set_xlabel("target singular value s, log scale")
        ax.set_title(name)
        _plain_ticks(ax.xaxis)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("training steps t until q > c, log scale")
    _plain_ticks(axes[0].yaxis)
    fig.tight_layout()
    figures["fig1c_steps_to_threshold"] = fig

    figures["fig14_outer_loop"] = plot_outer_loop(
        outer, CUTOFF, names=[f"s = {s:g}" for s in SPECTRA[HEADLINE]])
    return figures


def _plain_ticks(axis) -> None:
    """Log-axis ticks as plain numbers at 1, 2, 5 × 10^k (every integer multiple when the
    axis spans less than a decade), no crowded minor labels."""
    low, high = sorted(abs(v) for v in axis.get_view_interval())
    subs = (1.0, 2.0, 5.0) if high > 10 * low else tuple(range(1, 10))
    axis.set_major_locator(ticker.LogLocator(subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _by_singular_value(ds: xr.Dataset) -> xr.Dataset:
    """Re-index modes by their singular value: q ``(episode, t, mode=distinct s)``.

    Every episode contributes its two modes; missing (episode, s) entries are NaN, and
    the episode mean skips them.
    """
    values = sorted({round(float(v), 4) for v in ds["s"].values.ravel()})
    q = np.full((ds.sizes["episode"], ds.sizes["t"], len(values)), np.nan)
    s = np.full((ds.sizes["episode"], len(values)), np.nan)
    for e in range(ds.sizes["episode"]):
        for m in range(ds.sizes["mode"]):
            k = values.index(round(float(ds["s"].values[e, m]), 4))
            q[e, :, k] = ds["q"].values[e, :, m]
            s[e, k] = values[k]
    return xr.Dataset({"q": (("episode", "t", "mode"), q), "s": (("episode", "mode"), s)},
                      coords={"episode": ds["episode"].values, "t": ds["t"].values,
                              "mode": np.arange(len(values))})
