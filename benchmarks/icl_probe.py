"""Probing in-context learners: KV cache and shared-state probes vs re-running (issue 15).

Run:  python benchmarks/icl_probe.py                   (the issue's sizes, CPU)
      python benchmarks/icl_probe.py --episodes 40 --lstm-episodes 100   (a faster look)

Prints one table; every timing is measured side by side in this one run, interleaved,
best of ``--repeats`` (the machine is shared: compare the ratios, not the absolute
numbers).

(1) A 2-layer causal transformer (d_model 64, 4 heads; a user's ``nn.TransformerEncoder``
    model), E × T × N probes:
    * re-running prefixes: the adapter a user writes without trajprobe's — state = the
      padded input history and a one-hot position, every output re-runs the module on
      the whole (causally masked) history. Timed on ``--baseline-episodes`` episodes and
      scaled to E (its cost is linear in E);
    * KV cache, default engine path: state = the key/value cache, forked N times (timed
      on the same subset of episodes as the baseline and scaled);
    * KV cache + ``output_many``: N probe queries attend to one shared cache per state.
(2) LSTM(64), E × T × N: ``output_many`` (recurrent matmul once per state) vs the
    engine's default path (fork the state, one batched step per item; 0.77 M items/s on
    2 cores when measured in benchmarks/probe_engine.py).

Every pair of paths is checked to give the same outputs (max |difference| printed).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import trajprobe
from trajprobe.adapters import wrap, wrap_transformer


class Decoder(nn.Module):
    """A user's decoder-only model: read-in, learned positions, causal encoder, read-out."""

    def __init__(self, d_in: int, d_out: int, max_len: int, d_model: int = 64,
                 heads: int = 4, layers: int = 2):
        super().__init__()
        self.read_in = nn.Linear(d_in, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.read_out = nn.Linear(d_model, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, d_in] → [B, T, d_out]
        steps = x.shape[1]
        h = self.read_in(x) + self.pos(torch.arange(steps, device=x.device))
        mask = nn.Transformer.generate_square_subsequent_mask(steps, device=x.device)
        return self.read_out(self.encoder(h, mask=mask, is_causal=True))


class HistoryMachine:
    """The naive adapter: state = padded input history [B, T, D] + one-hot position [B, T]."""

    def __init__(self, model: Decoder, max_len: int, d_in: int):
        self.model, self.max_len, self.d_in = model, max_len, d_in

    def initial_state(self, batch_size: int):
        return (torch.zeros(batch_size, self.max_len, self.d_in),
                torch.zeros(batch_size, self.max_len))

    def step(self, x, state):
        history, position = state
        t = position.sum(-1).long()  # steps seen so far
        slot = nn.functional.one_hot(t, self.max_len).to(history)
        history = history + slot[..., None] * x[:, None]  # write x at slot t
        y = self.model(history)[torch.arange(x.shape[0]), t]  # re-run the whole history
        return y, (history, position + slot)


class Plain:
    """A machine without output_many: the engine's default (fork) path."""

    def __init__(self, machine):
        self.initial_state, self.step = machine.initial_state, machine.step
        self.output = getattr(machine, "output", None) or (lambda x, s: machine.step(x, s)[0])


def _best(fns: dict, repeats: int) -> dict:
    """Interleaved, best of ``repeats`` wall-clock times per named callable."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--baseline-episodes", type=int, default=10,
                        help="episodes the re-running baseline is timed on (scaled to E)")
    parser.add_argument("--lstm-episodes", type=int, default=500)
    parser.add_argument("--lstm-steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    E, T, N, dim = args.episodes, args.steps, args.probes, 2
    d_in = 2 * dim
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"best of {args.repeats}, interleaved")

    # (1) transformer
    torch.manual_seed(0)
    model = Decoder(d_in, dim, T).eval()
    kv = wrap_transformer(model.encoder, read_in=model.read_in, read_out=model.read_out,
                          position=model.pos, max_len=T)
    naive = HistoryMachine(model, T, d_in)
    gen = torch.Generator().manual_seed(1)
    inputs = torch.randn(E, T, d_in, generator=gen)
    probes = torch.randn(E, T, N, d_in, generator=gen)
    Eb = min(args.baseline_episodes, E)
    trace = trajprobe.rollout(kv, inputs)
    trace_b = trajprobe.rollout(kv, inputs[:Eb])
    trace_naive = trajprobe.rollout(naive, inputs[:Eb])
    out = {}
    times = _best({
        "naive": lambda: out.__setitem__("naive", trajprobe.probe(
            naive, trace_naive, probes[:Eb], progress=False)),
        "kv_fork": lambda: out.__setitem__("kv_fork", trajprobe.probe(
            Plain(kv), trace_b, probes[:Eb], progress=False)),
        "kv_many": lambda: out.__setitem__("kv_many", trajprobe.probe(
            kv, trace, probes, progress=False)),
    }, args.repeats)
    kv_b = trajprobe.probe(kv, trace_b, probes[:Eb], progress=False)
    naive_s = times["naive"] * E / Eb
    fork_s = times["kv_fork"] * E / Eb
    items = E * T * N
    diff_naive = float((out["naive"] - kv_b).abs().max())
    diff_fork = float((out["kv_fork"] - kv_b).abs().max())

    # (2) LSTM(64)
    torch.manual_seed(0)
    El, Tl = args.lstm_episodes, args.lstm_steps
    lstm = wrap(nn.LSTM(d_in, 64, batch_first=True), nn.Linear(64, dim))
    l_inputs = torch.randn(El, Tl, d_in, generator=gen)
    l_probes = torch.randn(El, Tl, N, d_in, generator=gen)
    l_trace = trajprobe.rollout(lstm, l_inputs)
    l_times = _best({
        "default": lambda: out.__setitem__("default", trajprobe.probe(
            Plain(lstm), l_trace, l_probes, progress=False)),
        "many": lambda: out.__setitem__("many", trajprobe.probe(
            lstm, l_trace, l_probes, progress=False)),
    }, max(args.repeats, 5))
    l_items = El * Tl * N
    diff_lstm = float((out["default"] - out["many"]).abs().max())

    def rate(n: int, s: float) -> str:
        return f"{n / s / 1e6:.3f} M items/s"

    rows = [
        (f"(1) transformer 2 layers d=64, E={E} T={T} N={N}: items", f"{items:,}", ""),
        ("  re-running prefixes (history state)", f"{naive_s:.1f} s",
         f"{rate(items, naive_s)}; timed on {Eb} episodes, scaled"),
        ("  KV cache, default fork path", f"{fork_s:.1f} s",
         f"{rate(items, fork_s)}; timed on {Eb} episodes, scaled"),
        ("  KV cache + output_many", f"{times['kv_many']:.2f} s",
         rate(items, times["kv_many"])),
        ("  speed-up: cache + output_many vs re-running", f"{naive_s / times['kv_many']:.1f}x",
         "target >= 10x"),
        ("  speed-up: cache + output_many vs cache forked",
         f"{fork_s / times['kv_many']:.1f}x", ""),
        ("  max |diff| re-running vs cache; fork vs many", f"{diff_naive:.1e}",
         f"{diff_fork:.1e}"),
        (f"(2) LSTM(64), E={El} T={Tl} N={N}: items", f"{l_items:,}", ""),
        ("  default engine path (fork + step)", f"{l_times['default']:.2f} s",
         rate(l_items, l_times["default"])),
        ("  output_many (W_hh h once per state)", f"{l_times['many']:.2f} s",
         rate(l_items, l_times["many"])),
        ("  speed-up: output_many vs default", f"{l_times['default'] / l_times['many']:.2f}x",
         "target >= 2x"),
        ("  max |diff| default vs output_many", f"{diff_lstm:.1e}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")


if __name__ == "__main__":
    main()
