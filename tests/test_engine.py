"""rollout and probe against re-running each module from scratch (float64, < 1e-10)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

import trajprobe
from trajprobe import machine as sm
from trajprobe.adapters import LSTMState, TorchCore, wrap
from trajprobe.apps.models import RabinowitzLSTM

IN, HID, OUT = 3, 8, 2
E, T, N = 3, 5, 4
TOL = 1e-10


class LeakyCore(nn.Module):
    """A custom core with a dict state: h' = tanh(A x + B h) + 0.5 m, m' = 0.9 m + h."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(IN, HID)
        self.b = nn.Linear(HID, HID, bias=False)
        self.out = nn.Linear(2 * HID, OUT)

    def forward(self, x, state):
        h = torch.tanh(self.a(x) + self.b(state["h"])) + 0.5 * state["m"]
        m = 0.9 * state["m"] + h
        return self.out(torch.cat([h, m], -1)), {"h": h, "m": m}


def _from_scratch_layer(module, readout, history, last):
    """Output after running ``history`` [t-1, IN] then ``last`` [IN] through nn.LSTM/GRU/RNN."""
    seq = torch.cat([history, last[None]], 0)[None]  # [1, t, IN]
    if not module.batch_first:
        seq = seq.transpose(0, 1)
    out, _ = module(seq)
    top = out[0, -1] if module.batch_first else out[-1, 0]
    return readout(top)


def _from_scratch_cell(cell, readout, history, last):
    state = None
    for x in [*history, last]:
        state = cell(x[None], state)
    h = state[0] if isinstance(cell, nn.LSTMCell) else state
    return readout(h[0])


def _from_scratch_core(core, history, last):
    state = {"h": torch.zeros(1, HID, dtype=torch.float64), "m": torch.zeros(1, HID,
                                                                            dtype=torch.float64)}
    for x in [*history, last]:
        y, state = core(x[None], state)
    return y[0]


def _machines():
    torch.manual_seed(0)
    readout = nn.Linear(HID, OUT)
    cases = []
    for module in (
        nn.LSTM(IN, HID, num_layers=2),
        nn.LSTM(IN, HID, num_layers=2, batch_first=True),
        nn.GRU(IN, HID, num_layers=2, batch_first=True),
        nn.RNN(IN, HID),
    ):
        module = module.double()
        ro = copy.deepcopy(readout).double()
        cases.append((type(module).__name__, wrap(module, ro),
                       lambda h, x, m=module, r=ro: _from_scratch_layer(m, r, h, x)))
    for cell in (nn.LSTMCell(IN, HID), nn.GRUCell(IN, HID), nn.RNNCell(IN, HID)):
        cell = cell.double()
        ro = copy.deepcopy(readout).double()
        cases.append((type(cell).__name__, wrap(cell, ro),
                      lambda h, x, c=cell, r=ro: _from_scratch_cell(c, r, h, x)))
    core = LeakyCore().double()
    zeros = {"h": torch.zeros(HID, dtype=torch.float64), "m": torch.zeros(HID, dtype=torch.float64)}
    cases.append(("TorchCore", TorchCore(core, zeros),
                  lambda h, x, c=core: _from_scratch_core(c, h, x)))
    return cases


CASES = _machines()


@pytest.mark.parametrize("name,machine,scratch", CASES, ids=[c[0] for c in CASES])
def test_probe_equals_rerunning_history(name, machine, scratch):
    gen = torch.Generator().manual_seed(1)
    inputs = torch.randn(E, T, IN, generator=gen, dtype=torch.float64)
    probes = torch.randn(E, T, N, IN, generator=gen, dtype=torch.float64)
    trace = trajprobe.rollout(machine, inputs)
    before = [leaf.clone() for leaf in sm.tree_leaves(trace.states)]
    ys = trajprobe.probe(machine, trace, probes, memory_budget=2_000)  # forces many chunks
    assert ys.shape == (E, T, N, OUT)
    worst = 0.0
    with torch.no_grad():
        for e in range(E):
            for t in range(T):
                for n in range(N):
                    ref = scratch(inputs[e, :t], probes[e, t, n])
                    worst = max(worst, float((ys[e, t, n] - ref).abs().max()))
    assert worst < TOL
    for a, b in zip(before, sm.tree_leaves(trace.states), strict=True):
        assert torch.equal(a, b), "probing mutated the trace"


@pytest.mark.parametrize("name,machine,scratch", CASES, ids=[c[0] for c in CASES])
def test_rollout_equals_forward_on_whole_sequence(name, machine, scratch):
    gen = torch.Generator().manual_seed(2)
    inputs = torch.randn(E, T, IN, generator=gen, dtype=torch.float64)
    trace = trajprobe.rollout(machine, inputs)
    assert trace.outputs.shape == (E, T, OUT)
    assert all(leaf.shape[:2] == (E, T + 1) for leaf in sm.tree_leaves(trace.states))
    with torch.no_grad():
        if isinstance(machine.core, nn.LSTM | nn.GRU | nn.RNN):
            seq = inputs if machine.core.batch_first else inputs.transpose(0, 1)
            out, _ = machine.core(seq)
            out = out if machine.core.batch_first else out.transpose(0, 1)
            expected = machine.readout(out)
        else:
            expected = torch.stack(
                [torch.stack([scratch(inputs[e, :t], inputs[e, t]) for t in range(T)])
                 for e in range(E)]
            )
    assert float((trace.outputs - expected).abs().max()) < TOL


def test_shared_probe_inputs_broadcast_to_every_episode_and_step():
    _, machine, _ = CASES[0]
    gen = torch.Generator().manual_seed(3)
    trace = trajprobe.rollout(machine, torch.randn(E, T, IN, generator=gen, dtype=torch.float64))
    shared = torch.randn(N, IN, generator=gen, dtype=torch.float64)
    full = shared.expand(E, T, N, IN)
    # a broadcast and a materialised batch may go through other kernels: float64 round-off
    torch.testing.assert_close(trajprobe.probe(machine, trace, shared),
                               trajprobe.probe(machine, trace, full), rtol=1e-12, atol=1e-12)


def test_lstm_state_is_hidden_and_cell_for_every_layer():
    machine = wrap(nn.LSTM(IN, HID, num_layers=3))
    state = machine.initial_state(4)
    assert isinstance(state, LSTMState)
    assert state.hidden.shape == (4, 3, HID) and state.cell.shape == (4, 3, HID)
    assert sm.state_vector(machine, state).shape == (4, 2 * 3 * HID)


def test_one_lstm_state_for_adapters_and_models():
    assert LSTMState is sm.LSTMState
    cell_state = wrap(nn.LSTMCell(IN, HID)).initial_state(2)
    model_state = RabinowitzLSTM(IN, OUT, hidden_size=HID).initial_state(2)
    for state in (cell_state, model_state):
        assert type(state) is sm.LSTMState and state.hidden.shape == (2, HID)


def test_labelled_results_carry_coordinates():
    _, machine, _ = CASES[0]
    inputs = xr.DataArray(np.random.default_rng(0).normal(size=(T, E, IN)),
                          dims=("t", "episode", "input"))
    trace = trajprobe.rollout(machine, inputs)  # transposed to (episode, t) by name
    assert trace.inputs.shape == (E, T, IN)
    ds = trace.to_dataset(machine)
    assert ds["states"].dims == ("episode", "t", "state")
    assert list(ds["t"].values) == list(range(1, T + 1))
    np.testing.assert_allclose(ds["outputs"].values, trace.outputs.numpy())
    probes = xr.DataArray(np.zeros((N, IN)), dims=("probe", "input"))
    ys = trajprobe.probe(machine, trace, probes, labelled=True)
    assert ys.dims == ("episode", "t", "probe", "output")
    assert ys.sizes == {"episode": E, "t": T, "probe": N, "output": OUT}


def test_state_vector_round_trip():
    for _, machine, _ in CASES:
        state = machine.initial_state(2)
        state = sm.tree_map(lambda leaf: torch.randn_like(leaf), state)
        back = sm.state_from_vector(machine, sm.state_vector(machine, state))
        for a, b in zip(sm.tree_leaves(state), sm.tree_leaves(back), strict=True):
            assert torch.equal(a, b)


def test_fork_repeats_adjacent_copies_without_mutation():
    state = LSTMState(torch.arange(6.0).reshape(3, 2), torch.arange(6.0).reshape(3, 2) + 10)
    forked = sm.fork(state, 2, torch.tensor([2, 0]))
    assert forked.hidden.tolist() == [[4, 5], [4, 5], [0, 1], [0, 1]]
    forked.hidden.add_(100)
    assert state.hidden[0].tolist() == [0, 1]
    stacked = sm.stack([state, state], dim=1)
    assert stacked.cell.shape == (3, 2, 2)


def test_training_unrolls_through_the_loop_of_rollout_with_autograd():
    """One open-loop step loop (traces.step_through): training's unroll of a machine
    without an ``unroll`` hook gives rollout's outputs, and carries gradients."""
    from trajprobe.apps.training.losses import unroll
    from trajprobe.traces import step_through

    class Plain(nn.Module):  # RabinowitzLSTM's step, without its fused unroll
        def __init__(self):
            super().__init__()
            self.inner = RabinowitzLSTM(input_size=3, hidden_size=5, output_size=2)

        def initial_state(self, batch_size):
            return self.inner.initial_state(batch_size)

        def step(self, x, state):
            return self.inner.step(x, state)

    torch.manual_seed(0)
    model = Plain()
    inputs = torch.randn(4, 6, 3)
    outputs = unroll(model, inputs)
    assert outputs.requires_grad and outputs.shape == (4, 6, 2)
    assert torch.equal(outputs.detach(), trajprobe.rollout(model, inputs).outputs)
    # the fused unroll of the same network agrees to round-off
    torch.testing.assert_close(outputs, model.inner.unroll(inputs)[0])
    outputs.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    _, states = step_through(model, inputs, model.initial_state(4), keep_states=False)
    assert states is None
