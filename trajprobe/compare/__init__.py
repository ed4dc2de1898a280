"""Comparing two machines (Mikulik et al. 2020): behaviour, simulation maps, convergence.

* :func:`aligned_rollout`, :func:`replay`, :class:`AlignedTraces` — both machines on one
  input history; misaligned traces are a ValueError.
* :func:`behavioural_dissimilarity` (eq. 2), :func:`reward_gap` (eq. 3), :func:`kl`.
* :func:`simulation` — D_s and D_o in both directions ("a→b": b simulates a; one of them
  with ``SimulationConfig.directions``), cross-validated over episodes, with null
  baselines and reliability flags; built on
  :class:`SimulationMap` (a fitted estimator: fit / transform / score) and :class:`Whitening`.
* :func:`simulation_summary` — a result as text, each direction spelled out.
* :func:`pairwise_simulation` — a list of machines compared pairwise (on Dask when a
  client is given): D_s/D_o matrices over ``agent`` × ``other_agent`` and their MDS.
* :func:`sufficiency` — does a machine treat histories with equal Bayes posteriors (the same
  observations in another order) as the same? Observational and interventional (state
  patching) divergences and the sufficiency ratio.
* :func:`linear_cka`, :func:`procrustes_distance` — baselines reported beside it;
  :func:`dsa_distance` (optional ``dsa-metric``) compares the state dynamics.
* :func:`prediction_convergence`, :func:`regret_convergence` — pairwise distances across
  runs × checkpoints and their MDS embedding.

Figures live in :mod:`trajprobe.compare.plots` (imported on demand).
"""

from trajprobe.compare.alignment import AlignedTraces, aligned_rollout, check_aligned, replay
from trajprobe.compare.baselines import linear_cka, procrustes_distance
from trajprobe.compare.behaviour import (
    behavioural_dissimilarity,
    js_divergence,
    kl,
    kl_quadrature,
    reward_gap,
)
from trajprobe.compare.convergence import (
    mds_embedding,
    prediction_convergence,
    regret_convergence,
)
from trajprobe.compare.coordinates import Coordinates
from trajprobe.compare.dsa import dsa_distance
from trajprobe.compare.pairwise import pairwise_simulation
from trajprobe.compare.simulation import DIRECTIONS, INVARIANCES, SimulationConfig, simulation
from trajprobe.compare.simulation_map import SimulationMap, Whitening
from trajprobe.compare.sufficiency import partner_histories, sufficiency
from trajprobe.compare.summary import simulation_summary

__all__ = [
    "DIRECTIONS",
    "INVARIANCES",
    "AlignedTraces",
    "Coordinates",
    "SimulationConfig",
    "SimulationMap",
    "Whitening",
    "aligned_rollout",
    "behavioural_dissimilarity",
    "check_aligned",
    "dsa_distance",
    "js_divergence",
    "kl",
    "kl_quadrature",
    "linear_cka",
    "mds_embedding",
    "pairwise_simulation",
    "partner_histories",
    "prediction_convergence",
    "procrustes_distance",
    "regret_convergence",
    "replay",
    "reward_gap",
    "simulation",
    "simulation_summary",
    "sufficiency",
]
