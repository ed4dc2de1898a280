"""Benchmark: a transformer's D_o against ridge / dMMSE through CacheSummary vs CacheReadout.

Trains (once, into ``--runs``) a task-diversity transformer of the quick architecture
(``task-diversity/transformer-m<M>``, 4 layers of 32) for ``--episodes`` episodes, then
compares it with ridge (and, for a finite pool, dMMSE) on 200 fresh-task episodes by
:func:`trajprobe.compare.simulation` (closed-form maps, 5 folds), its state summarised
by :class:`~trajprobe.adapters.CacheSummary` (mean cached keys and values) and by
:class:`~trajprobe.adapters.CacheReadout` (attention read-outs for the 8 fixed queries
the task-diversity target uses). Issue 33: the read-outs should give the lower D_o.

    python benchmarks/simulation_transformer_readout.py --runs /tmp/runs --pool inf \\
        --episodes 100000
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from trajprobe.adapters import CacheSummary
from trajprobe.apps import recipes
from trajprobe.apps.recipes.in_context import task_diversity_name
from trajprobe.apps.reproduce.task_diversity import _readout
from trajprobe.compare import SimulationConfig, simulation
from trajprobe.reference_models import BayesianLinearRegression, DiscreteMMSE
from trajprobe.tasks import TaskPool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--pool", default="inf", help="pool size M, or inf")
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = None if args.pool == "inf" else int(args.pool)
    recipe = recipes.get(task_diversity_name(size), "quick")
    training = dataclasses.replace(recipe.training, n_episodes=args.episodes, n_checkpoints=2,
                                   save_every=10**9)
    recipe = dataclasses.replace(recipe, training=training)
    run = args.runs / f"readout-m{args.pool}-{args.episodes}"
    if not (run / "latest.pt").exists():
        recipe.train(run, seed=0, progress=False)
    model = recipe.build_model(seed=0)
    model.load_state_dict(torch.load(run / "latest.pt", weights_only=False)["model"])
    model.eval()
    pool = recipe.task
    episodes = TaskPool(pool.task, size=None, seed=1).sample(200, training.n_steps, seed=5)
    references = {"Ridge": BayesianLinearRegression.from_task(pool.task)}
    if pool.finite:
        references["dMMSE"] = DiscreteMMSE.from_task(pool)
    config = SimulationConfig(n_hidden_layers=0)
    print(f"M = {args.pool}, {args.episodes} training episodes; direction Transformer → reference")
    for name, reference in references.items():
        for label, machine in (("CacheSummary", CacheSummary(model)),
                               ("CacheReadout", _readout(model, episodes.inputs.shape[-1]))):
            start = time.perf_counter()
            with torch.no_grad():
                ds = simulation(machine, reference, episodes.inputs, config=config, seed=0)
            row = ds.sel(direction="a→b")
            print(f"{name:<6} {label:<13} D_o {float(row.output_dissimilarity):.4f} ± "
                  f"{float(row.output_dissimilarity_sem):.3f}  bound "
                  f"{float(row.output_dissimilarity_constant):.4f}  score "
                  f"{float(row.output_simulation_score):.3f}  D_s "
                  f"{float(row.state_dissimilarity):.4f}  "
                  f"[{time.perf_counter() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
