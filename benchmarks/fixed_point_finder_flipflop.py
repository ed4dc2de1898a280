"""trajprobe.fixed_points beside FixedPointFinder on FixedPointFinder's own flip-flop example.

Everything but trajprobe's search is FixedPointFinder's (Golub & Sussillo 2018,
github.com/mattgolub/fixed-point-finder), run from a checkout and never vendored: give one
with ``--fpf PATH`` or the script clones it into a temporary directory. As its
``examples/torch/run_FlipFlop.py`` does, the script

* trains its ``FlipFlop`` model (a 16-unit ``nn.RNN`` with tanh, 3 bits) with its own
  ``FlipFlop.train`` on its ``FlipFlopData`` (512 training and 128 validation trials,
  batch 128, learning rate 1/√128, until the loss is below 1e-4); the example does not seed
  torch, so ``--seed`` does, and its per-epoch plot is replaced by nothing;
* draws 1,024 initial states from the validation trajectories with noise 0.5 by
  ``FixedPointFinderTorch.sample_states`` and searches under zero input with the example's
  settings (``max_iters`` 10,000, ``lr_init`` 1.0, ``outlier_distance_scale`` 10, the other
  options at its defaults; printing off).

trajprobe's ``fixed_points`` (its defaults, ``max_iters`` and ``outlier_distance`` as
theirs) starts from the same initial states, stepping the same ``nn.RNN`` module. The
script prints each finder's unique and stable points, whether every point one finds is
among the other's (Euclidean distance at most FixedPointFinder's ``tol_unique`` 1e-3), and
the wall time of each (median of ``--repeats`` alternating runs after one warm-up run
each) with its ratio — only when the 1-minute load average is at most 2, else it says the
time was not measured (``--time-anyway`` overrides). Exit status 1 if trajprobe misses
any of FixedPointFinder's points.

    python benchmarks/fixed_point_finder_flipflop.py --fpf PATH/TO/fixed-point-finder
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from fixed_point_finder import fpf_checkout  # this folder's script beside it

from trajprobe import fixed_points

N_BITS, N_HIDDEN, N_INITS, NOISE = 3, 16, 1024, 0.5
FPF_HPS = {"max_iters": 10000, "lr_init": 1.0, "outlier_distance_scale": 10.0}


def _import_theirs(checkout: Path):
    """Their modules, as run_FlipFlop.py puts them on the path."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    for folder in (checkout / "examples" / "torch", checkout / "examples" / "helper", checkout):
        sys.path.insert(0, str(folder))
    from FixedPointFinderTorch import FixedPointFinderTorch
    from FlipFlop import FlipFlop
    from FlipFlopData import FlipFlopData

    return FixedPointFinderTorch, FlipFlop, FlipFlopData


def _train(FlipFlop, FlipFlopData, seed: int):
    """run_FlipFlop.train_FlipFlop, seeded, with its plots off."""
    FlipFlopData.plot_trials = classmethod(lambda cls, *args, **kwargs: None)
    torch.manual_seed(seed)
    data = FlipFlopData()
    train, valid = data.generate_data(n_trials=512), data.generate_data(n_trials=128)
    model = FlipFlop(n_inputs=N_BITS, n_hidden=N_HIDDEN, n_outputs=N_BITS, rnn_type="tanh")
    begin = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        losses, _ = model.train(train, valid, learning_rate=1.0 / np.sqrt(128), batch_size=128)
    seconds = time.perf_counter() - begin
    return model, model.predict(valid)["hidden"], len(losses), float(losses[-1]), seconds


class TheirRNN:
    """Their ``nn.RNN`` (batch_first) as a trajprobe machine: s' = F(s, x), one step."""

    def __init__(self, rnn: torch.nn.RNN):
        self.rnn = rnn

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, self.rnn.hidden_size)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, new = self.rnn(x.unsqueeze(1), state.unsqueeze(0))
        return new[0], new[0]


def _theirs(FixedPointFinderTorch, rnn, initial: np.ndarray):
    finder = FixedPointFinderTorch(rnn, verbose=False, **FPF_HPS)
    begin = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints whatever verbose says
        unique, _ = finder.find_fixed_points(initial.copy(), np.zeros((1, N_BITS)))
    return unique, time.perf_counter() - begin


def _ours(machine, initial: np.ndarray):
    begin = time.perf_counter()
    ds = fixed_points(machine, torch.zeros(N_BITS), torch.from_numpy(initial).float(),
                      max_iters=FPF_HPS["max_iters"],
                      outlier_distance=FPF_HPS["outlier_distance_scale"])
    return ds, time.perf_counter() - begin


def _found(a: np.ndarray, b: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """For each point of ``a``: whether one of ``b`` is within ``tol``, and the distance."""
    if len(b) == 0:
        return np.zeros(len(a), bool), np.full(len(a), np.inf)
    gap = np.linalg.norm(a[:, None].astype(float) - b[None].astype(float), axis=-1).min(1)
    return gap <= tol, gap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fpf", help="a checkout of mattgolub/fixed-point-finder")
    parser.add_argument("--seed", type=int, default=0, help="torch seed of their training")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-anyway", action="store_true",
                        help="report wall times even when the load average is above 2")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        checkout = fpf_checkout(args.fpf, tmp)
        FixedPointFinderTorch, FlipFlop, FlipFlopData = _import_theirs(checkout)
        model, hidden, epochs, loss, train_seconds = _train(FlipFlop, FlipFlopData, args.seed)
        rnn = model.rnn
        initial = FixedPointFinderTorch(rnn, verbose=False, **FPF_HPS).sample_states(
            hidden, n_inits=N_INITS, noise_scale=NOISE)
        machine = TheirRNN(rnn)
        _theirs(FixedPointFinderTorch, rnn, initial[:16])  # warm-up runs
        _ours(machine, initial[:16])
        their_times, our_times = [], []
        for _ in range(args.repeats):
            theirs, seconds = _theirs(FixedPointFinderTorch, rnn, initial)
            their_times.append(seconds)
            ours, seconds = _ours(machine, initial)
            our_times.append(seconds)
        commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or "?"
    tol = theirs.tol_unique
    xs, stable, qs = theirs.xstar, theirs.is_stable.astype(bool), theirs.qstar
    we_find, gap = _found(xs, ours.state.values, tol)
    they_find, _ = _found(ours.state.values, xs, tol)
    our_stable = ours.state.values[ours.stable.values]
    _, stable_gap = _found(xs[stable], our_stable, tol)
    load = os.getloadavg()[0]
    print(f"FixedPointFinder {commit}: FlipFlop tanh RNN({N_HIDDEN}) trained by its own code "
          f"(seed {args.seed}): {epochs} epochs, loss {loss:.2e}, {train_seconds:.0f} s")
    print(f"{N_INITS} initial states by its sample_states (noise {NOISE}), zero input, "
          f"max_iters {FPF_HPS['max_iters']}, {args.threads} thread(s)")
    print(f"{'finder':<20}{'unique':>8}{'stable':>8}{'max q':>11}")
    print(f"{'FixedPointFinder':<20}{len(xs):>8}{int(stable.sum()):>8}{float(qs.max()):>11.2e}")
    print(f"{'trajprobe (newton)':<20}{ours.sizes['point']:>8}{int(ours.stable.sum()):>8}"
          f"{float(ours.speed.max()):>11.2e}")
    print(f"FixedPointFinder's points that trajprobe finds: {int(we_find.sum())}/{len(xs)} "
          f"(Euclidean distance <= tol_unique {tol:g}); trajprobe's that it finds: "
          f"{int(they_find.sum())}/{len(they_find)}")
    for i in np.flatnonzero(~we_find):
        print(f"  missed: FixedPointFinder point {i}, q {qs[i]:.1e}, "
              f"{'stable' if stable[i] else 'unstable'}, nearest ours {gap[i]:.2e} away")
    print(f"stable points: largest distance to trajprobe's nearest {stable_gap.max():.1e}; "
          f"trajprobe's bridge search added {ours.attrs['bridge_points']} point(s) from "
          f"{ours.attrs['bridge_starts']} midpoints")
    if load <= 2 or args.time_anyway:
        mine, theirs_s = float(np.median(our_times)), float(np.median(their_times))
        print(f"wall time (median of {args.repeats}, load {load:.1f}): trajprobe {mine:.2f} s, "
              f"FixedPointFinder {theirs_s:.2f} s, ratio trajprobe/FixedPointFinder "
              f"{mine / theirs_s:.2f}")
    else:
        print(f"wall time: not measured (1-minute load average {load:.1f} > 2); rerun when "
              f"the machine is quiet")
    return 0 if bool(we_find.all()) else 1


if __name__ == "__main__":
    sys.exit(main())
