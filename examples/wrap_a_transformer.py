"""Wrap a causal transformer as a machine whose state is its key/value cache, and probe it.

    python examples/wrap_a_transformer.py            # several minutes on a laptop CPU
    python examples/wrap_a_transformer.py --smoke    # seconds

1. Your own decoder-only model (read-in, learned positions, an ``nn.TransformerEncoder``
   run with a causal mask, read-out) becomes a machine with ``wrap_transformer``; it is
   meta-trained briefly on 2-D linear regression by the BPTT loop (teacher-forced: the
   machine's ``unroll`` runs whole episodes in one causal pass) and its effective spectra
   are measured: q_k(t) = ŝ_k / s_k (Rabinowitz 2019 eq. 5).
2. If ``transformers`` is installed (``pip install "trajprobe[transformers]"``), Garg et
   al.'s GPT-2 set-up — read-in, ``GPT2Model`` on ``inputs_embeds``, read-out, x and y
   tokens interleaved — wraps with ``wrap_gpt2`` and is probed the same way (random
   weights: nothing is downloaded).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import trajprobe
from trajprobe.adapters import Interleaved, wrap_gpt2, wrap_transformer
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig, train_supervised
from trajprobe.tasks import LinearRegression

T = 20  # steps per episode


class Decoder(nn.Module):
    """Your model: read-in, learned positions, causal encoder layers, read-out."""

    def __init__(self, d_in: int, d_out: int, max_len: int, d_model: int = 64):
        super().__init__()
        self.read_in = nn.Linear(d_in, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, 4, 4 * d_model, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.read_out = nn.Linear(d_model, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, d_in] → [B, T, d_out]
        steps = x.shape[1]
        h = self.read_in(x) + self.pos(torch.arange(steps, device=x.device))
        mask = nn.Transformer.generate_square_subsequent_mask(steps, device=x.device)
        return self.read_out(self.encoder(h, mask=mask, is_causal=True))


def own_transformer(task: LinearRegression, smoke: bool) -> None:
    model = Decoder(task.input_size, task.output_size, T)
    machine = wrap_transformer(model.encoder, read_in=model.read_in,
                               read_out=model.read_out, position=model.pos, max_len=T)
    n_episodes = 300 if smoke else 50_000
    train_supervised(machine, task, SupervisedConfig(n_episodes, batch_size=100,
                     optimiser=OptimiserConfig("adam", 1e-3, "cosine")), progress=not smoke)
    model.eval()
    spectra = trajprobe.effective_spectra(machine, task, n_episodes=10 if smoke else 200,
                                          n_steps=T, spectrum=[2.0, 0.2], seed=1)
    print("your transformer: q_k(t), mean over episodes (rows: t; columns: s = 2.0, 0.2)")
    print(spectra["q"].mean("episode").round(2).to_pandas().to_string())


def garg_gpt2(smoke: bool) -> None:
    try:
        from transformers import GPT2Config, GPT2Model
    except ImportError:
        print("GPT-2: skipped (pip install 'trajprobe[transformers]')")
        return
    n_dims = 5
    # Garg et al.'s TransformerModel, as they build it (src/models.py): small here.
    config = GPT2Config(n_positions=2 * T, n_embd=64, n_layer=2, n_head=4, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False)
    read_in, backbone, read_out = nn.Linear(n_dims, 64), GPT2Model(config), nn.Linear(64, 1)
    machine = wrap_gpt2(backbone, read_in=read_in, read_out=read_out, max_len=T,
                        layout=Interleaved(n_dims, 1))
    gen = torch.Generator().manual_seed(0)
    xs, w = torch.randn(8, T, n_dims, generator=gen), torch.randn(8, n_dims, 1, generator=gen)
    ys = (xs @ w)[..., 0]
    y_prev = torch.cat([torch.zeros(8, 1), ys[:, :-1]], dim=1)
    trace = trajprobe.rollout(machine, torch.cat([xs, y_prev[..., None]], dim=-1))
    probes = torch.randn(10 if smoke else 100, n_dims, generator=gen)
    # Each probe is a fresh x_t with the real y_{t-1}: [x, y_{t-1}] per (episode, t).
    probe_inputs = torch.cat([probes.expand(8, T, -1, -1),
                              y_prev[:, :, None, None].expand(8, T, probes.shape[0], 1)], -1)
    outputs = trajprobe.probe(machine, trace, probe_inputs)
    state = trace.state_at(T)
    print(f"GPT-2 (Garg et al. layout): cache keys {tuple(state.keys.shape)} "
          f"(episode, layer, head, slot, d_head), {int(state.valid[0].sum())} tokens after "
          f"{T} steps; probe outputs {tuple(outputs.shape)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny run, for CI")
    args = parser.parse_args()
    torch.manual_seed(0)
    own_transformer(LinearRegression(dim=2), args.smoke)
    garg_gpt2(args.smoke)


if __name__ == "__main__":
    main()
