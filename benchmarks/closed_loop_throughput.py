"""Closed-loop A2C throughput: the old loop (``Interaction`` + replay) against the new one.

Both train the same model (Rabinowitz LSTM(64) + linear readout, the coupled bandit
Meta-Learner) on the same task (5 contexts × 5 actions, T = 125 steps) with the same
A2C loss and Adam, through ``trajprobe.apps.training.train_policy_gradient``. The old loop is
the one on ``main``: check it out beside this tree and point ``--old`` at it::

    git worktree add --detach /tmp/old-a2c main
    python benchmarks/closed_loop_throughput.py --old /tmp/old-a2c

Every measurement runs in its own subprocess (``torch.set_num_threads(n)``, one warm-up
update, then ``--updates`` timed updates); old and new alternate and the best of
``--repeats`` is kept, because this machine's two cores are shared. Prints episodes/s of
both and their ratio per batch size and thread count, and the load average.

The last column is a ceiling no eager loop can pass: episodes/s if an update did nothing
but the LSTM's three matrix products per step (gates forward, and the input and weight
gradients backward), each ``[B, I + H] × [I + H, 4H]``-sized, T of each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r'''
import json, sys, time
root = sys.argv[1]
threads, batch, updates, n_steps = (int(v) for v in sys.argv[2:6])
if root:
    sys.path.insert(0, root)
import torch
torch.set_num_threads(threads)
import trajprobe
from trajprobe.apps.models import RabinowitzLSTM
from trajprobe.tasks import ContextualBandit
from trajprobe.apps.training import OptimiserConfig, PolicyGradientConfig, train_policy_gradient
if root:
    assert trajprobe.__file__.startswith(root), trajprobe.__file__
task = ContextualBandit(5, 5)
model = RabinowitzLSTM(task.input_size, task.n_actions, 64, seed=0)
def config(n):
    return PolicyGradientConfig(n * batch, n_steps, batch, discount=0.5,
                                optimiser=OptimiserConfig("adam", 1e-3), log_every=1)
train_policy_gradient(model, task, config(1), progress=False)  # warm-up
start = time.perf_counter()
train_policy_gradient(model, task, config(updates), progress=False)
print(json.dumps(updates * batch / (time.perf_counter() - start)))
'''


FLOOR = r'''
import json, sys, time
import torch
threads, batch, updates, n_steps = (int(v) for v in sys.argv[2:6])
torch.set_num_threads(threads)
x, w = torch.randn(batch, 11 + 64), torch.randn(11 + 64, 256)
g = torch.randn(batch, 256)
def update():
    for _ in range(n_steps):
        x @ w, g @ w.T, x.T @ g
update()
start = time.perf_counter()
for _ in range(updates):
    update()
print(json.dumps(updates * batch / (time.perf_counter() - start)))
'''


def measure(root: str, threads: int, batch: int, updates: int, n_steps: int) -> float:
    """Episodes/s of ``train_policy_gradient`` from the tree at ``root`` ('' = this one;
    'floor': the matrix products alone)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    child = FLOOR if root == "floor" else CHILD
    out = subprocess.run([sys.executable, "-c", child, root, str(threads), str(batch),
                          str(updates), str(n_steps)], env=env, check=True,
                         capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="source tree of the old loop (main)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 200])
    parser.add_argument("--updates", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-steps", type=int, default=125)
    args = parser.parse_args()
    old = str(Path(args.old).resolve())
    print(f"LSTM(64), T = {args.n_steps}, {args.updates} updates per run, best of "
          f"{args.repeats}; load average before: {os.getloadavg()}")
    print(f"{'threads':>7} {'batch':>5} {'old ep/s':>9} {'new ep/s':>9} {'ratio':>6} "
          f"{'GEMM ceiling':>12}")
    for threads in args.threads:
        for batch in args.batch:
            olds, news = [], []
            for _ in range(args.repeats):
                olds.append(measure(old, threads, batch, args.updates, args.n_steps))
                news.append(measure("", threads, batch, args.updates, args.n_steps))
            best_old, best_new = max(olds), max(news)
            ceiling = measure("floor", threads, batch, args.updates, args.n_steps)
            print(f"{threads:>7} {batch:>5} {best_old:>9,.0f} {best_new:>9,.0f} "
                  f"{best_new / best_old:>6.2f} {ceiling:>12,.0f}", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
