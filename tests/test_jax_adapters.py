"""JAX learners (Haiku, Flax linen and NNX, Equinox, nonstationary_mbml) as machines.

Known answers: rollout equals each framework's own unroll and probe equals re-running
the history prefix, to 1e-6 in float32; a JAX LSTM and a torch LSTM with the same weights
give the same effective spectra and simulation numbers. Skipped without JAX.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import NamedTuple

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
hk = pytest.importorskip("haiku")
linen = pytest.importorskip("flax.linen")
nnx = pytest.importorskip("flax.nnx")
eqx = pytest.importorskip("equinox")
pytestmark = pytest.mark.jax

import trajprobe  # noqa: E402
from trajprobe import machine as sm  # noqa: E402
from trajprobe.adapters.jax import (  # noqa: E402
    JaxMachine,
    equinox_cell,
    flax_cell,
    flax_lstm_params,
    haiku_core,
    haiku_lstm_params,
    mbml_predictor,
    nnx_cell,
)
from trajprobe.adapters.jax.bridge import to_jax, to_torch  # noqa: E402

IN, HID, OUT = 3, 8, 2
E, T, N = 3, 5, 4
TOL = 1e-6


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(E, T, IN, generator=gen), torch.randn(E, T, N, IN, generator=gen)


def _histories(inputs: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """The real episodes, then for every (t, e, n) x_1..x_{t-1} of e, probe n, zeros.

    ``[E + T*E*N, T, IN]``: one call of a causal unroll answers everything, the probe of
    (t, e, n) at position t-1 of its row.
    """
    rows = [inputs]
    for t in range(T):
        seq = np.zeros((E, N, T, IN), np.float32)
        seq[:, :, :t] = inputs[:, None, :t]
        seq[:, :, t] = probes[:, t]
        rows.append(seq.reshape(E * N, T, IN))
    return np.concatenate(rows)


def _check(machine, unroll, *, jit: bool = True) -> None:
    """rollout == unroll(inputs) and probe == the output of unroll(prefix + probe)."""
    inputs, probes = _data()
    trace = trajprobe.rollout(machine, inputs)
    ys = trajprobe.probe(machine, trace, probes, memory_budget=3_000)  # several chunks
    assert ys.shape == (E, T, N, OUT)
    unroll = jax.jit(unroll) if jit else unroll
    expected = np.asarray(unroll(_histories(inputs.numpy(), probes.numpy())))
    assert np.abs(trace.outputs.numpy() - expected[:E]).max() < TOL
    for t in range(T):
        ref = expected[E + t * E * N: E + (t + 1) * E * N, t]
        assert np.abs(ys[:, t].reshape(E * N, OUT).numpy() - ref).max() < TOL, f"t={t + 1}"


# --- Haiku -------------------------------------------------------------------------------

HAIKU_CORES = {
    "LSTM": lambda: hk.LSTM(HID),
    "GRU": lambda: hk.GRU(HID),
    "VanillaRNN": lambda: hk.VanillaRNN(HID),
    "DeepRNN": lambda: hk.DeepRNN([hk.LSTM(HID), jax.nn.relu, hk.GRU(HID)]),
}


def _haiku_reference(make_core):
    def forward(x):
        core = make_core()
        out, _ = hk.dynamic_unroll(core, x, core.initial_state(x.shape[0]), time_major=False)
        return hk.Linear(OUT)(out)

    return hk.without_apply_rng(hk.transform(forward))


@pytest.mark.parametrize("name", HAIKU_CORES)
def test_haiku_rollout_and_probe_equal_dynamic_unroll(name):
    reference = _haiku_reference(HAIKU_CORES[name])
    params = jax.jit(reference.init)(jax.random.PRNGKey(1), jnp.zeros((1, T, IN)))
    machine = haiku_core(HAIKU_CORES[name], params, readout=lambda h: hk.Linear(OUT)(h),
                         input_shape=IN)
    _check(machine, lambda x: reference.apply(params, jnp.asarray(x)))


def test_haiku_random_params_and_state_types():
    machine = haiku_core(HAIKU_CORES["DeepRNN"], input_shape=IN, seed=3)
    state = machine.initial_state(4)
    assert isinstance(state, tuple) and isinstance(state[0], hk.LSTMState)
    assert state[0].hidden.shape == (4, HID) and state[1].shape == (4, HID)
    assert sm.state_vector(machine, state).shape == (4, 3 * HID)


# --- Flax linen --------------------------------------------------------------------------


class TwoLayerCell(linen.RNNCellBase):
    """A user's own linen cell: an LSTM layer feeding a GRU layer."""

    features: int

    @linen.compact
    def __call__(self, carry, x):
        lstm_carry, gru_carry = carry
        lstm_carry, h = linen.LSTMCell(self.features, name="lstm")(lstm_carry, x)
        gru_carry, h = linen.GRUCell(self.features, name="gru")(gru_carry, h)
        return (lstm_carry, gru_carry), h

    @linen.nowrap
    def initialize_carry(self, rng, input_shape):
        batch = input_shape[:-1]
        zeros = jnp.zeros((*batch, self.features))
        return ((zeros, zeros), zeros)

    @property
    def num_feature_axes(self) -> int:
        return 1


LINEN_CELLS = {
    "LSTMCell": lambda: linen.LSTMCell(HID),
    "OptimizedLSTMCell": lambda: linen.OptimizedLSTMCell(HID),
    "GRUCell": lambda: linen.GRUCell(HID),
    "TwoLayerCell": lambda: TwoLayerCell(HID),
}


@pytest.mark.parametrize("name", LINEN_CELLS)
def test_flax_linen_rollout_and_probe_equal_nn_rnn(name):
    rnn = linen.RNN(LINEN_CELLS[name]())
    variables = rnn.init(jax.random.PRNGKey(1), jnp.zeros((1, T, IN)))
    dense = linen.Dense(OUT)
    dense_variables = dense.init(jax.random.PRNGKey(2), jnp.zeros((1, HID)))
    machine = flax_cell(LINEN_CELLS[name](), {"params": variables["params"]["cell"]},
                        input_shape=IN, readout=dense, readout_params=dense_variables)
    _check(machine, lambda x: dense.apply(dense_variables, rnn.apply(variables, jnp.asarray(x))))


def test_flax_linen_lstm_carry_is_c_then_h():
    machine = flax_cell(linen.LSTMCell(HID), input_shape=IN)
    state = machine.initial_state(2)
    assert isinstance(state, tuple) and len(state) == 2
    _, new = machine.step(torch.randn(2, IN), state)
    y = machine.output(torch.randn(2, IN), state)
    assert y.shape == (2, HID)
    assert not torch.equal(new[0], new[1])  # c and h differ


# --- Flax NNX ----------------------------------------------------------------------------

NNX_CELLS = {
    "LSTMCell": lambda: nnx.LSTMCell(IN, HID, rngs=nnx.Rngs(1)),
    "OptimizedLSTMCell": lambda: nnx.OptimizedLSTMCell(IN, HID, rngs=nnx.Rngs(1)),
    "GRUCell": lambda: nnx.GRUCell(IN, HID, rngs=nnx.Rngs(1)),
}


@pytest.mark.parametrize("name", NNX_CELLS)
def test_flax_nnx_rollout_and_probe_equal_nnx_rnn(name):
    cell, readout = NNX_CELLS[name](), nnx.Linear(HID, OUT, rngs=nnx.Rngs(2))
    machine = nnx_cell(cell, input_shape=IN, readout=readout)
    rnn = nnx.RNN(cell)

    def unroll(x):
        carry = cell.initialize_carry((x.shape[0], IN), nnx.Rngs(0))
        return readout(rnn(jnp.asarray(x), initial_carry=carry))

    _check(machine, unroll, jit=False)  # NNX modules cannot be closed over by jax.jit


# --- Equinox -----------------------------------------------------------------------------


class TwoLayerEqx(eqx.Module):
    """A user's own Equinox cell: two LSTM layers, state ((h1, c1), (h2, c2))."""

    lower: eqx.nn.LSTMCell
    upper: eqx.nn.LSTMCell

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.lower = eqx.nn.LSTMCell(IN, HID, key=k1)
        self.upper = eqx.nn.LSTMCell(HID, HID, key=k2)

    def __call__(self, x, state):
        lower = self.lower(x, state[0])
        return (lower, self.upper(lower[0], state[1]))


EQX_CELLS = {
    "LSTMCell": (lambda k: eqx.nn.LSTMCell(IN, HID, key=k), lambda s: s[0], None),
    "GRUCell": (lambda k: eqx.nn.GRUCell(IN, HID, key=k), lambda s: s, None),
    "TwoLayer": (TwoLayerEqx, lambda s: s[1][0],
                 ((jnp.zeros(HID), jnp.zeros(HID)), (jnp.zeros(HID), jnp.zeros(HID)))),
}


@pytest.mark.parametrize("name", EQX_CELLS)
def test_equinox_rollout_and_probe_equal_lax_scan(name):
    make, hidden, initial = EQX_CELLS[name]
    cell = make(jax.random.PRNGKey(1))
    readout = eqx.nn.Linear(HID, OUT, key=jax.random.PRNGKey(2))
    machine = equinox_cell(cell, readout=readout, initial_state=initial,
                           output=hidden if name == "TwoLayer" else None)
    s0 = initial if initial is not None else (
        (jnp.zeros(HID), jnp.zeros(HID)) if name == "LSTMCell" else jnp.zeros(HID))

    def one_episode(xs):
        def body(state, x):
            state = cell(x, state)
            return state, readout(hidden(state))
        return jax.lax.scan(body, s0, xs)[1]

    _check(machine, lambda x: jax.vmap(one_episode)(jnp.asarray(x)))


def test_equinox_cell_without_initial_state_names_the_argument():
    with pytest.raises(TypeError, match="initial_state: required"):
        equinox_cell(TwoLayerEqx(jax.random.PRNGKey(0)))


# --- nonstationary_mbml predictors (minimal stand-ins with the repository's interface) ---


class RNNPredictor:
    """As nonstationary_mbml's ``RNNPredictor`` with ``basic.make_rnn(return_all_states=True)``."""

    def __init__(self):
        def unroll_fn(x, initial_state=None):
            core = hk.LSTM(HID)
            if initial_state is None:
                initial_state = core.initial_state(x.shape[0])
            out, states = hk.dynamic_unroll(core, x, initial_state, time_major=False,
                                            return_all_states=True)
            return hk.Linear(OUT)(jax.nn.relu(out)), states

        self._init, self._unroll = hk.transform(unroll_fn)
        self._initial = hk.transform(lambda batch_size: hk.LSTM(HID).initial_state(batch_size))

    def init_params(self, rng, batch_init, state_init):
        return self._init(rng, batch_init, state_init)

    def initial_state(self, params, rng, batch_size):
        return self._initial.apply(params, rng, batch_size)

    def unroll(self, params, rng, batch, init_state):
        return self._unroll(params, rng, x=batch, initial_state=init_state)


class DirichletPredictor:
    """As nonstationary_mbml's ``OptimalCategoricalPredictor`` (a ``ScanPredictor``)."""

    def initial_state(self, params, rng, batch_size):
        state = jnp.concatenate([jnp.array(p) for p in params], axis=0)
        return jnp.stack([state] * batch_size, axis=0).astype(jnp.float32)

    def update_state(self, rng, state, x):
        return state + x

    def output_from_state(self, rng, state):
        return jnp.log(state / jnp.sum(state, axis=-1, keepdims=True))

    def unroll(self, params, rng, batch, init_state):
        def body(state, x):
            state = self.update_state(rng, state, x)
            return state, self.output_from_state(rng, state)
        return jax.lax.scan(body, init_state, batch.swapaxes(0, 1))[1].swapaxes(0, 1)


class InContextPredictor:
    """As nonstationary_mbml's ``InContextPredictor``: no state."""

    def initial_state(self, params, rng, batch_size):
        return None

    def unroll(self, params, rng, batch, init_state):
        return batch, None


def test_mbml_rnn_predictor_rollout_and_probe_equal_unroll():
    predictor, rng = RNNPredictor(), jax.random.PRNGKey(0)
    params = jax.jit(predictor.init_params)(jax.random.PRNGKey(1), jnp.zeros((1, T, IN)), None)
    machine = mbml_predictor(predictor, params, input_shape=IN)

    def unroll(x):
        return predictor.unroll(params, rng, jnp.asarray(x),
                                predictor.initial_state(params, rng, x.shape[0]))[0]

    _check(machine, unroll)


def test_mbml_optimal_predictor_equals_unroll():
    predictor = DirichletPredictor()
    prior = [(1.0, 2.0, 0.5)]
    machine = mbml_predictor(predictor, prior)
    counts = torch.nn.functional.one_hot(torch.randint(0, 3, (E, T)), 3).float()
    trace = trajprobe.rollout(machine, counts)
    rng = jax.random.PRNGKey(0)
    expected = predictor.unroll(prior, rng, jnp.asarray(counts.numpy()),
                                predictor.initial_state(prior, rng, E))
    assert np.abs(trace.outputs.numpy() - np.asarray(expected)).max() < TOL
    assert torch.allclose(trace.states[:, -1], torch.tensor([1.0, 2.0, 0.5]) + counts.sum(1))


def test_mbml_stateless_predictor_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="no state between steps"):
        mbml_predictor(InContextPredictor(), None)


# --- state pytrees -----------------------------------------------------------------------


class Memory(NamedTuple):
    fast: jax.Array
    slow: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Counter:
    total: jax.Array
    steps: jax.Array


def _tree_step(params, x, state):
    h = jnp.tanh(x @ params["w"] + state["memory"].fast)
    memory = Memory(fast=h, slow=0.9 * state["memory"].slow + h)
    counter = Counter(total=state["counter"].total + x.sum(-1), steps=state["counter"].steps + 1)
    return memory.slow @ params["v"], {"memory": memory, "counter": counter, "none": None}


def _tree_machine() -> JaxMachine:
    key1, key2 = jax.random.split(jax.random.PRNGKey(0))
    params = {"w": jax.random.normal(key1, (IN, HID)), "v": jax.random.normal(key2, (HID, OUT))}
    one = {"memory": Memory(jnp.zeros(HID), jnp.zeros(HID)),
           "counter": Counter(jnp.zeros(()), jnp.zeros((), jnp.int32)), "none": None}
    return JaxMachine(_tree_step, params, one, input_shape=IN)


def test_state_pytree_round_trips_as_a_batch_leading_torch_pytree():
    machine = _tree_machine()
    state = machine.initial_state(4)
    assert isinstance(state, dict) and list(state) == ["counter", "memory", "none"]
    assert isinstance(state["memory"], Memory) and state["memory"].fast.shape == (4, HID)
    assert state["counter"] == {"steps": state["counter"]["steps"],
                                "total": state["counter"]["total"]}
    assert state["counter"]["steps"].dtype == torch.int32 and state["none"] == ()
    x = torch.randn(4, IN)
    y, new = machine.step(x, state)
    assert y.shape == (4, OUT)
    assert torch.equal(new["counter"]["steps"], torch.ones(4, dtype=torch.int32))
    counter = dict(reversed(new["counter"].items()))
    reordered = {"none": (), "memory": new["memory"], "counter": counter}
    y2, _ = machine.step(x, reordered)  # dict keys in another order are found by name
    assert torch.equal(machine.step(x, new)[0], y2)
    trace = trajprobe.rollout(machine, torch.randn(E, T, IN))
    assert trace.states["memory"].slow.shape == (E, T + 1, HID)
    ys = trajprobe.probe(machine, trace, torch.randn(N, IN))
    assert ys.shape == (E, T, N, OUT)


def test_jit_compiles_once_per_batch_bucket_and_with_params_shares_it():
    calls = []

    def step(params, x, h):
        calls.append(x.shape)
        h = jnp.tanh(x @ params + h)
        return h, h

    for pad, expected in ((False, [(5, IN), (2, IN)]), (True, [(8, IN)])):
        calls.clear()
        machine = JaxMachine(step, jnp.eye(IN), lambda p, b: jnp.zeros((b, IN)),
                             pad_batches=pad)
        for batch in (5, 5, 2):
            x = torch.randn(batch, IN)
            y, h = machine.step(x, machine.initial_state(batch))
            assert y.shape == h.shape == (batch, IN) and torch.allclose(y, torch.tanh(x))
        assert calls == expected
    other = machine.with_params(2 * jnp.eye(IN))  # shares the compiled step
    x = torch.randn(5, IN)
    assert torch.allclose(other.step(x, machine.initial_state(5))[0], torch.tanh(2 * x))
    assert len(calls) == 1
    with pytest.raises(ValueError, match="params: expected the structure"):
        machine.with_params(jnp.eye(IN + 1))


def test_batch_buckets_waste_at_most_an_eighth():
    from trajprobe.adapters.jax.machine import _MAX_PIECE, _padded

    sizes = [_padded(n) for n in range(1, _MAX_PIECE + 1)]
    assert set(sizes[:64]) == {8, 16, 32, 64}
    assert all(n <= b <= n * 9 / 8 + 1 for n, b in enumerate(sizes[64:], 65))
    assert len(set(sizes)) == 4 + 8 * 7 and sizes[-1] == _MAX_PIECE


def test_big_batches_run_in_pieces_with_the_same_results():
    def step(params, x, state):
        h = jnp.tanh(x @ params + state["h"])
        return h.sum(-1, keepdims=True), {"h": h, "n": state["n"] + 1}

    one = {"h": jnp.zeros(IN), "n": jnp.zeros((), jnp.int32)}
    pieces = JaxMachine(step, jnp.eye(IN), one)
    whole = JaxMachine(step, jnp.eye(IN), one, pad_batches=False)
    batch = 20_000  # two pieces of 8192 and one of 3616, padded to 3840
    x = torch.randn(batch, IN)
    state = {"h": torch.randn(batch, IN), "n": torch.arange(batch, dtype=torch.int32)}
    (y1, s1), (y2, s2) = pieces.step(x, state), whole.step(x, state)
    # other batch shapes are other XLA programs (vectorised differently): float32 round-off
    # of O(1) numbers, ~1e-5 relative for a sum of three tanh's; the integer counter is exact
    assert y1.shape == (batch, 1)
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s1["h"], s2["h"], rtol=1e-5, atol=1e-6)
    assert torch.equal(s1["n"], state["n"] + 1)
    assert torch.allclose(pieces.output(x, state), y2, rtol=0, atol=1e-6)


def test_tensors_cross_without_copies_on_cpu():
    t = torch.randn(64, 16)
    assert to_jax(t, jax.devices("cpu")[0]).unsafe_buffer_pointer() == t.data_ptr()
    a = jnp.ones((64, 16)) * 2
    assert to_torch(a, torch.device("cpu")).data_ptr() == a.unsafe_buffer_pointer()
    assert to_torch(a, torch.device("cpu"), copy=True).data_ptr() != a.unsafe_buffer_pointer()
    # a broadcast view (zero strides) is refused by DLPack and made contiguous
    view = torch.randn(1, 16).expand(8, 16)
    assert np.array_equal(np.asarray(to_jax(view, jax.devices("cpu")[0])), view.numpy())


# --- clear errors ------------------------------------------------------------------------


def test_wrong_inputs_and_states_name_the_argument():
    machine = haiku_core(HAIKU_CORES["LSTM"], input_shape=IN)
    state = machine.initial_state(2)
    with pytest.raises(ValueError, match=r"x: expected shape \[B, 3\], got \(2, 4\)"):
        machine.step(torch.randn(2, 4), state)
    with pytest.raises(TypeError, match=r"x: expected torch\.float32.*jax_enable_x64"):
        machine.step(torch.randn(2, IN, dtype=torch.float64), state)
    with pytest.raises(ValueError, match="x: expected the state's batch size 2"):
        machine.step(torch.randn(3, IN), state)
    with pytest.raises(ValueError, match=r"state: expected \.hidden of shape \[B, 8\]"):
        machine.step(torch.randn(2, IN), hk.LSTMState(torch.zeros(2, 5), torch.zeros(2, 8)))
    with pytest.raises(ValueError, match="state: expected a state with the structure"):
        machine.step(torch.randn(2, IN), (state.hidden,))
    with pytest.raises(TypeError, match=r"state: expected \.cell of dtype torch.float32"):
        machine.step(torch.randn(2, IN), hk.LSTMState(state.hidden, state.cell.double()))


def test_missing_params_are_listed():
    reference = _haiku_reference(HAIKU_CORES["LSTM"])
    params = dict(jax.jit(reference.init)(jax.random.PRNGKey(1), jnp.zeros((1, T, IN))))
    del params["linear"]
    with pytest.raises(ValueError, match=r"params: do not match the model: missing \['linear'\]"):
        haiku_core(HAIKU_CORES["LSTM"], params, readout=lambda h: hk.Linear(OUT)(h),
                   input_shape=IN)
    with pytest.raises(ValueError, match="input_shape: required"):
        haiku_core(HAIKU_CORES["LSTM"])
    wrong = linen.LSTMCell(HID).init(jax.random.PRNGKey(0), (jnp.zeros((1, HID)),) * 2,
                                     jnp.zeros((1, IN + 1)))
    with pytest.raises(ValueError, match=r"misshapen \['params'\]\['if'\]\['kernel'\]"):
        flax_cell(linen.LSTMCell(HID), wrong, input_shape=IN)


def test_states_without_a_leading_batch_axis_are_refused():
    with pytest.raises(ValueError, match=r"initial_state: expected the batch \(1\) leading"):
        JaxMachine(lambda p, x, s: (x, s), None, lambda p, b: jnp.zeros(HID))
    with pytest.raises(ValueError, match=r"expected \[B, \.\.\.\] with the batch leading"):
        JaxMachine(lambda p, x, s: (x, s), None, lambda p, b: jnp.zeros((b, b)))
    with pytest.raises(ValueError, match="initial_state: expected a state with at least one"):
        JaxMachine(lambda p, x, s: (x, s), None, lambda p, b: ())


def test_bad_steps_are_reported_at_the_first_call():
    def changes_structure(params, x, h):
        return h, (h, h)

    machine = JaxMachine(changes_structure, None, lambda p, b: jnp.zeros((b, IN)))
    with pytest.raises(ValueError, match="step: returned a state with structure"):
        machine.step(torch.randn(2, IN), machine.initial_state(2))

    def unbatched_output(params, x, h):
        return h.sum(), h

    machine = JaxMachine(unbatched_output, None, lambda p, b: jnp.zeros((b, IN)))
    with pytest.raises(ValueError, match=r"step: expected the output y with the batch leading"):
        machine.step(torch.randn(2, IN), machine.initial_state(2))


def test_importing_the_adapters_does_not_import_jax():
    code = "import sys, trajprobe, trajprobe.adapters; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the same LSTM in torch and in JAX ---------------------------------------------------


def _torch_lstm(n_in: int, hidden: int, n_out: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    lstm, readout = torch.nn.LSTM(n_in, hidden, batch_first=True), torch.nn.Linear(hidden, n_out)
    with torch.no_grad():
        for p in [*lstm.parameters(), *readout.parameters()]:
            p.uniform_(-0.5, 0.5, generator=gen)
    return lstm, readout


def _jax_copies(lstm, readout):
    n_in, n_out = lstm.input_size, readout.out_features
    haiku = haiku_core(lambda: hk.LSTM(lstm.hidden_size), haiku_lstm_params(lstm, readout),
                       readout=lambda h: hk.Linear(n_out)(h), input_shape=n_in)
    dense = linen.Dense(n_out)
    dense_vars = {"params": {"kernel": jnp.asarray(readout.weight.detach().numpy().T),
                             "bias": jnp.asarray(readout.bias.detach().numpy())}}
    flax = flax_cell(linen.LSTMCell(lstm.hidden_size), flax_lstm_params(lstm),
                     input_shape=n_in, readout=dense, readout_params=dense_vars)
    return {"haiku": haiku, "flax": flax}


def test_torch_and_jax_lstms_with_the_same_weights_have_the_same_spectra():
    from trajprobe.adapters import wrap
    from trajprobe.tasks import LinearRegression

    lstm, readout = _torch_lstm(4, 16, 2, seed=0)
    task = LinearRegression(dim=2)
    kwargs = {"episodes": 6, "steps": 8, "probes": 20, "spectrum": [2.0, 0.5], "seed": 0}
    torch_machine = wrap(lstm, readout)
    reference = trajprobe.effective_spectra(torch_machine, task, **kwargs)
    measured = trajprobe.measure(torch_machine, task, episodes=6, steps=8, probes=20, seed=0)
    for name, machine in _jax_copies(lstm, readout).items():
        spectra = trajprobe.effective_spectra(machine, task, **kwargs)
        for var in ("s_hat", "q", "W_hat", "loss", "probe_loss"):
            diff = float(abs(spectra[var] - reference[var]).max())
            assert diff < 1e-5, f"{name}: {var} differs by {diff:.2e}"
        front_door = trajprobe.measure(machine, task, episodes=6, steps=8, probes=20, seed=0)
        for var in measured.data_vars:
            diff = float(abs(front_door[var] - measured[var]).max())
            assert diff < 1e-5, f"{name}: measure's {var} differs by {diff:.2e}"


def test_torch_and_jax_lstms_with_the_same_weights_give_the_same_simulation_numbers():
    from trajprobe.adapters import wrap
    from trajprobe.compare import SimulationConfig, simulation
    from trajprobe.reference_models.conjugate import BetaBernoulli
    from trajprobe.tasks.prediction import BernoulliPrediction

    def bernoulli(y):
        return torch.distributions.Bernoulli(logits=y[..., 0])

    lstm, readout = _torch_lstm(2, 16, 1, seed=0)
    torch_machine = wrap(lstm, readout)
    torch_machine.distribution = bernoulli
    jax_machine = haiku_core(lambda: hk.LSTM(16), haiku_lstm_params(lstm, readout),
                             readout=lambda h: hk.Linear(1)(h), input_shape=2,
                             distribution=bernoulli)
    inputs = BernoulliPrediction().sample(30, 6, seed=1).inputs.float()
    # refine_constant off: the best constant state is refined by gradient steps only through
    # a torch target's own autograd, which a JAX machine does not offer (it is searched the
    # same way, state by state, in both)
    config = SimulationConfig(hidden_width=16, max_epochs=10, patience=5, batch_size=64,
                              learning_rate=3e-3, refine_constant=False)
    results = [simulation(BetaBernoulli(), m, inputs, config=config, seed=0)
               for m in (torch_machine, jax_machine)]
    for var in results[0].data_vars:
        a, b = (np.asarray(r[var]) for r in results)
        if np.issubdtype(a.dtype, np.number) or a.dtype == bool:
            assert np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=0, atol=1e-5,
                               equal_nan=True), var
        else:  # labels and flags
            assert np.array_equal(a, b), var


def test_output_function_and_distribution_are_used_when_given():
    def step(params, x, h):
        h = jnp.tanh(x + h)
        return 2 * h, h

    def output(params, x, h):
        return 2 * jnp.tanh(x + h)

    machine = JaxMachine(step, None, jnp.zeros(IN), output=output,
                         distribution=lambda y: torch.distributions.Normal(y, 1.0))
    state = machine.initial_state(3)
    x = torch.randn(3, IN)
    assert torch.allclose(machine.output(x, state), machine.step(x, state)[0])
    assert isinstance(machine.distribution(machine.output(x, state)), torch.distributions.Normal)
    assert not hasattr(JaxMachine(step, None, jnp.zeros(IN)), "distribution")


def test_devices_jax_cannot_see_are_refused():
    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("this JAX sees a GPU")
    with pytest.raises(ValueError, match="device: torch device cuda:0 needs JAX device gpu:0"):
        JaxMachine(lambda p, x, s: (x, s), None, jnp.zeros(IN), device="cuda:0")
    with pytest.raises(ValueError, match="device: expected a cpu or cuda device"):
        JaxMachine(lambda p, x, s: (x, s), None, jnp.zeros(IN), device="meta")

