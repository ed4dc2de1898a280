"""Regenerate the README's figure (and its two companions) from the current recipe.

    python docs/scripts/readme_figures.py                 # quick: ~8 min of training on 2 cores
    python docs/scripts/readme_figures.py --preset smoke --figures /tmp/figures   # a check

Runs the README's main job, the command ``trajprobe reproduce linear-regression`` at the
preset (reusing finished runs in ``--out``, default
``./trajprobe-runs/linear-regression-<preset>``; as the console script, so idle OpenMP
threads sleep), then copies three of its figures to ``docs/figures/``:

* ``fig1b_learning_curves.png`` → ``linear-regression-<preset>.png`` (the README's figure:
  q_k(t) of the Learner, the Meta-Learner and Bayes on the spectrum (2.5, 0.05));
* ``fig1c_steps_to_threshold.png`` → ``linear-regression-<preset>-steps.png``;
* ``fig14_outer_loop.png`` → ``linear-regression-<preset>-outer-loop.png``.

It prints the report's headline rows, the numbers the README's caption and
``docs/reproduce.md``'s table quote, so the text can be checked against the figure.
Nothing is written into ``docs/figures`` at another preset than ``quick`` unless
``--figures`` says where.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

from trajprobe.apps.recipes import default_out_dir
from trajprobe.apps.reproduce import read_results
from trajprobe.apps.reproduce.linear_regression import headline_ratio

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {
    "fig1b_learning_curves": "",
    "fig1c_steps_to_threshold": "-steps",
    "fig14_outer_loop": "-outer-loop",
}
"""The report's figure → the suffix of its copy, ``linear-regression-<preset><suffix>.png``."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=["smoke", "quick", "paper"], default="quick")
    parser.add_argument("--out", type=Path, default=None,
                        help="the reproduce directory (default: "
                             "./trajprobe-runs/linear-regression-PRESET)")
    parser.add_argument("--figures", type=Path, default=None,
                        help="where the copies go (default: docs/figures at quick; required "
                             "at another preset)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch's CPU threads (default: torch's choice; 1 on a busy machine)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    figures = args.figures
    if figures is None:
        if args.preset != "quick":
            parser.error(f"--figures is required at --preset {args.preset} (docs/figures "
                         "holds the quick preset's figures only)")
        figures = ROOT / "docs" / "figures"
    out = args.out or default_out_dir("linear-regression", args.preset)
    command = [sys.executable, "-m", "trajprobe", "reproduce", "linear-regression",
               "--preset", args.preset, "--out", str(out)]
    command += ["--threads", str(args.threads)] if args.threads else []
    command += ["--no-progress"] if args.no_progress else []
    print("$", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True)
    report = out / "report.md"
    figures.mkdir(parents=True, exist_ok=True)
    for name, suffix in FIGURES.items():
        target = figures / f"linear-regression-{args.preset}{suffix}.png"
        shutil.copyfile(report.parent / "figures" / f"{name}.png", target)
        print(f"wrote {target}")
    rows = json.loads((report.parent / "summary.json").read_text(encoding="utf-8"))
    print(f"headline rows of {report}:")
    for row in rows:
        sem = f" ± {row['sem']:.3g}" if row.get("sem") is not None and math.isfinite(
            row["sem"]) else ""
        paper = f" (paper {row['paper']:g})" if row.get("paper") is not None else ""
        note = f"  [{row['note']}]" if row.get("note") else ""
        print(f"  {row['agent']}: {row['quantity']} = {row['ours']:.4g}{sem}{paper}{note}")
    results = read_results(report.parent / "results.nc")
    print("time ratios, s = 0.05 vs 2.5 (interpolated / integer rule):")
    for agent, name in (("Learner", "learner"), ("Meta-Learner", "meta_learner"),
                        ("Bayes", "bayes")):
        q = results[name]["q"]
        q = q.isel(seed=0) if "seed" in q.dims else q
        print(f"  {agent}: {headline_ratio(q):.3g} / {headline_ratio(q, interpolate=False):.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
