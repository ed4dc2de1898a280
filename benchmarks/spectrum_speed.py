"""How long an effective-spectrum measurement of a 64-unit LSTM takes on CPU.

The issue's target: 200 episodes × 20 steps × 100 probes (Rabinowitz 2019 §3.2.3 set-up,
2-D regression) completes in seconds. Prints a table of stage timings and the ratio of
the probe stage to its physical limit, one batched ``step`` over all E·T·N items.

Run: ``python benchmarks/spectrum_speed.py [--threads 1] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import trajprobe
from trajprobe.adapters import wrap
from trajprobe.estimators import effective_map, effective_spectrum, spectrum_ratio
from trajprobe.probing import probe
from trajprobe.tasks import LinearRegression


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    task = LinearRegression(args.dim)
    machine = wrap(nn.LSTM(task.input_size, args.hidden, batch_first=True),
                   readout=nn.Linear(args.hidden, task.output_size))
    e, t, n = args.episodes, args.steps, args.probes
    episodes = task.sample(e, t, seed=0)
    trace = trajprobe.rollout(machine, episodes.inputs)
    probe_inputs = task.probe_inputs(trace.inputs, n, seed=1)
    outputs = probe(machine, trace, probe_inputs)

    t_sample = best_of(lambda: task.sample(e, t, seed=0), args.repeats)
    t_rollout = best_of(lambda: trajprobe.rollout(machine, episodes.inputs), args.repeats)
    t_probe_inputs = best_of(lambda: task.probe_inputs(trace.inputs, n, seed=1), args.repeats)
    t_probe = best_of(lambda: probe(machine, trace, probe_inputs, progress=False), args.repeats)

    def fit():
        w_hat = effective_map(task.probe_points(probe_inputs), outputs)
        s_hat = effective_spectrum(w_hat, episodes.params["U"][:, None],
                                   episodes.params["V"][:, None])
        return spectrum_ratio(s_hat, episodes.params["s"][:, None])

    t_fit = best_of(fit, args.repeats)
    t_total = best_of(
        lambda: trajprobe.effective_spectra(machine, task, e, t, probes=n, seed=0,
                                            progress=False),
        args.repeats,
    )

    # physical limit: one batched step over all E*T*N items, states already materialised
    items = e * t * n
    state = machine.initial_state(items)
    flat_inputs = probe_inputs.reshape(items, -1)

    def one_step():
        with torch.inference_mode():
            machine.step(flat_inputs, state)

    t_limit = best_of(one_step, args.repeats)

    print(f"effective spectrum: {e} episodes x {t} steps x {n} probes = {items:,} probe items,"
          f" {args.hidden}-unit LSTM, dim {args.dim}, {args.threads} thread(s), best of"
          f" {args.repeats}")
    print(f"{'stage':<34}{'seconds':>10}")
    for name, value in [
        ("sample episodes", t_sample),
        ("rollout (open loop)", t_rollout),
        ("build probe inputs", t_probe_inputs),
        ("probe (forked, chunked)", t_probe),
        ("least squares + spectrum", t_fit),
        ("effective_spectra (end to end)", t_total),
        ("one batched step, all items", t_limit),
    ]:
        print(f"{name:<34}{value:>10.3f}")
    print(f"{'probe / physical limit':<34}{t_probe / t_limit:>10.2f}x")


if __name__ == "__main__":
    main()
