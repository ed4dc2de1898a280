"""Where a network's slow points lie relative to the states it visits (neurogym-decision).

A fixed-point search may travel far from the trajectories it starts on; these two numbers
say whether the points it returns are where the network runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from trajprobe.machine import state_from_vector, state_vector

__all__ = ["at_condition", "median_speed", "nearest_distances", "slow_point_remoteness", "speeds",
           "typical_distance"]


def at_condition(points: xr.Dataset, condition: str) -> xr.Dataset:
    """The slow points (``point`` with a ``condition`` coordinate, as the target's
    ``slow_points`` returns them) found under ``condition`` (e.g. ``"+0 %"``)."""
    return points.isel(point=np.flatnonzero(points.condition.values == condition))


def nearest_distances(points: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Euclidean distance of each of ``points`` ``[P, S]`` to the nearest of ``states``
    ``[N, S]``: ``[P]``."""
    squared = (points ** 2).sum(1)[:, None] + (states ** 2).sum(1)[None] - 2 * points @ states.T
    return np.sqrt(np.maximum(squared, 0.0).min(1))


def typical_distance(states: np.ndarray, n: int = 4_000) -> float:
    """Median distance between two of ``states`` ``[N, S]``, over ``n`` random pairs (a
    fixed draw)."""
    a, b = np.random.default_rng(0).choice(len(states), (2, n))
    return float(np.median(np.linalg.norm(states[a] - states[b], axis=1)))


def slow_point_remoteness(slow: np.ndarray, states: np.ndarray, n: int = 4_000) -> float:
    """Median distance of ``slow`` ``[P, S]`` to the nearest of ``states`` ``[N, S]`` over
    the median distance between two of ``states`` (at most ``n`` of them, evenly spaced)."""
    if not len(slow):
        return float("nan")
    visited = states[::max(1, len(states) // n)]
    return float(np.median(nearest_distances(slow, visited)) / typical_distance(visited, n))


def speeds(network: Any, x: np.ndarray, states: np.ndarray) -> np.ndarray:
    """q(s) = ½‖F(s, x) − s‖² at each of ``states`` ``[N, S]`` under the constant input
    ``x`` ``[D]``: ``[N]`` (how slow the network is where it runs)."""
    ref = state_vector(network, network.initial_state(1))
    sample, x = torch.as_tensor(states).to(ref.dtype), torch.as_tensor(x).to(ref.dtype)
    with torch.no_grad():
        _, new = network.step(x.expand(len(sample), -1), state_from_vector(network, sample))
        return (0.5 * (state_vector(network, new) - sample).pow(2).sum(1)).cpu().numpy()


def median_speed(network: Any, x: np.ndarray, states: np.ndarray, n: int = 3_000) -> float:
    """Median of :func:`speeds` at ``n`` of ``states`` ``[N, S]``, evenly spaced."""
    return float(np.median(speeds(network, x, states[::max(1, len(states) // n)])))
