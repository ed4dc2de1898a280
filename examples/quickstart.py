"""Wrap an RNN, run it over episodes, probe it with counterfactual inputs, and measure it.

    python examples/quickstart.py

The README's Python block, as it is (tests/test_docs.py keeps the two equal).
"""

import torch
from torch import nn

import trajprobe
from trajprobe.adapters import wrap
from trajprobe.tasks import LinearRegression

torch.manual_seed(0)
machine = wrap(nn.LSTM(4, 64, batch_first=True), readout=nn.Linear(64, 2))  # or TorchCore(...)
trace = trajprobe.rollout(machine, torch.randn(200, 20, 4))  # inputs [episode, t, input]
ys = trajprobe.probe(machine, trace, torch.randn(100, 4))  # [episode, t, probe, output]
ds = trajprobe.measure(machine, LinearRegression(dim=2), episodes=200, steps=20)
print(ds["q"].mean("episode"))  # q_k(t), Rabinowitz eq. 3/5 (an untrained LSTM: near 0)
