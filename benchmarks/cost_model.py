"""How good are the cost estimates of ``trajprobe recipes``? Measured against estimated.

For every recipe listed (or those named), at a preset (default smoke), it runs the real
thing once and prints, side by side, the estimate (``recipe.estimated_seconds()``, what
``trajprobe recipes`` shows), the measured wall-clock seconds, the measured CPU seconds of
this process, and estimated / measured:

* a Meta-Learner: ``recipe.train(tmpdir)`` end to end (model build, every update,
  checkpoints, ``recipe.json``), after the imports;
* a Learner: its ``n_steps`` training steps (its stopping rule's typical steps for the
  bandit Learner, capped at ``n_steps``) on ``n_learners`` × ``minibatch``, as
  ``trajprobe reproduce`` runs them.

The constants in ``trajprobe/apps/recipes/config.py`` are calibrated from this table. On a
shared machine the wall clock depends on the load (printed); the CPU seconds of one thread
are what a quiet machine's wall clock would be. The last lines check that every recipe's
estimate grows with the preset (smoke < quick < paper) and count the ratios outside 0.5-2.

Run: ``python benchmarks/cost_model.py [--preset smoke] [--threads 1] [NAME ...]``
(smoke, all 61 recipes: a few minutes on a quiet machine; quick: name a few cheap ones,
e.g. ``--preset quick bayes-optimal/bernoulli_beta_1_1 flipflop-3bit/gru``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time

import torch

from trajprobe.adapters.bandit_learner import BanditLearner, train_bandit_learners
from trajprobe.adapters.torch_learner import Adam, linear_regression_learner, mlp_learner
from trajprobe.apps import recipes


def _clock(run) -> tuple[float, float]:
    """(wall, CPU) seconds of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def meta_seconds(recipe: recipes.MetaLearnerRecipe) -> tuple[float, float]:
    """(wall, CPU) seconds of ``recipe.train`` into a fresh directory."""
    with tempfile.TemporaryDirectory() as out:
        return _clock(lambda: recipe.train(out, progress=False))


def learner_seconds(recipe: recipes.LearnerRecipe) -> tuple[float, float]:
    """(wall, CPU) seconds of the Learner's training steps."""
    cfg = recipe.learner
    steps = recipe.expected_steps()
    if cfg.network.startswith("bandit"):
        task = recipe.task
        learner = BanditLearner(task.n_contexts, task.n_actions,
                                coupled=cfg.network == "bandit-coupled",
                                optimiser=Adam(cfg.lr), dtype=torch.float64)
        return _clock(lambda: train_bandit_learners(
            learner, task, cfg.n_learners, minibatch=cfg.minibatch, max_steps=steps,
            stop_at=None, progress=False))
    if cfg.network == "linear-mlp":
        learner = linear_regression_learner(recipe.task.dim, recipe.task.dim, hidden=cfg.hidden)
        width = 2 * recipe.task.dim
    else:
        learner = mlp_learner(hidden=cfg.hidden)
        width = 2
    x = torch.randn(cfg.n_learners, cfg.minibatch, width)

    def run() -> None:
        state = learner.initial_state(cfg.n_learners)
        with torch.no_grad():
            for _ in range(steps):
                _, state = learner.step(x, state)

    return _clock(run)


def monotone_violations() -> list[str]:
    """Recipes whose estimate does not grow smoke < quick < paper."""
    bad = []
    for name in recipes.names():
        costs = [recipes.get(name, p).estimated_seconds() for p in recipes.PRESETS]
        if not all(a < b for a, b in itertools.pairwise(costs)):
            bad.append(f"{name}: " + " / ".join(f"{c:.3g}" for c in costs))
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="recipes to time (default: every one)")
    parser.add_argument("--preset", default="smoke", choices=recipes.PRESETS)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"preset {args.preset}, {args.threads} thread(s), load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'recipe':<44} {'estimated':>9} {'wall':>8} {'CPU':>8} {'est/wall':>8} "
          f"{'est/CPU':>8}")
    meta_seconds(recipes.get("bayes-optimal/bernoulli_beta_1_1", "smoke"))  # warm-up, untimed
    outside = 0
    for name in args.names or recipes.names():
        recipe = recipes.get(name, args.preset)
        if isinstance(recipe, recipes.MetaLearnerRecipe):
            wall, cpu = meta_seconds(recipe)
        else:
            wall, cpu = learner_seconds(recipe)
        estimated = recipe.estimated_seconds()
        outside += not 0.5 <= estimated / cpu <= 2.0
        print(f"{name:<44} {estimated:9.2f} {wall:8.2f} {cpu:8.2f} {estimated / wall:8.2f} "
              f"{estimated / cpu:8.2f}", flush=True)
    print(f"\n{outside} recipe(s) with estimated / CPU outside 0.5-2")
    bad = monotone_violations()
    print(f"estimates not increasing smoke < quick < paper: {len(bad)}")
    for line in bad:
        print(f"  {line}")


if __name__ == "__main__":
    main()
