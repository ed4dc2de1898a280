"""Benchmark: trained Meta-Learners vs Bayes — D_s and D_o against their nulls (issue 13).

For each agent, a quick-preset training run (trained here if RUNS/<name> does not exist
yet; ``trajprobe train RECIPE --preset quick --out RUNS/<name>`` makes the same) is
compared with its Bayes-optimal machine on shared histories, both directions, with
:func:`trajprobe.compare.simulation`'s nulls: the time-shuffled map and the untrained
network of the same architecture (the recipe's initial weights, checkpoint 0).

* bernoulli — ``bayes-optimal/bernoulli_beta_1_1`` vs Beta–Bernoulli (KL, eq. 2);
* bandit — ``bayes-optimal/bandit_bernoulli_beta_1_1`` (softmax policy) vs the Gittins
  agent on the RNN's closed-loop stream (normalised error of action probabilities);
* regression — ``linear-regression-2d/meta-learner-adam`` vs Bayesian linear regression
  (normalised error of the predicted mean: the network has no predictive distribution).

The last table gives the unit-free output simulation score of every agent and direction
(1 − D_o / D_o(best constant map)) beside those of its untrained and shuffled nulls.

Expected: for the trained agent, D_s and D_o in the RNN→Bayes direction (b→a) are finite
and well below the untrained agent's and the shuffled null, and no D_o is above its
constant-map bound (the last line lists any that is).

    python benchmarks/simulation_trained.py --runs /tmp/runs [--episodes 500] [--only NAME]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from trajprobe import compare
from trajprobe.apps import load_run, recipes
from trajprobe.reference_models import catalogue
from trajprobe.reference_models.linear_regression import BayesianLinearRegression
from trajprobe.traces import interact

AGENTS = {
    "bernoulli": "bayes-optimal/bernoulli_beta_1_1",
    "bandit": "bayes-optimal/bandit_bernoulli_beta_1_1",
    "regression": "linear-regression-2d/meta-learner-adam",
}


class Policy(torch.nn.Module):
    """A bandit network whose outputs are its softmax action probabilities."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def initial_state(self, batch_size):
        return self.net.initial_state(batch_size)

    def step(self, x, state):
        logits, state = self.net.step(x, state)
        return torch.softmax(logits, dim=-1), state

    def distribution(self, y):
        return torch.distributions.Categorical(probs=y)


def _load(name: str, runs: Path) -> tuple[object, torch.nn.Module, torch.nn.Module]:
    recipe = recipes.get(AGENTS[name], "quick")
    run = runs / AGENTS[name].replace("/", "_")
    if not (run / "latest.pt").exists():
        print(f"training {AGENTS[name]} (quick) into {run} ...", flush=True)
        recipe.train(run, seed=0, progress=False)
    trained = load_run(run).machine
    return recipe, trained, recipe.build_model(seed=0)


def _compare(name: str, runs: Path, n_episodes: int):
    recipe, trained, untrained = _load(name, runs)
    config = compare.SimulationConfig()
    if name == "bernoulli":
        bayes = catalogue.get("bernoulli_beta_1_1").bayes()
        inputs = recipe.task.sample(n_episodes, 20, seed=7).inputs
    elif name == "bandit":
        entry = catalogue.get("bandit_bernoulli_beta_1_1")
        bayes, task = entry.bayes(), entry.task
        trained, untrained = Policy(trained), Policy(untrained)
        trace = interact(trained, task, n_episodes, entry.n_steps, seed=7)
        inputs = compare.AlignedTraces(a=compare.replay(bayes, trace), b=trace)
        config = compare.SimulationConfig(output_measure="error")  # Gittins is deterministic
    else:
        bayes = BayesianLinearRegression.from_task(recipe.task)
        inputs = recipe.task.sample(n_episodes, 20, seed=7).inputs
    with torch.no_grad():
        return compare.simulation(bayes, trained, inputs, config=config, untrained=untrained,
                                  seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="directory of training runs")
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--only", choices=sorted(AGENTS), default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [args.only] if args.only else list(AGENTS)
    exceeded, scores = [], []
    for name in names:
        start = time.perf_counter()
        ds = _compare(name, args.runs, args.episodes)
        print(f"\n{name}: {AGENTS[name]} (A = Bayes, B = the RNN), {args.episodes} episodes, "
              f"{time.perf_counter() - start:.0f} s")
        print(compare.simulation_summary(ds, names=("Bayes", "RNN")))
        for d in ds["direction"].values:
            r = ds.sel(direction=d)
            if float(r["output_dissimilarity"]) > 1.05 * float(r["output_dissimilarity_constant"]):
                exceeded.append(f"{name} {d}")
            scores.append(f"{name:<11}{d:<6}{float(r['output_simulation_score']):>8.3f}"
                          f"{float(r['output_simulation_score_sem']):>8.3f}"
                          f"{float(r['output_simulation_score_untrained']):>11.3f}"
                          f"{float(r['output_simulation_score_shuffled']):>10.3f}")
    print("\noutput simulation score, 1 - D_o / D_o(best constant map) (1 exact, 0 no better)")
    print(f"{'agent':<11}{'dir':<6}{'score':>8}{'s.e.':>8}{'untrained':>11}{'shuffled':>10}")
    print("\n".join(scores))
    print("\nD_o above its constant-map bound (+5 %): " + (", ".join(exceeded) or "none"))


if __name__ == "__main__":
    main()
