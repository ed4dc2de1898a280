"""The quick-preset check of issue 6: a meta-trained LSTM's MSE against the Bayes-optimal MSE.

Run:  python benchmarks/meta_learner_vs_bayes.py                       (the quick recipe)
      python benchmarks/meta_learner_vs_bayes.py --episodes 4000000 --batch 200 --lr 3e-3 --warmup 0
                                                              (the quick recipe before)

Trains `linear-regression-2d/meta-learner` (quick preset, optionally with another budget),
then scores it and `BayesianLinearRegression` on the same 4000 held-out prior episodes:
episode-average squared error, excess over Bayes, training time, and the per-step errors
(where the excess sits).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from trajprobe import recipes, rollout
from trajprobe.reference_models import BayesianLinearRegression


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=None, help="default: the quick preset's")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=None,
                        help="fraction of the outer steps of linear lr warm-up")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = recipes.get("linear-regression-2d/meta-learner", "quick")
    cfg = recipe.training
    cfg = replace(cfg, n_episodes=args.episodes or cfg.n_episodes,
                  batch_size=args.batch or cfg.batch_size,
                  optimiser=replace(cfg.optimiser, lr=args.lr or cfg.optimiser.lr,
                                    warmup=cfg.optimiser.warmup if args.warmup is None
                                    else args.warmup))
    recipe = replace(recipe, training=cfg)
    start = time.perf_counter()
    model = recipe.train(None, seed=0, progress=False).model
    seconds = time.perf_counter() - start
    episodes = recipe.task.sample(4000, 20, seed=999)
    bayes = BayesianLinearRegression.from_task(recipe.task)
    with torch.no_grad():
        err = (rollout(model, episodes.inputs).outputs - episodes.targets).square().sum(-1)
        best = (rollout(bayes, episodes.inputs.double()).outputs
                - episodes.targets.double()).square().sum(-1)
    print(f"{cfg.n_episodes:,} episodes, batch {cfg.batch_size}, Adam {cfg.optimiser.lr} "
          f"{cfg.optimiser.schedule} (warm-up {cfg.optimiser.warmup:.0%}), "
          f"{args.threads} thread(s)")
    print(f"  Meta-Learner MSE {err.mean():.4f}   Bayes MSE {best.mean():.4f}   "
          f"excess {err.mean() / best.mean() - 1:+.1%}   (target <= +10%)")
    print(f"  training {seconds:.0f} s ({cfg.n_episodes / seconds:,.0f} episodes/s)"
          f"   (target <= 600 s)")
    print("  per-step MSE, Meta-Learner:", " ".join(f"{v:.3f}" for v in err.mean(0).tolist()))
    print("  per-step MSE, Bayes:       ", " ".join(f"{v:.3f}" for v in best.mean(0).tolist()))


if __name__ == "__main__":
    main()
