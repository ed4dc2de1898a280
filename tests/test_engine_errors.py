"""Bad input gives a clear ValueError/TypeError that names the argument."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trajprobe
from trajprobe.adapters import TorchCore, wrap


@pytest.fixture
def lstm():
    torch.manual_seed(0)
    return wrap(nn.LSTM(3, 4), nn.Linear(4, 2))


@pytest.fixture
def trace(lstm):
    return trajprobe.rollout(lstm, torch.randn(2, 5, 3))


def test_inputs_without_time_axis(lstm):
    with pytest.raises(ValueError, match=r"inputs: expected shape \[episode, t, features"):
        trajprobe.rollout(lstm, torch.randn(2, 3))


def test_inputs_with_wrong_feature_size(lstm):
    with pytest.raises(ValueError, match=r"x: expected shape \[batch, 3\], got \(2, 4\)"):
        trajprobe.rollout(lstm, torch.randn(2, 5, 4))


def test_initial_state_with_wrong_batch(lstm):
    with pytest.raises(ValueError, match="initial_state: expected batch size 2, got 3"):
        trajprobe.rollout(lstm, torch.randn(2, 5, 3), initial_state=lstm.initial_state(3))


def test_nan_initial_state(lstm):
    state = lstm.initial_state(2)
    state.hidden[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"initial_state: leaf 0 .* NaN"):
        trajprobe.rollout(lstm, torch.randn(2, 5, 3), initial_state=state)


def test_nan_inputs(lstm):
    x = torch.randn(2, 5, 3)
    x[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="inputs: expected finite values"):
        trajprobe.rollout(lstm, x)


def test_machine_whose_state_blows_up_names_the_step():
    class Doubling(nn.Module):
        def forward(self, x, h):
            h = h * 1e200 + x
            return h, h

    machine = TorchCore(Doubling(), torch.ones(1, dtype=torch.float64))
    with pytest.raises(ValueError, match="became NaN or inf at t=2"):
        trajprobe.rollout(machine, torch.ones(1, 4, 1, dtype=torch.float64))


def test_probe_inputs_with_wrong_shape(lstm, trace):
    expected = r"probe_inputs: expected shape \[2, 5, N, 3\] or \[N, 3\]"
    with pytest.raises(ValueError, match=expected):
        trajprobe.probe(lstm, trace, torch.randn(2, 4, 7, 3))
    with pytest.raises(ValueError, match="probe_inputs"):
        trajprobe.probe(lstm, trace, torch.randn(7, 2))


def test_probe_with_a_trace_from_another_machine(trace):
    gru = wrap(nn.GRU(3, 4))
    with pytest.raises(ValueError, match="trace: its states do not have this machine's state"):
        trajprobe.probe(gru, trace, torch.randn(7, 3))


def test_probe_with_nan_in_trace_states(lstm, trace):
    trace.states.cell[0, 1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="trace: state leaf 1 holds NaN"):
        trajprobe.probe(lstm, trace, torch.randn(7, 3))


def test_bad_memory_budget(lstm, trace):
    with pytest.raises(ValueError, match="memory_budget: expected a positive"):
        trajprobe.probe(lstm, trace, torch.randn(7, 3), memory_budget=0)


def test_unsupported_module_says_what_to_do():
    with pytest.raises(TypeError, match=r"module: wrap\(\) takes nn.LSTM.*got Linear.*TorchCore"):
        wrap(nn.Linear(3, 4))


def test_bidirectional_is_rejected():
    with pytest.raises(ValueError, match="module: a bidirectional LSTM"):
        wrap(nn.LSTM(3, 4, bidirectional=True))


def test_not_a_machine():
    with pytest.raises(TypeError, match="machine: expected a StateMachine"):
        trajprobe.rollout(nn.Linear(3, 4), torch.randn(2, 5, 3))


def test_torch_core_forward_must_return_pair():
    class Bad(nn.Module):
        def forward(self, x, h):
            return x

    machine = TorchCore(Bad(), torch.zeros(3))
    with pytest.raises(TypeError, match="must return a pair"):
        trajprobe.rollout(machine, torch.randn(2, 5, 3))


def test_torch_core_initial_state_must_be_tensors():
    with pytest.raises(TypeError, match="initial_state: expected a callable"):
        TorchCore(nn.Identity(), [1.0, 2.0])


def test_protocol_is_runtime_checkable(lstm):
    assert isinstance(lstm, trajprobe.StateMachine)
    assert not isinstance(nn.Linear(2, 2), trajprobe.StateMachine)
