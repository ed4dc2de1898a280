"""The quick-preset check of issue 17: a meta-trained LSTM's MSE against the Bayes-optimal MSE.

Run:  python benchmarks/meta_learner_vs_bayes.py                     (the quick recipe)
      python benchmarks/meta_learner_vs_bayes.py --cost              (both recipes' cost, projected)
      python benchmarks/meta_learner_vs_bayes.py --episodes 4500000 --batch 100 --lr 2e-2 \\
          --warmup 0.03 --curriculum none                          (the quick recipe before)

Trains `linear-regression-2d/meta-learner` (quick preset, optionally with another budget),
then scores it and `BayesianLinearRegression` on the same held-out episodes: 4000 drawn
from the prior and the 200 episodes with fixed spectra that `trajprobe reproduce
linear-regression` reports on (its "episode-average squared error" row). Prints the
episode-average squared error (Rabinowitz eq. 4) of both, the excess over Bayes, the
training seconds, episodes/s, the load average before and after, and the per-step errors
(where the excess sits).

``--cost`` trains nothing to the end: it times outer steps of every episode length of the
recipe's curriculum and of the quick recipe before issue 17, interleaved (so both see the
same load), and projects both recipes' training seconds: their ratio does not depend on
how busy the machine is.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import replace

import torch

from trajprobe import rollout
from trajprobe.apps import load_run, recipes
from trajprobe.apps.recipes import MetaLearnerRecipe
from trajprobe.apps.reproduce.linear_regression import _spectra
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig, train_supervised
from trajprobe.reference_models import BayesianLinearRegression

OLD_QUICK = SupervisedConfig(4_500_000, 20, 100,
                             optimiser=OptimiserConfig("adam", 2e-2, "cosine", warmup=0.03),
                             max_grad_norm=1.0, save_every=500, log_every=50)
"""The quick recipe before issue 17 (+9.6 % over Bayes on prior episodes, 484 s on one thread)."""


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=None, help="default: the quick preset's")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=None,
                        help="fraction of the outer steps of linear lr warm-up")
    parser.add_argument("--curriculum", default=None,
                        help="episode lengths by share of the outer steps, e.g. '0.3:5,0.3:10' "
                             "(then the recipe's T); 'none' for none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--run", default=None,
                        help="score this trained run directory (e.g. the Meta-Learner run of "
                             "`trajprobe reproduce linear-regression`) instead of training")
    parser.add_argument("--cost", action="store_true",
                        help="only project both recipes' training seconds, side by side")
    return parser.parse_args()


def _curriculum(text: str | None, default: tuple[tuple[float, int], ...]
                ) -> tuple[tuple[float, int], ...]:
    if text is None:
        return default
    if text == "none":
        return ()
    return tuple((float(share), int(length))
                 for share, length in (stage.split(":") for stage in text.split(",")))


def _recipe(args: argparse.Namespace) -> MetaLearnerRecipe:
    recipe = recipes.get("linear-regression-2d/meta-learner", "quick")
    cfg = recipe.training
    cfg = replace(cfg, n_episodes=args.episodes or cfg.n_episodes,
                  batch_size=args.batch or cfg.batch_size,
                  curriculum=_curriculum(args.curriculum, cfg.curriculum),
                  optimiser=replace(cfg.optimiser, lr=args.lr or cfg.optimiser.lr,
                                    warmup=cfg.optimiser.warmup if args.warmup is None
                                    else args.warmup))
    return replace(recipe, training=cfg)


def _squared_errors(model: torch.nn.Module, bayes: BayesianLinearRegression,
                    episodes) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-episode, per-step squared errors ``[E, T]`` of the model and of Bayes."""
    with torch.no_grad():
        err = (rollout(model, episodes.inputs).outputs - episodes.targets).square().sum(-1)
        best = (rollout(bayes, episodes.inputs.double()).outputs
                - episodes.targets.double()).square().sum(-1)
    return err, best


def _stages(cfg: SupervisedConfig) -> list[tuple[int, int, int]]:
    """``(outer steps, batch, T)`` of every stage of ``cfg``'s curriculum, then the rest."""
    total = math.ceil(cfg.n_episodes / cfg.batch_size)
    lengths = [cfg.length_at(k, total) for k in range(total)]
    return [(lengths.count(t), cfg.batch_size, t) for t in dict.fromkeys(lengths)]


def _projected_cost(recipe: MetaLearnerRecipe, repeats: int = 5, steps: int = 40) -> None:
    """Seconds per outer step of each stage, timed round-robin; both recipes projected."""
    runs = {"new": _stages(recipe.training), "old": _stages(OLD_QUICK)}
    cells = {stage[1:] for stages in runs.values() for stage in stages}
    per_step = dict.fromkeys(cells, 0.0)
    for _ in range(repeats):
        for batch, length in cells:
            probe = replace(recipe.training, n_episodes=batch * steps, batch_size=batch,
                            n_steps=length, curriculum=(), log_every=steps)
            start = time.perf_counter()
            train_supervised(recipe.build_model(0), recipe.task, probe, progress=False)
            per_step[batch, length] += (time.perf_counter() - start) / (steps * repeats)
    seconds = {name: sum(n * per_step[b, t] for n, b, t in stages)
               for name, stages in runs.items()}
    for (batch, length), value in sorted(per_step.items()):
        print(f"  batch {batch}, T {length}: {value * 1e3:.1f} ms per outer step "
              f"({batch / value:,.0f} episodes/s)")
    print(f"  projected training: new {seconds['new']:.0f} s, old {seconds['old']:.0f} s, "
          f"new / old = {seconds['new'] / seconds['old']:.2f} (load average "
          f"{os.getloadavg()[0]:.2f})")


def _score(model: torch.nn.Module, recipe: MetaLearnerRecipe) -> None:
    bayes = BayesianLinearRegression.from_task(recipe.task)
    prior = recipe.task.sample(4000, 20, seed=999)
    fixed = recipe.task.sample(200, 20, seed=12345, spectrum=_spectra(200).float())
    for name, episodes in (("prior", prior), ("spectra", fixed)):
        err, best = _squared_errors(model, bayes, episodes)
        print(f"  {name:8s} Meta-Learner MSE {err.mean():.4f}   Bayes MSE {best.mean():.4f}   "
              f"excess {err.mean() / best.mean() - 1:+.1%}   (target <= +5%)")
        if name == "prior":
            print("    per-step MSE, Meta-Learner:", " ".join(f"{v:.3f}" for v in err.mean(0)))
            print("    per-step MSE, Bayes:       ", " ".join(f"{v:.3f}" for v in best.mean(0)))


def main() -> None:
    args = _parse()
    torch.set_num_threads(args.threads)
    if args.run is not None:
        recipe, _, model, _ = load_run(args.run)
        print(f"{args.run}: {recipe.name}, {recipe.preset}")
        _score(model, recipe)
        return
    recipe = _recipe(args)
    cfg = recipe.training
    if args.cost:
        _projected_cost(recipe)
        return
    load_before = os.getloadavg()
    start = time.perf_counter()
    model = recipe.train(None, seed=args.seed, progress=False).model
    seconds = time.perf_counter() - start
    load_after = os.getloadavg()
    print(f"{cfg.n_episodes:,} episodes, T {cfg.n_steps}, curriculum {cfg.curriculum or 'none'}, "
          f"batch {cfg.batch_size}, Adam {cfg.optimiser.lr} {cfg.optimiser.schedule} "
          f"(warm-up {cfg.optimiser.warmup:.0%}), seed {args.seed}, {args.threads} thread(s)")
    _score(model, recipe)
    print(f"  training {seconds:.0f} s ({cfg.n_episodes / seconds:,.0f} episodes/s); load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")


if __name__ == "__main__":
    main()
