"""Benchmark: where the closed-form comparison of simulation_vs_dsa.py spends its work (counts).

One :func:`trajprobe.compare.simulation` (``n_hidden_layers=0``, the shuffled null and the
searched constant bound included) on the pair of ``benchmarks/simulation_vs_dsa.py``: two
GRU-64s on 500 episodes x 20 steps of coin flips. Prints what does not depend on how busy
the machine is: the rows the target's step computes (``nn.GRU`` calls: every item its
own state), the (state, input) pairs and distinct states through ``output_many`` (one
recurrent term per state, shared by its inputs), cProfile's call count, the share of the
profile spent inside the target (its ``step`` and ``output_many``), and the largest
cumulative shares of the profile (shares, not seconds: on a shared machine the seconds
are the other jobs' too), after one untimed warm-up call on 50 episodes (as
simulation_vs_dsa.py). Time the comparison with simulation_vs_dsa.py on a quiet machine.

    python benchmarks/simulation_profile.py [--episodes 500] [--steps 20] [--top 25]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch
from simulation_vs_dsa import gru
from torch import nn

from trajprobe.adapters.torch_rnn import TorchRNN
from trajprobe.compare import SimulationConfig, simulation
from trajprobe.tasks.prediction import BernoulliPrediction


def _counting() -> collections.Counter:
    """Wrap nn.GRU.forward and TorchRNN.output_many to count their work (module docstring)."""
    count: collections.Counter = collections.Counter()
    forward, many = nn.GRU.forward, TorchRNN.output_many
    depth = [0]

    def counted_forward(self, x, hx=None):
        count["target step: rows through nn.GRU"] += x.shape[0 if self.batch_first else 1]
        return forward(self, x, hx)

    def counted_many(self, x, state):
        if depth[0] == 0:  # output_many recurses over blocks: count the outer call
            count["output_many: (state, input) pairs"] += x.shape[0] * x.shape[1]
            count["output_many: states (recurrent terms)"] += x.shape[0]
        depth[0] += 1
        try:
            return many(self, x, state)
        finally:
            depth[0] -= 1

    nn.GRU.forward, TorchRNN.output_many = counted_forward, counted_many
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(1)
    inputs = BernoulliPrediction().sample(args.episodes, args.steps, seed=0).inputs
    a, b = gru(0), gru(1)
    with torch.no_grad():  # one-time imports (xarray's), outside the profile
        simulation(a, b, inputs[:50], config=SimulationConfig(n_hidden_layers=0), seed=0)
    count = _counting()
    profile = cProfile.Profile()
    with torch.no_grad():
        profile.enable()
        ds = simulation(a, b, inputs, config=SimulationConfig(n_hidden_layers=0), seed=0)
        profile.disable()
    stats = pstats.Stats(profile)
    print(f"{args.episodes} episodes x {args.steps} steps, GRU-64 (seed 0) vs GRU-64 (seed 1), "
          "closed form, 1 thread")
    for key, value in count.items():
        print(f"{key:<40}{value:>12,}")
    print(f"{'cProfile: function calls':<40}{stats.total_calls:>12,}")
    print(f"D_o a→b {float(ds.output_dissimilarity[0]):.10f}, "
          f"b→a {float(ds.output_dissimilarity[1]):.10f}")
    inside = sum(entry[3] for (path, _, name), entry in stats.stats.items()
                 if path.endswith("torch_rnn.py") and name in ("step", "output_many"))
    print(f"{'share inside the target (step, output_many)':<44}{inside / stats.total_tt:>8.1%}")
    print("\nlargest cumulative shares of the profile (calls, share):")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][3])
    for (path, line, name), (_, calls, _, cumulative, _) in rows[:args.top]:
        where = f"{os.path.basename(path)}:{line}({name})" if path != "~" else name
        print(f"{calls:>7}  {cumulative / stats.total_tt:>6.1%}  {where}")


if __name__ == "__main__":
    main()
