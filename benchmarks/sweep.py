"""A quick-preset sweep of 4 seeds: LocalCluster wall time against the seeds run serially.

Run:  python benchmarks/sweep.py                                  (Beta(1,1)-Bernoulli, quick)
      python benchmarks/sweep.py --recipe linear-regression-2d/meta-learner --workers 2

Three runs of the same sweep (train + measure every checkpoint), each in a fresh directory:

1. serial, 1 thread: the seeds one after another in this process, one torch thread each;
   the sum of their times is what the cluster's workers have to beat;
2. serial, torch's default threads: what a user without the sweep would do;
3. ``trajprobe.apps.sweep`` on a LocalCluster of ``--workers`` single-threaded processes,
   wall time including starting the cluster.

It prints the speed-ups 1/3 and 2/3 and checks that all three give the same numbers.
On a 2-core CPU with 2 workers, expect close to 2x over (1).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import xarray as xr

from trajprobe.apps import recipes
from trajprobe.apps.recipes import format_seconds
from trajprobe.apps.sweep import sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="bayes-optimal/bernoulli_beta_1_1")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes")
    args = parser.parse_args()
    recipe = recipes.get(args.recipe, args.preset)
    common = {"seeds": args.seeds, "n_episodes": args.episodes, "progress": False}
    default_threads = torch.get_num_threads()
    results, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, kwargs in (
            ("serial, 1 thread", {"scheduler": None, "threads": 1}),
            (f"serial, {default_threads} threads", {"scheduler": None}),
            (f"LocalCluster, {args.workers} workers", {"scheduler": "local",
                                                       "n_workers": args.workers}),
        ):
            start = time.perf_counter()
            results[label] = sweep(recipe, out_dir=Path(tmp) / label.replace(" ", "_"),
                                   **common, **kwargs)
            seconds[label] = time.perf_counter() - start
            print(f"{label:<28} {seconds[label]:8.1f} s   (training, sum over seeds: "
                  f"{float(results[label]['training_seconds'].sum()):.1f} s)", flush=True)
    serial, threaded, cluster = seconds.values()
    print(f"\n{args.recipe} ({args.preset}), {args.seeds} seeds, estimated "
          f"{format_seconds(recipe.estimated_seconds())} of training per seed")
    print(f"  speed-up of the LocalCluster over the serial 1-thread sum: {serial / cluster:.2f}x")
    print(f"  speed-up over serial with torch's {default_threads} threads:"
          f"        {threaded / cluster:.2f}x")
    one, many, dask = (_measured(ds) for ds in results.values())
    print(f"  cluster vs serial (both 1 thread per seed) identical: {dask.equals(one)}; "
          f"max |difference| against {default_threads} threads: {_max_diff(one, many):.2g}")


def _measured(ds: xr.Dataset) -> xr.Dataset:
    return ds.drop_vars(["training_seconds", "resumed_from_step"])


def _max_diff(a: xr.Dataset, b: xr.Dataset) -> float:
    return max(float(abs(a[v] - b[v]).max()) for v in a.data_vars if a[v].dtype.kind == "f")


if __name__ == "__main__":
    main()
