"""The sufficiency test (issue 36) on the task-diversity transformers: does a transformer
pretrained on a pool of M tasks treat a shuffled context as the same context?

For every pool size M of the task-diversity ladder, its transformers (the target's runs,
trained or reused) are measured with :func:`trajprobe.compare.sufficiency` on fresh tasks
from the prior N(0, I), beside the two Bayes machines (dMMSE for the pool, ridge for the
prior), whose posteriors ignore the order of the examples (ratio 0). Equal-posterior
partners shuffle the completed (x, y) examples (``TaskPool.permute_history``); the
divergence is the normalised squared error of the predictions on N probe inputs (the
machines have no predictive distribution). The transformers have learned positions, so
nothing forces their ratio to 0: a ratio near 0 says the transformer learned to read its
context as a set, as both Bayes machines do.

The task-diversity report (:mod:`trajprobe.apps.reproduce.task_diversity`) adds these
rows and the figure ``sufficiency_vs_pool_size`` (:func:`measure_size`,
:func:`sufficiency_rows`, :func:`plot_sufficiency`). Alone, on the target's runs:
``python -m trajprobe.apps.reproduce.diversity_sufficiency --preset quick [--out DIR]``
prints one row per (M, machine) and writes ``sufficiency.nc`` and
``sufficiency_vs_pool_size.png`` into the target's output directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr

from trajprobe import plots
from trajprobe.apps import recipes
from trajprobe.apps.recipes.config import default_out_dir
from trajprobe.apps.recipes.in_context import TASK_DIVERSITY_LADDER, task_diversity_name
from trajprobe.apps.reproduce.base import RunContext, SummaryRow
from trajprobe.compare import sufficiency
from trajprobe.dynamics import mean_sem
from trajprobe.io import save_dataset
from trajprobe.reference_models import BayesianLinearRegression, DiscreteMMSE
from trajprobe.tasks import Episodes, TaskPool

__all__ = ["MACHINES", "N_EPISODES", "main", "measure_ladder", "measure_size",
           "plot_sufficiency", "sufficiency_rows"]

MACHINES = ("Transformer", "dMMSE", "Ridge")
"""The machines measured at every pool size (the Bayes machines once, the transformer per
seed)."""
N_EPISODES = {"smoke": 16, "quick": 200, "paper": 400}
"""Fresh-task histories per pool size and preset."""
N_PROBES = 20
HORIZON = 4
SEED = 2_026
_VARIABLES = ("ratio_overall", "interventional_ratio_overall", "ratio")


def measure_size(pool: TaskPool, bayes: dict[str, Any], models: list, episodes: Episodes,
                 seed: int = SEED) -> xr.Dataset:
    """The sufficiency ratios of one rung: ``ratio_overall``,
    ``interventional_ratio_overall`` ``(machine, seed)`` and ``ratio (machine, seed, t)``.

    Args:
        pool: the rung's task (its ``permute_history`` makes the equal-posterior partners).
        bayes: ``{"dMMSE": ..., "Ridge": ...}``; at M = ∞ the same object (measured once).
        models: the rung's transformers, one per training seed.
        episodes: the fresh-task histories h1, the same for every machine.
        seed: the probes, the permutations and the derangement.

    The Bayes machines do not depend on the training seed: measured once, repeated along
    ``seed``.
    """
    def measure(machine) -> xr.Dataset:
        return sufficiency(machine, pool, episodes=episodes, probes=N_PROBES,
                           horizon=HORIZON, seed=seed)[list(_VARIABLES)]

    ridge = measure(bayes["Ridge"])
    dmmse = ridge if bayes["dMMSE"] is bayes["Ridge"] else measure(bayes["dMMSE"])
    seeds = list(range(len(models)))
    transformer = xr.concat([measure(model) for model in models], dim="seed",
                            combine_attrs="drop_conflicts")
    rows = [transformer] + [one.expand_dims(seed=len(seeds)) for one in (dmmse, ridge)]
    return (xr.concat(rows, dim="machine", combine_attrs="drop_conflicts")
            .assign_coords(machine=list(MACHINES), seed=seeds))


def sufficiency_rows(ds: xr.Dataset) -> list[SummaryRow]:
    """Per M: the transformer's pooled sufficiency ratio (mean ± s.e. over seeds), the
    interventional one and the Bayes machines' in the note."""
    rows = []
    seeds = ds.sizes["seed"]
    for m in ds["M"].values:
        one = ds.sel(M=m)
        ours, sem = mean_sem(one["ratio_overall"].sel(machine="Transformer").values)
        inter = float(one["interventional_ratio_overall"].sel(machine="Transformer").mean())
        bayes = ", ".join(f"{name} {_fmt(float(one['ratio_overall'].sel(machine=name)[0]))}"
                          for name in ("dMMSE", "Ridge"))
        rows.append(SummaryRow(
            f"sufficiency ratio (pooled over t; shuffled / another context), fresh tasks, "
            f"M = {m}", "Transformer", ours, None,
            f"interventional (k = {HORIZON}) {inter:.3g}; {bayes} (0: the order ignored, "
            "as by Bayes; n/a: no context moves its predictions)",
            sem=sem if seeds > 1 else None))
    return rows


def _fmt(value: float) -> str:
    """n/a for NaN, "< 1e-12" for float64 rounding, else 2 significant digits."""
    if np.isnan(value):
        return "n/a"
    return "< 1e-12" if abs(value) < 1e-12 else f"{value:.2g}"


def plot_sufficiency(ds: xr.Dataset) -> plt.Figure:
    """The pooled ratios against M on a log scale: the transformer's (observational and
    interventional, ± s.e. over seeds, side by side); dMMSE's and ridge's where they are
    above float64 rounding (1e-12), else named as 0 in the panel's note."""
    x = np.arange(ds.sizes["M"])
    fig, ax = plots.subplots(1, 1, figsize=(7, 4.4))
    ratio = ds["ratio_overall"]
    for var, shift, style, label in (
            ("ratio_overall", -0.06, dict(marker="o", ls="-"), "Transformer (probes)"),
            ("interventional_ratio_overall", 0.06, dict(marker="o", mfc="white", ls="--"),
             f"Transformer, patched state continued {HORIZON} steps")):
        mean, sem = mean_sem(ds[var].sel(machine="Transformer"), "seed")
        ax.errorbar(x + shift, mean, yerr=np.nan_to_num(sem.values), capsize=3,
                    color="tab:blue", label=label, **style)
    zero = []
    for machine, style in (("dMMSE", dict(color="tab:orange", marker="s", ls="--")),
                           ("Ridge", dict(color="tab:green", marker="^", ls=":"))):
        values = ratio.sel(machine=machine).isel(seed=0)
        if bool((abs(values) > 1e-12).any()):
            ax.plot(x, values, label=machine, **style)
        else:
            zero.append(machine)
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(x, [str(m) for m in ds["M"].values])
    ax.set_xlabel("pool size M")
    ax.set_ylabel("sufficiency ratio (pooled over t)")
    seeds = ds.sizes["seed"]
    undefined = [str(m) for m in ds["M"].values
                 if bool(ratio.sel(M=m, machine="dMMSE").isnull().all())]
    note = (f"{' and '.join(zero)}: < 1e-12 at every M, not drawn" if zero else "")
    if undefined and "dMMSE" in zero:
        note += f" (dMMSE at M = {', '.join(undefined)}: n/a, no context moves it)"
    ax.set_title("Does a shuffled context give the same predictions?\n0: the order ignored "
                 "(Bayes); 1 (grey): as much change as another context"
                 + (f"; ± s.e. over {seeds} seeds" if seeds > 1 else ""), fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    if note:  # last, a legend line without a mark
        handles.append(ax.plot([], [], " ")[0])
        labels.append(note)
    ax.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.17))
    fig.tight_layout()
    return fig


def _machines(context: RunContext, size: int | None) -> tuple[TaskPool, dict, list]:
    name = task_diversity_name(size)
    recipe = recipes.get(name, context.preset)
    pool: TaskPool = recipe.task
    ridge = BayesianLinearRegression.from_task(pool.task)
    bayes = {"dMMSE": DiscreteMMSE.from_task(pool) if pool.finite else ridge, "Ridge": ridge}
    models = [recipe.train(context.run_dir(name, seed), seed=seed, device=context.device,
                           progress=context.progress).model.cpu().eval()
              for seed in range(context.seeds)]
    return pool, bayes, models


def measure_ladder(context: RunContext, sizes: list[int | None] | None = None) -> xr.Dataset:
    """:func:`measure_size` for every pool size (default: the preset's ladder), dim ``M``."""
    sizes = list(TASK_DIVERSITY_LADDER[context.preset]) if sizes is None else sizes
    per_size = []
    for size in sizes:
        pool, bayes, models = _machines(context, size)
        points = recipes.get(task_diversity_name(size), context.preset).training.n_steps
        fresh = pool.task.sample(N_EPISODES[context.preset], points, seed=SEED)
        per_size.append(measure_size(pool, bayes, models, fresh))
    labels = ["∞" if m is None else str(m) for m in sizes]
    return xr.concat(per_size, dim="M", join="outer").assign_coords(M=labels)


def main(argv: list[str] | None = None) -> xr.Dataset:
    """The command (module docstring): ``--preset``, ``--seeds``, ``--out``, ``--sizes``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=("smoke", "quick", "paper"))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None,
                        help="the task-diversity target's directory, whose runs/ are reused "
                             "(default: ./trajprobe-runs/task-diversity-PRESET)")
    parser.add_argument("--sizes", nargs="*", default=None,
                        help="pool sizes (inf for M = ∞; default: the preset's ladder)")
    args = parser.parse_args(argv)
    out = args.out or default_out_dir("task-diversity", args.preset)
    context = RunContext(preset=args.preset, seeds=args.seeds, device=torch.device("cpu"),
                         out_dir=out, progress=False)
    sizes = None if args.sizes is None else [None if s == "inf" else int(s)
                                             for s in args.sizes]
    ds = measure_ladder(context, sizes)
    print("| M | machine | sufficiency ratio | interventional |\n|---|---|---|---|")
    for m in ds["M"].values:
        for machine in ds["machine"].values:
            sel = ds.sel(M=m, machine=machine).mean("seed")
            ratio, inter = (float(sel[v]) for v in ("ratio_overall",
                                                     "interventional_ratio_overall"))
            print(f"| {m} | {machine} | {ratio:.3g} | {inter:.3g} |")
    print("(nan: no history moves the machine's predictions, e.g. dMMSE with M = 1; at "
          "M = ∞ dMMSE is ridge; the transformer's value is the mean over seeds)")
    out.mkdir(parents=True, exist_ok=True)
    save_dataset(ds, out / "sufficiency.nc")
    plot_sufficiency(ds).savefig(out / "sufficiency_vs_pool_size.png", dpi=120)
    return ds


if __name__ == "__main__":
    main()
