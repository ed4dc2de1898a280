"""Where slow points lie relative to the visited states (neurogym-decision's geometry rows):
known answers on a circle of states and a linear machine."""

import math

import numpy as np
import pytest
import torch

from trajprobe.apps.reproduce.neurogym_decision_geometry import (
    median_speed,
    slow_point_remoteness,
)


def _circle(n: int = 4_000) -> np.ndarray:
    angle = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def test_remoteness_of_the_centre_of_a_circle_of_states():
    # nearest state: 1 away; two random states on the circle: median chord 2 sin(π/4) = √2
    states = _circle()
    assert slow_point_remoteness(np.zeros((1, 2)), states) == pytest.approx(
        1 / math.sqrt(2), rel=0.03)
    assert slow_point_remoteness(states[::500], states) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(slow_point_remoteness(np.zeros((0, 2)), states))


class _Scale:
    """s_{t+1} = a s_t whatever the input: q(s) = ½ (a − 1)² ‖s‖²."""

    def __init__(self, a: float) -> None:
        self.a = a

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, 2, dtype=torch.float64)

    def step(self, x: torch.Tensor, state: torch.Tensor):
        return x, self.a * state


def test_median_speed_of_a_linear_machine_on_a_circle():
    x = np.array([0.0, 0.5, 0.5])
    states = 2.0 * _circle(1_000)  # ‖s‖ = 2 everywhere
    assert median_speed(_Scale(0.5), x, states) == pytest.approx(0.5 * 0.25 * 4.0, rel=1e-12)
    assert median_speed(_Scale(1.0), x, states) == 0.0
