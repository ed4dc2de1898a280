"""Probe throughput of a Haiku LSTM against the same LSTM in torch, side by side (issue 16).

Run:  python benchmarks/jax_probe.py                 (E=200, T=20, N=100, LSTM(64), CPU)
      python benchmarks/jax_probe.py --episodes 50   (a faster look)

Needs ``pip install trajprobe[jax]``. One torch ``nn.LSTM(4, 64)`` with a linear readout
is wrapped with ``trajprobe.adapters.wrap``; its weights are copied into ``hk.LSTM(64)``
(``haiku_lstm_params``) and wrapped with ``haiku_core``. Both are rolled out on the same
inputs and probed with the same E·T·N probe inputs through ``trajprobe.probe`` at the
default memory budget. Timings are interleaved, best of ``--repeats`` each, after one
warm-up call that compiles the JAX step (its time is reported separately), so load from
other processes on a shared machine hits both alike. The load average is printed.

Reports throughput (probe items per second) of each, the ratio JAX / torch (target
>= 0.5), the same for the JAX machine with ``pad_batches = False`` (padding only touches
batches of up to 1024, so the two should agree within the noise), and the largest
difference between the two machines' probe outputs.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn

import trajprobe
from trajprobe.adapters import wrap


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import haiku as hk
    import jax

    from trajprobe.adapters.jax import haiku_core, haiku_lstm_params

    E, T, N, H, n_in, n_out = args.episodes, args.steps, args.probes, args.hidden, 4, 2
    torch.manual_seed(0)
    lstm, readout = nn.LSTM(n_in, H, batch_first=True), nn.Linear(H, n_out)
    torch_machine = wrap(lstm, readout)
    params = haiku_lstm_params(lstm, readout)

    def haiku():
        return haiku_core(lambda: hk.LSTM(H), params, readout=lambda h: hk.Linear(n_out)(h),
                          input_shape=n_in)

    jax_machine, jax_exact = haiku(), haiku()
    jax_exact.pad_batches = False
    inputs = torch.randn(E, T, n_in)
    probes = torch.randn(E, T, N, n_in)
    traces = {name: trajprobe.rollout(m, inputs)
              for name, m in (("torch", torch_machine), ("jax", jax_machine),
                              ("jax_exact", jax_exact))}
    machines = {"torch": torch_machine, "jax": jax_machine, "jax_exact": jax_exact}

    def run(name):
        return trajprobe.probe(machines[name], traces[name], probes, progress=False)

    compile_s, outputs = {}, {}
    for name in machines:  # warm-up: compiles the JAX steps for every chunk size
        start = time.perf_counter()
        outputs[name] = run(name)
        compile_s[name] = time.perf_counter() - start
    times = {name: float("inf") for name in machines}
    for _ in range(args.repeats):  # interleaved, best of each, so load hits all alike
        for name in machines:
            times[name] = min(times[name], _timed(lambda n=name: run(n)))

    n_items = E * T * N
    diff = float((outputs["jax"] - outputs["torch"]).abs().max())
    rate = {name: n_items / s / 1e6 for name, s in times.items()}
    rows = [
        ("items E·T·N", f"{n_items:,}", ""),
        ("torch nn.LSTM probe", f"{times['torch']:.2f} s", f"{rate['torch']:.2f} M items/s"),
        ("Haiku hk.LSTM probe", f"{times['jax']:.2f} s", f"{rate['jax']:.2f} M items/s"),
        ("  first call (compiles)", f"{compile_s['jax']:.2f} s",
         f"torch first call {compile_s['torch']:.2f} s"),
        ("Haiku, exact batch shapes", f"{times['jax_exact']:.2f} s",
         f"{rate['jax_exact']:.2f} M items/s, first call {compile_s['jax_exact']:.2f} s"),
        ("ratio JAX / torch throughput", f"{rate['jax'] / rate['torch']:.2f}", "target >= 0.5"),
        ("  exact shapes / torch", f"{rate['jax_exact'] / rate['torch']:.2f}", ""),
        ("max |y_jax - y_torch|", f"{diff:.1e}", "same weights"),
    ]
    load = os.getloadavg()
    print(f"JAX probe: LSTM({H}) E={E} T={T} N={N} on cpu, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), jax {jax.__version__}, "
          f"{os.cpu_count()} cores, load average {load[0]:.1f}")
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>10}  {note}")


if __name__ == "__main__":
    main()
