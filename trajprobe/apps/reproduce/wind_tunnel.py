"""Bayesian wind tunnels: five architectures against the exact posterior, in bits.

Agarwal, Dalal & Misra (2025) score sequence models on tasks whose posterior predictive is
known in closed form and report an architecture separation: transformers match the exact
posterior (10⁻³–10⁻⁴ bits of entropy error); Mamba realises accumulation and transport but
not random-access binding; LSTMs only accumulation of static sufficient statistics; MLPs
none. This target trains, per wind tunnel (:mod:`trajprobe.tasks.wind_tunnels`) and
architecture, one capacity-matched learner (recipes ``wind-tunnel/<task>/<architecture>``,
:mod:`trajprobe.apps.recipes.wind_tunnel`: LSTM, GRU, the KV-cache transformer, the gated
SSM and an MLP over a fixed window of inputs), and scores each with
:func:`trajprobe.posterior_error` on the same held-out episodes:

* per position t: KL(Bayes ‖ learner) and the paper's entropy error |H(learner) − H(Bayes)|,
  in bits, mean ± s.e. over episodes, and the entropies themselves (the staircase);
* per (architecture, task): both averaged over positions (each episode's mean, then mean ±
  s.e. over episodes), beside the exact Bayes machine (0 by construction) and a uniform
  predictor, the ceiling (its KL is log₂ V − H(Bayes) exactly);
* by :mod:`trajprobe.apps.reproduce.wind_tunnel_structure`, on seed 0's learners: D_s/D_o
  of every learner against the exact Bayes machine (both directions) and the fixed points
  of the HMM filters.

The results' ``table`` has dims ``(architecture, task[, t])`` (t = 1..T of the longest
task; NaN beyond a shorter task's T), plus ``seed`` when several seeds are trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr
from torch import distributions as D

from trajprobe import plots
from trajprobe.apps import recipes
from trajprobe.apps.recipes.wind_tunnel import (
    WIND_TUNNEL_ARCHITECTURES,
    wind_tunnel_name,
)
from trajprobe.apps.reproduce import wind_tunnel_structure as _structure
from trajprobe.apps.reproduce.base import Presets, RunContext, SummaryRow, TargetResult
from trajprobe.dynamics import mean_sem
from trajprobe.posterior import posterior_error

__all__ = ["ARCHITECTURES", "SETTINGS", "TASKS", "UniformPredictor", "WindTunnelSettings",
           "run", "training_runs"]

ARCHITECTURES: dict[str, str] = {"lstm": "LSTM", "gru": "GRU", "transformer": "Transformer",
                                 "ssm": "GatedSSM", "mlp": "MLP"}
"""Recipe slug → the architecture's label in the table (in the table's order)."""
TASKS: dict[str, str] = {"bijection": "bijection", "recall": "associative recall",
                         "hmm": "HMM filtering", "coin": "regime-switching coin"}
"""Task slug → its label."""
BAYES, UNIFORM = "Bayes", "uniform"
FIXED_POINT_TASKS = ("hmm",)
"""Tasks whose Bayes machine is a filter with one fixed point per constant observation
(:func:`~trajprobe.apps.reproduce.wind_tunnel_structure.filter_fixed_points`)."""
EVAL_SEED = 31_415
"""Seed of the held-out episodes (the same for every architecture)."""


@dataclass(frozen=True)
class WindTunnelSettings:
    """What a preset of this target trains and evaluates (budgets live in the recipes).

    Attributes:
        tasks: the wind tunnels (slugs of :data:`TASKS`).
        architectures: the learners (slugs of :data:`ARCHITECTURES`).
        n_eval: held-out episodes per task (the s.e. is over these).
    """

    tasks: tuple[str, ...]
    architectures: tuple[str, ...]
    n_eval: int


SETTINGS: Presets[WindTunnelSettings] = Presets(
    smoke=WindTunnelSettings(("bijection", "recall", "hmm"), WIND_TUNNEL_ARCHITECTURES, 16),
    quick=WindTunnelSettings(("bijection", "recall", "hmm", "coin"), WIND_TUNNEL_ARCHITECTURES,
                             1_000),
    paper=WindTunnelSettings(("bijection", "recall", "hmm", "coin"), WIND_TUNNEL_ARCHITECTURES,
                             4_096),
)
"""This target's settings per preset."""


class UniformPredictor:
    """The ceiling: a machine whose predictive is always uniform (all-zero logits of
    ``task.distribution``: uniform over V symbols, or a fair coin). State ``[B, 0]``."""

    def __init__(self, task: Any) -> None:
        self.task = task

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """An empty state ``[B, 0]``."""
        return torch.zeros(batch_size, 0)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zeros ``[B, output_size]``; the state is unchanged."""
        return torch.zeros(x.shape[0], self.task.output_size, dtype=x.dtype,
                           device=x.device), state

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """The task's head on ``y``."""
        return self.task.distribution(y)


def training_runs(context: RunContext) -> list[tuple[str, int]]:
    """One (recipe, seed) per task, architecture and seed."""
    settings = SETTINGS[context.preset]
    return [(wind_tunnel_name(task, arch), seed) for task in settings.tasks
            for arch in settings.architectures for seed in range(context.seeds)]


_PER_T = ("kl_mean", "kl_sem", "entropy_error_mean", "entropy_error_sem", "entropy_mean",
          "bayes_entropy_mean")
_SCALARS = ("average_kl", "average_kl_sem", "average_entropy_error",
            "average_entropy_error_sem")


def _summarise(ds: xr.Dataset) -> xr.Dataset:
    """The table's variables of one :func:`posterior_error` result: per t, the averages and
    episode 0's entropies (the example-episode figure)."""
    out = ds[list(_PER_T + _SCALARS)]
    return out.assign(example_entropy=ds["entropy"].isel(episode=0, drop=True),
                      example_bayes_entropy=ds["bayes_entropy"].isel(episode=0, drop=True))


def _train(context: RunContext, task: str, arch: str, seed: int, notes: list[str]):
    name = wind_tunnel_name(task, arch)
    trained = recipes.get(name, context.preset).train(
        context.run_dir(name, seed), seed=seed, device=context.device, progress=context.progress)
    metrics = trained.metrics.isel(step=-1)
    notes.append(f"{TASKS[task]}, {ARCHITECTURES[arch]}, seed {seed}: "
                 f"{sum(p.numel() for p in trained.model.parameters()):,} parameters; final "
                 f"training log-loss {float(metrics['loss']) / math.log(2):.4g} bits after "
                 f"{int(metrics['episodes']):,} episodes "
                 f"({float(metrics['wall_time']):.0f} s of training).")
    return trained.model.eval()


def _one_task(context: RunContext, task_slug: str, result: TargetResult
              ) -> tuple[xr.Dataset, dict[int, dict[str, Any]]]:
    """Train (or reuse) every architecture on one task; score all against Bayes.

    Returns:
        ``(table (seed, architecture, t), {seed: {label: trained model}})``.
    """
    settings = SETTINGS[context.preset]
    recipe = recipes.get(wind_tunnel_name(task_slug, settings.architectures[0]), context.preset)
    task, steps = recipe.task, recipe.training.n_steps
    bayes = task.bayes_machine(device=context.device)
    held_out = task.sample(settings.n_eval, steps, seed=EVAL_SEED, device=context.device)

    def score(machine: Any) -> xr.Dataset:
        with torch.no_grad():
            return _summarise(posterior_error(machine, task, episodes=held_out, bayes=bayes))

    fixed = {BAYES: score(bayes), UNIFORM: score(UniformPredictor(task))}
    learners: dict[int, dict[str, Any]] = {}
    per_seed = []
    for seed in range(context.seeds):
        learners[seed] = {ARCHITECTURES[a]: _train(context, task_slug, a, seed, result.notes)
                          for a in settings.architectures}
        scored = {**{label: score(m) for label, m in learners[seed].items()}, **fixed}
        labels = [BAYES, *learners[seed], UNIFORM]
        table = xr.concat([scored[label] for label in labels], dim="architecture")
        params = [0, *(sum(p.numel() for p in m.parameters())
                       for m in learners[seed].values()), 0]
        per_seed.append(table.assign_coords(architecture=labels).assign(
            n_parameters=("architecture", params)))
    return xr.concat(per_seed, dim="seed").assign_coords(seed=list(range(context.seeds))), \
        learners


def run(context: RunContext) -> TargetResult:
    """Train (or reuse) every learner, score each against the exact Bayes machine."""
    settings = SETTINGS[context.preset]
    result = TargetResult(title="Bayesian wind tunnels: learners against the exact posterior, "
                                "in bits (Agarwal, Dalal & Misra 2025)")
    tables, structure = [], []
    for task_slug in settings.tasks:
        table, learners = _one_task(context, task_slug, result)
        tables.append(table.expand_dims(task=[TASKS[task_slug]]))
        structure.extend(_structure_of(context, task_slug, learners[0], result))
    table = xr.concat(tables, dim="task", join="outer")
    table.attrs.update(measure="trajprobe.posterior_error, bits", preset=context.preset,
                       n_eval=settings.n_eval)
    result.datasets["table"] = table
    for name, ds in structure:
        result.datasets[name] = ds
    result.rows = _rows(table) + result.rows
    result.figures = {**_figures(table), **result.figures}
    result.notes.insert(0, _summary_note(table, context))
    return result


def _structure_of(context: RunContext, task_slug: str, learners: dict[str, Any],
                  result: TargetResult) -> list[tuple[str, xr.Dataset]]:
    """D_s/D_o against Bayes (and, for :data:`FIXED_POINT_TASKS`, the filters' fixed points)
    by :mod:`~trajprobe.apps.reproduce.wind_tunnel_structure`, of seed 0's learners; their
    rows, figures and notes go into ``result``. Returns the datasets by name."""
    task = recipes.get(wind_tunnel_name(task_slug, "lstm"), context.preset).task
    bayes = task.bayes_machine(device=context.device)
    outputs = {f"structure_{task_slug}": _structure.structure_against_bayes(
        learners, task, bayes, preset=context.preset, seed=0)}
    if task_slug in FIXED_POINT_TASKS:
        outputs[f"fixed_points_{task_slug}"] = _structure.filter_fixed_points(
            learners, task, preset=context.preset, seed=0)
    for _, rows, figures, notes in outputs.values():
        result.rows.extend(rows)
        for stem, fig in figures.items():
            result.figures[f"{stem}_{task_slug}" if stem in result.figures else stem] = fig
        result.notes.extend(notes)
    return [(name, out[0]) for name, out in outputs.items()]


def _rows(table: xr.Dataset) -> list[SummaryRow]:
    """Per task and architecture (Bayes and uniform included): KL and the entropy error,
    bits per position, mean ± s.e. over episodes (over seeds when several)."""
    rows = []
    seeds = table.sizes["seed"]
    for task in table["task"].values:
        for arch in table["architecture"].values:
            one = table.sel(task=task, architecture=arch)
            params = int(one["n_parameters"].isel(seed=0))
            for var, name in (("average_kl", "KL(Bayes ‖ learner)"),
                              ("average_entropy_error", "entropy error |ΔH|")):
                if seeds > 1:
                    ours, sem = mean_sem(one[var].values)
                else:
                    ours, sem = float(one[var].isel(seed=0)), float(
                        one[f"{var}_sem"].isel(seed=0))
                note = f"{params:,} parameters" if params else (
                    "exact posterior" if arch == BAYES else "ceiling")
                rows.append(SummaryRow(f"{task}: {name}, bits per position", str(arch), ours,
                                       None, note, sem=sem))
    return rows


def _summary_note(table: xr.Dataset, context: RunContext) -> str:
    settings = SETTINGS[context.preset]
    bayes = table["kl_mean"].sel(architecture=BAYES).isel(seed=0)
    lengths = ", ".join(f"{task} T = {int(bayes.sel(task=task).notnull().sum())}"
                        for task in table["task"].values)
    archs = ", ".join(ARCHITECTURES[a] for a in settings.architectures)
    return (f"Preset {context.preset}: {archs}"
            f" on {', '.join(TASKS[t] for t in settings.tasks)} ({lengths}); "
            f"{context.seeds} seed(s); every learner capacity-matched (parameters in the "
            f"rows' notes) and trained teacher-forced on fresh episodes for a fixed number of "
            f"updates; scored on {settings.n_eval} held-out episodes per task (seed "
            f"{EVAL_SEED}), the same for every machine. KL(Bayes ‖ learner) and |H(learner) − "
            "H(Bayes)| in bits per position, averaged over positions, mean ± s.e. over "
            "episodes. Bayes is 0 by construction; the uniform predictor's KL is "
            "log₂ V − H(Bayes) (the ceiling).")


_STYLE = {BAYES: {"color": "black", "lw": 2.2}, UNIFORM: {"color": "0.6", "ls": "--"}}
_LINES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)))
"""One line style per learner, so that learners on the same curve (e.g. all on the uniform
plateau) stay distinguishable."""


def _figures(table: xr.Dataset) -> dict[str, plt.Figure]:
    return {"entropy_vs_position": _plot_per_task(table, "entropy_mean", log=False),
            "kl_vs_position": _plot_per_task(table, "kl_mean", log=True),
            "entropy_example_episode": _plot_per_task(table, "example_entropy", log=False)}


def _plot_per_task(table: xr.Dataset, var: str, *, log: bool) -> plt.Figure:
    """One panel per task: ``var`` per position for every learner (seed 0); beside it the
    Bayes entropy (entropy panels) or the uniform ceiling (KL panel, log axis); one legend
    below the panels."""
    tasks = table["task"].values
    fig, axes = plots.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 4.3), squeeze=False)
    one = table.isel(seed=0)
    for ax, task in zip(axes[0], tasks, strict=True):
        data = one.sel(task=task)
        data = data.isel(t=np.flatnonzero(data["bayes_entropy_mean"].sel(
            architecture=BAYES).notnull().values))  # this task's positions only
        t = data["t"].values
        learners = [a for a in data["architecture"].values if a not in (BAYES, UNIFORM)]
        for k, arch in enumerate(learners):
            y = data[var].sel(architecture=arch).values
            line, = ax.plot(t, np.clip(y, 1e-6, None) if log else y, marker=".", ms=4,
                            ls=_LINES[k % len(_LINES)], label=arch)
            if var == "kl_mean":
                sem = data["kl_sem"].sel(architecture=arch).values
                ax.fill_between(t, np.clip(y - sem, 1e-6, None), y + sem, alpha=0.2,
                                color=line.get_color())
        if log:
            ceiling = data[var].sel(architecture=UNIFORM).values
            ax.plot(t, np.where(ceiling > 0, ceiling, np.nan), label="uniform (ceiling)",
                    **_STYLE[UNIFORM])  # 0 where Bayes is uniform too: off a log axis
            ax.set_yscale("log")
            ax.set_ylabel("KL(Bayes ‖ learner), bits (mean ± s.e.)")
        else:
            bayes = "example_bayes_entropy" if var == "example_entropy" else "bayes_entropy_mean"
            ax.step(t, data[bayes].sel(architecture=BAYES), where="mid", label="Bayes (exact)",
                    **_STYLE[BAYES])
            ax.set_ylabel("predictive entropy, bits" + (" (episode 1)" if var ==
                                                        "example_entropy" else " (mean)"))
        ax.set_title(str(task))
        ax.set_xlabel("position t (t − 1 observations)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8,
               frameon=False)
    fig.suptitle({"entropy_mean": "Predictive entropy against position, beside the exact "
                                  "posterior's (mean over held-out episodes)",
                  "kl_mean": "KL from the exact posterior per position (log axis)",
                  "example_entropy": "One held-out episode: entropy per position (Bayes's "
                                     "stair-steps)"}[var], fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig
