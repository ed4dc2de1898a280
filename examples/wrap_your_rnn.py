"""Wrap your own recurrent module and measure its effective spectra (Rabinowitz 2019 eq. 5).

    python examples/wrap_your_rnn.py            # ~1 minute on a laptop CPU
    python examples/wrap_your_rnn.py --smoke    # a few seconds

A custom core (not an nn.LSTM) becomes a machine with `TorchCore`; it is meta-trained
briefly on 2-D linear regression and probed: at every step t its state after t-1
observations is forked and shown 100 probe inputs, and a least-squares fit gives the
effective map Ŵ_t and its projection on the task's singular modes, q_k(t) = ŝ_k / s_k.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import trajprobe
from trajprobe.adapters import TorchCore
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig, train_supervised
from trajprobe.tasks import LinearRegression


class GatedCore(nn.Module):
    """A minimal gated recurrent core with a dict state — your architecture goes here."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int):
        super().__init__()
        self.gate = nn.Linear(n_in + n_hidden, n_hidden)
        self.cand = nn.Linear(n_in + n_hidden, n_hidden)
        self.out = nn.Linear(n_hidden, n_out)

    def forward(self, x, state):
        z = torch.cat([x, state["h"]], dim=-1)
        g = torch.sigmoid(self.gate(z))
        h = (1 - g) * state["h"] + g * torch.tanh(self.cand(z))
        return self.out(h), {"h": h}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny run, for CI")
    args = parser.parse_args()
    torch.manual_seed(0)
    task = LinearRegression(dim=2)
    machine = TorchCore(GatedCore(task.input_size, 64, task.output_size),
                        initial_state=lambda batch: {"h": torch.zeros(batch, 64)})
    n_episodes = 2_000 if args.smoke else 300_000
    train_supervised(machine, task, SupervisedConfig(n_episodes, batch_size=100,
                     optimiser=OptimiserConfig("adam", 2e-3, "cosine")), progress=not args.smoke)

    spectra = trajprobe.effective_spectra(machine, task, n_episodes=50 if args.smoke else 200,
                                          spectrum=[2.0, 0.2], seed=1)
    q = spectra["q"].mean("episode")
    print("q_k(t), mean over episodes (rows: t = 1..20; columns: s = 2.0, 0.2)")
    print(q.round(2).to_pandas().to_string())


if __name__ == "__main__":
    main()
