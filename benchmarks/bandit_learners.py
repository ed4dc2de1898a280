"""Contextual-bandit Learners (Rabinowitz 2019 §5.1, A.5): speed, and the 5th/1st time ratio.

1. Speed, side by side on the same 50 learners × minibatch 200: the autograd Learner
   (``bandit_learner`` run through ``trajprobe.Interaction``, how the reproduce target
   trained until issue 17) against the closed-form :class:`BanditLearner` with count
   tables drawn directly (:func:`train_bandit_learners`), ms per step.
2. The paper's set-up — Adam 1e-4, minibatch 200, truncated-normal σ = 1/√5, plain
   REINFORCE, p_correct / p_incorrect = 0.8 / 0.2, every learner trained until its
   normalised expected reward reaches 0.98 — coupled and decoupled: steps, seconds and
   the time ratio (steps until q_k > c of the run-mean curve, 5th over 1st learned
   context) at several cut-offs c. Paper: coupled ≈ 400, decoupled ≈ 2.
3. ``--study``: the same with one ingredient changed at a time (optimiser, initial
   scale, deterministic rewards, a baseline, one context per minibatch), to see which
   one makes the shared bias interfere.

Run: ``python benchmarks/bandit_learners.py [--learners 50] [--study]`` (paper set-up:
about a minute per condition on a quiet 2-core machine; the study: ~10 minutes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from trajprobe.adapters.bandit_learner import BanditLearner, train_bandit_learners
from trajprobe.adapters.torch_learner import SGD, Adam, bandit_learner
from trajprobe.dynamics import order_contexts, steps_to_threshold, time_ratio
from trajprobe.tasks import ContextualBandit
from trajprobe.traces import Interaction

CUTS = (0.3, 0.5, 0.7, 0.9)
PAPER = ContextualBandit(5, 5, conflicting=True)


def ms_per_step(n_learners: int, n_steps: int = 300) -> tuple[float, float]:
    """(autograd Learner through Interaction, closed form), ms per step after a warm-up."""
    old = bandit_learner(5, 5, coupled=True, optimiser=Adam(1e-4), seed=0)
    times = []
    for steps in (10, n_steps):  # the first run warms up torch.func and the allocator
        start = time.perf_counter()
        for _ in Interaction(old, PAPER, n_learners, steps, seed=7, n_samples=200):
            pass
        times.append((time.perf_counter() - start) / steps * 1e3)
    before = times[-1]
    for steps in (10, n_steps):
        start = time.perf_counter()
        train_bandit_learners(BanditLearner(5, 5), PAPER, n_learners, max_steps=steps,
                              stop_at=None, seed=7, progress=False)
        times.append((time.perf_counter() - start) / steps * 1e3)
    return before, times[-1]


def ratios(ds) -> dict[float, float]:
    """Time ratio (5th over 1st learned context) of the run-mean curve at every cut-off."""
    ordered, _ = order_contexts(ds["q"], score=ds["return_score"])
    steps = steps_to_threshold(ordered.mean("episode"), list(CUTS))
    last = time_ratio(steps, "rank").isel(rank=-1)
    return {c: float(last.sel(threshold=c)) for c in CUTS}


def condition(label: str, learner: BanditLearner, task: ContextualBandit, n: int,
              max_steps: int, contexts: str = "mixed") -> None:
    start = time.perf_counter()
    ds = train_bandit_learners(learner, task, n, max_steps=max_steps, contexts=contexts,
                               seed=1, progress=False)
    seconds = time.perf_counter() - start
    trained = ds["steps_trained"].values
    done = int((trained < max_steps).sum())
    cells = "  ".join(f"c={c}: {r:7.1f}" for c, r in ratios(ds).items())
    print(f"{label:<38} {seconds:6.0f} s  steps median {np.median(trained):8,.0f} "
          f"(stopped {done}/{n})  {cells}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--max-steps", type=int, default=300_000)
    parser.add_argument("--study", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)

    before, after = ms_per_step(args.learners)
    print(f"ms per step ({args.learners} learners × 200 rows): autograd Learner in "
          f"Interaction {before:.2f}, closed form {after:.2f}  (×{before / after:.1f})")
    print("\ntime ratio 5th / 1st learned context (paper: coupled ≈ 400, decoupled ≈ 2)")
    settings = [("paper (Adam 1e-4, σ = 1/√5, 0.8/0.2)", {}, PAPER)]
    if args.study:
        settings += [
            ("deterministic rewards 1/0", {}, ContextualBandit(5, 5, 1.0, 0.0, True)),
            ("baseline 0.5", {"baseline": 0.5}, PAPER),
            ("one context per minibatch", {"contexts": "single"}, PAPER),
            ("initial σ = 1", {"init_std": 1.0}, PAPER),
            ("SGD 0.05", {"optimiser": SGD(0.05)}, PAPER),
            ("SGD 0.05, initial σ = 1", {"optimiser": SGD(0.05), "init_std": 1.0}, PAPER),
        ]
    for label, kwargs, task in settings:
        contexts = kwargs.pop("contexts", "mixed")
        for coupled in (True, False):
            learner = BanditLearner(5, 5, coupled=coupled, dtype=torch.float64,
                                    **{"optimiser": Adam(1e-4), **kwargs})
            name = f"{label}, {'coupled' if coupled else 'decoupled'}"
            condition(name, learner, task, args.learners, args.max_steps, contexts)


if __name__ == "__main__":
    main()
