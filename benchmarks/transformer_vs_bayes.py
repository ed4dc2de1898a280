"""Issue 15's quick-preset check: an in-context Meta-Learner's MSE against Bayes' MSE.

Run:  python benchmarks/transformer_vs_bayes.py                  (the quick transformer recipe)
      python benchmarks/transformer_vs_bayes.py --recipe linear-regression-2d/ssm
      python benchmarks/transformer_vs_bayes.py --episodes 600000 --batch 64 --lr 1e-3 \
          --width 64 --layers 2

Trains the recipe (quick preset unless --preset; optionally with another budget,
optimiser or width), then scores it and :class:`BayesianLinearRegression` on the same
4000 held-out prior episodes: episode-average squared error, excess over Bayes, training
time (wall and CPU seconds: on a loaded machine the CPU time is what one free core would
take; the load average is printed beside them), and the per-step errors.

Scalar-output recipes (issue 29): Garg et al.'s noiseless task is scored against least
squares (Bayes' limit, ridge λ = 10⁻¹²); a task-diversity recipe
(``task-diversity/transformer-m<M>``) against dMMSE (Bayes for its pool) and ridge (Bayes
for the prior), on its pool's tasks and on fresh ones::

    python benchmarks/transformer_vs_bayes.py --recipe task-diversity/transformer-m16
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import torch

from trajprobe import rollout
from trajprobe.apps import recipes
from trajprobe.reference_models import BayesianLinearRegression, DiscreteMMSE
from trajprobe.tasks import Episodes, TaskPool


def _configured(args: argparse.Namespace) -> recipes.MetaLearnerRecipe:
    recipe = recipes.get(args.recipe, args.preset)
    cfg = recipe.training
    opt = cfg.optimiser
    cfg = replace(cfg, n_episodes=args.episodes or cfg.n_episodes,
                  batch_size=args.batch or cfg.batch_size,
                  optimiser=replace(opt, lr=args.lr or opt.lr,
                                    warmup=opt.warmup if args.warmup is None else args.warmup))
    model = replace(recipe.model, size=args.width or recipe.model.size,
                    layers=args.layers or recipe.model.layers)
    return replace(recipe, training=cfg, model=model)


def _squared_errors(machine, episodes: Episodes, dtype: torch.dtype) -> torch.Tensor:
    """‖ŷ_t − y_t‖² ``[E, T]`` of ``machine`` rolled out on ``episodes`` in ``dtype``."""
    with torch.no_grad():
        outputs = rollout(machine, episodes.inputs.to(dtype)).outputs
    return (outputs - episodes.targets.to(dtype)).square().sum(-1)


def _references(task) -> dict[str, object]:
    """Bayes machines for ``task``: ridge (or least squares for a noiseless task), and
    dMMSE for a finite task pool. Wrapped tasks (a pool, Garg's curriculum) expose the
    regression they draw from as ``task.task``."""
    base = getattr(task, "task", task)
    noise = base.noise_std or 1e-6  # noiseless (Garg et al.): least squares, Bayes' limit
    refs = {"Bayes" if base.noise_std else "Least squares":
            BayesianLinearRegression.from_task(base, noise_std=noise)}
    if isinstance(task, TaskPool) and task.finite:
        refs = {"dMMSE": DiscreteMMSE.from_task(task), "Ridge": refs["Bayes"]}
    return refs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="linear-regression-2d/transformer")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--episodes", type=int, default=None, help="default: the preset's")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=None,
                        help="fraction of the outer steps of linear lr warm-up")
    parser.add_argument("--width", type=int, default=None, help="d_model / state channels")
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None,
                        help="train into this run directory (resumable; a reproduce target "
                             "reuses it when the recipe is unchanged); default: in memory")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = _configured(args)
    cfg = recipe.training
    start, cpu_start = time.perf_counter(), time.process_time()
    model = recipe.train(args.out, seed=0, progress=False).model
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    load = os.getloadavg()
    sets = {"prior": getattr(recipe.task, "task", recipe.task).sample(4000, cfg.n_steps,
                                                                     seed=999)}
    if isinstance(recipe.task, TaskPool) and recipe.task.finite:
        sets = {"pool": recipe.task.sample(4000, cfg.n_steps, seed=998), "fresh": sets["prior"]}
    print(f"{recipe.name} ({recipe.model.architecture} width {recipe.model.size}, "
          f"{recipe.model.layers} layers): {cfg.n_episodes:,} episodes, batch "
          f"{cfg.batch_size}, {cfg.optimiser.name} {cfg.optimiser.lr} {cfg.optimiser.schedule} "
          f"(warm-up {cfg.optimiser.warmup:.0%}), {args.threads} thread(s)")
    print(f"  training {seconds:.0f} s wall ({cfg.n_episodes / seconds:,.0f} episodes/s), "
          f"{cpu:.0f} s CPU; load average at the end {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}   (target <= 600 s)")
    for tasks, episodes in sets.items():
        err = _squared_errors(model, episodes, torch.float32)
        print(f"  {tasks} tasks: MSE {err.mean():.4f}")
        print("    per-step MSE, model:", " ".join(f"{v:.3f}" for v in err.mean(0).tolist()))
        for name, machine in _references(recipe.task).items():
            best = _squared_errors(machine, episodes, torch.float64)
            print(f"    {name} MSE {best.mean():.4f}: excess {err.mean() / best.mean() - 1:+.1%}"
                  "   (target <= +10% against Bayes)")
            print(f"    per-step MSE, {name}:", " ".join(f"{v:.3f}" for v in best.mean(0).tolist()))


if __name__ == "__main__":
    main()
