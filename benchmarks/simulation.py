"""Benchmark: one full simulation (Mikulik et al. 2020 §4.3) — 500 episodes × 20 steps.

LSTM of 32 units (untrained; state [h, c] = 64 dims) against the Beta–Bernoulli
conjugate machine (2 dims), both directions, default :class:`SimulationConfig`: 5-fold
cross-validation over episodes, each fold choosing the map on validation episodes (ridge
path in raw and log coordinates, constant maps, MLP residual) and fitting the
time-shuffled null. Target: ≤ 30 s on 2 CPU cores. Prints D_s, D_o, the constant-map
bound and the nulls. Prints a table of timings and results.

    python benchmarks/simulation.py [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from trajprobe.adapters import wrap
from trajprobe.compare import SimulationConfig, simulation, simulation_summary
from trajprobe.reference_models.conjugate import BetaBernoulli
from trajprobe.tasks.prediction import BernoulliPrediction


class BernoulliLSTM:
    """nn.LSTM(2, 32) with a 1-logit readout; Bernoulli predictive."""

    def __init__(self, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        lstm, readout = nn.LSTM(2, 32), nn.Linear(32, 1)
        with torch.no_grad():
            for p in [*lstm.parameters(), *readout.parameters()]:
                bound = 1 / 32**0.5
                p.uniform_(-bound, bound, generator=gen)
        self.inner = wrap(lstm, readout)

    def initial_state(self, batch_size):
        return self.inner.initial_state(batch_size)

    def step(self, x, state):
        return self.inner.step(x, state)

    def distribution(self, y):
        return torch.distributions.Bernoulli(logits=y[..., 0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: the MLP steps are too small to gain "
                        "from more, and on a shared 2-core machine 2 threads oversubscribe)")
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.optim.Adam  # noqa: B018 - import torch's optimiser machinery outside the timing
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    inputs = BernoulliPrediction().sample(args.episodes, args.steps, seed=0,
                                          dtype=torch.float64).inputs
    bayes, lstm = BetaBernoulli(), BernoulliLSTM(0)
    start = time.perf_counter()
    ds = simulation(bayes, lstm, inputs, config=SimulationConfig(), seed=0)
    elapsed = time.perf_counter() - start
    print(f"simulation: {args.episodes} episodes x {args.steps} steps, Bayes (a, 2-d) vs "
          f"LSTM-32 (b, 64-d), n_components (k)={ds.n_components.values.tolist()}, "
          f"threads={args.threads}")
    print(simulation_summary(ds, names=("Bayes", "LSTM")))
    print(f"linear CKA {float(ds.linear_cka):.4f}   Procrustes {float(ds.procrustes_distance):.4f}")
    print(f"wall time {elapsed:.1f} s (target <= 30 s)")


if __name__ == "__main__":
    main()
