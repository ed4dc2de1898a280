"""The coupled contextual-bandit Meta-Learner at the quick preset: does it learn every context?

Run:  python benchmarks/bandit_meta_learner.py                    (the quick recipe)
      python benchmarks/bandit_meta_learner.py --episodes 50000 --curriculum 0.3:100:2,0.3:100:3
      python benchmarks/bandit_meta_learner.py --curriculum none   (no curriculum)

Trains `contextual-bandits/meta-learner-coupled` (quick preset, optionally with another
budget or curriculum) on one thread, then measures it as `trajprobe reproduce
contextual-bandits` does: q_c(t) = π_t(a*(c)|c) probed with every context on 500 fresh
5-context episodes (seed ``EVAL_SEED``), contexts ranked per episode by R_c (eq. 14).
Prints the mean expected reward per step (eq. 13; chance 0.32, Bayes-Thompson 0.60), q of
every rank at the last step, the step at which each rank's episode-mean q first exceeds
0.5 (the issue's target: reward >= 0.55 and all five ranks reach q > 0.5), the training
reward per tenth of the run, the training seconds and the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
import torch

from trajprobe import recipes
from trajprobe.dynamics import steps_to_threshold
from trajprobe.machine import logits_policy
from trajprobe.measure import context_dynamics
from trajprobe.recipes import MetaLearnerRecipe
from trajprobe.reproduce.contextual_bandits import CUTOFF, EVAL_SEED

NAME = "contextual-bandits/meta-learner-coupled"


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=None, help="default: the quick preset's")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--schedule", choices=("constant", "cosine"), default=None)
    parser.add_argument("--entropy", type=float, default=None)
    parser.add_argument("--discount", type=float, default=None)
    parser.add_argument("--clip", type=float, default=None)
    parser.add_argument("--curriculum", default=None,
                        help="stages 'share:T:K' (K contexts shown, 'all' for all), comma-"
                             "separated, e.g. '0.3:100:2,0.3:100:3'; 'none' for none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval", type=int, default=500, help="evaluation episodes")
    parser.add_argument("--save", default=None, help="also save the model's weights here")
    return parser.parse_args()


def _curriculum(text: str | None, default: tuple) -> tuple:
    if text is None:
        return default
    if text == "none":
        return ()
    stages = []
    for stage in text.split(","):
        share, length, shown = stage.split(":")
        stages.append((float(share), int(length), None if shown == "all" else int(shown)))
    return tuple(stages)


def _recipe(args: argparse.Namespace) -> MetaLearnerRecipe:
    recipe = recipes.get(NAME, "quick")
    cfg = recipe.training
    opt = cfg.optimiser
    opt = replace(opt, lr=args.lr or opt.lr, schedule=args.schedule or opt.schedule)
    cfg = replace(cfg, n_episodes=args.episodes or cfg.n_episodes,
                  batch_size=args.batch or cfg.batch_size, optimiser=opt,
                  entropy_cost=cfg.entropy_cost if args.entropy is None else args.entropy,
                  discount=cfg.discount if args.discount is None else args.discount,
                  max_grad_norm=cfg.max_grad_norm if args.clip is None else args.clip,
                  curriculum=_curriculum(args.curriculum, cfg.curriculum))
    return replace(recipe, training=cfg)


def _score(model: torch.nn.Module, recipe: MetaLearnerRecipe, n_eval: int) -> None:
    task, n_steps = recipe.task, recipe.training.n_steps
    model.eval()
    ds = context_dynamics(model, task, n_eval, n_steps, seed=EVAL_SEED, policy=logits_policy,
                          progress=False)
    q = ds["q_ordered"].mean("episode")
    steps = steps_to_threshold(q, CUTOFF)
    reached = int(torch.isfinite(torch.as_tensor(steps.values)).sum())
    print(f"  mean expected reward per step {float(ds['expected_reward'].mean()):.3f} "
          f"(chance 0.32, Bayes-Thompson 0.60; target >= 0.55) on {n_eval} episodes")
    print("  q at t = T by rank:      ", " ".join(f"{v:.2f}" for v in q.isel(t=-1).values))
    print(f"  steps to q > {CUTOFF} by rank:", " ".join(f"{v:g}" for v in steps.values),
          f"-> {reached} of {task.n_contexts} contexts")


def main() -> None:
    args = _parse()
    torch.set_num_threads(1)
    recipe = _recipe(args)
    cfg = recipe.training
    print(f"{cfg.n_episodes:,} episodes, T {cfg.n_steps}, batch {cfg.batch_size}, "
          f"Adam {cfg.optimiser.lr} {cfg.optimiser.schedule}, γ {cfg.discount}, entropy "
          f"{cfg.entropy_cost}, clip {cfg.max_grad_norm}, curriculum {cfg.curriculum or 'none'}, "
          f"seed {args.seed}, 1 thread")
    load_before = os.getloadavg()
    start = time.perf_counter()
    result = recipe.train(None, seed=args.seed, progress=False)
    seconds = time.perf_counter() - start
    load_after = os.getloadavg()
    reward = result.metrics["reward"].values
    tenths = [part.mean() for part in np.array_split(reward, min(10, len(reward)))]
    print("  training reward by tenth:", " ".join(f"{v:.3f}" for v in tenths))
    _score(result.model, recipe, args.eval)
    print(f"  training {seconds:.0f} s ({cfg.n_episodes / seconds:,.0f} episodes/s); load "
          f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    if args.save:
        torch.save(result.model.state_dict(), args.save)


if __name__ == "__main__":
    main()
