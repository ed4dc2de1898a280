"""Training throughput: trajprobe's outer loop vs a bare PyTorch loop, and paper-scale projections.

Both loops train the same model (Rabinowitz LSTM(64) + linear readout) with the same
optimiser (Adam), batch (200 episodes of T = 20) and data (the same task sampler, one
seed per outer step); trajprobe's loop adds its bookkeeping (per-step metrics, progress
bar, log-spaced checkpoints and ``latest.pt`` every 100 steps). Runs alternate and the
best of ``REPEATS`` is kept, because this machine's two cores are shared.

Then it measures episodes/s for the other paper set-ups and projects the wall time of
each ``paper`` preset (Rabinowitz 2019 appendix A) on this CPU.

Run: ``python benchmarks/training_throughput.py`` (about 2 minutes).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time

import torch

from trajprobe.apps.models import MikulikNet, RabinowitzLSTM
from trajprobe.apps.recipes import format_seconds
from trajprobe.apps.training import (
    OptimiserConfig,
    PolicyGradientConfig,
    SupervisedConfig,
    step_seed,
    train_policy_gradient,
    train_supervised,
)
from trajprobe.tasks import (
    BernoulliPrediction,
    ContextualBandit,
    FourierRegression,
    LinearRegression,
)

REPEATS = 3
STEPS = 300
BATCH = 200


def bare_loop(model, task, n_steps_total, n_t, lr, seed=0):
    """The reference: the plainest PyTorch loop over the same data."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    for step in range(n_steps_total):
        ep = task.sample(BATCH, n_t, seed=step_seed(seed, step))
        out, _ = model.unroll(ep.inputs)
        loss = (out - ep.targets).pow(2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return n_steps_total * BATCH / (time.perf_counter() - start)


def trajprobe_loop(model, task, n_steps_total, n_t, lr, loss="mse"):
    config = SupervisedConfig(n_episodes=n_steps_total * BATCH, n_steps=n_t, batch_size=BATCH,
                              loss=loss, optimiser=OptimiserConfig("adam", lr))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        train_supervised(model, task, config, out, progress=False)
        return n_steps_total * BATCH / (time.perf_counter() - start)


def pg_loop(model, task, n_steps_total, n_t):
    config = PolicyGradientConfig(n_episodes=n_steps_total * BATCH, n_steps=n_t,
                                  batch_size=BATCH, optimiser=OptimiserConfig("adam", 1e-4))
    start = time.perf_counter()
    train_policy_gradient(model, task, config, progress=False)
    return n_steps_total * BATCH / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(1)
    task = LinearRegression(2)
    # warm up both code paths once
    bare_loop(RabinowitzLSTM(4, 2, 64, seed=0), task, 3, 20, 1e-4)
    trajprobe_loop(RabinowitzLSTM(4, 2, 64, seed=0), task, 3, 20, 1e-4)
    bare, ours = [], []
    for _ in range(REPEATS):
        bare.append(bare_loop(RabinowitzLSTM(4, 2, 64, seed=0), task, STEPS, 20, 1e-4))
        ours.append(trajprobe_loop(RabinowitzLSTM(4, 2, 64, seed=0), task, STEPS, 20, 1e-4))
    print("## Throughput: same model (LSTM 64), batch 200, T = 20, Adam, same data\n")
    print(f"| loop | episodes/s (best of {REPEATS}) | median | all runs |")
    print("|---|---|---|---|")
    for name, runs in (("bare PyTorch", bare), ("trajprobe.apps.training", ours)):
        print(f"| {name} | {max(runs):,.0f} | {statistics.median(runs):,.0f} | "
              f"{', '.join(f'{v:,.0f}' for v in runs)} |")
    pairs = [o / b for o, b in zip(ours, bare, strict=True)]
    print(f"\nratio trajprobe / bare: best vs best {max(ours) / max(bare):.3f}; "
          f"per alternating pair {', '.join(f'{r:.3f}' for r in pairs)}\n")

    rate_t20 = max(ours)
    rate_t40 = trajprobe_loop(RabinowitzLSTM(2, 1, 64, seed=0), FourierRegression(),
                              STEPS // 3, 40, 1e-4)
    rate_mik = trajprobe_loop(MikulikNet(2, 1, 32, distribution="bernoulli", seed=0),
                              BernoulliPrediction(), STEPS // 3, 20, 1e-3, loss="log_loss")
    rate_pg = pg_loop(RabinowitzLSTM(11, 5, 64, seed=0), ContextualBandit(5, 5), 3, 125)
    rows = [
        ("Rabinowitz A.2 linear regression, SGD (T=20)", 80e6, rate_t20),
        ("Rabinowitz A.2 linear regression, Adam (T=20)", 8e6, rate_t20),
        ("Rabinowitz A.4 nonlinear regression (T=40)", 800e6, rate_t40),
        ("Rabinowitz A.6 contextual bandits, A2C (T=125)", 2e9, rate_pg),
        ("Mikulik prediction, N=32 (T=20), per 1M episodes", 1e6, rate_mik),
    ]
    print("## Projected wall time of the paper presets on this CPU (1 thread)\n")
    print("| set-up | episodes | measured episodes/s | projected wall time |")
    print("|---|---|---|---|")
    for name, episodes, rate in rows:
        print(f"| {name} | {episodes:,.0f} | {rate:,.0f} | {format_seconds(episodes / rate)} |")
    print(f"\n(batch {BATCH}; bandit rate from {3} outer steps; "
          f"{math.ceil(80e6 / BATCH):,} outer steps for the 80M-episode run)")


if __name__ == "__main__":
    main()
