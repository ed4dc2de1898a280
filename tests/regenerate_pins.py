"""Regenerate tests/data/reproduce_smoke_pins.json: ``python tests/regenerate_pins.py``.

The pins are the headline rows (``summary.json``: quantity, agent, ours) of every
``trajprobe reproduce`` target at the smoke preset, which the tests' ``assert_pinned``
fixture (tests/conftest.py) compares with a fresh run. This command runs every target
twice, from scratch, in two processes at once:

* with **one** torch thread: these numbers are the pins (the bayes-optimal test runs with
  one thread too);
* with **two** threads: another summation order in torch's kernels. The largest relative
  difference between the two passes, per target, is recorded as ``spread``, and the
  row's tolerance is ``rtol = max(1e-6, 10 × spread)`` (rounded up to one digit): the
  other tests run with the machine's default thread count, which reorders sums as two
  threads do, by an amount of the same order (10 × for the counts not measured). The
  command prints the rows whose rtol exceeds 1e-3: numbers the smoke preset does not
  determine well, to read before trusting.

Beside the pins it writes what they were recorded with: torch, numpy and Python versions,
the platform, the thread counts, the wall-clock seconds. A non-finite row (NaN, inf)
carries ``why``: the meaning of that value for that quantity (:data:`REASONS`); a
non-finite row no rule explains is an error, so a new one must be explained here first.

Options: ``--targets a b`` regenerates only those targets (the others are kept); without
it, every target whose optional modules (its module's ``REQUIRES``) are installed, the
others' pins kept as they are (neurogym-decision needs the neurogym venv of .ci/run:
``build/neurogym/bin/python tests/regenerate_pins.py --targets neurogym-decision``);
``--out DIR`` keeps the runs' directories there (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PINS = Path(__file__).parent / "data" / "reproduce_smoke_pins.json"
THREADS = (1, 2)
"""The pinned pass and the pass that measures the spread."""
MIN_RTOL = 1e-6
SAFETY = 10.0
"""rtol = max(MIN_RTOL, SAFETY × measured spread): two thread counts measured, others not."""
SCHEDULER = {"task-diversity": None}
"""As the tests run them (tests/test_task_diversity.py trains its ladder in-process)."""

REASONS: list[tuple[str, str, str] | tuple[str, str, str, str]] = [
    # (quantity pattern, "nan" or "inf", why[, agent pattern: the rule holds for those only])
    (r"^time to q > .* vs ", "nan",
     "undetermined: the reference curve (the second of the pair) never crosses the "
     "threshold within the smoke run's steps (trajprobe.dynamics.time_ratio: NaN)"),
    (r"^time to q > .* vs ", "inf",
     "this curve never crosses the threshold within the smoke run's steps while the "
     "reference does (trajprobe.dynamics.time_ratio: inf)"),
    (r"^outer loop: first checkpoint", "nan",
     "undetermined: the k = 1 curve crosses the threshold at no checkpoint of the smoke "
     "run"),
    (r"^threshold M\*", "inf",
     "no finite pool size of the smoke ladder keeps the transformer closer to ridge than "
     "to dMMSE (task_diversity.threshold: inf = never within the ladder)"),
    (r"→ Transformer$", "nan",
     "D_o into the transformer is undefined: its state is a cache summary without an "
     "output function"),
    (r"output simulation score, Bayes→learner$", "nan",
     "the exact Bayes machine's states mapped into the transformer's have no output: the "
     "transformer is read through CacheReadout, which has no inverse (D_o into it is NaN, "
     "and so is its score)", r"^Transformer$"),
]


def why(quantity: str, value: float, agent: str = "") -> str | None:
    """The reason a non-finite pinned value is what it is; None for a finite one."""
    if math.isfinite(value):
        return None
    kind = "nan" if math.isnan(value) else "inf"
    for pattern, which, reason, *agents in REASONS:
        if (which == kind and re.search(pattern, quantity)
                and all(re.search(a, agent) for a in agents)):
            return reason
    raise ValueError(f"{quantity!r} ({agent}) is {value}: no rule in REASONS says why; add one to "
                     f"{Path(__file__).name} before pinning it")


def _one_pass(threads: int, out: Path, targets: list[str]) -> None:
    """Run ``targets`` at the smoke preset with ``threads`` torch threads; write rows.json."""
    import warnings

    import torch

    from trajprobe.apps.reproduce import reproduce

    torch.set_num_threads(threads)
    rows, seconds = {}, {}
    for target in targets:
        start = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reproduce(target, preset="smoke", out_dir=out / f"{target}-smoke", progress=False,
                      scheduler=SCHEDULER.get(target, "auto"))
        seconds[target] = round(time.monotonic() - start, 1)
        summary = json.loads((out / f"{target}-smoke" / "summary.json").read_text())
        rows[target] = [(r["quantity"], r["agent"], r["ours"]) for r in summary]
    (out / "rows.json").write_text(json.dumps({"rows": rows, "seconds": seconds}))


def _relative(a: float, b: float) -> float:
    if (math.isnan(a) and math.isnan(b)) or (math.isinf(a) and a == b):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def rtol(spread: float) -> float:
    """A row's tolerance: ``max(MIN_RTOL, SAFETY × spread)``, rounded up to one digit."""
    return max(MIN_RTOL, _round_up(SAFETY * spread))


def _round_up(x: float) -> float:
    """``x`` rounded up to one significant digit (0 stays 0)."""
    if x <= 0:
        return 0.0
    unit = 10.0 ** math.floor(math.log10(x))
    return float(f"{math.ceil(x / unit - 1e-9) * unit:.1g}")


def _merge(passes: dict[int, dict], targets: list[str], wall: float) -> dict:
    import numpy
    import torch

    old = json.loads(PINS.read_text()) if PINS.exists() else {}
    pins = dict(old.get("targets", {}))
    pinned, other = passes[THREADS[0]]["rows"], passes[THREADS[1]]["rows"]
    for target in targets:
        ours, theirs = pinned[target], other[target]
        if [r[:2] for r in ours] != [r[:2] for r in theirs]:
            raise RuntimeError(f"{target}: the two passes report different rows")
        spreads = [_relative(a[2], b[2]) for a, b in zip(ours, theirs, strict=True)]
        if not all(map(math.isfinite, spreads)):
            raise RuntimeError(f"{target}: a row is finite with {THREADS[0]} thread(s) and "
                               f"not with {THREADS[1]}: no tolerance can cover that")
        pins[target] = {
            "spread": max(spreads),
            "seconds": {str(t): passes[t]["seconds"][target] for t in THREADS},
            "rows": [{"quantity": q, "agent": a, "ours": v, "spread": d, "rtol": rtol(d),
                      **({"why": why(q, v, a)} if not math.isfinite(v) else {})}
                     for (q, a, v), d in zip(ours, spreads, strict=True)],
        }
    return {
        "about": "Headline rows of every reproduce target at the smoke preset, recorded with "
                 f"{THREADS[0]} torch thread(s); 'spread' is the largest relative difference "
                 f"from a run with {THREADS[1]} threads, per row, and its rtol = "
                 f"max({MIN_RTOL:g}, {SAFETY:g} x spread) rounded up; a target's spread is "
                 f"its rows' largest. Regenerate: python tests/regenerate_pins.py",
        "recorded_with": {
            "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "threads": list(THREADS), "wall_seconds": round(wall, 1),
        },
        "targets": {t: pins[t] for t in sorted(pins, key=_order)},
    }


def _order(target: str) -> int:
    from trajprobe.apps.reproduce import TARGETS

    return list(TARGETS).index(target) if target in TARGETS else len(TARGETS)


def missing_extras(target: str) -> list[str]:
    """The modules ``target`` needs (its module's ``REQUIRES``, e.g. neurogym) that are not
    installed here."""
    import importlib
    import importlib.util

    from trajprobe.apps.reproduce import TARGETS

    needs = getattr(importlib.import_module(TARGETS[target]), "REQUIRES", ())
    return [m for m in needs if importlib.util.find_spec(m) is None]


def main(argv: list[str] | None = None) -> None:
    from trajprobe.apps.reproduce import TARGETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--pass-threads", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.targets is None:  # every target this environment can run; the others keep pins
        args.targets = [t for t in TARGETS if not missing_extras(t)]
        for target in sorted(set(TARGETS) - set(args.targets)):
            print(f"{target}: skipped, {', '.join(missing_extras(target))} not installed "
                  f"(its pins are kept; regenerate them where it is: --targets {target})")
    if args.pass_threads is not None:  # one pass, in a child process
        _one_pass(args.pass_threads, args.out, args.targets)
        return
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="trajprobe-pins-") as tmp:
        root = args.out or Path(tmp)
        children = {t: subprocess.Popen(
            [sys.executable, __file__, "--pass-threads", str(t), "--out", str(root / f"t{t}"),
             "--targets", *args.targets]) for t in THREADS}
        if any(child.wait() for child in children.values()):
            sys.exit("a pass failed; the pins are unchanged")
        passes = {t: json.loads((root / f"t{t}" / "rows.json").read_text()) for t in THREADS}
    data = _merge(passes, args.targets, time.monotonic() - start)
    PINS.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    for target in args.targets:
        entry = data["targets"][target]
        loose = [f"{r['quantity']} | {r['agent']} (rtol {r['rtol']:g})" for r in entry["rows"]
                 if r["rtol"] > 1e-3]
        print(f"{target}: {len(entry['rows'])} rows, largest spread {entry['spread']:.2g}, "
              f"seconds {entry['seconds']}" + "".join(f"\n  loose: {x}" for x in loose))
    print(f"wrote {PINS} in {data['recorded_with']['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
