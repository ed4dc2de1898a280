"""Dynamical Similarity Analysis (Ostrow et al. 2023) beside the simulation measures.

DSA fits a linear (delay-embedded DMD) model of each machine's state dynamics and
compares the two operators up to a change of coordinates; with
``score_method="wasserstein"`` it compares their eigenvalue spectra, which any invertible
linear change of coordinates leaves unchanged. It needs the optional ``dsa-metric``
package (``pip install 'trajprobe[dsa]'``), imported only when called.

Invariances: invertible linear (wasserstein), orthogonal (angular, euclidean) changes of
either machine's coordinates; symmetric; a metric on spectra (wasserstein).
"""

from __future__ import annotations

import numpy as np

__all__ = ["dsa_distance"]


def dsa_distance(states_a: np.ndarray, states_b: np.ndarray, *, n_delays: int = 3,
                 rank: int | None = 10, score_method: str = "wasserstein") -> float:
    """DSA distance between two machines' state trajectories on the same inputs.

    Args:
        states_a, states_b: ``[E, T, S_a]`` and ``[E, T, S_b]`` state vectors (episodes,
            steps); the same E and T.
        n_delays: delay embedding of the DMD model.
        rank: DMD rank, capped at ``n_delays`` × the smaller state dimension.
        score_method: ``"wasserstein"`` (eigenvalues; invariant to any invertible linear
            map), ``"angular"`` or ``"euclidean"`` (up to an orthogonal map).

    Returns:
        The distance (0 for identical dynamics).

    Raises:
        ImportError: ``dsa-metric`` is not installed.
        ValueError: shapes that do not share episodes and steps.
    """
    try:
        from DSA import DSA
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("dsa_distance needs the optional package dsa-metric: "
                          "pip install 'trajprobe[dsa]'") from error
    a, b = np.asarray(states_a, dtype=np.float64), np.asarray(states_b, dtype=np.float64)
    if a.ndim != 3 or b.ndim != 3 or a.shape[:2] != b.shape[:2]:
        raise ValueError(f"states_b: expected [E, T, S] arrays with the same E and T as "
                         f"states_a, got {a.shape} and {b.shape}")
    cap = n_delays * min(a.shape[2], b.shape[2])
    rank = cap if rank is None else min(rank, cap)
    model = DSA(a, b, n_delays=n_delays, rank=rank, score_method=score_method)
    return float(model.fit_score())
