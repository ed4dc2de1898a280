"""Task diversity: which Bayes machine a transformer implements as its pretraining pool grows.

Raventós et al. (2023) pretrain a transformer on in-context linear regression (y = wᵀx + ε,
16 examples) whose tasks come from a finite pool of M targets drawn once from N(0, I)
(:class:`~trajprobe.tasks.TaskPool`), and compare it with the two Bayes machines: the
discrete MMSE for the pool (:class:`~trajprobe.reference_models.DiscreteMMSE`, Bayes for
T_Pretrain) and ridge regression (:class:`~trajprobe.reference_models.BayesianLinearRegression`,
Bayes for the Gaussian prior T_True). Below a threshold M* the transformer behaves like
dMMSE and fails on unseen tasks; above it, like ridge, and solves them.

This target trains one transformer per pool size of the preset's ladder
(:data:`~trajprobe.apps.recipes.in_context.TASK_DIVERSITY_LADDER`, recipes
``task-diversity/transformer-m<M>``, swept on Dask like the seeds of other targets) and
evaluates each with the two Bayes machines, on tasks from its pool and on fresh tasks:

* errors (their Figs. 1–2): the mean squared error against the noise-free target wᵀx,
  divided by d and averaged over the 16 positions (their "MSE / D"), per machine, pool
  size and task set; and per position t;
* output distances: the transformer's squared distance to dMMSE and to ridge (/ d), per M;
* D_s and D_o against both Bayes machines (Mikulik et al. §3.4,
  :func:`~trajprobe.compare.simulation`) on fresh tasks, per M: how well dMMSE and ridge
  each simulate the transformer (its state summarised by
  :class:`~trajprobe.adapters.CacheReadout`: every layer's attention read-out for
  :data:`READOUT_PROBES` fixed queries, what its outputs read; the mean keys and values of
  :class:`~trajprobe.adapters.CacheSummary` left D_o against ridge at 0.67 where the
  read-outs give 0.26: an M = ∞ transformer of the quick architecture after 100k
  episodes, issue 33);
* the threshold M*: the smallest M of the ladder from which the transformer is closer to
  ridge than to dMMSE on fresh tasks, by output distance (behaviour) and by D_s (structure);
* effective spectra (Rabinowitz eq. 3, 5, along the input directions of the scalar task):
  the episode median of q_k(t) = ŵ_k(t) / w_k of the transformer at the smallest and the
  largest M, beside dMMSE's and ridge's;
* the sufficiency ratio (:func:`~trajprobe.compare.sufficiency`,
  :mod:`~trajprobe.apps.reproduce.diversity_sufficiency`) on fresh tasks, per M: does the
  transformer treat a context whose examples are shuffled as the same context, as both
  Bayes machines do (ratio 0)?

At M = ∞ dMMSE is ridge (its limit; :class:`DiscreteMMSE` has no infinite pool).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr

from trajprobe import plots
from trajprobe.adapters import CacheReadout
from trajprobe.apps import recipes
from trajprobe.apps.recipes.in_context import TASK_DIVERSITY_LADDER, task_diversity_name
from trajprobe.apps.reproduce import diversity_sufficiency
from trajprobe.apps.reproduce.base import Presets, RunContext, SummaryRow, TargetResult
from trajprobe.apps.reproduce.in_context_regression import SETTINGS as ICL_SETTINGS
from trajprobe.apps.reproduce.in_context_regression import simulation_scalars
from trajprobe.compare import SimulationConfig, simulation
from trajprobe.dynamics import mean_sem
from trajprobe.measurement import measure
from trajprobe.reference_models import BayesianLinearRegression, DiscreteMMSE
from trajprobe.tasks import Episodes, TaskPool
from trajprobe.traces import rollout

__all__ = ["MACHINES", "REFERENCES", "SETTINGS", "SWEEPS", "DiversitySettings", "run",
           "threshold", "training_runs"]

SWEEPS = True
"""Train the ladder's runs on a Dask LocalCluster even with one seed (``scheduler="auto"``)."""

MACHINES = ("Transformer", "dMMSE", "Ridge")
"""The machines compared at every pool size."""



@dataclass(frozen=True)
class DiversitySettings:
    """What a preset of this target trains and evaluates (budgets live in the recipes).

    Attributes:
        ladder: the pool sizes M trained (None: M = ∞), the recipes'
            :data:`~trajprobe.apps.recipes.in_context.TASK_DIVERSITY_LADDER` at this preset.
        n_eval: evaluation episodes per task set.
        n_spectra: episodes of the effective-spectrum measurement.
        n_simulation: fresh episodes of the D_s/D_o comparison (cross-validated over
            episodes).
        simulation: the simulation maps, the in-context-regression target's at this preset.
    """

    ladder: tuple[int | None, ...]
    n_eval: int
    n_spectra: int
    n_simulation: int
    simulation: SimulationConfig


SETTINGS: Presets[DiversitySettings] = Presets(
    smoke=DiversitySettings(ladder=TASK_DIVERSITY_LADDER["smoke"], n_eval=16, n_spectra=6,
                            n_simulation=12, simulation=ICL_SETTINGS.smoke.simulation),
    quick=DiversitySettings(ladder=TASK_DIVERSITY_LADDER["quick"], n_eval=1_000, n_spectra=200,
                            n_simulation=200, simulation=ICL_SETTINGS.quick.simulation),
    paper=DiversitySettings(ladder=TASK_DIVERSITY_LADDER["paper"], n_eval=4_096, n_spectra=400,
                            n_simulation=400, simulation=ICL_SETTINGS.paper.simulation),
)
"""This target's settings per preset."""
N_PROBES = 20
REFERENCES = ("dMMSE", "Ridge")
"""The two Bayes machines: for the pool (T_Pretrain) and for the Gaussian prior (T_True)."""
PAPER_THRESHOLD = 2.0**14
"""Raventós et al.'s threshold for d = 8 as we read their Fig. 2 (the transformer leaves
dMMSE and meets ridge on unseen tasks between 2¹³ and 2¹⁵); they find it grows about
linearly with d."""
_LABEL = {None: "∞"}
_CHUNK = 2**22
"""dMMSE rollouts are chunked to at most this many (episode × pool member) entries."""


def training_runs(context: RunContext) -> list[tuple[str, int]]:
    """One (recipe, seed) per pool size of the ladder and seed."""
    return [(task_diversity_name(m), seed) for m in SETTINGS[context.preset].ladder
            for seed in range(context.seeds)]


def _label(size: int | None) -> str:
    return _LABEL.get(size, str(size))


def _chunked(machine, inputs: torch.Tensor, chunk: int) -> torch.Tensor:
    """Outputs ``[E, T, ...]`` of ``machine`` rolled out ``chunk`` episodes at a time."""
    with torch.no_grad():
        return torch.cat([rollout(machine, inputs[i:i + chunk]).outputs.double().cpu()
                          for i in range(0, inputs.shape[0], chunk)])


def _bayes_machines(pool: TaskPool, device) -> dict[str, Any]:
    """dMMSE and ridge for ``pool``, keyed as :data:`REFERENCES`; at M = ∞ dMMSE is ridge
    (the same object)."""
    ridge = BayesianLinearRegression.from_task(pool.task, device=device)
    return {"dMMSE": DiscreteMMSE.from_task(pool, device=device) if pool.finite else ridge,
            "Ridge": ridge}


def _outputs(model, bayes: dict[str, Any], inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every machine's predictions ``[E, T]`` on ``inputs`` ``[E, T, d + 1]``."""
    outs = {"Transformer": _chunked(model, inputs, 4_096)[..., 0],
            "Ridge": _chunked(bayes["Ridge"], inputs, 4_096)[..., 0]}
    dmmse = bayes["dMMSE"]
    outs["dMMSE"] = (outs["Ridge"] if dmmse is bayes["Ridge"] else
                     _chunked(dmmse, inputs, max(1, _CHUNK // dmmse.n_tasks))[..., 0])
    return {name: outs[name] for name in MACHINES}


def _evaluate(model, bayes: dict[str, Any], dim: int, sets: dict[str, Episodes]
              ) -> xr.Dataset:
    """Errors ``(machine, tasks, t)`` and distances ``(reference, tasks, t)``, both / d."""
    errors, distances = [], []
    for episodes in sets.values():
        outs = _outputs(model, bayes, episodes.inputs)
        clean = torch.einsum("ex,etx->et", episodes.params["W"][:, 0].double().cpu(),
                             episodes.inputs[..., :dim].double().cpu())
        errors.append(torch.stack([(outs[m] - clean).square().mean(0) / dim for m in MACHINES]))
        distances.append(torch.stack([(outs["Transformer"] - outs[m]).square().mean(0) / dim
                                      for m in REFERENCES]))
    t = np.arange(1, errors[0].shape[-1] + 1)
    coords = {"tasks": list(sets), "t": t}
    return xr.Dataset({
        "error": xr.DataArray(torch.stack(errors, 1).numpy(), dims=("machine", "tasks", "t"),
                              coords={"machine": list(MACHINES), **coords}),
        "distance": xr.DataArray(torch.stack(distances, 1).numpy(),
                                 dims=("reference", "tasks", "t"),
                                 coords={"reference": list(REFERENCES), **coords}),
    })


def _spectra(model, bayes: dict[str, Any], task, episodes: Episodes) -> xr.DataArray:
    """Episode-median q_k(t) ``(machine, t, mode)`` of the three machines."""
    machines = {"Transformer": model, **bayes}
    qs = [measure(machines[m], task, episodes=episodes, probes=N_PROBES, seed=0)["q"]
          .median("episode") for m in MACHINES]
    return xr.concat(qs, dim="machine").assign_coords(machine=list(MACHINES))


READOUT_PROBES = 8
"""Fixed queries [x_j, 0] (x_j ~ N(0, I), seed 0) whose attention read-outs are the
transformer's state in the D_s/D_o comparison."""


def _readout(model, n_inputs: int) -> CacheReadout:
    """``model`` with its attention read-outs for :data:`READOUT_PROBES` fixed queries
    [x_j, y = 0] (inputs of width ``n_inputs`` = d + 1) as its state vector."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(READOUT_PROBES, n_inputs - 1, generator=gen)
    return CacheReadout(model, torch.cat([x, torch.zeros(READOUT_PROBES, 1)], dim=1))


def _simulations(models: list, bayes: dict[str, Any], episodes: Episodes,
                 config: SimulationConfig) -> xr.Dataset:
    """D_s and D_o of every seed's transformer against dMMSE and ridge on ``episodes``:
    ``(seed, reference, direction[, t])``; direction ``"a→b"`` embeds the transformer's
    summarised states into the Bayes machine's (the Bayes machine simulates it)."""
    per_seed = []
    for seed, model in enumerate(models):
        summary = _readout(model, episodes.inputs.shape[-1])
        sims = {"Ridge": simulation_scalars(simulation(summary, bayes["Ridge"],
                                                       episodes.inputs, config=config,
                                                       seed=seed))}
        sims["dMMSE"] = (sims["Ridge"] if bayes["dMMSE"] is bayes["Ridge"] else
                         simulation_scalars(simulation(summary, bayes["dMMSE"],
                                                       episodes.inputs, config=config,
                                                       seed=seed)))
        per_seed.append(xr.concat([sims[r] for r in REFERENCES], dim="reference")
                        .assign_coords(reference=list(REFERENCES)))
    return xr.concat(per_seed, dim="seed")


def threshold(distance: xr.DataArray, sizes: list[int | None]) -> float:
    """M*: the smallest finite pool size from which the transformer stays closer to ridge
    than to dMMSE (``distance`` ``(M, reference)``, averaged over positions; at M = ∞ the
    two coincide); inf if no finite M of the ladder is."""
    closer = (distance.sel(reference="Ridge") < distance.sel(reference="dMMSE")).values
    closer = closer | np.array([m is None for m in sizes])  # at M = ∞ dMMSE is ridge
    for k in range(len(sizes)):
        if sizes[k] is None:
            break
        if closer[k:].all():
            return float(sizes[k])
    return math.inf


def _train(context: RunContext, size: int | None, result: TargetResult) -> list:
    models = []
    for seed in range(context.seeds):
        name = task_diversity_name(size)
        trained = recipes.get(name, context.preset).train(
            context.run_dir(name, seed), seed=seed, device=context.device,
            progress=context.progress)
        models.append(trained.model.eval())
        result.notes.append(
            f"M = {_label(size)}, seed {seed}: final training loss "
            f"{float(trained.metrics['loss'].isel(step=-1)):.4g} after "
            f"{int(trained.metrics['episodes'].isel(step=-1)):,} episodes.")
    return models


def run(context: RunContext) -> TargetResult:
    """Train (or reuse) the ladder, evaluate every transformer beside dMMSE and ridge."""
    settings = SETTINGS[context.preset]
    sizes = list(settings.ladder)
    result = TargetResult(title="Task diversity: from dMMSE to ridge as the pretraining pool "
                                "grows (Raventós et al. 2023)")
    n_eval, dev = settings.n_eval, context.device
    per_size, sims, spectra, sufficiencies = [], [], {}, []
    for size in sizes:
        recipe = recipes.get(task_diversity_name(size), context.preset)
        pool: TaskPool = recipe.task
        points = recipe.training.n_steps
        bayes = _bayes_machines(pool, dev)
        fresh = pool.task.sample(n_eval, points, seed=12_345, device=dev)
        sets = {"pool": pool.sample(n_eval, points, seed=54_321, device=dev), "fresh": fresh}
        models = _train(context, size, result)
        per_seed = [_evaluate(model, bayes, pool.task.dim, sets) for model in models]
        per_size.append(xr.concat(per_seed, dim="seed"))
        compared = pool.task.sample(settings.n_simulation, points, seed=2_024, device=dev)
        sims.append(_simulations(models, bayes, compared, settings.simulation))
        histories = pool.task.sample(diversity_sufficiency.N_EPISODES[context.preset], points,
                                     seed=diversity_sufficiency.SEED, device=dev)
        sufficiencies.append(diversity_sufficiency.measure_size(pool, bayes, models,
                                                                histories))
        if size in (sizes[0], sizes[-1]):
            episodes = pool.task.sample(settings.n_spectra, points, seed=999, device=dev)
            spectra[_label(size)] = _spectra(models[0], bayes, pool.task, episodes)
    ds = xr.concat(per_size, dim="M").assign_coords(M=[_label(m) for m in sizes])
    ds.attrs.update(dim=pool.task.dim, noise_std=pool.task.noise_std, points=points)
    q = xr.concat(list(spectra.values()), dim="M").assign_coords(M=list(spectra))
    sim = xr.concat(sims, dim="M").assign_coords(M=ds["M"].values)
    suff = xr.concat(sufficiencies, dim="M").assign_coords(M=ds["M"].values)
    result.datasets = {"errors": ds, "spectra": xr.Dataset({"q": q}), "simulation": sim,
                       "sufficiency": suff}
    result.rows = (_rows(ds, sizes, context) + _simulation_rows(sim, sizes)
                   + diversity_sufficiency.sufficiency_rows(suff))
    result.figures = _figures(ds, q, sim)
    result.figures["sufficiency_vs_pool_size"] = diversity_sufficiency.plot_sufficiency(suff)
    result.notes.append(_summary_note(ds, sizes, context, n_eval))
    return result


def _summary_note(ds: xr.Dataset, sizes: list[int | None], context: RunContext,
                  n_eval: int) -> str:
    m_star = threshold(ds["distance"].mean(["seed", "t"]).sel(tasks="fresh"), sizes)
    found = "never within the ladder" if math.isinf(m_star) else f"M* = {m_star:.0f}"
    return (
        f"Preset {context.preset}: d = {ds.attrs['dim']}, {ds.attrs['points']} examples, "
        f"noise {ds.attrs['noise_std']}; pool sizes {', '.join(_label(m) for m in sizes)}; "
        f"{context.seeds} seed(s) each; {n_eval} evaluation episodes per task set (pool: "
        "tasks from the transformer's own pool; fresh: new tasks from N(0, I)). Errors are "
        "against the noise-free wᵀx, divided by d (Raventós et al.'s MSE / D). Threshold: "
        f"{found} (the smallest M from which the transformer is closer to ridge than to "
        f"dMMSE on fresh tasks); Raventós et al. find ~2^14 at d = 8 (our reading of their "
        "Fig. 2) with 500k steps of batch 256 and a threshold growing about linearly in d, "
        f"which puts it near {PAPER_THRESHOLD * ds.attrs['dim'] / 8:.0f} at "
        f"d = {ds.attrs['dim']}; a training far shorter than theirs also moves it, so "
        "compare the transition's shape, not its place. At M = ∞ dMMSE is ridge.")


def _rows(ds: xr.Dataset, sizes: list[int | None], context: RunContext) -> list[SummaryRow]:
    """Per M: the transformer's MSE / d on pool and fresh tasks (the Bayes machines' in the
    note) and its distances to both; then M*."""
    rows = []
    mean_t = ds.mean("t")
    for m in mean_t["M"].values:
        one = mean_t.sel(M=m)
        for tasks in ("pool", "fresh"):
            err = one["error"].sel(tasks=tasks)
            ours, sem = mean_sem(err.sel(machine="Transformer").values)
            dmmse, ridge = (float(err.sel(machine=k).mean()) for k in ("dMMSE", "Ridge"))
            rows.append(SummaryRow(
                f"MSE / d, {tasks} tasks, M = {m}", "Transformer", ours, None,
                f"dMMSE {dmmse:.3g}, ridge {ridge:.3g} ({ours / ridge - 1:+.0%} over ridge)",
                sem=sem if context.seeds > 1 else None))
        for reference in ("dMMSE", "Ridge"):
            ours, sem = mean_sem(one["distance"].sel(reference=reference, tasks="fresh").values)
            rows.append(SummaryRow(f"distance to {reference} / d, fresh tasks, M = {m}",
                                   "Transformer", ours, None, "",
                                   sem=sem if context.seeds > 1 else None))
    m_star = threshold(mean_t["distance"].mean("seed").sel(tasks="fresh"), sizes)
    rows.append(SummaryRow("threshold M* (closer to ridge than to dMMSE on fresh tasks)",
                           "Transformer", m_star, PAPER_THRESHOLD,
                           f"d = {ds.attrs['dim']} (paper: d = 8, 500k steps)"))
    return rows


def _simulation_rows(sim: xr.Dataset, sizes: list[int | None]) -> list[SummaryRow]:
    """Per M and Bayes machine: D_o of the transformer embedded into it, D_s in the note;
    then M* by D_s and by D_o."""
    rows = []
    for m in sim["M"].values:
        for reference in REFERENCES:
            one = sim.sel(M=m, reference=reference)
            into, back = one.sel(direction="a→b"), one.sel(direction="b→a")
            ours, sem = mean_sem(into["output_dissimilarity"].values)
            bound = float(into["output_dissimilarity_constant"].mean())
            flagged = "" if bool(into["reliable"].all()) else "; flagged (see results)"
            rows.append(SummaryRow(
                f"D_o Transformer → {reference}, fresh tasks, M = {m}", "Transformer", ours,
                None, f"D_s → {float(into['state_dissimilarity'].mean()):.3g}, "
                      f"← {float(back['state_dissimilarity'].mean()):.3g}; constant map "
                      f"{bound:.3g}{flagged}", sem=sem if sim.sizes["seed"] > 1 else None))
    d_s = sim["state_dissimilarity"].sel(direction="a→b").mean("seed")
    rows.append(SummaryRow("threshold M* by D_s (the transformer's states embed better into "
                           "ridge's than into dMMSE's)", "Transformer",
                           threshold(d_s, sizes), PAPER_THRESHOLD, "held-out D_s, fresh tasks"))
    d_o = sim["output_dissimilarity"].sel(direction="a→b").mean("seed")
    rows.append(SummaryRow("threshold M* by D_o (the transformer's outputs are simulated better "
                           "by ridge than by dMMSE)", "Transformer",
                           threshold(d_o, sizes), PAPER_THRESHOLD, "held-out D_o, fresh tasks"))
    return rows


def _figures(ds: xr.Dataset, q: xr.DataArray, sim: xr.Dataset) -> dict[str, plt.Figure]:
    return {"mse_vs_pool_size": _plot_vs_m(ds), "mse_vs_position": _plot_positions(ds),
            "spectra": _plot_spectra(q), "simulation_vs_pool_size": _plot_simulation(sim)}


def _plot_simulation(sim: xr.Dataset) -> plt.Figure:
    """D_s (both directions) and D_o (into the Bayes machine) against M, per machine."""
    x = np.arange(sim.sizes["M"])
    fig, axes = plots.subplots(1, 3, figsize=(15, 4))
    panels = (("state_dissimilarity", "a→b", "D_s: Transformer → Bayes machine"),
              ("state_dissimilarity", "b→a", "D_s: Bayes machine → Transformer"),
              ("output_dissimilarity", "a→b", "D_o: Transformer → Bayes machine"))
    for ax, (var, direction, title) in zip(axes, panels, strict=True):
        for reference in REFERENCES:
            mean, sem = mean_sem(sim[var].sel(direction=direction, reference=reference),
                                 "seed")
            line = ax.errorbar(x, mean, yerr=np.nan_to_num(sem.values), marker="o",
                               capsize=3, label=reference)
            if var == "output_dissimilarity":
                bound = sim["output_dissimilarity_constant"].sel(direction=direction,
                                                                 reference=reference)
                ax.plot(x, bound.mean("seed"), color=line.lines[0].get_color(), ls=":",
                        label=f"{reference}: best constant map")
        seeds = sim.sizes["seed"]
        ax.set_title(title + (f" (± s.e. over {seeds} seeds)" if seeds > 1 else ""),
                     fontsize=10)
        ax.set_xticks(x, [str(m) for m in sim["M"].values])
        ax.set_xlabel("pool size M")
        ax.set_ylabel("held out; 1 = mean state" if var == "state_dissimilarity"
                      else "held out; 1 = mean output")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plot_vs_m(ds: xr.Dataset) -> plt.Figure:
    """Raventós Fig. 2: MSE / d against M on pool and fresh tasks; distances beside."""
    mean = ds.mean(["seed", "t"])
    x = np.arange(mean.sizes["M"])
    fig, axes = plots.subplots(1, 3, figsize=(15, 4))
    for ax, tasks in zip(axes[:2], ("pool", "fresh"), strict=True):
        for machine in MACHINES:
            ax.plot(x, mean["error"].sel(machine=machine, tasks=tasks), marker="o",
                    label=machine, ls="--" if machine != "Transformer" else "-")
        ax.set_title(f"{tasks} tasks")
        ax.set_ylabel("MSE / d")
    for reference in ("dMMSE", "Ridge"):
        axes[2].plot(x, mean["distance"].sel(reference=reference, tasks="fresh"), marker="o",
                     label=f"Transformer ↔ {reference}")
    axes[2].set_title("output distance, fresh tasks")
    axes[2].set_ylabel("mean squared distance / d")
    for ax in axes:
        ax.set_xticks(x, [str(m) for m in mean["M"].values])
        ax.set_xlabel("pool size M")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plot_positions(ds: xr.Dataset) -> plt.Figure:
    """Raventós Fig. 1: MSE / d against the position, smallest and largest M."""
    mean = ds.mean("seed")
    ends = [mean["M"].values[0], mean["M"].values[-1]]
    fig, axes = plots.subplots(2, 2, figsize=(11, 7), sharex=True)
    for row, m in enumerate(ends):
        for col, tasks in enumerate(("pool", "fresh")):
            ax = axes[row, col]
            for machine in MACHINES:
                ax.plot(mean["t"], mean["error"].sel(M=m, machine=machine, tasks=tasks),
                        label=machine, ls="--" if machine != "Transformer" else "-")
            ax.set_title(f"M = {m}, {tasks} tasks")
            ax.set_yscale("log")
            ax.set_ylabel("MSE / d")
            ax.legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("position t (t - 1 examples)")
    fig.tight_layout()
    return fig


def _plot_spectra(q: xr.DataArray) -> plt.Figure:
    """Median q_k(t) of every machine at the smallest and largest M."""
    fig, axes = plots.subplots(len(q["M"]), len(MACHINES), figsize=(13, 3.3 * len(q["M"])),
                               sharex=True, sharey=True, squeeze=False)
    for row, m in enumerate(q["M"].values):
        for col, machine in enumerate(MACHINES):
            ax = axes[row, col]
            one = q.sel(M=m, machine=machine)
            for k in one["mode"].values:
                ax.plot(one["t"], one.sel(mode=k), label=f"direction {k}")
            ax.axhline(1.0, color="0.6", lw=0.8)
            ax.set_title(f"{machine}, M = {m}")
            ax.set_ylabel("median q_k(t) = ŵ_k / w_k")
    axes[0, 0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("position t")
    fig.tight_layout()
    return fig
