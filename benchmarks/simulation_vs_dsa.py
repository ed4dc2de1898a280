"""Benchmark: D_s/D_o (both directions, 5 folds) beside DSA on the same GRU states, one run.

Two GRUs of 64 units (different seeds, weights × :data:`GAIN`; a linear readout with a
Bernoulli predictive) on 500 episodes x 20 steps of coin flips. The same state vectors go to
:func:`trajprobe.compare.simulation` (closed-form maps: ``n_hidden_layers=0``, the
shuffled null and the constant-map bound included; then with the default MLP residual)
and to :func:`trajprobe.compare.dsa_distance` (``pip install 'trajprobe[dsa]'``), in one
run, after one untimed warm-up of each on 50 episodes (what a process pays once: xarray's
and DSA's lazy imports); each simulation row prints its time as a ratio to DSA's beside it.
Target: the closed-form simulation no slower than DSA (ratio <= 1) on a quiet 2-core
machine.

    python benchmarks/simulation_vs_dsa.py [--episodes 500] [--steps 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI: no spinning on a busy machine
import torch
from torch import nn

from trajprobe.adapters import wrap
from trajprobe.compare import SimulationConfig, dsa_distance, simulation
from trajprobe.tasks.prediction import BernoulliPrediction
from trajprobe.traces import rollout

GAIN = 4.0
"""PyTorch-default weights × this: a nonlinear regime, as after training (at gain 1 two
random GRUs on coin flips are near-linear in the history, and one maps exactly onto the
other)."""


def gru(seed: int):
    """nn.GRU(2, 64) with a 1-logit readout, PyTorch-default weights × GAIN from ``seed``."""
    torch.manual_seed(seed)
    core, readout = nn.GRU(2, 64, batch_first=True), nn.Linear(64, 1)
    with torch.no_grad():
        for p in [*core.parameters(), *readout.parameters()]:
            p.mul_(GAIN)
    return wrap(core, readout, distribution="bernoulli")


def _timed(fn):
    """(result, (wall seconds, CPU seconds of this process)): on a busy shared machine the
    CPU time is what the work costs, the wall time what the other jobs let it have."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - start, time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # torch's lazy imports, untimed
    inputs = BernoulliPrediction().sample(args.episodes, args.steps, seed=0).inputs
    a, b = gru(0), gru(1)
    with torch.no_grad():
        states = [rollout(m, inputs).state_vectors(m)[:, :-1].double().numpy() for m in (a, b)]
    print(f"{args.episodes} episodes x {args.steps} steps, GRU-64 (seed 0) vs GRU-64 (seed 1), "
          f"threads={args.threads}")
    with torch.no_grad():  # one-time imports (xarray's duck-array modules, DSA's), untimed:
        warm = inputs[:50]  # a process pays them once, not once per comparison
        simulation(a, b, warm, config=SimulationConfig(n_hidden_layers=0), seed=0)
        dsa_distance(*(s[:50] for s in states))
    rows = []
    for label, config in (("simulation, closed form", SimulationConfig(n_hidden_layers=0)),
                          ("simulation, + MLP residual", SimulationConfig())):
        with torch.no_grad():
            ds, seconds = _timed(lambda c=config: simulation(a, b, inputs, config=c, seed=0))
        rows.append((label, seconds, ds))
    dsa, dsa_seconds = _timed(lambda: dsa_distance(*states))
    print(f"{'method':<28}{'wall s':>8}{'CPU s':>8}{'/ DSA wall':>11}{'/ DSA CPU':>10}  result")
    for label, (seconds, cpu), ds in rows:
        parts = []
        for d in ds["direction"].values:
            r = ds.sel(direction=d)
            parts.append(f"{d}: score {float(r.output_simulation_score):.3f} "
                         f"D_s {float(r.state_dissimilarity):.3f} "
                         f"D_o {float(r.output_dissimilarity):.4f} "
                         f"(constant {float(r.output_dissimilarity_constant):.4f}, "
                         f"shuffled {float(r.output_dissimilarity_shuffled):.4f}) "
                         f"reliable={bool(r.reliable)}")
        print(f"{label:<28}{seconds:>8.2f}{cpu:>8.2f}{seconds / dsa_seconds[0]:>11.2f}"
              f"{cpu / dsa_seconds[1]:>10.2f}  " + "; ".join(parts))
    print(f"{'DSA (wasserstein)':<28}{dsa_seconds[0]:>8.2f}{dsa_seconds[1]:>8.2f}"
          f"{1.0:>11.2f}{1.0:>10.2f}  distance {dsa:.4f}")
    print(f"load average over the last minute: {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
          "cores")


if __name__ == "__main__":
    main()
