"""How good are the cost estimates of ``trajprobe recipes``? Measured against estimated.

For a representative recipe of every kind (supervised and closed-loop Meta-Learners of
each architecture, vmapped Learners, the closed-form bandit Learner) it times a short run
of the real thing — ``recipe.train`` on ``UPDATES`` outer updates, ``UPDATES`` Learner
steps — and prints the seconds per update measured and estimated
(``recipe.estimated_seconds`` over the recipe's updates), and their ratio.
The constants in ``trajprobe/apps/recipes/config.py`` are calibrated from this table.

Run: ``python benchmarks/cost_model.py [--threads 2]`` (about 3 minutes on a quiet machine).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import replace

import torch

from trajprobe.adapters.bandit_learner import BanditLearner, train_bandit_learners
from trajprobe.adapters.torch_learner import Adam, linear_regression_learner, mlp_learner
from trajprobe.apps import recipes

UPDATES = 50
META = ("linear-regression-2d/meta-learner", "linear-regression-2d/transformer",
        "nonlinear-regression/meta-learner", "bayes-optimal/bernoulli_beta_1_1",
        "contextual-bandits/meta-learner-coupled", "bayes-optimal/bandit_bernoulli_beta_1_1")
LEARNERS = ("linear-regression-2d/learner", "nonlinear-regression/learner",
            "contextual-bandits/learner-coupled")


def _train_seconds(recipe: recipes.MetaLearnerRecipe, updates: int) -> float:
    cfg = recipe.training
    short = replace(recipe, training=replace(cfg, n_episodes=cfg.batch_size * updates))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        short.train(out, progress=False)
        return time.perf_counter() - start


def meta_seconds_per_update(recipe: recipes.MetaLearnerRecipe) -> tuple[float, float]:
    """(measured, estimated) seconds per outer update of ``recipe``'s training.

    Measured as the difference of a long and a short run over the extra updates, so the
    run's one-off costs (model build, first checkpoint, warm-up) do not count.
    """
    extra = _train_seconds(recipe, 5 * UPDATES) - _train_seconds(recipe, UPDATES)
    cfg = recipe.training
    per_update = recipe.estimated_seconds() / math.ceil(cfg.n_episodes / cfg.batch_size)
    return extra / (4 * UPDATES), per_update


def learner_seconds_per_step(recipe: recipes.LearnerRecipe) -> tuple[float, float]:
    """(measured, estimated) seconds per Learner step (estimate over the recipe's steps)."""
    cfg = recipe.learner
    if cfg.network.startswith("bandit"):
        learner = BanditLearner(5, 5, coupled=cfg.network == "bandit-coupled",
                                optimiser=Adam(cfg.lr), dtype=torch.float64)
        start = time.perf_counter()
        train_bandit_learners(learner, recipe.task, cfg.n_learners, minibatch=cfg.minibatch,
                              max_steps=UPDATES * 10, stop_at=None, progress=False)
        measured = (time.perf_counter() - start) / (UPDATES * 10)
    else:
        if cfg.network == "linear-mlp":
            learner = linear_regression_learner(recipe.task.dim, recipe.task.dim,
                                                hidden=cfg.hidden)
            width = 2 * recipe.task.dim
        else:
            learner = mlp_learner(hidden=cfg.hidden)
            width = 2
        state = learner.initial_state(cfg.n_learners)
        x = torch.randn(cfg.n_learners, cfg.minibatch, width)
        with torch.no_grad():
            learner.step(x, state)  # warm-up
            start = time.perf_counter()
            for _ in range(UPDATES):
                _, state = learner.step(x, state)
        measured = (time.perf_counter() - start) / UPDATES
    return measured, recipe.estimated_seconds() / recipe.expected_steps()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--preset", default="quick")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'recipe':<42} {'measured':>10} {'estimated':>10} {'ratio':>6}   "
          f"(seconds per update; {args.threads} thread(s), preset {args.preset})")
    for name in META + LEARNERS:
        recipe = recipes.get(name, args.preset)
        if isinstance(recipe, recipes.MetaLearnerRecipe):
            measured, estimated = meta_seconds_per_update(recipe)
        else:
            measured, estimated = learner_seconds_per_step(recipe)
        print(f"{name:<42} {measured:10.4f} {estimated:10.4f} {measured / estimated:6.2f}",
              flush=True)


if __name__ == "__main__":
    main()
