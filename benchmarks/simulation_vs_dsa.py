"""Benchmark: D_s/D_o beside DSA on the same GRU states, in one run.

Two GRUs of 64 units (different seeds, weights × :data:`GAIN`; a linear readout with a
Bernoulli predictive) on 500 episodes x 20 steps of coin flips. The same state vectors go to
:func:`trajprobe.compare.simulation` and to :func:`trajprobe.compare.dsa_distance`
(``pip install 'trajprobe[dsa]'``), in one run, after one untimed warm-up of each on 50
episodes (what a process pays once: xarray's and DSA's lazy imports); each simulation row
prints its time as a ratio to DSA's. The rows (:data:`ROWS`), closed-form maps
(``n_hidden_layers=0``) unless said:

* the default comparison: both directions, 5 folds, each fold a map and the time-shuffled
  null, the searched and refined constant-map bound;
* without the time-shuffled null (``shuffled_null=False``): what the null costs;
* one direction (``SimulationConfig(directions=("a→b",))``): half the work;
* one direction, 2 folds, no null, the bound unrefined: the nearest to DSA's work (one
  fit of each machine's dynamics, one number), still cross-validated and bounded;
* the default with the MLP residual.

D_o needs the target's output function at every embedded state of every candidate map
(``benchmarks/simulation_profile.py`` counts them); DSA compares state dynamics only and
evaluates no outputs. The two readouts are different random ones, so the score is about 0:
b's outputs at a's embedded states are no better than b's best constant (a finding about
this pair, not a fault). Target: the closed-form simulation no slower than DSA.

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


ROWS = (
    ("closed form, default", SimulationConfig(n_hidden_layers=0)),
    ("closed form, no shuffled null", SimulationConfig(n_hidden_layers=0, shuffled_null=False)),
    ("closed form, a→b only", SimulationConfig(n_hidden_layers=0, directions=("a→b",))),
    ("a→b, 2 folds, no null, unrefined", SimulationConfig(
        n_hidden_layers=0, directions=("a→b",), n_folds=2, shuffled_null=False,
        refine_constant=False)),
    ("default + MLP residual", SimulationConfig()),
)
"""(label, configuration) of each simulation row (module docstring)."""


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
    for label, config in ROWS:
        with torch.no_grad():
            ds, seconds = _timed(lambda c=config: simulation(a, b, inputs, config=c, seed=0))
        rows.append((label, seconds, ds))
    dsa, dsa_seconds = _timed(lambda: dsa_distance(*states))
    width = max(len(label) for label, _ in ROWS) + 2
    print(f"{'method':<{width}}{'wall s':>8}{'CPU s':>8}{'/ DSA wall':>11}{'/ DSA CPU':>10}"
          "  result")
    for label, (seconds, cpu), ds in rows:
        parts = []
        for d in ds["direction"].values:
            r = ds.sel(direction=d)
            shuffled = (f", shuffled {float(r.output_dissimilarity_shuffled):.4f}"
                        if "output_dissimilarity_shuffled" in r else "")
            parts.append(f"{d}: score {float(r.output_simulation_score):.3f} "
                         f"D_s {float(r.state_dissimilarity):.3f} "
                         f"D_o {float(r.output_dissimilarity):.4f} "
                         f"(constant {float(r.output_dissimilarity_constant):.4f}{shuffled}) "
                         f"reliable={bool(r.reliable)}")
        print(f"{label:<{width}}{seconds:>8.2f}{cpu:>8.2f}{seconds / dsa_seconds[0]:>11.2f}"
              f"{cpu / dsa_seconds[1]:>10.2f}  " + "; ".join(parts))
    print(f"{'DSA (wasserstein)':<{width}}{dsa_seconds[0]:>8.2f}{dsa_seconds[1]:>8.2f}"
          f"{1.0:>11.2f}{1.0:>10.2f}  distance {dsa:.4f}")
    print(f"load average over the last minute: {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
          "cores")


if __name__ == "__main__":
    main()
