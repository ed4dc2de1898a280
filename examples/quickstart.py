"""Wrap an RNN, run it over episodes, and probe it with counterfactual inputs.

    python examples/quickstart.py
"""

import torch
from torch import nn

import trajprobe
from trajprobe.adapters import wrap

torch.manual_seed(0)
machine = wrap(nn.LSTM(4, 64, batch_first=True), readout=nn.Linear(64, 2))

inputs = torch.randn(200, 20, 4)  # [episode, t, input]: e.g. [x_t, y_{t-1}] for 2-D regression
trace = trajprobe.rollout(machine, inputs)
print(trace.to_dataset(machine))

# What would the LSTM predict at every step t, from its state after t-1 observations,
# for 100 probe inputs? One batched, chunked sweep over 200 x 20 x 100 forked states.
probes = torch.randn(100, 4)
outputs = trajprobe.probe(machine, trace, probes, labelled=True)
print(outputs.sizes)
