"""The ``trajprobe`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import trajprobe

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``trajprobe`` command."""
    parser = argparse.ArgumentParser(
        prog="trajprobe",
        description="Measure how recurrent learners learn (Rabinowitz 2019; Mikulik et al. 2020).",
    )
    parser.add_argument("--version", action="version", version=f"trajprobe {trajprobe.__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trajprobe`` console script; returns the exit code."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0
