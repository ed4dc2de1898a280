"""The coupled contextual-bandit Meta-Learner at the quick preset: does it learn every context?

Run:  python benchmarks/bandit_meta_learner.py --confusion        (the quick recipe)
      python benchmarks/bandit_meta_learner.py --episodes 50000 --curriculum 0.3:100:2,0.3:100:3
      python benchmarks/bandit_meta_learner.py --curriculum none   (no curriculum)
      python benchmarks/bandit_meta_learner.py --episodes 128000 --batch 32 --curriculum 1:50:2
          --conflicting / --init-scale 3 / --previous-context          (the diagnostics)
      python benchmarks/bandit_meta_learner.py --save model.pt; then
      python benchmarks/bandit_meta_learner.py --init model.pt --episodes 300000
          --curriculum 0.33:50:confused --confusion     (fine-tune the saved model)
      python benchmarks/bandit_meta_learner.py --init model.pt --no-train --confusion

Trains `contextual-bandits/meta-learner-coupled` (quick preset, optionally with another
budget or curriculum) on one thread, then measures it as `trajprobe reproduce
contextual-bandits` does: q_c(t) = π_t(a*(c)|c) probed with every context on 500 fresh
5-context episodes (seed ``EVAL_SEED``), contexts ranked per episode by R_c (eq. 14).
Prints the mean expected reward per step (eq. 13; chance 0.32, Bayes-Thompson 0.60), q of
every rank at the last step, the step at which each rank's episode-mean q first exceeds
0.5 (the issue's target: reward >= 0.55 and all five ranks reach q > 0.5), the training
reward per tenth of the run (on the curriculum's tasks), the training seconds and the
load average; with ``--confusion`` also q(T) per context index and the confusion matrix
M[c, c'] at t = T (:func:`trajprobe.dynamics.context_confusion`: how often the policy in
context c plays context c''s correct action; ~½ both ways: the two share one memory).

Diagnostics of the context-blind optimum (issue text in the recipe's comment):
``--conflicting`` trains on bandits whose shown contexts have distinct correct actions;
``--init-scale s`` multiplies the LSTM's initial weights by s; ``--previous-context``
trains and evaluates a deviation from Rabinowitz's encoding, defined only here
(:class:`PreviousContext`): x_t = [one-hot c_t, one-hot c_{t-1}, one-hot a_{t-1},
r_{t-1}], so the context of (a_{t-1}, r_{t-1}) need not be carried by the LSTM.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.nn import functional

from trajprobe.apps import recipes
from trajprobe.apps.recipes import MetaLearnerRecipe
from trajprobe.apps.recipes.curricula import CONFUSED, STAGES
from trajprobe.apps.reproduce.contextual_bandits import CUTOFF, EVAL_SEED, confusion_at_end
from trajprobe.apps.training import TrainingResult, train_policy_gradient
from trajprobe.dynamics import steps_to_threshold
from trajprobe.machine import logits_policy
from trajprobe.measurement import context_dynamics
from trajprobe.tasks import ContextualBandit

NAME = "contextual-bandits/meta-learner-coupled"


@dataclass(frozen=True)
class PreviousContext(ContextualBandit):
    """Not Rabinowitz's encoding (a diagnostic): x_t = [c_t, c_{t-1}, a_{t-1}, r_{t-1}]
    ``[E, 2C + A + 1]`` (c_0 = zeros). Its ``contexts`` are pair indices c_t + C c_{t-1}
    (c_0 coded C), decoded wherever the bandit reads a context."""

    @property
    def input_size(self) -> int:
        """2C + A + 1."""
        return 2 * self.n_contexts + self.n_actions + 1

    def contexts(self, params, n_steps, *, generator):
        now = super().contexts(params, n_steps, generator=generator)
        before = torch.cat([torch.full_like(now[:, :1], self.n_contexts), now[:, :-1]], 1)
        return now + self.n_contexts * before

    def expected_reward(self, params, context):
        return super().expected_reward(params, None if context is None
                                       else context % self.n_contexts)

    def encode(self, context, prev_action, prev_reward, *, dtype=torch.float32):
        c = self.n_contexts
        x = super().encode(context % c, prev_action, prev_reward, dtype=dtype)
        before = functional.one_hot(context.long() // c, c + 1)[..., :c].to(dtype)
        return torch.cat([x[..., :c], before, x[..., c:]], -1)


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
                        help="stages 'share:T:K' (K contexts shown, 'all' for all, 'confused' "
                             "for the most confused pair), comma-separated, e.g. "
                             "'0.3:100:2,0.3:100:3'; 'none' for none")
    parser.add_argument("--conflicting", action="store_true",
                        help="train on conflicting bandits (distinct correct actions)")
    parser.add_argument("--init-scale", type=float, default=1.0)
    parser.add_argument("--previous-context", action="store_true",
                        help="the diagnostic encoding that also shows c_{t-1} (not the paper's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval", type=int, default=500, help="evaluation episodes")
    parser.add_argument("--save", default=None, help="also save the model's weights here")
    parser.add_argument("--init", default=None,
                        help="start from these saved weights (of --save) instead of the init")
    parser.add_argument("--no-train", action="store_true",
                        help="only measure the weights of --init")
    parser.add_argument("--confusion", action="store_true",
                        help="also print q(T) per context and the confusion matrix at T")
    return parser.parse_args()


def _curriculum(text: str | None, default: tuple) -> tuple:
    if text is None:
        return default
    if text == "none":
        return ()
    stages = []
    for stage in text.split(","):
        share, length, shown = stage.split(":")
        contexts = None if shown == "all" else shown if shown == CONFUSED else int(shown)
        stages.append((float(share), int(length), contexts))
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
    task = PreviousContext(5, 5) if args.previous_context else recipe.task
    return replace(recipe, training=cfg, task=task)


def _score(model: torch.nn.Module, recipe: MetaLearnerRecipe, n_eval: int,
           confusion: bool) -> None:
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
    if confusion:
        last = ds.isel(t=-1)
        print("  q at t = T by context:   ", " ".join(
            f"{v:.2f}" for v in last["q"].mean("episode").values))
        m = confusion_at_end(ds).values
        print("  confusion M[c, c'] at t = T (rows c: policy shown c plays a*(c')):")
        for c, row in enumerate(m):
            print(f"    {c}  " + " ".join(" -  " if np.isnan(v) else f"{v:.2f}" for v in row))


def _model(recipe: MetaLearnerRecipe, args: argparse.Namespace) -> torch.nn.Module:
    """The recipe's model for ``args.seed``, with the weights of ``--init`` when given."""
    model = recipe.build_model(args.seed)
    if args.init:
        model.load_state_dict(torch.load(args.init, weights_only=True))
    return model


def _train(recipe: MetaLearnerRecipe, args: argparse.Namespace) -> TrainingResult:
    """``recipe.train(None, seed=args.seed)``, with the diagnostics' init and task."""
    model = _model(recipe, args)
    with torch.no_grad():
        for name, weight in model.lstm.named_parameters():
            if name.startswith("weight"):
                weight.mul_(args.init_scale)
    task = replace(recipe.task, conflicting=args.conflicting)
    config = replace(recipe.training, seed=recipe.training.seed + 1000 * args.seed)
    return train_policy_gradient(model, task, config, progress=False, stages=STAGES)


def main() -> None:
    args = _parse()
    torch.set_num_threads(1)
    recipe = _recipe(args)
    if args.no_train:
        if not args.init:
            raise SystemExit("--no-train measures the weights of --init; give --init")
        print(f"the weights in {args.init}, not trained further")
        _score(_model(recipe, args), recipe, args.eval, args.confusion)
        return
    cfg = recipe.training
    print(f"{cfg.n_episodes:,} episodes, T {cfg.n_steps}, batch {cfg.batch_size}, "
          f"Adam {cfg.optimiser.lr} {cfg.optimiser.schedule}, γ {cfg.discount}, entropy "
          f"{cfg.entropy_cost}, clip {cfg.max_grad_norm}, "
          f"curriculum {cfg.curriculum or 'none'}, seed {args.seed}, 1 thread")
    logging.basicConfig(level=logging.INFO, format="  %(message)s")
    if args.init:
        print(f"  from the weights in {args.init}")
    print(f"  trained on {'conflicting ' if args.conflicting else ''}"
          f"{type(recipe.task).__name__}, LSTM weights x {args.init_scale} at init")
    load_before = os.getloadavg()
    start = time.perf_counter()
    result = _train(recipe, args)
    seconds = time.perf_counter() - start
    load_after = os.getloadavg()
    reward = result.metrics["reward"].values
    tenths = [part.mean() for part in np.array_split(reward, min(10, len(reward)))]
    print("  training reward by tenth:", " ".join(f"{v:.3f}" for v in tenths))
    _score(result.model, recipe, args.eval, args.confusion)
    print(f"  training {seconds:.0f} s ({cfg.n_episodes / seconds:,.0f} episodes/s); load "
          f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    if args.save:
        torch.save(result.model.state_dict(), args.save)


if __name__ == "__main__":
    main()
