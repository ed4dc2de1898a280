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

``python -m trajprobe.apps.reproduce.diversity_sufficiency --preset quick`` prints one row
per (M, machine) and writes ``sufficiency.nc`` into the target's output directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import xarray as xr

from trajprobe.apps import recipes
from trajprobe.apps.recipes.config import default_out_dir
from trajprobe.apps.recipes.in_context import TASK_DIVERSITY_LADDER, task_diversity_name
from trajprobe.apps.reproduce.base import RunContext
from trajprobe.compare import sufficiency
from trajprobe.io import save_dataset
from trajprobe.reference_models import BayesianLinearRegression, DiscreteMMSE
from trajprobe.tasks import TaskPool

__all__ = ["main", "measure_ladder"]

N_EPISODES = {"smoke": 16, "quick": 200, "paper": 400}
"""Fresh-task histories per pool size and preset."""
N_PROBES = 20
HORIZON = 4
SEED = 2_026


def _machines(context: RunContext, size: int | None) -> tuple[TaskPool, dict]:
    name = task_diversity_name(size)
    recipe = recipes.get(name, context.preset)
    pool: TaskPool = recipe.task
    machines = {"dMMSE": DiscreteMMSE.from_task(pool) if pool.finite
                else BayesianLinearRegression.from_task(pool.task),
                "Ridge": BayesianLinearRegression.from_task(pool.task)}
    for seed in range(context.seeds):
        trained = recipe.train(context.run_dir(name, seed), seed=seed, device=context.device,
                               progress=context.progress)
        machines[f"Transformer seed {seed}"] = trained.model.cpu().eval()
    return pool, machines


def measure_ladder(context: RunContext, sizes: list[int | None] | None = None) -> xr.Dataset:
    """Pooled ratios ``ratio_overall``, ``interventional_ratio_overall`` ``(M, machine)``."""
    sizes = list(TASK_DIVERSITY_LADDER[context.preset]) if sizes is None else sizes
    per_size = []
    for size in sizes:
        pool, machines = _machines(context, size)
        fresh = pool.task.sample(N_EPISODES[context.preset], recipes.get(
            task_diversity_name(size), context.preset).training.n_steps, seed=SEED,
            dtype=torch.float32)
        rows = [sufficiency(m, pool, episodes=fresh, probes=N_PROBES, horizon=HORIZON,
                            seed=SEED)[["ratio_overall", "interventional_ratio_overall"]]
                for m in machines.values()]
        per_size.append(xr.concat(rows, dim="machine", combine_attrs="drop_conflicts")
                        .assign_coords(machine=list(machines)))
    labels = ["∞" if m is None else str(m) for m in sizes]
    return xr.concat(per_size, dim="M", join="outer").assign_coords(M=labels)


def main(argv: list[str] | None = None) -> xr.Dataset:
    """The command (module docstring): ``--preset``, ``--seeds``, ``--out``, ``--sizes``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=("smoke", "quick", "paper"))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
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
            sel = ds.sel(M=m, machine=machine)
            ratio, inter = (float(sel[v]) for v in ("ratio_overall",
                                                     "interventional_ratio_overall"))
            print(f"| {m} | {machine} | {ratio:.3g} | {inter:.3g} |")
    print("(n/a: no history moves the machine's predictions, e.g. dMMSE with M = 1; at "
          "M = ∞ dMMSE is ridge)")
    out.mkdir(parents=True, exist_ok=True)
    save_dataset(ds, out / "sufficiency.nc")
    return ds


if __name__ == "__main__":
    main()
