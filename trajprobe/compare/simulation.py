"""Approximate simulation of one machine by another (Mikulik et al. 2020 §2, §3.4, §4.3).

A machine M *simulates* N (N ⪯ M) if a map φ from N's states to M's states carries every
trace of N onto a trace of M on which the outputs agree. Relaxed to continuous states:

1. Both machines run on the same episodes (:mod:`.alignment`), in one shared input
   encoding or each in its own (``encode``); step t of both is the same moment.
2. φ is a :class:`~trajprobe.compare.SimulationMap`, bounded by construction: a ridge
   path (from least squares, exact for identity and any invertible affine change of
   coordinates, to the constant map) in raw and in log coordinates (for positive
   posterior parameters, declared by the machine's ``positive`` mask or detected),
   plus constant maps to training states. On validation episodes, φ is the candidate
   with the lowest D_s (then an MLP on its residual, kept only if it lowers D_s), and
   φ_o, the map D_o is measured with, the most regularised candidate whose D_o is within
   one standard error of the lowest — never worse than the best constant map. The
   target's reported
   components (the embedding dimension k) are the fewest explaining
   ``explained_variance`` of its variance.
3. Cross-validation over *episodes* (never within one): the episodes are split into
   ``n_folds`` folds; φ is fitted on the others (with its own validation episodes) and
   scored on the held-out fold. Every number is the mean over folds with its standard
   error; per-step curves and figure data use each episode once, when held out.
4. On the held-out episodes:

   * D_s = mean over steps and the k reported components of (φ(z_N) − z_M)², in M's
     whitened units in its natural coordinates: 0 is a perfect embedding, 1 is no better
     than M's mean state.
   * D_o compares N's outputs y_t^N = f_N(x_t, s_{t−1}^N) with M's output function at
     the embedded state, f_M(x_t, φ_o(s_{t−1}^N)), where φ_o gives a *full* state of M
     (φ_o = φ unless φ's outputs are worse than another candidate's on validation).
     With ``output_measure``: ``"kl"`` (both machines have ``distribution(y)``): eq. 2,
     (1/K) Σ_k Σ_t KL(π_t^N ‖ π_t^M at φ(s)), in nats; ``"error"``:
     (1/(K T)) Σ_{k,t} ‖g(y^N) − g(ŷ^M)‖² / Var(g(y^N)), a normalised error (1 = always
     predicting N's mean output), g the output or the probability vector of discrete
     distributions; ``"auto"``: KL when both machines have ``distribution``, else the
     error (the reason is written to ``attrs["output_measure_note"]``).

5. Beside every D_s and D_o: **the constant-map bound** — the best constant map on the
   validation episodes (every training state of the target tried through its own output
   function, :mod:`.simulation_constant`), scored on the same held-out episodes (D_o
   should not exceed it; a row that does is flagged); **the unit-free score**
   1 − D_o / bound (1 exact, 0 no better than the best constant; under KL also bits per
   step); **null baselines** — a closed-form map fitted on
   time-shuffled pairs; and, when given, the same comparison with an untrained machine
   of b's architecture — and linear CKA / Procrustes on the raw states (:mod:`.baselines`).
6. **Every row is flagged** (:mod:`.simulation_report`): invalid or non-finite target
   outputs at embedded states; a D_o above the constant-map bound by more than
   ``bound_tolerance``; a D_o carried by the top 1 % of items; a held-out D_s above 1;
   too few training states per source dimension; a source whose outputs have no (or
   almost no) variance under the normalised error; a target whose states have no
   variance. A direction is ``reliable`` only if its map and its nulls are; the reasons
   are stated in ``reliability_note``.

Invariances (ReSi-style, see :data:`INVARIANCES`): D_s is invariant to any invertible
affine change of the source's state coordinates and to rotations, reflections, isotropic
scaling and translations of the target's; D_o is invariant to any invertible affine change
of either machine's coordinates that the machine's own ``state_from_vector`` undoes.
Neither is symmetric or a metric.

Direction convention: ``"a→b"`` means φ maps **a's states into b's state space**, i.e.
b simulates a (a ⪯ b). This is the paper's arrow: "RNN → Opt" (Fig. 3, Fig. 4) embeds RNN
states into the Bayes-optimal agent's and is low when the Bayes agent simulates the RNN.
Both directions are computed unless ``SimulationConfig.directions`` asks for one.

The states used are s_0..s_{T−1}, the states from which outputs y_1..y_T are emitted (the
output at t is f(x_t, s_{t−1})), so D_s and D_o cover the same states.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
import xarray as xr
from torch import nn

from trajprobe import machine as sm
from trajprobe.compare.alignment import AlignedTraces, aligned_rollout
from trajprobe.compare.baselines import linear_cka, procrustes_distance
from trajprobe.compare.behaviour import DEFAULT_QUADRATURE_POINTS
from trajprobe.compare.coordinates import declared_positive
from trajprobe.compare.dsa import dsa_distance
from trajprobe.compare.simulation_folds import fold_indices, fold_seeds, run_direction
from trajprobe.compare.simulation_map import N_CONSTANT_STATES, RIDGE_PATH, SimulationMap
from trajprobe.compare.simulation_outputs import OutputScorer, distribution_hint, resolve_measure
from trajprobe.compare.simulation_report import (
    attrs_of,
    build_dataset,
    output_finding,
    row_reasons,
)
from trajprobe.compare.whitening import Whitening
from trajprobe.initialisers import torch_default_init
from trajprobe.randomness import Seed, make_generator
from trajprobe.traces import Trace, rollout

__all__ = ["DIRECTIONS", "INVARIANCES", "SimulationConfig", "simulation"]

DIRECTIONS = ("a→b", "b→a")
"""Labels of the ``direction`` dimension: ``"a→b"`` embeds a's states into b's (b simulates a)."""

_COMMON = {"invariant_to_ortho": True, "invariant_to_isotropic_scaling": True,
           "invariant_to_translation": True}
INVARIANCES: dict[str, dict[str, bool]] = {
    "state_dissimilarity": {"invariant_to_affine_source": True,
                            "invariant_to_affine_target": False, **_COMMON,
                            "symmetric": False, "is_metric": False},
    "output_dissimilarity": {"invariant_to_affine_source": True,
                             "invariant_to_affine_target": True, **_COMMON,
                             "symmetric": False, "is_metric": False},
    "linear_cka": {"invariant_to_affine_source": False, "invariant_to_affine_target": False,
                   **_COMMON, "symmetric": True, "is_metric": False},
    "procrustes_distance": {"invariant_to_affine_source": False,
                            "invariant_to_affine_target": False, **_COMMON,
                            "symmetric": True, "is_metric": True},
}
"""What each reported measure cannot see (ReSi's flags). "affine" means any invertible
affine change of that machine's state coordinates; for D_s an affine change of the target
alters which k components are reported (exactly invariant only with
``explained_variance=1``); for D_o it holds when the machine's ``state_from_vector``
undoes the change (its output function is evaluated on its own coordinates)."""


_ASCII = {"a->b": "a→b", "b->a": "b→a"}
"""ASCII spellings of :data:`DIRECTIONS` (the arrow is hard to type)."""


def _directions(value) -> tuple[str, ...]:
    """``value`` as distinct :data:`DIRECTIONS` labels in their order (ASCII arrows read)."""
    expected = ("directions: expected a non-empty tuple of distinct labels among "
                f"{DIRECTIONS} (or their ASCII spellings {tuple(_ASCII)}), e.g. ('a→b',)")
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        hint = " (a single label: wrap it in a tuple)" if isinstance(value, str) else ""
        raise ValueError(f"{expected}; got {value!r}{hint}")
    labels = [_ASCII.get(v, v) if isinstance(v, str) else v for v in value]
    unknown = [v for v, label in zip(value, labels, strict=True) if label not in DIRECTIONS]
    if not labels or unknown or len(set(labels)) != len(labels):
        reason = (f"unknown {unknown!r}" if unknown else "empty" if not labels
                  else "a direction repeated")
        raise ValueError(f"{expected}; got {value!r} ({reason})")
    return tuple(d for d in DIRECTIONS if d in labels)


@dataclass(frozen=True)
class SimulationConfig:
    """Hyperparameters of :func:`simulation`.

    The map's parameters are those of :class:`~trajprobe.compare.SimulationMap` (see
    there; ``n_hidden_layers=0`` or ``max_epochs=0``: closed form only); the rest:

    Attributes:
        n_folds: cross-validation folds over episodes (≥ 2).
        output_measure: ``"auto"``, ``"kl"`` or ``"error"`` (module docstring, 4).
        shuffled_null: also fit the time-shuffled null map in every fold.
        dsa: also report :func:`~trajprobe.compare.dsa_distance` of the two machines'
            state dynamics (needs the optional ``dsa-metric`` package).
        min_states_per_dimension: a direction is flagged unreliable when its training folds
            have fewer than this × (source rank + 1) states.
        bound_tolerance: a row is flagged when its held-out D_o exceeds the constant-map
            bound by more than this fraction.
        quadrature_points: nodes for KLs without a closed form (:func:`~.kl`).
        refine_constant: refine the best constant target state by gradient steps where
            the target is differentiable (:mod:`.simulation_constant`).
        directions: which directions to compute, a non-empty tuple of distinct members of
            :data:`DIRECTIONS` in any order: ``("a→b",)`` asks only "does b simulate a?"
            and the other direction is not computed. The ASCII spellings ``"a->b"`` and
            ``"b->a"`` are accepted and stored as the arrows; the result's ``direction``
            dimension holds the requested labels in :data:`DIRECTIONS`' order, and a figure
            variable of a direction not computed (``embedded_a_from_b``,
            ``output_a_from_b`` when only ``"a→b"`` is asked) is left out. With the same
            seed, a direction's numbers are those of the run with both directions (the
            generator is advanced past the one not computed, as if it had run).
    """

    explained_variance: float = 0.99
    rank_tolerance: float = 1e-8
    ridge_path: tuple[float, ...] = RIDGE_PATH
    log_coordinates: bool = True
    n_constant_states: int = N_CONSTANT_STATES
    hidden_width: int = 64
    n_hidden_layers: int = 2
    learning_rate: float = 1e-2
    batch_size: int = 1024
    max_epochs: int = 40
    patience: int = 3
    validation_fraction: float = 0.2
    n_folds: int = 5
    output_measure: Literal["auto", "kl", "error"] = "auto"
    shuffled_null: bool = True
    dsa: bool = False
    min_states_per_dimension: float = 10.0
    bound_tolerance: float = 0.05
    quadrature_points: int = DEFAULT_QUADRATURE_POINTS
    refine_constant: bool = True
    directions: tuple[str, ...] = DIRECTIONS

    def __post_init__(self) -> None:
        self.make_map(0)  # validates the map's parameters in one place
        object.__setattr__(self, "directions", _directions(self.directions))
        if isinstance(self.n_folds, bool) or not isinstance(self.n_folds, int) \
                or self.n_folds < 2:
            raise ValueError(f"n_folds: expected an int >= 2, got {self.n_folds!r}")
        if self.output_measure not in ("auto", "kl", "error"):
            raise ValueError(
                f"output_measure: expected 'auto', 'kl' or 'error', got {self.output_measure!r}")
        for name in ("shuffled_null", "dsa", "refine_constant"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected a bool, got {getattr(self, name)!r}")
        for name in ("min_states_per_dimension", "bound_tolerance"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        if isinstance(self.quadrature_points, bool) or not isinstance(
                self.quadrature_points, int) or self.quadrature_points < 2:
            raise ValueError(
                f"quadrature_points: expected an int >= 2, got {self.quadrature_points!r}")

    def make_map(self, seed: Seed, *, closed_form: bool = False) -> SimulationMap:
        """An unfitted :class:`SimulationMap` with these hyperparameters (``closed_form``:
        without the MLP residual, as the nulls are fitted)."""
        return SimulationMap(
            explained_variance=self.explained_variance, rank_tolerance=self.rank_tolerance,
            ridge_path=self.ridge_path, log_coordinates=self.log_coordinates,
            n_constant_states=self.n_constant_states, hidden_width=self.hidden_width,
            n_hidden_layers=0 if closed_form else self.n_hidden_layers,
            learning_rate=self.learning_rate, batch_size=self.batch_size,
            max_epochs=self.max_epochs, patience=self.patience,
            validation_fraction=self.validation_fraction, seed=seed)


def _state_vectors(machine: sm.StateMachine, trace: Trace, name: str) -> np.ndarray:
    """States s_0..s_{T−1} as vectors ``[E, T, S]`` (float64 numpy)."""
    vectors = trace.state_vectors(machine)[:, :-1]
    out = vectors.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: state vectors contain NaN or inf")
    return out


def _untrained_copy(machine: sm.StateMachine, generator: torch.Generator) -> nn.Module:
    if not isinstance(machine, nn.Module) or not any(True for _ in machine.parameters()):
        raise TypeError(
            "untrained: 'reinit' re-draws b's parameters, so b must be a torch.nn.Module with "
            f"parameters, got {type(machine).__name__}; pass an untrained machine instead")
    return torch_default_init(copy.deepcopy(machine), generator)


def simulation(
    a: sm.StateMachine,
    b: sm.StateMachine,
    inputs: torch.Tensor | np.ndarray | xr.DataArray | Trace | AlignedTraces | dict,
    *,
    config: SimulationConfig | None = None,
    untrained: sm.StateMachine | Literal["reinit"] | None = None,
    encode: tuple[Callable | None, Callable | None] | None = None,
    seed: Seed = 0,
) -> xr.Dataset:
    """How well each machine simulates the other: D_s and D_o in both directions (§3.4), or
    in the one asked for by ``config.directions``.

    The method (maths, the map's bound, invariances, nulls, flags) is in the module
    docstring, appended below. Direction convention: ``"a→b"`` — φ maps a's states into
    b's, b simulates a. Put the agent under study as ``b`` when you pass ``untrained``.

    Args:
        a, b: the machines; state vectors come from :func:`trajprobe.machine.state_vector`
            and outputs at embedded states from :func:`trajprobe.machine.state_from_vector`
            and the machine's output function.
        inputs: ``[E, T, ...]`` shared inputs (both machines are rolled out on them);
            ``{"a": inputs_a, "b": inputs_b}``, each machine's own encoding of the same
            episodes; a recorded (e.g. closed-loop) trace of ``a`` replayed through ``b``;
            or :class:`~trajprobe.compare.AlignedTraces`.
        config: hyperparameters (:class:`SimulationConfig` defaults if None).
        untrained: the baseline, an untrained machine of b's architecture (rolled out on
            b's inputs, compared with ``a`` the same way and flagged the same way), or
            ``"reinit"`` to re-draw b's parameters with PyTorch's defaults from ``seed``
            (b must be an ``nn.Module``); None: no such baseline.
        encode: ``(encode_a, encode_b)``: each machine's encoding of ``inputs`` (None: as
            given). Step t of a and of b must describe the same moment: the states
            compared are s_{t−1} and the outputs y_t of each
            (:func:`~trajprobe.compare.aligned_rollout`).
        seed: int, ``torch.Generator`` or None; fixes the folds, the maps' validation
            splits and initial weights, minibatch order and the shuffled null.

    Returns:
        ``xarray.Dataset`` over ``direction`` (the labels of ``config.directions``, by
        default both; and ``fold``, ``t``, ``episode``):

        - ``output_simulation_score`` ``(direction)`` first: 1 − D_o / D_o(best constant
            map), per fold on the same held-out episodes, mean over folds (1 = exact, 0 =
            no better than the best constant, < 0 worse; NaN where the bound is 0);
            ``_sem``, ``_fold``; ``_shuffled`` and, with ``untrained``, ``_untrained``;
        - under KL, ``output_dissimilarity_bits_per_step`` and
            ``output_dissimilarity_constant_bits_per_step`` (+ ``_sem``): D_o / (T ln 2),
            KL in bits averaged over t (D_o itself is eq. 2's sum over t in nats);
        - ``state_dissimilarity``, ``output_dissimilarity`` ``(direction)``: D_s and D_o,
            means over folds; ``*_sem`` their standard errors; ``*_fold (direction, fold)``;
        - ``state_dissimilarity_per_step``, ``output_dissimilarity_per_step``
            ``(direction, t)`` over all held-out episodes (for KL these sum over t to D_o);
        - the bound: ``output_dissimilarity_constant`` (+ ``_sem``, ``_fold``) and
            ``state_dissimilarity_constant``: the best constant map on the same episodes;
        - nulls: ``*_shuffled`` (+ ``_sem``) and, with ``untrained``, ``*_untrained``
            (+ ``_sem``) and ``output_dissimilarity_untrained_constant``;
        - ``finding`` (direction): what the numbers say about the pair, in words, when
            anything (e.g. no state of the target produces outputs near the source's: even
            its best constant is worse than predicting the source's mean output) — a
            finding, not a flag;
        - flags: ``reliable`` and ``reliability_note`` (direction): the map and all its
            nulls; ``reliable_shuffled``/``_untrained`` and their notes: each null alone;
            ``invalid_output_fraction``;
        - the maps: ``n_components``, ``best_epoch (direction, fold)`` (0: no MLP residual),
            ``ridge_strength (direction, fold)`` of φ and ``output_ridge_strength`` of φ_o
            (the map D_o is measured with; inf: a constant map),
            ``map_coordinates (direction, fold)``; ``rank_a``, ``rank_b``,
            ``explained_variance_ratio_a (pc_a)``, ``_b``;
        - ``linear_cka ()``, ``procrustes_distance ()`` on the raw state vectors, and
            ``dsa_distance ()`` with ``config.dsa``;
        - figure data in a whitening fitted on all episodes (descriptive only):
            ``whitened_a (episode, t, component_a)``, ``whitened_b``,
            ``embedded_b_from_a (episode, t, component_b)`` = φ(s_a) in b's coordinates,
            ``embedded_a_from_b``; ``output_a (episode, t, feature_a)``, ``output_b``,
            ``output_b_from_a`` (b's output function at φ(s_a)), ``output_a_from_b``;
            the embedded and output variables only of the directions computed.

        ``t`` runs 1..T. ``attrs``: the output measure and why, the direction and time
        conventions, the map selection, the invariances, the configuration, the seed (if
        an int) and the trajprobe version.

    Raises:
        ValueError: misaligned traces; fewer than 2 episodes per fold;
            ``output_measure='kl'`` without ``distribution`` on both machines.
    """
    config = SimulationConfig() if config is None else config
    if not isinstance(config, SimulationConfig):
        raise TypeError(f"config: expected a SimulationConfig or None, got {type(config).__name__}")
    measure, note = resolve_measure(a, b, config.output_measure)
    traces = aligned_rollout(a, b, inputs, encode=encode)
    generator = make_generator(seed)
    ds = _simulate(a, b, traces, config, measure, note, generator)
    if untrained is not None:
        machine = _untrained_copy(b, generator) if isinstance(untrained, str) and \
            untrained == "reinit" else untrained
        if isinstance(machine, str):
            raise ValueError(f"untrained: expected a machine, 'reinit' or None, got {machine!r}")
        _add_untrained(ds, a, machine, traces, config, generator)
    if isinstance(seed, int):
        ds.attrs["seed"] = seed
    return ds


def _add_untrained(ds: xr.Dataset, a, machine, traces: AlignedTraces, config,
                   generator: torch.Generator) -> None:
    """The untrained baseline's rows, flags and the combined reliability (in place)."""
    measure_u, note_u = resolve_measure(a, machine, config.output_measure)
    trace_u = AlignedTraces(a=traces.a, b=rollout(machine, traces.b.inputs),
                            same_inputs=traces.same_inputs)
    other = _simulate(a, machine, trace_u, replace(config, shuffled_null=False), measure_u,
                      note_u, generator)
    for name in ("output_simulation_score", "state_dissimilarity", "output_dissimilarity"):
        for suffix in ("", "_sem"):
            ds[f"{name}_untrained{suffix}"] = other[f"{name}{suffix}"]
    ds["output_dissimilarity_untrained_constant"] = other["output_dissimilarity_constant"]
    ds["reliable_untrained"] = other["reliable"]
    ds["reliability_note_untrained"] = other["reliability_note"]
    notes = []
    for direction in ds["direction"].values:
        note = str(ds["reliability_note"].sel(direction=direction).item())
        extra = str(other["reliability_note"].sel(direction=direction).item())
        if extra:
            note = "; ".join(x for x in (note, f"untrained baseline unreliable: {extra}") if x)
        notes.append(note)
    ds["reliable"] = ds["reliable"] & other["reliable"]
    ds["reliability_note"] = ("direction", np.array(notes, dtype=object))
    ds.attrs["untrained_output_measure"] = other.attrs["output_measure"]


def _simulate(a, b, traces: AlignedTraces, config: SimulationConfig, measure: str, note: str,
              generator: torch.Generator) -> xr.Dataset:
    machines = {"a": a, "b": b}
    trace_of = {"a": traces.a, "b": traces.b}
    vec = {k: _state_vectors(m, trace_of[k], k) for k, m in machines.items()}
    positive = {k: declared_positive(m, vec[k].shape[-1]) for k, m in machines.items()}
    folds = fold_indices(traces.n_episodes, config.n_folds, generator)
    display = {k: Whitening(explained_variance=config.explained_variance,
                            rank_tolerance=config.rank_tolerance).fit(v)
               for k, v in vec.items()}
    outputs = {k: trace_of[k].outputs.detach().cpu() for k in machines}
    if measure == "error":
        note = "; ".join(x for x in (note, distribution_hint(machines, outputs)) if x)
    results, flags = {}, {name: [] for name in (
        "reliable", "reliability_note", "reliable_shuffled", "reliability_note_shuffled",
        "finding")}
    for direction, (src, dst) in zip(DIRECTIONS, (("a", "b"), ("b", "a")), strict=True):
        if direction not in config.directions:
            if display[dst].rank_ > 0:  # run_direction would have drawn its fold seeds
                fold_seeds(len(folds), generator)
            continue
        scorer = OutputScorer(measure, machines[src], outputs[src], machines[dst],
                              outputs[dst], trace_of[dst].inputs, config.quadrature_points,
                              (src, dst))
        reasons, null_reasons, finding = list(scorer.reasons), [], ""
        results[direction] = None
        if display[dst].rank_ == 0:
            reasons.append(f"machine {dst}'s states have no variance: nothing to simulate")
        else:
            r = run_direction(vec[src], vec[dst], (positive[src], positive[dst]), folds,
                              config, scorer, generator, config.shuffled_null)
            results[direction] = r
            defined = scorer.measure == "kl" or scorer.variance > 0
            reasons += row_reasons(r, "map", dst, config.bound_tolerance, defined)
            finding, fragile = output_finding(r, scorer, (src, dst), vec[src].shape[1])
            reasons += fragile
            if config.shuffled_null:
                null_reasons = row_reasons(r, "shuffled", dst, config.bound_tolerance, defined)
            needed = config.min_states_per_dimension * (display[src].rank_ + 1)
            if min(r.n_train_states) < needed:
                reasons.append(
                    f"{min(r.n_train_states)} training states for a source of rank "
                    f"{display[src].rank_}: fewer than {config.min_states_per_dimension:g} × "
                    f"(rank + 1) = {needed:g}; pass more episodes")
        note_all = reasons + ([f"shuffled null unreliable: {'; '.join(null_reasons)}"]
                              if null_reasons else [])
        flags["reliable"].append(not note_all)
        flags["reliability_note"].append("; ".join(note_all))
        flags["reliable_shuffled"].append(not null_reasons)
        flags["reliability_note_shuffled"].append("; ".join(null_reasons))
        flags["finding"].append(finding)
    if not config.shuffled_null:
        del flags["reliable_shuffled"], flags["reliability_note_shuffled"]
    attrs = attrs_of(measure, note, len(folds), config, INVARIANCES)
    ds = build_dataset(results, flags, display, vec, outputs, len(folds), config, attrs,
                       measure)
    raw_a = vec["a"].reshape(-1, vec["a"].shape[-1])
    raw_b = vec["b"].reshape(-1, vec["b"].shape[-1])
    ds["linear_cka"] = ((), linear_cka(raw_a, raw_b))
    ds["procrustes_distance"] = ((), procrustes_distance(raw_a, raw_b))
    if config.dsa:
        ds["dsa_distance"] = ((), dsa_distance(vec["a"], vec["b"]))
    return ds


_METHOD = "\n".join(f"        {line}" if line else "" for line in __doc__.splitlines())
simulation.__doc__ = f"{simulation.__doc__}\n    Method (module docstring)::\n\n{_METHOD}\n"
