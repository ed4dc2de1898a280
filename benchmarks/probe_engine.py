"""Probe engine throughput, speed-up over a naive loop, and peak memory (issue: foundation).

Run:  python benchmarks/probe_engine.py            (E=500, T=20, N=100, LSTM(64), CPU)
      python benchmarks/probe_engine.py --episodes 50   (a faster look)

Prints one table. All timings are measured side by side in this one run:

(a) probe throughput / raw throughput of one batched ``step`` over the same number of
    items (same chunk size, states and inputs already laid out: the physical limit);
(b) speed-up over a straightforward loop that re-runs each history prefix per
    (episode, t) and steps each probe separately; the loop is timed on a sample of
    (episode, t) pairs and scaled to all pairs (running it in full takes hours);
(c) peak resident memory added by the sweep with the default chunking (ru_maxrss;
    measured first, in a fresh process, so earlier work cannot mask it).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
from torch import nn

import trajprobe
from trajprobe import machine as sm
from trajprobe.adapters import wrap
from trajprobe.probing import DEFAULT_MEMORY_BUDGET, _chunk_items


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--naive-pairs", type=int, default=20,
                        help="(episode, t) pairs the naive loop is timed on")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    E, T, N, dim = args.episodes, args.steps, args.probes, 2

    torch.manual_seed(0)
    lstm = nn.LSTM(2 * dim, args.hidden, batch_first=True).to(args.device)
    machine = wrap(lstm, nn.Linear(args.hidden, dim)).to(args.device)
    inputs = torch.randn(E, T, 2 * dim, device=args.device)
    probes = torch.randn(E, T, N, 2 * dim, device=args.device)
    trace = trajprobe.rollout(machine, inputs)
    n_items = E * T * N

    # (c) first, so that nothing before it has raised the high-water mark.
    rss0 = _rss_mib()
    trajprobe.probe(machine, trace, probes, progress=False)
    peak_mib = _rss_mib() - rss0

    # (a) raw: the same items through step, states and inputs already laid out.
    prior = sm.tree_map(lambda leaf: leaf[:, :T].flatten(0, 1), trace.states)
    one_out = machine.step(probes[0, 0, :1], sm.index(prior, slice(0, 1)))[0]
    chunk = _chunk_items(prior, probes[0, 0, :1], one_out, DEFAULT_MEMORY_BUDGET)
    flat_x = probes.flatten(0, 2)
    raw_state = sm.repeat(sm.index(prior, slice(0, min(chunk, n_items) // N + 1)), N)

    def run_raw() -> None:
        with torch.no_grad():
            for s in range(0, n_items, chunk):
                stop = min(s + chunk, n_items)
                machine.step(flat_x[s:stop], sm.index(raw_state, slice(0, stop - s)))

    # Interleaved, best of five each: the machine is shared, so noise hits both alike.
    probe_s = raw_s = float("inf")
    for _ in range(5):
        probe_s = min(probe_s, _timed(lambda: trajprobe.probe(machine, trace, probes,
                                                              progress=False)))
        raw_s = min(raw_s, _timed(run_raw))

    # (b) naive: per (e, t) re-run the prefix, then each probe alone.
    pairs = [(e % E, (e * 7) % T) for e in range(args.naive_pairs)]
    with torch.no_grad():
        start = time.perf_counter()
        for e, t in pairs:
            state = machine.initial_state(1)
            for k in range(t):
                _, state = machine.step(inputs[e, k][None], state)
            for n in range(N):
                machine.step(probes[e, t, n][None], state)
        naive_pair_s = (time.perf_counter() - start) / len(pairs)
    naive_s = naive_pair_s * E * T

    rows = [
        ("items E·T·N", f"{n_items:,}", ""),
        ("chunk (items) at default 64 MiB budget", f"{chunk:,}", ""),
        ("probe wall time", f"{probe_s:.2f} s", f"{n_items / probe_s / 1e6:.2f} M items/s"),
        ("raw batched step wall time", f"{raw_s:.2f} s", f"{n_items / raw_s / 1e6:.2f} M items/s"),
        ("(a) probe / raw throughput", f"{raw_s / probe_s:.2f}", "target >= 0.7"),
        ("naive loop (scaled from sample)", f"{naive_s:.0f} s",
         f"{args.naive_pairs} pairs timed, {naive_pair_s * 1e3:.1f} ms/pair"),
        ("(b) speed-up over naive loop", f"{naive_s / probe_s:.0f}x", "target >= 30x"),
        ("(c) peak memory added by the sweep", f"{peak_mib:.0f} MiB",
         f"result tensor alone {n_items * one_out.shape[-1] * 4 / 2**20:.0f} MiB"),
    ]
    print(f"probe engine: LSTM({args.hidden}) E={E} T={T} N={N} on {args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    main()
