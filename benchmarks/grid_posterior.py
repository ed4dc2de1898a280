"""Benchmark: the Fourier grid posterior at paper scale (Rabinowitz 2019 §4.2.5).

16^5 ≈ 10^6 phase grid, 2000 episodes × 40 steps (80 000 posterior evaluations over the
whole grid), float64. Prints one table row per configuration: wall and CPU time, time per
episode-step, and a profile of what dominates on a short run.

    python benchmarks/grid_posterior.py                     # paper scale, 1 and 2 threads
    python benchmarks/grid_posterior.py --episodes 100      # a quick subset

The data come from ``FourierRegression`` (K = 5, unit amplitudes, noise 0.01); the grid
assumes noise 0.3 by default, which roughly covers the misfit of a 16-bin phase grid to
off-grid true phases (the timing does not depend on it).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from trajprobe import rollout
from trajprobe.reference_models.grid_posterior import FourierGridPosterior
from trajprobe.tasks.fourier import FourierRegression


def run(machine: FourierGridPosterior, inputs: torch.Tensor) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    rollout(machine, inputs)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--bins", type=int, default=16)
    parser.add_argument("--modes", type=int, default=5)
    parser.add_argument("--assumed-noise", type=float, default=0.3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--budget", type=int, default=None, help="block bytes (default 1 MiB)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = parser.parse_args()

    task = FourierRegression(n_modes=args.modes, noise_std=0.01)
    dtype = getattr(torch, args.dtype)
    inputs = task.sample(args.episodes, args.steps, seed=0, dtype=dtype).inputs
    kwargs = {"n_bins": args.bins, "noise_std": args.assumed_noise, "dtype": dtype}
    if args.budget is not None:
        kwargs["memory_budget"] = args.budget
    machine = FourierGridPosterior.from_task(task, **kwargs)
    n_items = args.episodes * args.steps

    print(f"grid {args.bins}^{args.modes} = {machine.grid_size} functions, "
          f"{args.episodes} episodes x {args.steps} steps, {args.dtype}, "
          f"block {machine.memory_budget} bytes")
    print(f"{'threads':>7} {'wall s':>9} {'cpu s':>9} {'ms/ep-step':>11} {'grid-fn/s':>11}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        wall, cpu = run(machine, inputs)
        print(f"{threads:>7} {wall:>9.1f} {cpu:>9.1f} {1e3 * wall / n_items:>11.3f} "
              f"{machine.grid_size * n_items / wall:>11.3e}")

    # what dominates: profile a short run (20 episodes, 5 steps) on one thread
    torch.set_num_threads(1)
    short = inputs[:20, :5]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        rollout(machine, short)
    print("\nprofile of 100 episode-steps, 1 thread (self CPU time):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


if __name__ == "__main__":
    main()
