"""Wrap an Equinox cell and compare it with the Bayes-optimal predictor (Mikulik et al.).

    python examples/wrap_jax_equinox.py            # ~1 minute
    python examples/wrap_jax_equinox.py --smoke    # a few seconds

Needs ``pip install trajprobe[jax]``. Equinox cells act on one episode and return only
their new state; ``equinox_cell`` vmaps the cell over the batch, takes the hidden state
as the output and applies the readout. The (untrained) LSTM is compared on coin-flip
sequences with the Beta-Bernoulli posterior: how well each simulates the other.
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import torch

from trajprobe.adapters.jax import equinox_cell
from trajprobe.compare import SimulationConfig, simulation
from trajprobe.reference_models.conjugate import BetaBernoulli
from trajprobe.tasks.prediction import BernoulliPrediction

HIDDEN = 32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny run, for CI")
    args = parser.parse_args()
    key_cell, key_readout = jax.random.split(jax.random.PRNGKey(0))
    machine = equinox_cell(
        eqx.nn.LSTMCell(2, HIDDEN, key=key_cell),               # state (h, c), output h
        readout=eqx.nn.Linear(HIDDEN, 1, key=key_readout),      # one logit
        distribution=lambda y: torch.distributions.Bernoulli(logits=y[..., 0]),
    )
    n_episodes, n_steps = (40, 8) if args.smoke else (200, 20)
    inputs = BernoulliPrediction().sample(n_episodes, n_steps, seed=1).inputs.float()
    config = SimulationConfig(max_epochs=10) if args.smoke else SimulationConfig()
    result = simulation(BetaBernoulli(), machine, inputs, config=config, seed=0)
    for direction in result["direction"].values:
        d = result.sel(direction=direction)
        print(f"{direction}: D_s = {float(d['state_dissimilarity']):.3f}, "
              f"D_o = {float(d['output_dissimilarity']):.3f}")
    print("(a = Beta-Bernoulli posterior, b = the Equinox LSTM; a→b: b simulates a)")


if __name__ == "__main__":
    main()
