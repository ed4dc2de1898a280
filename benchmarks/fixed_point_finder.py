"""trajprobe.fixed_points beside FixedPointFinder's own PyTorch code on the same trained GRU.

FixedPointFinder (Golub & Sussillo 2018, github.com/mattgolub/fixed-point-finder) is not
vendored: give a checkout with ``--fpf PATH``, or the script clones it into a temporary
directory (``git clone --depth 1``). Both finders start from the same initial states
(states of the GRU's trajectories on held-out flip-flop episodes plus Gaussian noise, as
FixedPointFinder's example samples them) under zero input; the script reports, for each,
the unique and stable points and the wall time, and checks that the stable points are the
same: as many, each within FixedPointFinder's uniqueness tolerance of one of the other's.

    python benchmarks/fixed_point_finder.py --run trajprobe-runs/flipflop-3bit/gru/quick
    python benchmarks/fixed_point_finder.py --train            # trains the quick GRU first

The run directory is from ``trajprobe train flipflop-3bit/gru --preset quick --out DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trajprobe import fixed_points, rollout
from trajprobe.apps import load_run, recipes

FPF_URL = "https://github.com/mattgolub/fixed-point-finder"


def fpf_checkout(path: str | None, tmp: str) -> Path:
    """FixedPointFinder at ``path``, or cloned into ``tmp`` (never vendored)."""
    if path is not None:
        return Path(path)
    target = Path(tmp) / "fixed-point-finder"
    subprocess.run(["git", "clone", "--depth", "1", FPF_URL, str(target)], check=True)
    return target


def _model(run: str | None, train: bool):
    if run is not None and Path(run, "recipe.json").is_file():
        recipe, _, machine, _ = load_run(run)
        return recipe, machine
    if not train:
        sys.exit(f"--run: no trained run at {run!r}; pass --train to train the quick GRU")
    recipe = recipes.get("flipflop-3bit/gru", "quick")
    model = recipe.train(run, seed=0, progress=False).model
    return recipe, model


def _starts(recipe, model, n: int, noise: float, seed: int) -> torch.Tensor:
    trace = rollout(model, recipe.task.sample(64, 64, seed=seed + 1).inputs)
    states = trace.state_vectors(model)[:, 1:].flatten(0, 1)
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(states.shape[0], (n,), generator=gen)
    return states[pick] + noise * torch.randn(n, states.shape[1], generator=gen)


def _theirs(checkout: Path, model, starts: torch.Tensor, bits: int, max_iters: int, lr: float):
    sys.path.insert(0, str(checkout))
    from FixedPointFinderTorch import FixedPointFinderTorch

    finder = FixedPointFinderTorch(model.gru, max_iters=max_iters, lr_init=lr, verbose=False)
    initial = starts.numpy().copy()  # it optimises the array it is given in place
    begin = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints as it goes
        unique, _ = finder.find_fixed_points(initial, np.zeros((1, bits), np.float32))
    seconds = time.perf_counter() - begin
    for p in model.parameters():  # it freezes them
        p.requires_grad_(True)
    return unique.xstar, unique.is_stable.astype(bool), unique.qstar, seconds


def _same_points(a: np.ndarray, b: np.ndarray, tol: float) -> tuple[bool, float]:
    """Whether a and b hold the same points (each within ``tol`` of one of the other's)."""
    if len(a) != len(b) or len(a) == 0:
        return False, float("nan")
    gap = np.abs(a[:, None] - b[None]).max(-1)
    worst = max(gap.min(1).max(), gap.min(0).max())
    return bool(worst < tol), float(worst)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="trajprobe-runs/flipflop-3bit/gru/quick")
    parser.add_argument("--train", action="store_true", help="train the quick GRU if missing")
    parser.add_argument("--fpf", help="a checkout of mattgolub/fixed-point-finder")
    parser.add_argument("--starts", type=int, default=1024)
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--max-iters", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    # FixedPointFinderTorch's default lr_init=1.0 (Adam) throws this GRU's states far out
    # (|h| ~ 10), where the update gate saturates, J ≈ I and q ≈ 0: 1,024 "unique" points,
    # none stable (measured: --fpf-lr 1.0). 0.1 and 0.01 find the 8 corners.
    parser.add_argument("--fpf-lr", type=float, default=0.1,
                        help="FixedPointFinderTorch's lr_init (its default: 1.0)")
    args = parser.parse_args(argv)
    recipe, model = _model(args.run, args.train)
    starts = _starts(recipe, model, args.starts, args.noise, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        checkout = fpf_checkout(args.fpf, tmp)
        begin = time.perf_counter()
        ours = fixed_points(model, torch.zeros(recipe.task.bits), starts,
                            max_iters=args.max_iters)
        our_seconds = time.perf_counter() - begin
        xstar, stable, qstar, their_seconds = _theirs(checkout, model, starts, recipe.task.bits,
                                                      args.max_iters, args.fpf_lr)
    our_stable = ours.state.values[ours.stable.values]
    same, gap = _same_points(our_stable, xstar[stable], tol=1e-3)
    print(f"{args.starts} initial states (noise {args.noise}), zero input, GRU({starts.shape[1]})")
    print(f"{'finder':<22}{'unique':>8}{'stable':>8}{'max q':>12}{'seconds':>10}")
    print(f"{'trajprobe (newton)':<22}{ours.sizes['point']:>8}{int(ours.stable.sum()):>8}"
          f"{float(ours.speed.max()):>12.2e}{our_seconds:>10.2f}")
    print(f"{f'FixedPointFinder lr {args.fpf_lr:g}':<22}{len(xstar):>8}{int(stable.sum()):>8}"
          f"{float(np.max(qstar)):>12.2e}{their_seconds:>10.2f}")
    print(f"same stable points: {same} (largest distance to the nearest other: {gap:.2e}, "
          f"tolerance 1e-3 per unit)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
