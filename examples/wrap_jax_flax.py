"""Wrap Flax recurrent cells (linen and NNX) and measure their effective spectra.

    python examples/wrap_jax_flax.py            # ~20 seconds
    python examples/wrap_jax_flax.py --smoke    # a few seconds

Needs ``pip install trajprobe[jax]``. The cells keep their random initial weights (bring
your trained variables instead); what matters here is the wrapping: a linen cell with its
variables and a readout module, and an NNX cell, which carries its own parameters.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from flax import linen, nnx

import trajprobe
from trajprobe.adapters.jax import flax_cell, nnx_cell
from trajprobe.tasks import LinearRegression

HIDDEN = 64


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny run, for CI")
    args = parser.parse_args()
    task = LinearRegression(dim=2)
    n_in, n_out = task.input_size, task.output_size

    # linen: the cell is a description, its variables live outside it.
    cell = linen.LSTMCell(HIDDEN)
    carry = cell.initialize_carry(jax.random.PRNGKey(0), (1, n_in))
    variables = cell.init(jax.random.PRNGKey(1), carry, jnp.zeros((1, n_in)))
    readout = linen.Dense(n_out)
    readout_variables = readout.init(jax.random.PRNGKey(2), jnp.zeros((1, HIDDEN)))
    linen_machine = flax_cell(cell, variables, input_shape=n_in, readout=readout,
                              readout_params=readout_variables)

    # NNX: modules hold their parameters.
    nnx_machine = nnx_cell(nnx.GRUCell(n_in, HIDDEN, rngs=nnx.Rngs(0)), input_shape=n_in,
                           readout=nnx.Linear(HIDDEN, n_out, rngs=nnx.Rngs(1)))

    for name, machine in (("linen LSTMCell", linen_machine), ("NNX GRUCell", nnx_machine)):
        spectra = trajprobe.effective_spectra(machine, task,
                                              episodes=10 if args.smoke else 100,
                                              spectrum=[2.0, 0.2], seed=1)
        q = spectra["q"].mean("episode")
        print(f"{name}: q_k(t), mean over episodes (rows: t = 1..20; columns: s = 2.0, 0.2)")
        print(q.round(2).to_pandas().to_string())


if __name__ == "__main__":
    main()
