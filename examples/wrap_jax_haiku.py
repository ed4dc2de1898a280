"""Train a Haiku LSTM in JAX, then measure its effective spectra with trajprobe.

    python examples/wrap_jax_haiku.py            # ~1-2 minutes on a laptop CPU
    python examples/wrap_jax_haiku.py --smoke    # a few seconds

Needs ``pip install trajprobe[jax]``. The LSTM is meta-trained on 2-D linear regression
with optax, as a JAX research repository would train it (``hk.dynamic_unroll`` over
episodes from trajprobe's task), and its trained params are handed to ``haiku_core``,
which builds the same core in its own transform: the params' names must match.
"""

from __future__ import annotations

import argparse

import haiku as hk
import jax
import jax.numpy as jnp
import optax

import trajprobe
from trajprobe.adapters.jax import haiku_core
from trajprobe.tasks import LinearRegression

HIDDEN = 64


def make_core() -> hk.RNNCore:
    return hk.LSTM(HIDDEN)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny run, for CI")
    args = parser.parse_args()
    task = LinearRegression(dim=2)           # inputs [x_t, y_{t-1}], targets y_t = W x_t + ε

    def forward(x):                          # x [B, T, 4] -> predictions [B, T, 2]
        core = make_core()
        out, _ = hk.dynamic_unroll(core, x, core.initial_state(x.shape[0]), time_major=False)
        return hk.Linear(task.output_size)(out)

    net = hk.without_apply_rng(hk.transform(forward))
    params = jax.jit(net.init)(jax.random.PRNGKey(0), jnp.zeros((1, 20, task.input_size)))
    optimiser = optax.adam(2e-3)
    opt_state = optimiser.init(params)

    @jax.jit
    def update(params, opt_state, x, y):
        def loss_fn(p):
            return jnp.mean(jnp.sum((net.apply(p, x) - y) ** 2, axis=-1))
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimiser.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    n_updates = 20 if args.smoke else 3_000
    for i in range(n_updates):
        episodes = task.sample(100, 20, seed=i)
        params, opt_state, loss = update(params, opt_state, episodes.inputs.numpy(),
                                         episodes.targets.numpy())
    print(f"trained {n_updates} updates, last loss {float(loss):.3f}")

    machine = haiku_core(make_core, params, readout=lambda h: hk.Linear(task.output_size)(h),
                         input_shape=task.input_size)
    spectra = trajprobe.effective_spectra(machine, task, episodes=20 if args.smoke else 200,
                                          spectrum=[2.0, 0.2], seed=1)
    q = spectra["q"].mean("episode")
    print("q_k(t), mean over episodes (rows: t = 1..20; columns: s = 2.0, 0.2)")
    print(q.round(2).to_pandas().to_string())


if __name__ == "__main__":
    main()
