"""Where a network's slow points lie relative to the states it visits (neurogym-decision).

A fixed-point search may travel far from the trajectories it starts on; these two numbers
say whether the points it returns are where the network runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trajprobe.machine import state_from_vector, state_vector

__all__ = ["median_speed", "slow_point_remoteness"]


def slow_point_remoteness(slow: np.ndarray, states: np.ndarray, n: int = 4_000) -> float:
    """Median distance of ``slow`` ``[P, S]`` to the nearest of ``states`` ``[N, S]`` over
    the median distance between two of ``states`` (at most ``n`` of them, evenly spaced)."""
    if not len(slow):
        return float("nan")
    visited = states[::max(1, len(states) // n)]
    squared = (slow ** 2).sum(1)[:, None] + (visited ** 2).sum(1)[None] - 2 * slow @ visited.T
    nearest = np.sqrt(np.maximum(squared, 0.0).min(1))
    rng = np.random.default_rng(0)
    a, b = rng.choice(len(visited), (2, n))
    return float(np.median(nearest) / np.median(np.linalg.norm(visited[a] - visited[b], axis=1)))


def median_speed(network: Any, x: np.ndarray, states: np.ndarray, n: int = 3_000) -> float:
    """Median q(s) = ½‖F(s, x) − s‖² at ``n`` of the visited ``states`` ``[N, S]`` (evenly
    spaced) under the constant input ``x`` ``[D]``: how slow the network is where it runs."""
    x = torch.as_tensor(x)
    sample = torch.as_tensor(states[::max(1, len(states) // n)])
    ref = state_vector(network, network.initial_state(1))
    sample, x = sample.to(ref.dtype), x.to(ref.dtype)
    with torch.no_grad():
        _, new = network.step(x.expand(len(sample), -1), state_from_vector(network, sample))
        q = 0.5 * (state_vector(network, new) - sample).pow(2).sum(1)
    return float(q.median())
