"""The linear-regression Learner's step: closed-form gradients against vmap(grad(...)).

Both machines are the quick preset's Learners (Rabinowitz A.1: 2-layer linear MLP, hidden
10, SGD, minibatch 100, 48 learners) on the same minibatch; ``LinearChainLearner`` writes
the backward pass out, ``Learner`` differentiates ``functional_call`` with torch.func.
They alternate and the best of ``--repeats`` is kept (shared machine). Prints ms per step
of both, their ratio, and the seconds the quick preset's 20,000 steps take at each.

Run: ``python benchmarks/linear_learner.py`` (about 30 seconds).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from trajprobe.adapters.torch_learner import SGD, Learner, linear_regression_learner


def ms_per_step(machine: Learner, x: torch.Tensor, steps: int) -> float:
    state = machine.initial_state(x.shape[0])
    with torch.no_grad():
        for _ in range(20):
            _, state = machine.step(x, state)
        start = time.perf_counter()
        for _ in range(steps):
            _, state = machine.step(x, state)
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    closed = linear_regression_learner(2, 2, hidden=10, optimiser=SGD(1e-2))
    generic = Learner(closed.module, closed.optimiser, closed.loss, input_size=2,
                      init=closed.init)
    x = torch.randn(48, 100, 4, generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {"closed form": [], "vmap(grad)": []}
    for _ in range(args.repeats):
        times["closed form"].append(ms_per_step(closed, x, args.steps))
        times["vmap(grad)"].append(ms_per_step(generic, x, args.steps))
    print(f"48 learners × minibatch 100, {args.threads} thread(s), best of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, values in times.items():
        print(f"  {name:<12} {min(values):6.3f} ms/step   20,000 steps {min(values) * 20:5.1f} s")
    print(f"  ratio {min(times['vmap(grad)']) / min(times['closed form']):.2f}x")


if __name__ == "__main__":
    main()
