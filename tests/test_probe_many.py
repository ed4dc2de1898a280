"""The engine's shared-state path (machine.output_many) equals its default path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trajprobe
from trajprobe.adapters import wrap

E, T, N, IN, HID = 3, 5, 7, 3, 8


class Plain:
    """The same machine without output_many: the engine's default path."""

    def __init__(self, machine):
        self.initial_state, self.step = machine.initial_state, machine.step


MODULES = {
    "LSTM": lambda: nn.LSTM(IN, HID, num_layers=2, batch_first=True),
    "LSTM-proj": lambda: nn.LSTM(IN, HID, proj_size=4),
    "GRU": lambda: nn.GRU(IN, HID, num_layers=2),
    "RNN-relu": lambda: nn.RNN(IN, HID, nonlinearity="relu", bias=False),
    "LSTMCell": lambda: nn.LSTMCell(IN, HID),
    "GRUCell": lambda: nn.GRUCell(IN, HID),
    "RNNCell": lambda: nn.RNNCell(IN, HID),
}


@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("shared", [False, True], ids=["per-step", "shared"])
def test_output_many_equals_default_path(name, shared):
    torch.manual_seed(0)
    module = MODULES[name]()
    width = getattr(module, "proj_size", 0) or HID
    machine = wrap(module, nn.Linear(width, 2))
    gen = torch.Generator().manual_seed(1)
    trace = trajprobe.rollout(machine, torch.randn(E, T, IN, generator=gen))
    probes = torch.randn(*(() if shared else (E, T)), N, IN, generator=gen)
    fast = trajprobe.probe(machine, trace, probes, memory_budget=3_000)  # many chunks
    slow = trajprobe.probe(Plain(machine), trace, probes)
    assert fast.shape == slow.shape == (E, T, N, 2)
    assert float((fast - slow).abs().max()) < 1e-5


def test_output_many_with_a_wrong_shape_is_named():
    machine = wrap(nn.GRU(IN, HID))

    class Broken(Plain):
        def output_many(self, x, state):
            return x[:, 0]

    trace = trajprobe.rollout(machine, torch.randn(E, T, IN))
    with pytest.raises(ValueError, match="output_many"):
        trajprobe.probe(Broken(machine), trace, torch.randn(N, IN))


@pytest.mark.parametrize("name", ["LSTM", "GRUCell"])
def test_output_many_in_cache_sized_blocks_equals_one_batch(name, monkeypatch):
    from trajprobe.adapters import torch_rnn

    torch.manual_seed(0)
    machine = wrap(MODULES[name](), nn.Linear(HID, 2))
    gen = torch.Generator().manual_seed(2)
    trace = trajprobe.rollout(machine, torch.randn(E, T, IN, generator=gen))
    probes = torch.randn(E, T, N, IN, generator=gen)
    whole = trajprobe.probe(machine, trace, probes)
    monkeypatch.setattr(torch_rnn, "_BLOCK_BYTES", 1)  # one state per block
    blocked = trajprobe.probe(machine, trace, probes)
    assert float((blocked - whole).abs().max()) < 1e-6  # matmul rounding may differ
