"""Every optional machine hook the library reads is in machine.py's table (issue 34)."""

from __future__ import annotations

import re
from pathlib import Path

import trajprobe.machine

ROOT = Path(__file__).resolve().parents[1]
# a getattr/hasattr on something that holds a machine, in the library's own code
READ = re.compile(r"(?:getattr|hasattr)\((?:machine|model|dst|self\.machine), \"(\w+)\"")
# guard.eval_mode's search for torch modules (below the table); a Hugging Face model's
# backbone (adapters/torch_transformer.py reads it from the wrapped model, not a machine)
NOT_HOOKS = {"__dict__", "transformer"}


def _table_hooks() -> set[str]:
    rows = [line for line in trajprobe.machine.__doc__.splitlines() if line.startswith("| `")]
    return {re.match(r"\| `(\w+)`", row).group(1) for row in rows}


def test_the_table_lists_every_hook_the_library_reads():
    read = {name for folder in ("trajprobe", "adapters", "reference_models")
            for path in (ROOT / folder).rglob("*.py")
            for name in READ.findall(path.read_text())} - NOT_HOOKS
    assert read, "the search found no hook at all: the pattern is out of date"
    assert read <= _table_hooks(), f"hooks missing from machine.py's table: {read - _table_hooks()}"


def test_the_table_has_the_hooks_of_the_issue():
    assert {"unroll", "lstm_core", "positive", "feedback", "output_many", "output",
            "state_vector", "state_from_vector", "distribution"} <= _table_hooks()
