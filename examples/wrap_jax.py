"""Wrap Haiku, Flax (linen and NNX), Equinox and plain JAX models as machines, and measure them.

    pip install ".[jax]" && python examples/wrap_jax.py    # under a minute on a laptop CPU

The code of docs/tutorials/wrap-jax.md, block after block (tests/test_docs.py keeps the two
equal): a Haiku LSTM trained with optax and its effective spectra (Rabinowitz 2019 eq. 5),
Flax linen and NNX cells, an Equinox LSTM compared with the Beta-Bernoulli posterior
(Mikulik et al. 2020 simulation), and a pure step function as a `JaxMachine`.
"""

import haiku as hk
import jax
import jax.numpy as jnp
import optax

import trajprobe
from trajprobe.adapters.jax import haiku_core
from trajprobe.tasks import LinearRegression

task = LinearRegression(dim=2)  # inputs [x_t, y_{t-1}], targets y_t = W x_t + ε


def forward(x):  # your training function: x [B, T, 4] -> predictions [B, T, 2]
    core = hk.LSTM(64)
    out, _ = hk.dynamic_unroll(core, x, core.initial_state(x.shape[0]), time_major=False)
    return hk.Linear(2)(out)


net = hk.without_apply_rng(hk.transform(forward))
params = jax.jit(net.init)(jax.random.PRNGKey(0), jnp.zeros((1, 20, 4)))
optimiser = optax.adam(2e-3)
opt_state = optimiser.init(params)


@jax.jit
def update(params, opt_state, x, y):
    def loss_fn(p):
        return jnp.mean(jnp.sum((net.apply(p, x) - y) ** 2, axis=-1))

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimiser.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss


UPDATES = 100  # 3_000 to learn the task (a few minutes on a laptop CPU)
for i in range(UPDATES):
    episodes = task.sample(100, 20, seed=i)
    params, opt_state, loss = update(params, opt_state, episodes.inputs.numpy(),
                                     episodes.targets.numpy())
print(f"trained {UPDATES} updates, last loss {float(loss):.3f}")

# the trained params of `forward`, measured: the same core and readout, built again
machine = haiku_core(lambda: hk.LSTM(64), params,
                     readout=lambda h: hk.Linear(2)(h), input_shape=4)
spectra = trajprobe.effective_spectra(machine, task, episodes=20, spectrum=[2.0, 0.2], seed=1)
print("Haiku LSTM: q_k(t), mean over episodes (rows: t = 1..20; columns: s = 2.0, 0.2)")
print(spectra["q"].mean("episode").round(2).to_pandas().to_string())

from flax import linen

from trajprobe.adapters.jax import flax_cell

cell = linen.LSTMCell(64)  # or the cell of your nn.RNN(cell), trained as usual
carry = cell.initialize_carry(jax.random.PRNGKey(0), (1, 4))
variables = cell.init(jax.random.PRNGKey(1), carry, jnp.zeros((1, 4)))  # {"params": ...}
readout = linen.Dense(2)
readout_variables = readout.init(jax.random.PRNGKey(2), jnp.zeros((1, 64)))
machine = flax_cell(cell, variables, input_shape=4, readout=readout,
                    readout_params=readout_variables)
spectra = trajprobe.effective_spectra(machine, task, episodes=10, spectrum=[2.0, 0.2], seed=1)
print("linen LSTMCell (untrained): q_k(t) at t = 20:", spectra["q"].mean("episode")[-1].values)

from flax import nnx

from trajprobe.adapters.jax import nnx_cell

machine = nnx_cell(nnx.GRUCell(4, 64, rngs=nnx.Rngs(0)), input_shape=4,
                   readout=nnx.Linear(64, 2, rngs=nnx.Rngs(1)))
spectra = trajprobe.effective_spectra(machine, task, episodes=10, spectrum=[2.0, 0.2], seed=1)
print("NNX GRUCell (untrained): q_k(t) at t = 20:", spectra["q"].mean("episode")[-1].values)

import equinox as eqx
import torch

from trajprobe.adapters.jax import equinox_cell
from trajprobe.compare import SimulationConfig, simulation
from trajprobe.reference_models.conjugate import BetaBernoulli
from trajprobe.tasks.prediction import BernoulliPrediction

k1, k2 = jax.random.split(jax.random.PRNGKey(0))
machine = equinox_cell(
    eqx.nn.LSTMCell(2, 32, key=k1),  # state (h, c), output h
    readout=eqx.nn.Linear(32, 1, key=k2),  # one logit
    distribution=lambda y: torch.distributions.Bernoulli(logits=y[..., 0]),
)
# how well the (untrained) LSTM and the Beta-Bernoulli posterior simulate each other
inputs = BernoulliPrediction().sample(40, 8, seed=1).inputs.float()
result = simulation(BetaBernoulli(), machine, inputs, config=SimulationConfig(max_epochs=10))
for direction in result["direction"].values:
    d = result.sel(direction=direction)
    print(f"{direction}: D_s = {float(d['state_dissimilarity']):.3f}, "
          f"D_o = {float(d['output_dissimilarity']):.3f}")

from trajprobe.adapters.jax import JaxMachine


def step(params, x, h):  # x [B, 4], h [B, 64]
    h = jnp.tanh(x @ params["w"] + h @ params["u"])
    return h @ params["v"], h


kw, ku, kv = jax.random.split(jax.random.PRNGKey(3), 3)
params = {"w": 0.5 * jax.random.normal(kw, (4, 64)),
          "u": 0.1 * jax.random.normal(ku, (64, 64)),
          "v": 0.1 * jax.random.normal(kv, (64, 2))}
machine = JaxMachine(step, params, lambda params, b: jnp.zeros((b, 64)), input_shape=4)
trace = trajprobe.rollout(machine, torch.randn(8, 20, 4))
print("pure step function: outputs", tuple(trace.outputs.shape))  # (8, 20, 2)
