"""Gittins tables: time and accuracy (issue 4 target: Beta counts up to 200, γ = 0.99, ≤ 10 s).

Run: ``python benchmarks/gittins.py``. Prints one row per table: size, wall time (first
computation, cache cleared), the certified calibration bound, and a few published values.
Uses one thread for numpy/torch where the platform allows.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import time

import numpy as np

from trajprobe.reference_models import gittins as G


def _time(fn):
    """(result, "wall s / cpu s"): on a shared machine the CPU time is the steadier figure."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, f"{time.perf_counter() - wall:.2f} / {time.process_time() - cpu:.2f}"


def main() -> None:
    rows = []
    for discount, n_max in [(0.9, 200), (0.99, 200)]:
        G._bernoulli_table_cached.cache_clear()
        table, seconds = _time(
            lambda d=discount, n=n_max: G.bernoulli_gittins_table(1.0, 1.0, d, n)
        )
        states = int(np.isfinite(table.index).sum())
        rows.append(
            (
                f"Bernoulli Beta(1+i, 1+j), i+j<={n_max}",
                discount,
                states,
                table.horizon,
                seconds,
                f"max {np.nanmax(table.bound):.1e} / p99 {np.nanpercentile(table.bound, 99):.1e}",
                f"nu(1,1)={table.index[0, 0]:.4f}",
            )
        )
    for discount in (0.95, 0.99):
        G._gaussian_table_cached.cache_clear()
        table, seconds = _time(lambda d=discount: G.gaussian_gittins_table(1.0, d, 200))
        rows.append(
            (
                "Gaussian standardised, n=1..201",
                discount,
                table.index.size,
                table.horizon,
                seconds,
                "-",
                f"nu(n=1)={table.index[0]:.4f}",
            )
        )
    header = ("table", "gamma", "states", "horizon", "wall / cpu s", "certified bound", "check")
    widths = [max(len(str(r[i])) for r in [*rows, header]) for i in range(7)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        cells = [str(c) for c in r]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))


if __name__ == "__main__":
    main()
