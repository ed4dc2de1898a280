"""Wrap a causal transformer as a machine whose state is its key/value cache, and probe it.

    python examples/wrap_a_transformer.py    # about a minute on a laptop CPU

The code of docs/tutorials/wrap-a-transformer.md, block after block (tests/test_docs.py
keeps the two equal). 1. Your own decoder-only model (read-in, learned positions, an
``nn.TransformerEncoder`` run with a causal mask, read-out) becomes a machine with
``wrap_transformer``; it is meta-trained briefly on 2-D linear regression by the BPTT loop
(teacher-forced: the machine's ``unroll`` runs whole episodes in one causal pass) and its
effective spectra are measured: q_k(t) = ŝ_k / s_k (Rabinowitz 2019 eq. 5). 2. Garg et
al.'s GPT-2 set-up — read-in, ``GPT2Model`` on ``inputs_embeds``, read-out, x and y tokens
interleaved — wraps with ``wrap_gpt2`` and is probed the same way (random weights: nothing
is downloaded; needs ``pip install ".[transformers]"``).
"""

import torch
from torch import nn

import trajprobe
from trajprobe.adapters import wrap_transformer
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig, train_supervised
from trajprobe.tasks import LinearRegression


class Decoder(nn.Module):
    """Your model: read-in, learned positions, causal encoder layers, read-out."""

    def __init__(self, d_in, d_out, max_len, d_model=64):
        super().__init__()
        self.read_in = nn.Linear(d_in, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, 4, 4 * d_model, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.read_out = nn.Linear(d_model, d_out)

    def forward(self, x):  # [B, T, d_in] -> [B, T, d_out]
        steps = x.shape[1]
        h = self.read_in(x) + self.pos(torch.arange(steps))
        mask = nn.Transformer.generate_square_subsequent_mask(steps)
        return self.read_out(self.encoder(h, mask=mask, is_causal=True))


torch.manual_seed(0)
T = 20  # steps per episode
model = Decoder(4, 2, max_len=T)
machine = wrap_transformer(model.encoder, read_in=model.read_in, read_out=model.read_out,
                           position=model.pos, max_len=T)

EPISODES = 500  # 50_000 to learn the task (several minutes on a laptop CPU)
task = LinearRegression(dim=2)  # inputs [x_t, y_{t-1}], targets y_t
train_supervised(machine, task, SupervisedConfig(EPISODES, batch_size=100,
                 optimiser=OptimiserConfig("adam", 1e-3, "cosine")), progress=False)
model.eval()
spectra = trajprobe.effective_spectra(machine, task, episodes=20, spectrum=[2.0, 0.2], seed=1)
print("your transformer: q_k(t), mean over episodes (rows: t; columns: s = 2.0, 0.2)")
print(spectra["q"].mean("episode").round(2).to_pandas().to_string())

from transformers import GPT2Config, GPT2Model

from trajprobe.adapters import Interleaved, wrap_gpt2


class TransformerModel(nn.Module):
    """Garg et al.'s model as they build it (their src/models.py), small here."""

    def __init__(self, n_dims, n_positions, n_embd=64, n_layer=2, n_head=4):
        super().__init__()
        config = GPT2Config(n_positions=2 * n_positions, n_embd=n_embd, n_layer=n_layer,
                            n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                            use_cache=False)
        self._read_in = nn.Linear(n_dims, n_embd)
        self._backbone = GPT2Model(config)
        self._read_out = nn.Linear(n_embd, 1)


n_dims = 5
m = TransformerModel(n_dims, T)
gpt2 = wrap_gpt2(m._backbone, read_in=m._read_in, read_out=m._read_out,
                 max_len=T, layout=Interleaved(n_dims, 1))

gen = torch.Generator().manual_seed(0)
xs, w = torch.randn(8, T, n_dims, generator=gen), torch.randn(8, n_dims, 1, generator=gen)
ys = (xs @ w)[..., 0]
y_prev = torch.cat([torch.zeros(8, 1), ys[:, :-1]], dim=1)
trace = trajprobe.rollout(gpt2, torch.cat([xs, y_prev[..., None]], dim=-1))
probes = torch.randn(100, n_dims, generator=gen)
probe_inputs = torch.cat([probes.expand(8, T, -1, -1),
                          y_prev[:, :, None, None].expand(8, T, 100, 1)], dim=-1)
outputs = trajprobe.probe(gpt2, trace, probe_inputs)
state = trace.state_at(T)
print(f"GPT-2 (Garg et al. layout): cache keys {tuple(state.keys.shape)} "
      f"(episode, layer, head, slot, d_head), {int(state.valid[0].sum())} tokens after "
      f"{T} steps; probe outputs {tuple(outputs.shape)}")
