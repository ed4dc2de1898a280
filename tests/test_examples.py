"""The example scripts without a tutorial page of the same code run and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


# The tutorials' scripts (quickstart, wrap_your_rnn, wrap_a_transformer, wrap_jax,
# measure_your_own_task) are their pages' code, run by tests/test_docs.py and kept equal to
# the pages there; the scripts without a page of the same code run here.
@pytest.mark.parametrize("script, args, expected", [
    ("compare_two_agents.py", ["--smoke"], "b→a: D_s "),
    ("reproduce_figure.py", ["--smoke"], "| Meta-Learner |"),
])
def test_example_runs(script, args, expected, tmp_path):
    extra = ["--out", str(tmp_path / "out")] if script == "reproduce_figure.py" else []
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args, *extra],
                            capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout
