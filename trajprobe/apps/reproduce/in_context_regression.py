"""In-context regression: transformer, SSM and LSTM Meta-Learners beside Bayes (issue 15).

Every agent sees the same evaluation episodes of 2-D linear regression in Rabinowitz's
encoding (input [x_t, y_{t-1}], W = U diag(s) Vᵀ with the spectra of the
linear-regression target, Haar-random U, V):

* Meta-Learners trained across W ~ MN(0, I, I) by the same teacher-forced BPTT loop: the
  built-in GPT (``linear-regression-2d/transformer``), the gated SSM
  (``linear-regression-2d/ssm``) and the LSTM (``linear-regression-2d/meta-learner``);
* reference machines (:class:`~trajprobe.reference_models.BayesianLinearRegression`):
  the Bayes posterior mean (ridge λ = σ²/α² = 10⁻⁴), least squares (λ = 10⁻¹², the
  minimum-norm solution while underdetermined) and ridge with λ = 1;
* the SGD Learner of the linear-regression target (one network trained on one W), whose
  time axis is training steps, not in-context examples.

Reported: (a) Garg et al. 2022's curve, squared error against the number of in-context
examples (the t-th prediction has t - 1); (b) Rabinowitz's effective spectra q_k(t)
(eqs. 1-3, 5) and the time ratio — steps to q > 0.8 of the s = 0.05 mode over the
s = 2.5 mode — for every agent; (c) Mikulik et al.'s D_s and D_o against Bayes
(:func:`trajprobe.compare.simulation`, §3.4) for the three Meta-Learners, the transformer
through :class:`~trajprobe.adapters.CacheSummary` (the mean cached key and value per
layer and head; see its docstring for why).

The LSTM's runs are the linear-regression target's: they live in the sibling directory
``<out_dir>/../linear-regression-<preset>/runs`` (trained there if not finished), so
``trajprobe reproduce linear-regression`` and this target share one training.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr

from trajprobe import plots
from trajprobe.adapters import CacheSummary
from trajprobe.apps import recipes
from trajprobe.apps.recipes.config import default_out_dir
from trajprobe.apps.reproduce.base import (
    INTERPOLATED,
    Presets,
    RunContext,
    SummaryRow,
    TargetResult,
)
from trajprobe.apps.reproduce.linear_regression import (
    CUTOFF,
    HEADLINE,
    SPECTRA,
    headline_ratio,
    learner_spectra,
)
from trajprobe.compare import SimulationConfig, simulation
from trajprobe.dynamics import mean_sem
from trajprobe.measurement import effective_spectra
from trajprobe.plots import plot_learning_curves
from trajprobe.reference_models import BayesianLinearRegression
from trajprobe.tasks import Episodes, LinearRegression

__all__ = [
    "META_LEARNERS",
    "REFERENCES",
    "SETTINGS",
    "ICLSettings",
    "run",
    "simulation_scalars",
    "training_runs",
]

META_LEARNERS: dict[str, str] = {
    "Transformer": "linear-regression-2d/transformer",
    "SSM": "linear-regression-2d/ssm",
    "LSTM": "linear-regression-2d/meta-learner",
}
"""Agent → recipe of the trained in-context learners."""

REFERENCES: dict[str, float] = {"Least squares": 1e-12, "Ridge (λ = 1)": 1.0}
"""Agent → ridge λ of the reference regressions beside Bayes (whose λ is σ²/α²)."""

_SHARED = "linear-regression"
"""The target whose LSTM runs this one reuses."""
N_PROBES = 100
N_STEPS = 20


@dataclass(frozen=True)
class ICLSettings:
    """What a preset of this target evaluates (the training budgets live in the recipes).

    Attributes:
        n_eval: evaluation episodes (spectra cycling through the linear-regression
            target's ``SPECTRA``).
        simulation: the simulation maps against Bayes: the defaults (affine + MLP) with
            5 folds; at ``smoke`` (12 episodes of untrained agents, for the tests) 2 folds
            and the affine part only, whose numbers do not hinge on an early-stopped MLP fit.
    """

    n_eval: int
    simulation: SimulationConfig


SETTINGS: Presets[ICLSettings] = Presets(
    smoke=ICLSettings(n_eval=12, simulation=SimulationConfig(n_folds=2, n_hidden_layers=0)),
    quick=ICLSettings(n_eval=200, simulation=SimulationConfig(n_folds=5)),
    paper=ICLSettings(n_eval=400, simulation=SimulationConfig(n_folds=5)),
)
"""This target's settings per preset."""


def training_runs(context: RunContext) -> list[tuple[str, int]]:
    """The (recipe, seed) runs trained in this target's own ``runs`` directory.

    The LSTM is not listed: its runs are the linear-regression target's (module docstring).
    """
    return [(recipe, seed) for agent, recipe in META_LEARNERS.items() if agent != "LSTM"
            for seed in range(context.seeds)]


def _run_dir(context: RunContext, recipe: str, seed: int):
    if recipe != META_LEARNERS["LSTM"]:
        return context.run_dir(recipe, seed)
    sibling = context.out_dir.parent / default_out_dir(_SHARED, context.preset).name
    return dataclasses.replace(context, out_dir=sibling).run_dir(recipe, seed)


def _episodes(task: LinearRegression, context: RunContext) -> Episodes:
    """The evaluation episodes: episode e has the spectrum ``SPECTRA[e mod 4]``."""
    n = SETTINGS[context.preset].n_eval
    spectra = torch.tensor(SPECTRA, dtype=torch.float32)[torch.arange(n) % len(SPECTRA)]
    return task.sample(n, N_STEPS, seed=12345, device=context.device, spectrum=spectra)


def _references(task: LinearRegression, device: torch.device
                ) -> dict[str, BayesianLinearRegression]:
    """Bayes, then least squares and ridge: Bayesian regression with λ = noise² / α²."""
    machines = {"Bayes": BayesianLinearRegression.from_task(task, device=device)}
    for agent, lam in REFERENCES.items():
        machines[agent] = BayesianLinearRegression(task.dim, task.dim, prior_scale=1.0,
                                                   noise_std=lam ** 0.5, device=device)
    return machines


def simulation_scalars(ds: xr.Dataset) -> xr.Dataset:
    """One :func:`~trajprobe.compare.simulation` result without its per-fold, per-episode
    and figure data: the scalars and per-step curves (dims ``direction``, ``t``), small
    enough to stack over agents and seeds (its text report is
    :func:`trajprobe.compare.simulation_summary`)."""
    keep = [name for name in ds.data_vars
            if set(ds[name].dims) <= {"direction", "t"} and name != "reliability_note"]
    out = ds[keep]
    out["reliability_note"] = ds["reliability_note"].astype(str)
    out.attrs = {}
    return out


def _train_and_measure(context: RunContext, task: LinearRegression, episodes: Episodes,
                       result: TargetResult) -> tuple[dict[str, xr.Dataset], dict[str, list]]:
    """Spectra (seed dim) and simulation against Bayes of every Meta-Learner."""
    bayes = BayesianLinearRegression.from_task(task, device=context.device)
    config = SETTINGS[context.preset].simulation
    spectra, sims = {}, {}
    for agent, name in META_LEARNERS.items():
        recipe = recipes.get(name, context.preset)
        per_seed, sims[agent] = [], []
        for seed in range(context.seeds):
            trained = recipe.train(_run_dir(context, name, seed), seed=seed,
                                   device=context.device, progress=context.progress)
            model = trained.model.eval()
            per_seed.append(effective_spectra(model, task, episodes=episodes, probes=N_PROBES,
                                              seed=seed, progress=context.progress))
            machine = CacheSummary(model) if agent == "Transformer" else model
            sims[agent].append(simulation_scalars(
                simulation(machine, bayes, episodes.inputs, config=config, seed=seed)))
            result.notes.append(
                f"{agent} seed {seed}: final training loss "
                f"{float(trained.metrics['loss'].isel(step=-1)):.4g} after "
                f"{int(trained.metrics['episodes'].isel(step=-1)):,} episodes.")
        spectra[agent] = xr.concat(per_seed, dim="seed")
    return spectra, sims


def run(context: RunContext) -> TargetResult:
    """Train (or reuse) the Meta-Learners, probe every agent, compare with Bayes."""
    task: LinearRegression = recipes.get(META_LEARNERS["Transformer"], context.preset).task
    episodes = _episodes(task, context)
    result = TargetResult(title="In-context regression: transformer, SSM and LSTM beside "
                                "Bayes, least squares, ridge and SGD (Garg et al. 2022, "
                                "Rabinowitz 2019, Mikulik et al. 2020)")
    spectra, sims = _train_and_measure(context, task, episodes, result)
    for agent, machine in _references(task, context.device).items():
        spectra[agent] = effective_spectra(machine, task, episodes=episodes, probes=N_PROBES,
                                           seed=0, progress=context.progress)
    learner = learner_spectra(context)
    simulations = xr.concat(
        [xr.concat(sims[a], dim="seed") for a in sims], dim="agent"
    ).assign_coords(agent=list(sims))
    result.datasets = {
        "curves": _curves(spectra),
        "spectra": _headline_q(spectra),
        "learner": learner,
        "simulation": simulations,
    }
    result.rows = _rows(spectra, learner, simulations, context)
    result.figures = _figures(spectra, learner, simulations)
    result.notes.append(
        f"Preset {context.preset}: {episodes.inputs.shape[0]} evaluation episodes × "
        f"{N_STEPS} steps × {N_PROBES} probes, spectra {SPECTRA}; {context.seeds} seed(s) per "
        f"Meta-Learner; the Learner is {learner.sizes['episode']} SGD-trained networks "
        f"({learner.attrs['n_steps']:,} steps of {learner.attrs['optimiser'].upper()}), its "
        "time axis is training steps. Simulation: "
        f"{SETTINGS[context.preset].simulation.n_folds}-fold cross-validation over episodes, "
        "the transformer's "
        "state summarised by the mean cached key and value per layer and head "
        "(trajprobe.adapters.CacheSummary): an average over the observed tokens, like "
        "Bayes' sufficient statistics, and a function of the cache alone. A summary has no "
        "inverse, so D_o into the transformer (Bayes → Transformer) is undefined (n/a).")
    return result


def _curves(spectra: dict[str, xr.Dataset]) -> xr.Dataset:
    """Garg's curve: squared error ``(agent, t)`` (mean and s.e. over episodes and seeds)."""
    means, sems = [], []
    for ds in spectra.values():
        loss = ds["loss"]
        dims = [d for d in ("seed", "episode") if d in loss.dims]
        mean, sem = mean_sem(loss, dims)
        means.append(mean)
        sems.append(sem)
    coords = {"agent": list(spectra)}
    ds = xr.Dataset({"squared_error": xr.concat(means, dim="agent"),
                     "squared_error_sem": xr.concat(sems, dim="agent")}).assign_coords(coords)
    return ds.assign_coords(examples=("t", ds["t"].values - 1))


def _headline_q(spectra: dict[str, xr.Dataset]) -> xr.Dataset:
    """q_k(t) ``(agent, episode, t, mode)`` of every agent (seed 0 of trained agents)."""
    qs = [ds["q"].isel(seed=0, drop=True) if "seed" in ds["q"].dims else ds["q"]
          for ds in spectra.values()]
    return xr.Dataset({"q": xr.concat(qs, dim="agent")}).assign_coords(agent=list(spectra))


def _rows(spectra: dict[str, xr.Dataset], learner: xr.Dataset, sims: xr.Dataset,
          context: RunContext) -> list[SummaryRow]:
    rows = []
    bayes_loss = float(spectra["Bayes"]["loss"].mean())
    for agent, ds in spectra.items():
        loss = float(ds["loss"].mean())
        rows.append(SummaryRow("episode-average squared error, same episodes", agent, loss,
                               None, f"Bayes {bayes_loss:.3g} ({loss / bayes_loss - 1:+.1%})"))
    paper = {"LSTM": 1.05}
    quantity = f"time to q > {CUTOFF}: s = 0.05 vs s = 2.5 (50× smaller)"
    for agent, ds in spectra.items():
        q = ds["q"]
        ratios = [headline_ratio(q.isel(seed=k)) for k in range(q.sizes["seed"])] \
            if "seed" in q.dims else [headline_ratio(q)]
        ours, sem = mean_sem(ratios)
        note = f"steps = in-context examples + 1; {INTERPOLATED}"
        if "seed" in q.dims and context.seeds > 1:
            note += f"; mean ± s.e. over {context.seeds} seeds"
        rows.append(SummaryRow(quantity, agent, ours, paper.get(agent), note, sem=sem))
    rows.append(SummaryRow(quantity, "Learner (SGD)", headline_ratio(learner["q"]), 9.0,
                           f"steps = SGD training steps; {INTERPOLATED}"))
    for agent in sims["agent"].values:
        one = sims.sel(agent=agent)
        for direction, label in (("a→b", f"{agent} → Bayes"), ("b→a", f"Bayes → {agent}")):
            d = one.sel(direction=direction)
            for var, name in (("state_dissimilarity", "D_s"), ("output_dissimilarity", "D_o")):
                ours, sem = mean_sem([float(v) for v in d[var].values])
                null = float(d[f"{var}_shuffled"].mean())
                rows.append(SummaryRow(
                    f"{name} (held out), {label}", str(agent), ours, None,
                    f"time-shuffled null {null:.3g}" + ("" if bool(d["reliable"].all())
                                                         else "; flagged (see results)"),
                    sem=sem))
    return rows


def _figures(spectra: dict[str, xr.Dataset], learner: xr.Dataset,
             sims: xr.Dataset) -> dict[str, plt.Figure]:
    figures = {"garg_curve": _plot_curves(spectra, learner)}
    agents = [*spectra, "Learner (SGD)"]
    fig, axes = plots.subplots(2, 4, figsize=(16, 7), sharey=True)
    for ax, agent in zip(axes.flat, agents, strict=False):
        ds = learner if agent == "Learner (SGD)" else spectra[agent]
        if "seed" in ds.dims:
            ds = ds.isel(seed=0)
        pair = xr.DataArray(np.arange(ds.sizes["episode"]) % len(SPECTRA), dims="episode")
        plot_learning_curves(ds.where(pair == HEADLINE, drop=True), "q", ax=ax)
        ax.set_title(f"{agent}: spectrum (2.5, 0.05)")
        ax.set_ylabel("q_k(t) = ŝ_k / s_k")
    axes.flat[-1].set_xscale("log")
    axes.flat[-1].set_xlabel("SGD training step t (after t − 1 updates), log scale")
    fig.tight_layout()
    figures["spectra"] = fig
    figures["simulation"] = _plot_simulation(sims)
    return figures


def _plot_curves(spectra: dict[str, xr.Dataset], learner: xr.Dataset) -> plt.Figure:
    curves = _curves(spectra)
    fig, (left, right) = plots.subplots(1, 2, figsize=(12, 4))
    for agent in curves["agent"].values:
        mean = curves["squared_error"].sel(agent=agent)
        sem = curves["squared_error_sem"].sel(agent=agent)
        x = curves["examples"].values
        left.plot(x, mean, marker="o", ms=3, label=str(agent))
        left.fill_between(x, mean - sem, mean + sem, alpha=0.2)
    left.set_yscale("log")
    left.set_xlabel("in-context examples (t − 1)")
    left.set_ylabel("squared error of the prediction of y_t, log scale")
    left.set_title("Meta-Learners and reference regressions\n(band: ± s.e. over episodes "
                   "and seeds)", fontsize=10)
    left.legend(fontsize=8)
    loss = learner["loss"]
    right.plot(learner["t"].values, loss.mean("episode"), color="0.3",
               label="Learner (SGD), probe points")
    examples = int(curves["examples"].values[-1])
    right.axhline(float(curves["squared_error"].sel(agent="Bayes").isel(t=-1)), ls="--",
                  color="C0", label=f"Bayes after {examples} examples")
    right.set_xscale("log")  # t >= 1: the probe of step t sees t - 1 updates
    right.set_yscale("log")
    right.set_xlabel("SGD training step t (after t − 1 updates), log scale")
    right.set_ylabel("squared error on the probe points, log scale")
    right.set_title("SGD Learner")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plot_simulation(sims: xr.Dataset) -> plt.Figure:
    fig, axes = plots.subplots(1, 2, figsize=(10, 3.6))
    agents = [str(a) for a in sims["agent"].values]
    width = 0.38
    for ax, (var, name) in zip(axes, (("state_dissimilarity", "D_s"),
                                      ("output_dissimilarity", "D_o")), strict=True):
        for k, direction in enumerate(("a→b", "b→a")):
            values = sims[var].sel(direction=direction).mean("seed").values
            label = "agent → Bayes" if direction == "a→b" else "Bayes → agent"
            ax.bar(np.arange(len(agents)) + (k - 0.5) * width, np.nan_to_num(values), width,
                   label=label)
        ax.set_xticks(np.arange(len(agents)), agents)
        ax.set_ylabel(f"{name} (held out; 1 = mean state)" if name == "D_s"
                      else f"{name} (normalised error)")
        ax.legend(fontsize=8)
    axes[1].set_title("D_o into the transformer: undefined (summary)", fontsize=9)
    fig.tight_layout()
    return fig
