"""Benchmark: one full simulation (Mikulik et al. 2020 §4.3) — 500 episodes × 20 steps.

LSTM of 32 units (untrained; state [h, c] = 64 dims) against the Beta–Bernoulli
conjugate machine (2 dims), both directions, default :class:`SimulationConfig`: 5-fold
cross-validation over episodes, each fold fitting the map and the time-shuffled null map.
Target: ≤ 30 s on 2 CPU cores. Prints a table of timings and results.

    python benchmarks/simulation.py [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from trajprobe.adapters import wrap
from trajprobe.compare import SimulationConfig, simulation
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
    print(f"{'direction':<10}{'D_s':>18}{'D_o':>18}{'D_s shuffled':>14}{'D_o shuffled':>14}"
          f"{'k':>4}  reliable")
    for d in ds["direction"].values:
        row = ds.sel(direction=d)
        sem_s, sem_o = float(row.state_dissimilarity_sem), float(row.output_dissimilarity_sem)
        print(f"{d:<10}{float(row.state_dissimilarity):>10.4f} ± {sem_s:.4f}"
              f"{float(row.output_dissimilarity):>10.4f} ± {sem_o:.4f}"
              f"{float(row.state_dissimilarity_shuffled):>14.4f}"
              f"{float(row.output_dissimilarity_shuffled):>14.4f}{int(row.n_components):>4d}  "
              f"{bool(row.reliable)} {row.reliability_note.values!s}")
    print(f"linear CKA {float(ds.linear_cka):.4f}   Procrustes {float(ds.procrustes_distance):.4f}")
    print(f"wall time {elapsed:.1f} s (target <= 30 s)")


if __name__ == "__main__":
    main()
