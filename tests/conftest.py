"""Shared test fixtures."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

PINS = Path(__file__).parent / "data" / "reproduce_smoke_pins.json"
PINS_TORCH = "2.13."
"""The torch the pins were recorded with (.ci/run's pin). Other torch releases sum in
another order in some kernels (on torch 2.2 the coupled bandit Meta-Learner's expected
reward moves by 2e-4, relative), so there the pins are checked to 1e-3. (On torch 2.2 the
bandit target's closed-loop Bayes reward differs more: .ci/run's floor stage deselects it.)"""
# PINS: the headline rows of every reproduce target at the smoke preset (quantity, agent,
# ours), recorded before the task protocol redesign (issue 12); the simulation rows were
# re-recorded when issue 25 bounded the simulation map.


@pytest.fixture
def assert_pinned() -> Callable[[Path, str], None]:
    """``check(out_dir, target)``: the run's ``summary.json`` equals the pinned rows to
    1e-6 (relative) or 1e-8 (absolute): summation order differs with torch's threads."""

    def check(out_dir: Path, target: str, rtol: float = 1e-6) -> None:
        pinned = json.loads(PINS.read_text())[target]
        if not torch.__version__.startswith(PINS_TORCH):
            rtol = max(rtol, 1e-3)
        rows = json.loads((Path(out_dir) / "summary.json").read_text())
        assert [(r["quantity"], r["agent"]) for r in rows] == [(q, a) for q, a, _ in pinned]
        for row, (quantity, agent, value) in zip(rows, pinned, strict=True):
            ours = row["ours"]
            assert (math.isnan(ours) and math.isnan(value)) or math.isclose(
                ours, value, rel_tol=rtol, abs_tol=1e-8), (quantity, agent, ours, value)

    return check


_CAN_BUILD = (
    "import importlib.util, sys, setuptools;"
    "v = tuple(int(p) for p in setuptools.__version__.split('.')[:2]);"
    "sys.exit(0 if v >= (70, 1) or (v >= (68, 0) and importlib.util.find_spec('wheel')) else 1)"
)


@pytest.fixture(scope="session")
def builder_python() -> str:
    """An interpreter that can build the wheel without build isolation (no network): this
    one, or, in a fresh virtualenv whose setuptools is too old for pyproject's
    build-system (>= 68 with wheel), the base interpreter it was made from."""
    for python in dict.fromkeys([sys.executable, getattr(sys, "_base_executable", "")]):
        if python and subprocess.run([python, "-c", _CAN_BUILD],
                                     capture_output=True).returncode == 0:
            return python
    pytest.skip("no interpreter here has setuptools >= 70.1 (or >= 68 and wheel) to build "
                "the wheel offline")
