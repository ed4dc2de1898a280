"""How far the quick neurogym-decision GRU's slow points lie from the states it visits.

The report's slow-point rows project the points on the network's choice axis; this
script measures where they are in the whole state space: for the 0 % condition (input
``[0, 0.5, 0.5]``, the search exactly as the target runs it), each point's Euclidean
distance to the nearest stimulus-period state of 200 held-out episodes, beside the typical
distance between two visited states, and the speed q at the visited states themselves
(how slow the network is where it actually runs). Needs the neurogym extra and a finished quick run:

    build/neurogym/bin/python benchmarks/neurogym_slow_point_distance.py --run /tmp/ng-quick
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from trajprobe import rollout
from trajprobe.apps.reproduce import neurogym_decision as nd
from trajprobe.apps.reproduce.base import RunContext
from trajprobe.apps.reproduce.neurogym_decision_geometry import (
    nearest_distances,
    speeds,
    typical_distance,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the target's --out directory")
    parser.add_argument("--agent", default="GRU", choices=nd.AGENTS)
    args = parser.parse_args()
    settings = nd.SETTINGS["quick"]
    task = nd.make_task(settings)
    observer = task.bayes_machine()
    context = RunContext(preset="quick", seeds=1, device=torch.device("cpu"), out_dir=args.run)
    network = nd.recipe(args.agent, "quick").train(
        context.run_dir(f"neurogym-decision/{args.agent.lower()}", 0), seed=0,
        device="cpu", progress=False).model.cpu().eval()
    n_steps = settings.trials_per_episode * observer.trial_steps
    episodes = task.sample(200, n_steps, seed=nd._EVAL_SEED)
    stim = torch.as_tensor(nd._stimulus_steps(observer, n_steps))
    with torch.no_grad():
        trace = rollout(network, episodes.inputs)
    visited = trace.state_vectors(network)[:, 1:][:, stim].reshape(
        -1, trace.state_vectors(network).shape[-1]).double().numpy()
    q_visited = speeds(network, nd.conditions(observer.cohs)["+0 %"], visited[:3_000])
    points = nd.at_condition(nd.slow_points(network, trace, observer, settings, 0), "+0 %")
    states = points.state.values
    nearest = nearest_distances(states, visited)
    typical = typical_distance(visited, 2_000)
    print(f"{args.agent}: {len(states)} slow points under the 0 % input (q <= {settings.max_q}"
          + (f", median q {np.median(points.speed.values):.2g})" if len(states) else ")"))
    if len(states):
        low, mid, high = nearest.min(), np.median(nearest), nearest.max()
        print(f"distance to the nearest visited stimulus state: min {low:.2f}, "
              f"median {mid:.2f}, max {high:.2f}")
    print(f"median distance between two visited stimulus states: {typical:.2f}")
    print("q at 3,000 visited stimulus states under the same input: 1st, 10th, 50th "
          "percentiles {:.2g}, {:.2g}, {:.2g}".format(*np.percentile(q_visited, [1, 10, 50])))
    print(f"median state norm: visited {np.median(np.linalg.norm(visited, axis=1)):.2f}"
          + (f", slow points {np.median(np.linalg.norm(states, axis=1)):.2f}" if len(states)
             else ""))


if __name__ == "__main__":
    main()
