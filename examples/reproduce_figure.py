"""Reproduce Rabinowitz 2019 Fig. 1c/3c: steps to learn each singular mode, Learner vs Meta-Learner.

    python examples/reproduce_figure.py             # quick preset, ~10 minutes
    python examples/reproduce_figure.py --smoke     # seconds (numbers meaningless)

Runs the bundled `linear-regression` reproduction and prints its headline table; the
figures land in the output directory (default ./trajprobe-runs/linear-regression-PRESET).
"""

from __future__ import annotations

import argparse

from trajprobe.apps.reproduce import reproduce


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny run, for CI")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    report = reproduce("linear-regression", preset="smoke" if args.smoke else "quick",
                       out_dir=args.out, progress=not args.smoke)
    table = report.read_text().split("## Headline numbers")[1].split("##")[0]
    print(table.strip())
    print(f"figures: {report.parent / 'figures'}")


if __name__ == "__main__":
    main()
