"""Wrap your own recurrent module and measure its effective spectra (Rabinowitz 2019 eq. 5).

    python examples/wrap_your_rnn.py    # well under a minute on a laptop CPU

The code of docs/tutorials/wrap-your-rnn.md, block after block (tests/test_docs.py keeps the
two equal): a custom core (not an nn.LSTM) becomes a machine with `TorchCore`; it is
meta-trained briefly on 2-D linear regression and probed: at every step t its state after
t-1 observations is forked and shown 100 probe inputs, and a least-squares fit gives the
effective map Ŵ_t and its projection on the task's singular modes, q_k(t) = ŝ_k / s_k.
"""

import torch
from torch import nn

import trajprobe
from trajprobe.adapters import TorchCore
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig, train_supervised
from trajprobe.reference_models import BayesianLinearRegression
from trajprobe.tasks import LinearRegression


class GatedCore(nn.Module):
    """A minimal gated recurrent core with a dict state: your architecture goes here."""

    def __init__(self, n_in, n_hidden, n_out):
        super().__init__()
        self.gate = nn.Linear(n_in + n_hidden, n_hidden)
        self.cand = nn.Linear(n_in + n_hidden, n_hidden)
        self.out = nn.Linear(n_hidden, n_out)

    def forward(self, x, state):
        z = torch.cat([x, state["h"]], dim=-1)
        g = torch.sigmoid(self.gate(z))
        h = (1 - g) * state["h"] + g * torch.tanh(self.cand(z))
        return self.out(h), {"h": h}


torch.manual_seed(0)
task = LinearRegression(dim=2)  # inputs [x_t, y_{t-1}] (4 numbers), targets y_t = W x_t + ε
machine = TorchCore(GatedCore(task.input_size, 64, task.output_size),
                    initial_state=lambda batch: {"h": torch.zeros(batch, 64)})

EPISODES = 3_000  # 300_000 give the converged curves (about 2 minutes on a laptop CPU)
train_supervised(machine, task, SupervisedConfig(EPISODES, batch_size=100,
                 optimiser=OptimiserConfig("adam", 2e-3, "cosine")), progress=False)

spectra = trajprobe.effective_spectra(machine, task, spectrum=[2.0, 0.2], seed=1)
q = spectra["q"].mean("episode")  # q_k(t) = ŝ_k(t) / s_k, dims (t, mode)
print("q_k(t), mean over episodes (rows: t = 1..20; columns: s = 2.0, 0.2)")
print(q.round(2).to_pandas().to_string())

bayes = trajprobe.effective_spectra(BayesianLinearRegression.from_task(task), task,
                                    spectrum=[2.0, 0.2], seed=1)
print("Bayes: q_k(t) at t = 1, 2, 5, 20")
print(bayes["q"].mean("episode").sel(t=[1, 2, 5, 20]).round(2).to_pandas().to_string())
