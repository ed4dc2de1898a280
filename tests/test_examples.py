"""Every script in examples/ runs at smoke scale and prints what it promises."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NEEDS_JAX = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("jax", "haiku", "flax", "equinox", "optax")),
    reason="needs the JAX stack: pip install 'trajprobe[jax]'",
)


@pytest.mark.parametrize("script, args, expected", [
    ("quickstart.py", [], "'probe': 100"),
    ("wrap_your_rnn.py", ["--smoke"], "q_k(t), mean over episodes"),
    ("wrap_a_transformer.py", ["--smoke"], "your transformer: q_k(t)"),
    ("compare_two_agents.py", ["--smoke"], "b→a: D_s ="),
    ("reproduce_figure.py", ["--smoke"], "| Meta-Learner |"),
    ("measure_your_own_task.py", ["--smoke"], "Bayes: q = 1.000"),
    pytest.param("wrap_jax_haiku.py", ["--smoke"], "q_k(t), mean over episodes", marks=NEEDS_JAX),
    pytest.param("wrap_jax_flax.py", ["--smoke"], "NNX GRUCell: q_k(t)", marks=NEEDS_JAX),
    pytest.param("wrap_jax_equinox.py", ["--smoke"], "b→a: D_s =", marks=NEEDS_JAX),
])
def test_example_runs(script, args, expected, tmp_path):
    extra = (["--out", str(tmp_path / "out")]
             if script in ("reproduce_figure.py", "measure_your_own_task.py") else [])
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args, *extra],
                            capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout
