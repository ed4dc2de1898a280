"""One positive-int check and one positive-number check, shared by the whole package."""

from __future__ import annotations

import re

import numpy as np
import pytest

from trajprobe.apps.models import RabinowitzLSTM
from trajprobe.apps.reproduce.learners import eval_schedule
from trajprobe.reference_models import BayesianLinearRegression, BetaBernoulli
from trajprobe.tasks import BernoulliBandit
from trajprobe.validation import check_positive, check_positive_int


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int8(2), np.uint16(5)])
def test_positive_int_accepts_python_and_numpy_ints(value):
    out = check_positive_int(value, "n")
    assert out == value and type(out) is int


@pytest.mark.parametrize("value", [True, 2.0, np.float64(2.0), "3", None])
def test_positive_int_rejects_non_integers_with_type_error(value):
    with pytest.raises(TypeError, match=r"n: expected a positive int, got "):
        check_positive_int(value, "n")


@pytest.mark.parametrize("value", [0, -1, np.int64(0)])
def test_positive_int_rejects_non_positive_with_value_error(value):
    message = f"n: expected a positive int, got {value!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_positive_int(value, "n")


@pytest.mark.parametrize("value", [0.5, 2, np.float32(0.1), np.float64(3.0), np.int64(1)])
def test_positive_accepts_python_and_numpy_numbers(value):
    assert check_positive(value, "scale") is None  # accepted: no error, nothing returned
    assert check_positive(value, "scale", strict=False) is None
    with pytest.raises(ValueError, match=f"scale: expected a finite positive number, got "
                                         f"{re.escape(repr(-value))}$"):
        check_positive(-value, "scale")  # the same number negated is refused


@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), float("nan"), np.float64(0.0)])
def test_positive_rejects_non_positive_or_non_finite(value):
    with pytest.raises(ValueError, match="scale: expected a finite positive number"):
        check_positive(value, "scale")


@pytest.mark.parametrize("value", [True, "1", None])
def test_positive_rejects_non_numbers_with_type_error(value):
    with pytest.raises(TypeError, match="scale: expected a real number"):
        check_positive(value, "scale")


@pytest.mark.parametrize("build, name", [
    (lambda n: RabinowitzLSTM(n, 1), "input_size"),
    (lambda n: BayesianLinearRegression(n), "x_dim"),
    (lambda n: BetaBernoulli().initial_state(n), "batch_size"),
    (lambda n: BernoulliBandit(n_arms=2).sample_params(n), "n_episodes"),
    (lambda n: eval_schedule(n), "n_steps"),
])
def test_the_package_uses_the_one_check(build, name):
    build(np.int64(2))  # numpy ints are accepted wherever Python ints are
    with pytest.raises(ValueError, match=f"{name}: expected a positive int, got 0"):
        build(0)
    with pytest.raises(TypeError, match=f"{name}: expected a positive int, got 2.0"):
        build(2.0)
