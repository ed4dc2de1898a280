"""tests/data/reproduce_smoke_pins.json is what ``python tests/regenerate_pins.py`` writes:
what it was recorded with, a tolerance per target from a measured spread, a reason beside
every NaN or inf."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PINS = json.loads((HERE / "data" / "reproduce_smoke_pins.json").read_text())
_spec = importlib.util.spec_from_file_location("_regenerate_pins", HERE / "regenerate_pins.py")
regenerate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regenerate)


def test_the_file_says_what_it_was_recorded_with():
    recorded = PINS["recorded_with"]
    assert {"torch", "numpy", "python", "platform", "threads"} <= set(recorded)
    assert recorded["threads"] == list(regenerate.THREADS)
    assert "python tests/regenerate_pins.py" in PINS["about"]


@pytest.mark.parametrize("target", sorted(PINS["targets"]))
def test_each_target_has_its_tolerance_from_the_spread_and_reasons(target):
    entry = PINS["targets"][target]
    assert entry["rows"] and entry["spread"] == max(row["spread"] for row in entry["rows"])
    for row in entry["rows"]:
        assert row["rtol"] == regenerate.rtol(row["spread"]) >= 1e-6
        if math.isfinite(row["ours"]):
            assert "why" not in row
        else:
            assert row["why"] == regenerate.why(row["quantity"], row["ours"], row["agent"])


def test_a_non_finite_row_without_a_rule_is_refused():
    with pytest.raises(ValueError, match="no rule in REASONS says why"):
        regenerate.why("a new headline number", math.nan)
    assert regenerate.why("time to q > 0.5: k = 5 vs k = 1", math.inf).startswith("this curve")
    assert regenerate.why("anything", 1.0) is None
    # a rule with an agent pattern explains that agent's row only
    score = "bijection: output simulation score, Bayes→learner"
    assert regenerate.why(score, math.nan, "Transformer").startswith("the exact Bayes")
    with pytest.raises(ValueError, match="no rule in REASONS says why"):
        regenerate.why(score, math.nan, "LSTM")


def test_round_up_to_one_digit():
    assert [regenerate._round_up(x) for x in (1.4e-2, 2e-7, 9.5e-5, 0.0)] == [
        0.02, 2e-7, 1e-4, 0.0]


def test_a_target_whose_extra_is_missing_here_is_skipped_not_failed():
    """regenerate_pins.py runs the targets this environment can run (neurogym-decision
    needs the neurogym venv) and keeps the others' pins."""
    assert regenerate.missing_extras("linear-regression") == []
    expected = [] if importlib.util.find_spec("neurogym") else ["neurogym"]
    assert regenerate.missing_extras("neurogym-decision") == expected
