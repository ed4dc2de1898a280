"""Many agents compared pairwise: D_s and D_o matrices as one labelled Dataset.

Every unordered pair of machines is one :func:`~.simulation` (both directions, the same
folds, nulls and flags), run in this process or, with a Dask ``client``, as one task per
pair. Entry ``[agent=i, other_agent=j]`` is the direction i → j: φ maps i's states into
j's, so a low value means **j simulates i**. The diagonal is measured, not assumed: each
machine is also compared with itself (one more :func:`~.simulation` per machine), so
entry ``[i, i]`` is the floor of the estimator for that machine — a held-out,
cross-validated map fitted on finite data, near 0 but not exactly 0 — against which the
row's other entries are read. Only its direction ``"a→b"`` is read, so only that one is
computed (``SimulationConfig.directions``; the same numbers as computing both, the seed
contract of :class:`~.SimulationConfig`).

Every matrix needs both directions of every pair (entry ``[i, j]`` and ``[j, i]``, and the
symmetrised distance below), so a ``config`` asking for one direction is refused: for one
question ("does j simulate i?") call :func:`~.simulation` on that pair with
``SimulationConfig(directions=("a→b",))``.

For a picture, the asymmetric D_s is symmetrised, d(i, j) = ½(D_s(i→j) + D_s(j→i))
(symmetric by this definition; its diagonal is the measured floor D_s(i→i)), and
embedded in two dimensions by metric MDS (:func:`~.mds_embedding`, on d with its
diagonal set to 0, as a dissimilarity needs);
:func:`~trajprobe.compare.plots.plot_agents_mds` draws it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import xarray as xr

from trajprobe import machine as sm
from trajprobe._version import __version__
from trajprobe.compare.convergence import mds_embedding
from trajprobe.compare.simulation import DIRECTIONS, SimulationConfig, simulation
from trajprobe.randomness import Seed, make_generator

__all__ = ["PAIRWISE_VARIABLES", "pairwise_simulation"]

PAIRWISE_VARIABLES = (
    "output_simulation_score", "output_simulation_score_sem",
    "state_dissimilarity", "state_dissimilarity_sem", "output_dissimilarity",
    "output_dissimilarity_sem", "output_dissimilarity_constant", "state_dissimilarity_shuffled",
    "output_dissimilarity_shuffled", "reliable", "reliability_note",
)
"""Per-direction variables of :func:`~.simulation` gathered into the matrices, the
unit-free score (1 − D_o / D_o(best constant map)) first."""


def _named(machines) -> dict[str, sm.StateMachine]:
    if isinstance(machines, Mapping):
        named = {str(k): v for k, v in machines.items()}
    elif isinstance(machines, Sequence) and not isinstance(machines, str):
        named = {f"agent_{i}": m for i, m in enumerate(machines)}
    else:
        raise TypeError(f"machines: expected a mapping name -> machine or a sequence of "
                        f"machines, got {type(machines).__name__}")
    if len(named) < 2:
        raise ValueError(f"machines: expected at least 2 machines, got {len(named)}")
    return named


def _pair(a, b, inputs, config, encode, seed: int) -> xr.Dataset:
    """One comparison, reduced to the per-direction variables (what a Dask task returns)."""
    with torch.no_grad():
        ds = simulation(a, b, inputs, config=config, encode=encode, seed=seed)
    keep = [v for v in PAIRWISE_VARIABLES if v in ds]
    return ds[keep].assign_attrs(output_measure=ds.attrs["output_measure"])


def pairwise_simulation(
    machines: Mapping[str, sm.StateMachine] | Sequence[sm.StateMachine],
    inputs: Any,
    *,
    config: SimulationConfig | None = None,
    encode: Mapping[str, Callable] | None = None,
    client: Any = None,
    seed: Seed = 0,
) -> xr.Dataset:
    """D_s and D_o of every ordered pair of ``machines`` (module docstring).

    Args:
        machines: ``{name: machine}`` (names label the ``agent`` coordinate) or a list
            (named ``agent_0``, ...).
        inputs: the shared episodes, as for :func:`~.simulation` (``[E, T, ...]``, or the
            raw episodes each ``encode`` reads).
        config: :class:`~.SimulationConfig` for every pair (both ``directions``; the
            diagonal computes ``"a→b"`` only, the one it reads).
        encode: ``{name: callable}``: a machine's encoding of ``inputs`` (absent: it reads
            ``inputs`` as given); time alignment as in :func:`~.aligned_rollout`.
        client: a ``dask.distributed.Client``: one task per pair (machines and inputs
            must pickle); None: in this process, one pair after another.
        seed: int, ``torch.Generator`` or None; each pair gets its own seed drawn from it.

    Raises:
        ValueError: ``config.directions`` is not both directions (module docstring).

    Returns:
        Dataset over ``agent`` (source) and ``other_agent`` (target): each variable of
        :data:`PAIRWISE_VARIABLES` as a matrix (diagonal: each machine against itself,
        direction ``"a→b"``), and
        ``distance (agent, other_agent)`` the symmetrised D_s, ``embedding (agent,
        mds_axis)`` its 2-D MDS. ``attrs``: the direction convention, the output measure
        of each pair, the seed (if an int) and the trajprobe version.
    """
    named = _named(machines)
    names = list(named)
    config = SimulationConfig() if config is None else config
    if isinstance(config, SimulationConfig) and config.directions != DIRECTIONS:
        raise ValueError(
            f"config: expected directions={DIRECTIONS} (every matrix entry [i, j] and [j, i] "
            f"and the symmetrised distance need both directions of every pair), got "
            f"directions={config.directions}; for one ordered pair call simulation(a, b, ..., "
            "config=SimulationConfig(directions=('a→b',)))")
    diagonal = replace(config, directions=DIRECTIONS[:1]) \
        if isinstance(config, SimulationConfig) else config
    encode = {} if encode is None else dict(encode)
    unknown = sorted(set(encode) - set(names))
    if unknown:
        raise ValueError(f"encode: expected keys among the machines' names {names}, "
                         f"got {unknown}")
    generator = make_generator(seed)
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    # the diagonal (each machine against itself) last: the other pairs keep their seeds
    pairs += [(i, i) for i in range(len(names))]
    seeds = torch.randint(0, 2**62, (len(pairs),), generator=generator).tolist()
    args = [(named[names[i]], named[names[j]], inputs, config if i != j else diagonal,
             _encoding(encode, names[i], names[j]), s) for (i, j), s in zip(pairs, seeds,
                                                                           strict=True)]
    if client is None:
        results = [_pair(*a) for a in args]
    else:
        results = client.gather([client.submit(_pair, *a, pure=False) for a in args])
    ds = _matrices(names, pairs, results)
    if isinstance(seed, int):
        ds.attrs["seed"] = seed
    return ds


def _encoding(encode: dict, a: str, b: str):
    if a not in encode and b not in encode:
        return None
    return encode.get(a), encode.get(b)


def _matrices(names: list[str], pairs, results) -> xr.Dataset:
    n = len(names)
    data = {}
    for name in PAIRWISE_VARIABLES:
        if name not in results[0]:
            continue
        kind = results[0][name].dtype
        matrix = np.empty((n, n), dtype=kind)
        for (i, j), r in zip(pairs, results, strict=True):
            if i != j:
                matrix[j, i] = r[name].sel(direction="b→a").item()
            matrix[i, j] = r[name].sel(direction="a→b").item()
        data[name] = (("agent", "other_agent"), matrix)
    d_s = data["state_dissimilarity"][1]
    distance = 0.5 * (d_s + d_s.T)
    finite = np.where(np.isfinite(distance), distance, np.nanmax(distance[np.isfinite(distance)],
                                                                  initial=1.0))
    np.fill_diagonal(finite, 0.0)  # MDS reads a dissimilarity: 0 from a point to itself
    data["distance"] = (("agent", "other_agent"), distance)
    data["embedding"] = (("agent", "mds_axis"), mds_embedding(np.clip(finite, 0, None)))
    measures = {f"{names[i]}|{names[j]}": r.attrs["output_measure"]
                for (i, j), r in zip(pairs, results, strict=True) if i != j}
    return xr.Dataset(
        data, coords={"agent": names, "other_agent": names, "mds_axis": [0, 1]},
        attrs={"direction_convention": "[agent=i, other_agent=j] is i→j: phi maps i's states "
                                       "into j's (j simulates i)",
               "distance": "0.5 * (D_s(i→j) + D_s(j→i)), embedded by metric MDS",
               "diagonal": "each machine against itself (direction a→b): the estimator's "
                           "floor, measured",
               "output_measures": "; ".join(f"{k}: {v}" for k, v in measures.items()),
               "trajprobe_version": __version__})
