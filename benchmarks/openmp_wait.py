"""Why the console script sets ``OMP_WAIT_POLICY=PASSIVE``: training speed by OpenMP policy.

Times LSTM(64) training updates (batch 100 episodes of T = 20 unless ``--batch``, Adam) in
fresh processes, one per policy — the default (threads spin while they wait),
``PASSIVE`` (they sleep), ``GOMP_SPINCOUNT`` limits, and one thread — first on an idle
machine, then while one other process keeps a core busy (a second job, a browser). The
policy must be in the environment before torch loads OpenMP, hence one process per row.

Run: ``python benchmarks/openmp_wait.py [--threads 2] [--batch 100]`` (about a minute).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

UPDATES = 30
POLICIES = {"default (spin)": {}, "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
            "GOMP_SPINCOUNT=30000": {"GOMP_SPINCOUNT": "30000"}}

_TIMED = f"""
import sys, time, torch
from trajprobe.apps.models import RabinowitzLSTM
from trajprobe.tasks import LinearRegression
torch.set_num_threads(int(sys.argv[1]))
model = RabinowitzLSTM(4, 2, 64)
opt = torch.optim.Adam(model.parameters(), 1e-3)
episodes = LinearRegression(2, noise_std=0.01).sample(int(sys.argv[2]), 20, seed=0)
for i in range({UPDATES} + 5):
    if i == 5:
        start = time.perf_counter()
    out, _ = model.unroll(episodes.inputs)
    loss = (out - episodes.targets).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
print((time.perf_counter() - start) / {UPDATES} * 1e3)
"""


def ms_per_update(threads: int, batch: int, env: dict[str, str]) -> float:
    """Milliseconds per training update in a fresh process with ``env`` added."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", _TIMED, str(threads), str(batch)],
                         env={**clean, **env}, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def table(threads: int, batch: int, label: str) -> None:
    cells = [f"{name} {ms_per_update(threads, batch, env):7.1f}"
             for name, env in POLICIES.items()]
    cells.append(f"1 thread {ms_per_update(1, batch, {}):7.1f}")
    print(f"{label:<22} " + "   ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    print(f"ms per update, LSTM(64), batch {args.batch} × T 20, {args.threads} threads "
          f"(load {os.getloadavg()[0]:.1f} before)")
    table(args.threads, args.batch, "idle machine")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        table(args.threads, args.batch, "one other busy core")
    finally:
        busy.kill()


if __name__ == "__main__":
    main()
