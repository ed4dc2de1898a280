"""Compare a meta-trained predictor with the Bayes-optimal one (Mikulik et al. 2020).

    python examples/compare_two_agents.py           # ~2 minutes on a laptop CPU
    python examples/compare_two_agents.py --smoke   # seconds

Trains an encoder-LSTM-decoder on Bernoulli sequences with a Beta(1, 1) prior, then
reports behavioural dissimilarity (eq. 2: Σ_t KL between the predictions, mean over
episodes) and the simulation measures D_s and D_o in both directions, each with its
standard error over folds, the constant-map bound and the time-shuffled null.
"RNN → Bayes" embeds the RNN's states into the Bayes agent's (does the Bayes agent
simulate the RNN?).
"""

from __future__ import annotations

import argparse

import torch

from trajprobe import compare
from trajprobe.apps import recipes
from trajprobe.reference_models import catalogue


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny run, for CI")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small maps: one thread is fastest, and kind to a shared machine
    recipe = recipes.get("bayes-optimal/bernoulli_beta_1_1", "smoke" if args.smoke else "quick")
    untrained = recipe.build_model(seed=0)
    trained = recipe.train(None, seed=0, progress=not args.smoke).model
    bayes = catalogue.get("bernoulli_beta_1_1").bayes()
    inputs = recipe.task.sample(100 if args.smoke else 500, 20, seed=7).inputs

    for label, agent in (("untrained", untrained), ("trained", trained)):
        kl = compare.behavioural_dissimilarity(bayes, agent, inputs)
        with torch.no_grad():
            sim = compare.simulation(bayes, agent, inputs, seed=0)
        print(f"\n{label}: KL(Bayes || RNN) summed over t = {float(kl['dissimilarity']):.4f}")
        print(compare.simulation_summary(sim, names=("Bayes", "RNN")))


if __name__ == "__main__":
    main()
