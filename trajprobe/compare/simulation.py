"""Approximate simulation of one machine by another (Mikulik et al. 2020 §2, §3.4, §4.3).

A machine M *simulates* N (N ⪯ M) if a map φ from N's states to M's states carries every
trace of N onto a trace of M on which the outputs agree. Relaxed to continuous states:

1. Both machines run on the same input histories x_1..x_T (:mod:`.alignment`).
2. φ is a :class:`~trajprobe.compare.SimulationMap`: both machines' states whitened to
   their numerical rank, an affine least-squares map (exact for identity and any
   invertible affine change of coordinates) plus an MLP on its residual. The target's
   reported components (the embedding dimension k) are the fewest explaining
   ``explained_variance`` of its variance.
3. Cross-validation over *episodes* (never within one): the episodes are split into
   ``n_folds`` folds; φ is fitted on the others (with its own validation episodes for early
   stopping) and scored on the held-out fold. Every number is the mean over folds with its
   standard error; per-step curves and figure data use each episode once, when held out.
4. On the held-out episodes:

   * D_s = mean over steps and the k reported components of (φ(z_N) − z_M)², in M's
     whitened units: 0 is a perfect embedding, 1 is no better than M's mean state.
   * D_o compares N's outputs y_t^N = f_N(x_t, s_{t−1}^N) with M's output function at
     the embedded state, f_M(x_t, φ(s_{t−1}^N)), where φ gives a *full* state of M
     (directions beyond k by the affine part), so D_o stays meaningful when M's output
     depends on directions the reported embedding drops. With ``output_measure``:

     - ``"kl"`` (both machines have ``distribution(y)``): eq. 2,
       (1/K) Σ_k Σ_t KL(π_t^N ‖ π_t^M at φ(s)), in nats;
     - ``"error"``: (1/(K T)) Σ_{k,t} ‖g(y^N) − g(ŷ^M)‖² / Var(g(y^N)), a normalised error
       (0 exact, 1 = always predicting N's mean output), where g is the output itself, or
       the probability vector when both machines define discrete distributions;
     - ``"auto"``: KL when both machines have ``distribution``, else the normalised error
       (the reason is written to ``attrs["output_measure_note"]``).

5. Beside every D_s and D_o: **null baselines** — a map fitted on time-shuffled pairs (the
   target's states permuted in time within each training episode), scored on the aligned
   held-out pairs; and, when given, the same comparison with an untrained machine of b's
   architecture — and linear CKA / Procrustes on the raw states (:mod:`.baselines`).
6. **Degenerate maps are flagged** per direction in ``reliable`` and
   ``reliability_note``: a target whose states have no variance (D_s is NaN), fewer
   training states than ``min_states_per_dimension`` × (source rank + 1), embedded states
   at which the target's output is invalid or non-finite (an ill-conditioned inversion),
   source outputs without variance, or with less than :data:`NEAR_CONSTANT_RATIO` of the
   target's, under the normalised error; a D_o of which the top 1 % of items carry more
   than :data:`TOP_SHARE_LIMIT` (a few states where the target's output function is
   ill-conditioned); a held-out D_s above 1 (worse than the target's mean state).

Invariances (ReSi-style, see :data:`INVARIANCES`): D_s is invariant to any invertible
affine change of the source's state coordinates and to rotations, reflections, isotropic
scaling and translations of the target's; D_o is invariant to any invertible affine change
of either machine's coordinates that the machine's own ``state_from_vector`` undoes (the
outputs are computed by the machines themselves). Neither is symmetric or a metric.

Direction convention: ``"a→b"`` means φ maps **a's states into b's state space**, i.e.
b simulates a (a ⪯ b). This is the paper's arrow: "RNN → Opt" (Fig. 3, Fig. 4) embeds RNN
states into the Bayes-optimal agent's and is low when the Bayes agent simulates the RNN.

The states used are s_0..s_{T−1}, the states from which outputs y_1..y_T are emitted (the
output at t is f(x_t, s_{t−1})), so D_s and D_o cover the same states.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import xarray as xr
from torch import nn

from trajprobe import machine as sm
from trajprobe._version import __version__
from trajprobe.compare.alignment import AlignedTraces, aligned_rollout
from trajprobe.compare.baselines import linear_cka, procrustes_distance
from trajprobe.compare.behaviour import DEFAULT_QUADRATURE_POINTS, distribution_of, kl
from trajprobe.compare.dsa import dsa_distance
from trajprobe.compare.simulation_map import SimulationMap, Whitening
from trajprobe.initialisers import torch_default_init
from trajprobe.tasks.base import Seed, make_generator
from trajprobe.traces import Trace, rollout

__all__ = [
    "DIRECTIONS",
    "INVARIANCES",
    "SimulationConfig",
    "simulation",
]

DIRECTIONS = ("a→b", "b→a")
"""Labels of the ``direction`` dimension: ``"a→b"`` embeds a's states into b's (b simulates a)."""

INVARIANCES: dict[str, dict[str, bool]] = {
    "state_dissimilarity": {
        "invariant_to_affine_source": True,
        "invariant_to_affine_target": False,
        "invariant_to_ortho": True,
        "invariant_to_isotropic_scaling": True,
        "invariant_to_translation": True,
        "symmetric": False,
        "is_metric": False,
    },
    "output_dissimilarity": {
        "invariant_to_affine_source": True,
        "invariant_to_affine_target": True,
        "invariant_to_ortho": True,
        "invariant_to_isotropic_scaling": True,
        "invariant_to_translation": True,
        "symmetric": False,
        "is_metric": False,
    },
    "linear_cka": {
        "invariant_to_affine_source": False,
        "invariant_to_affine_target": False,
        "invariant_to_ortho": True,
        "invariant_to_isotropic_scaling": True,
        "invariant_to_translation": True,
        "symmetric": True,
        "is_metric": False,
    },
    "procrustes_distance": {
        "invariant_to_affine_source": False,
        "invariant_to_affine_target": False,
        "invariant_to_ortho": True,
        "invariant_to_isotropic_scaling": True,
        "invariant_to_translation": True,
        "symmetric": True,
        "is_metric": True,
    },
}
"""What each reported measure cannot see (ReSi's flags). "affine" means any invertible
affine change of that machine's state coordinates; for D_s an affine change of the target
alters which k components are reported (exactly invariant only with
``explained_variance=1``); for D_o it holds when the machine's ``state_from_vector``
undoes the change (its output function is evaluated on its own coordinates)."""


NEAR_CONSTANT_RATIO = 1e-2
"""The normalised output error is flagged when the source's output variance is below this
fraction of the target's (e.g. an untrained policy near uniform against a deterministic one)."""


TOP_SHARE_LIMIT = 0.5
"""D_o is flagged when the top 1 % of held-out items carry more than this share of it."""


def _top_share(values: np.ndarray) -> float:
    """Share of the (finite) sum carried by the largest 1 % of ``values``."""
    flat = np.sort(values[np.isfinite(values)].ravel())[::-1]
    total = flat.sum()
    if flat.size == 0 or not total > 0:
        return 0.0
    return float(flat[: max(1, flat.size // 100)].sum() / total)


@dataclass(frozen=True)
class SimulationConfig:
    """Hyperparameters of :func:`simulation`.

    The map's parameters are those of :class:`~trajprobe.compare.SimulationMap` (see
    there); the rest:

    Attributes:
        n_folds: cross-validation folds over episodes (≥ 2).
        output_measure: ``"auto"``, ``"kl"`` or ``"error"`` (module docstring, 4).
        shuffled_null: also fit the time-shuffled null map in every fold (doubles the cost).
        dsa: also report :func:`~trajprobe.compare.dsa_distance` of the two machines'
            state dynamics (needs the optional ``dsa-metric`` package).
        min_states_per_dimension: a direction is flagged unreliable when its training folds
            have fewer than this × (source rank + 1) states.
        quadrature_points: nodes for KLs without a closed form (:func:`~.kl`).
    """

    explained_variance: float = 0.99
    rank_tolerance: float = 1e-8
    ridge: float = 0.0
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
    quadrature_points: int = DEFAULT_QUADRATURE_POINTS

    def __post_init__(self) -> None:
        self.make_map(0)  # validates the map's parameters in one place
        if isinstance(self.n_folds, bool) or not isinstance(self.n_folds, int) \
                or self.n_folds < 2:
            raise ValueError(f"n_folds: expected an int >= 2, got {self.n_folds!r}")
        if self.output_measure not in ("auto", "kl", "error"):
            raise ValueError(
                f"output_measure: expected 'auto', 'kl' or 'error', got {self.output_measure!r}")
        for name in ("shuffled_null", "dsa"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected a bool, got {getattr(self, name)!r}")
        if not (self.min_states_per_dimension >= 0
                and math.isfinite(self.min_states_per_dimension)):
            raise ValueError("min_states_per_dimension: expected a finite number >= 0, got "
                             f"{self.min_states_per_dimension!r}")
        if isinstance(self.quadrature_points, bool) or not isinstance(
                self.quadrature_points, int) or self.quadrature_points < 2:
            raise ValueError(
                f"quadrature_points: expected an int >= 2, got {self.quadrature_points!r}")

    def make_map(self, seed: Seed) -> SimulationMap:
        """An unfitted :class:`SimulationMap` with these hyperparameters."""
        return SimulationMap(
            explained_variance=self.explained_variance, rank_tolerance=self.rank_tolerance,
            ridge=self.ridge, hidden_width=self.hidden_width,
            n_hidden_layers=self.n_hidden_layers, learning_rate=self.learning_rate,
            batch_size=self.batch_size, max_epochs=self.max_epochs, patience=self.patience,
            validation_fraction=self.validation_fraction, seed=seed)


# ----------------------------------------------------------------------------- helpers


def _state_vectors(machine: sm.StateMachine, trace: Trace, name: str) -> np.ndarray:
    """States s_0..s_{T−1} as vectors ``[E, T, S]`` (float64 numpy)."""
    vectors = trace.state_vectors(machine)[:, :-1]
    out = vectors.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: state vectors contain NaN or inf")
    return out


def _has_distribution(machine: sm.StateMachine) -> bool:
    return callable(getattr(machine, "distribution", None))


def _resolve_measure(a: sm.StateMachine, b: sm.StateMachine, measure: str) -> tuple[str, str]:
    has = {"a": _has_distribution(a), "b": _has_distribution(b)}
    missing = [k for k, v in has.items() if not v]
    if measure == "kl" and missing:
        raise ValueError(
            f"config: output_measure='kl' needs distribution(y) on both machines, got none on "
            f"machine {', '.join(missing)}; use output_measure='error' or give it one (e.g. "
            "trajprobe.adapters.wrap(..., distribution='normal'))")
    if measure == "auto":
        if missing:
            return "error", (f"machine {', '.join(missing)} has no distribution(y): KL skipped, "
                             "normalised output error used")
        return "kl", "both machines define distribution(y): KL (eq. 2)"
    return measure, f"output_measure={measure!r} requested"


def _outputs_at(machine: sm.StateMachine, vectors: np.ndarray, inputs: torch.Tensor
                ) -> torch.Tensor:
    """f(x, s) at states with vectors ``[N, S]`` and inputs ``[N, ...]``: ``[N, ...]``."""
    dtype, device = sm.machine_dtype(machine), sm.machine_device(machine)
    with torch.inference_mode():
        state = sm.state_from_vector(machine, torch.as_tensor(vectors, dtype=dtype,
                                                              device=device))
        return sm.output(machine, inputs.to(device), state)


def _features(machine: sm.StateMachine, y: torch.Tensor, discrete: bool) -> np.ndarray:
    """g(y) ``[N, F]``: the probability vector (discrete distributions) or the raw output."""
    if discrete:
        dist = distribution_of(machine, y.detach().to(torch.float64), "machine")
        probs = dist.probs
        if probs.dim() == 1:  # Bernoulli
            probs = torch.stack([1 - probs, probs], dim=-1)
        y = probs
    return y.detach().to("cpu", torch.float64).reshape(y.shape[0], -1).numpy()


def _discrete_pair(a: sm.StateMachine, y_a: torch.Tensor, b: sm.StateMachine,
                   y_b: torch.Tensor) -> bool:
    if not (_has_distribution(a) and _has_distribution(b)):
        return False
    try:
        pa = distribution_of(a, y_a[:1].detach().to(torch.float64), "a")
        pb = distribution_of(b, y_b[:1].detach().to(torch.float64), "b")
    except (ValueError, TypeError):
        return False
    return all(p.has_enumerate_support and hasattr(p, "probs") for p in (pa, pb))


def _kl_items(src: sm.StateMachine, y_src: torch.Tensor, dst: sm.StateMachine,
              y_dst: torch.Tensor, n_points: int) -> np.ndarray:
    """KL(π^src ‖ π^dst) per item ``[N]``; NaN where dst's distribution is invalid."""
    y_src = y_src.detach().to(torch.float64)
    y_dst = y_dst.detach().to(torch.float64)
    out = np.full(y_src.shape[0], np.nan)
    p = distribution_of(src, y_src, "source")
    finite = torch.isfinite(y_dst.reshape(y_dst.shape[0], -1)).all(1)
    try:
        q = distribution_of(dst, y_dst, "target")
        out[:] = kl(p, q, n_points=n_points).to("cpu", torch.float64).numpy()
    except ValueError:
        # Some embedded states gave parameters outside the support: score item by item.
        for i in torch.nonzero(finite).flatten().tolist():
            try:
                qi = distribution_of(dst, y_dst[i:i + 1], "target")
                pi = distribution_of(src, y_src[i:i + 1], "source")
                out[i] = float(kl(pi, qi, n_points=n_points)[0])
            except ValueError:
                pass
    out[~finite.cpu().numpy()] = np.nan
    out[~np.isfinite(out)] = np.nan
    return np.clip(out, 0.0, None)


def _fold_indices(n_episodes: int, n_folds: int, generator: torch.Generator
                  ) -> list[np.ndarray]:
    if n_episodes < 2 * n_folds:
        raise ValueError(
            f"inputs: expected at least {2 * n_folds} episodes for {n_folds}-fold "
            f"cross-validation over episodes (2 per fold), got {n_episodes}; pass more "
            "episodes or a smaller SimulationConfig.n_folds")
    order = torch.randperm(n_episodes, generator=generator).numpy()
    return [np.sort(f) for f in np.array_split(order, n_folds)]


def _time_shuffled(states: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """Each episode's states ``[E, T, S]`` permuted in time (one permutation per episode)."""
    n_ep, n_t = states.shape[:2]
    perm = torch.argsort(torch.rand(n_ep, n_t, generator=generator), dim=1).numpy()
    return np.take_along_axis(states, perm[:, :, None], axis=1)


def _untrained_copy(machine: sm.StateMachine, generator: torch.Generator) -> nn.Module:
    if not isinstance(machine, nn.Module) or not any(True for _ in machine.parameters()):
        raise TypeError(
            "untrained: 'reinit' re-draws b's parameters, so b must be a torch.nn.Module with "
            f"parameters, got {type(machine).__name__}; pass an untrained machine instead")
    return torch_default_init(copy.deepcopy(machine), generator)


# ----------------------------------------------------------------------------- core


@dataclass
class _Direction:
    """Per-direction results over all folds (each episode filled once, when held out)."""

    d_s: list[float]
    d_o: list[float]
    sq_step: np.ndarray  # [E, T] mean squared error over reported components
    out_item: np.ndarray  # [E, T] per-item output dissimilarity
    embedded: np.ndarray  # [E, T, S_dst] φ(s_src) in dst's full state space
    outputs: np.ndarray  # [E, T, O_dst] dst's outputs at the embedded states
    best_epoch: list[int]
    n_components: list[int]
    n_train_states: list[int]
    null_d_s: list[float]
    null_d_o: list[float]


def _score_outputs(measure: str, src: sm.StateMachine, y_src: torch.Tensor,
                   dst: sm.StateMachine, y_emb: torch.Tensor, discrete: bool,
                   variance: float, n_points: int) -> np.ndarray:
    if measure == "kl":
        return _kl_items(src, y_src, dst, y_emb, n_points)
    g_src = _features(src, y_src, discrete)
    g_emb = _features(dst, y_emb, discrete)
    if g_src.shape != g_emb.shape or not variance > 0:  # flagged in _simulate
        return np.full(g_src.shape[0], np.nan)
    err = ((g_src - g_emb) ** 2).sum(1) / variance
    err[~np.isfinite(err)] = np.nan
    return err


def _fold_output(measure: str, per_item: np.ndarray) -> float:
    """D_o of one fold from per-item values ``[K, T]`` (NaN = invalid, left out)."""
    if np.isnan(per_item).all():
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step whose items are all NaN
        step = np.nanmean(per_item, axis=0)
    if measure == "kl":
        return float(np.nansum(step)) if np.isfinite(step).any() else math.nan
    return float(np.nanmean(per_item))


def _run_direction(src_name: str, dst_name: str, machines, traces, vec, folds, config,
                   measure: str, discrete: bool, variance: float, generator) -> _Direction:
    src, dst = machines[src_name], machines[dst_name]
    n_ep, n_t = vec[src_name].shape[:2]
    s_dst = vec[dst_name].shape[2]
    res = _Direction([], [], np.full((n_ep, n_t), np.nan), np.full((n_ep, n_t), np.nan),
                     np.zeros((n_ep, n_t, s_dst)), None, [], [], [], [], [])
    y_src_all = traces[src_name].outputs
    x_dst_all = traces[dst_name].inputs
    emb_outputs = None
    for test in folds:
        train = np.setdiff1d(np.arange(n_ep), test)
        seeds = [int(s) for s in torch.randint(0, 2**62, (3,), generator=generator)]
        phi = config.make_map(seeds[0]).fit(vec[src_name][train], vec[dst_name][train])
        sq = phi.squared_error(vec[src_name][test], vec[dst_name][test])  # [K, T, k]
        full = phi.transform(vec[src_name][test])  # [K, T, S_dst]
        x = x_dst_all[test].flatten(0, 1)
        y_emb = _outputs_at(dst, full.reshape(-1, s_dst), x)
        y_src = y_src_all[test].flatten(0, 1)
        per = _score_outputs(measure, src, y_src, dst, y_emb, discrete, variance,
                             config.quadrature_points).reshape(len(test), n_t)
        res.d_s.append(float(sq.mean()))
        res.d_o.append(_fold_output(measure, per))
        res.sq_step[test] = sq.mean(-1)
        res.out_item[test] = per
        res.embedded[test] = full
        y_np = y_emb.detach().to("cpu", torch.float64).reshape(len(test), n_t, -1).numpy()
        if emb_outputs is None:
            emb_outputs = np.zeros((n_ep, n_t, y_np.shape[-1]))
        emb_outputs[test] = y_np
        res.best_epoch.append(phi.best_epoch_)
        res.n_components.append(phi.n_components_)
        res.n_train_states.append(phi.n_train_states_)
        if config.shuffled_null:
            shuffled = _time_shuffled(vec[dst_name][train], make_generator(seeds[1]))
            null = config.make_map(seeds[2]).fit(vec[src_name][train], shuffled)
            res.null_d_s.append(null.score(vec[src_name][test], vec[dst_name][test]))
            full0 = null.transform(vec[src_name][test]).reshape(-1, s_dst)
            y0 = _outputs_at(dst, full0, x)
            per0 = _score_outputs(measure, src, y_src, dst, y0, discrete, variance,
                                  config.quadrature_points).reshape(len(test), n_t)
            res.null_d_o.append(_fold_output(measure, per0))
    res.outputs = emb_outputs
    return res


def _mean_sem(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0 or np.isnan(arr).all():
        return math.nan, math.nan
    arr = arr[np.isfinite(arr)]
    sem = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else math.nan
    return float(arr.mean()), sem


def simulation(
    a: sm.StateMachine,
    b: sm.StateMachine,
    inputs: torch.Tensor | np.ndarray | xr.DataArray | Trace | AlignedTraces,
    *,
    config: SimulationConfig | None = None,
    untrained: sm.StateMachine | Literal["reinit"] | None = None,
    seed: Seed = 0,
) -> xr.Dataset:
    """How well each machine simulates the other: D_s and D_o in both directions (§3.4).

    The method (maths, invariances, nulls, flags) follows the Returns section below; the
    direction convention: ``"a→b"`` — φ maps a's states into b's, b simulates a. Put the
    agent under study as ``b`` when you pass ``untrained``.

    Args:
        a, b: the machines; state vectors come from :func:`trajprobe.machine.state_vector`
            and outputs at embedded states from :func:`trajprobe.machine.state_from_vector`
            and the machine's output function.
        inputs: ``[E, T, ...]`` shared inputs (both machines are rolled out on them), a
            recorded (e.g. closed-loop) trace of ``a`` replayed through ``b``, or
            :class:`~trajprobe.compare.AlignedTraces`.
        config: hyperparameters (:class:`SimulationConfig` defaults if None).
        untrained: the floor/ceiling baseline, an untrained machine of b's architecture
            (rolled out on the same inputs, compared with ``a`` the same way), or
            ``"reinit"`` to re-draw b's parameters with PyTorch's defaults from ``seed``
            (b must be an ``nn.Module``); None: no such baseline.
        seed: int or ``torch.Generator``; fixes the folds, the maps' initial weights,
            minibatch order and the shuffled null. Same seed, same numbers.

    Returns:
        ``xarray.Dataset`` over ``direction`` (and ``fold``, ``t``, ``episode``):

        - ``state_dissimilarity``, ``output_dissimilarity`` ``(direction)``: D_s and D_o,
            means over folds; ``*_sem`` their standard errors; ``*_fold (direction, fold)``;
        - ``state_dissimilarity_per_step``, ``output_dissimilarity_per_step``
            ``(direction, t)`` over all held-out episodes (for KL these sum over t to D_o);
        - nulls: ``state_dissimilarity_shuffled``, ``output_dissimilarity_shuffled``
            (+ ``_sem``) and, with ``untrained``, ``state_dissimilarity_untrained``,
            ``output_dissimilarity_untrained`` (+ ``_sem``);
        - ``reliable (direction)`` and ``reliability_note (direction)`` (empty if reliable);
            ``invalid_output_fraction (direction)``;
        - ``n_components (direction)``: the target's reported components k (fold median);
            ``rank_a``, ``rank_b``; ``explained_variance_ratio_a (pc_a)`` over a's rank, ``_b``;
            ``best_epoch (direction, fold)`` (0: the MLP did not beat the affine map);
        - ``linear_cka ()``, ``procrustes_distance ()`` on the raw state vectors, and
            ``dsa_distance ()`` with ``config.dsa``;
        - figure data in a whitening fitted on all episodes (descriptive only):
            ``whitened_a (episode, t, component_a)``, ``whitened_b``,
            ``embedded_b_from_a (episode, t, component_b)`` = φ(s_a) in b's coordinates,
            ``embedded_a_from_b``; ``output_a``, ``output_b``, ``output_b_from_a`` (b's output
            function at φ(s_a)), ``output_a_from_b``.

        ``t`` runs 1..T (the state at t is s_{t−1}, the one that emits y_t). ``attrs``:
        the output measure and why, the direction convention, the invariances, the
        configuration, the seed (if an int) and the trajprobe version.

    Raises:
        ValueError: misaligned traces; fewer than 2 episodes per fold;
            ``output_measure='kl'`` without ``distribution`` on both machines.
    """
    config = SimulationConfig() if config is None else config
    if not isinstance(config, SimulationConfig):
        raise TypeError(f"config: expected a SimulationConfig or None, got {type(config).__name__}")
    measure, note = _resolve_measure(a, b, config.output_measure)
    traces = aligned_rollout(a, b, inputs)
    generator = make_generator(seed)
    ds = _simulate(a, b, traces, config, measure, note, generator)
    if untrained is not None:
        machine = _untrained_copy(b, generator) if isinstance(untrained, str) and \
            untrained == "reinit" else untrained
        if isinstance(machine, str):
            raise ValueError(f"untrained: expected a machine, 'reinit' or None, got {machine!r}")
        measure_u, note_u = _resolve_measure(a, machine, config.output_measure)
        trace_u = AlignedTraces(a=traces.a, b=rollout(machine, traces.b.inputs))
        null_config = SimulationConfig(**{**asdict(config), "shuffled_null": False})
        other = _simulate(a, machine, trace_u, null_config, measure_u, note_u, generator)
        for name in ("state_dissimilarity", "output_dissimilarity"):
            for suffix in ("", "_sem"):
                ds[f"{name}_untrained{suffix}"] = other[f"{name}{suffix}"]
        ds.attrs["untrained_output_measure"] = other.attrs["output_measure"]
    if isinstance(seed, int):
        ds.attrs["seed"] = seed
    return ds


def _simulate(a, b, traces: AlignedTraces, config: SimulationConfig, measure: str, note: str,
              generator: torch.Generator) -> xr.Dataset:
    machines = {"a": a, "b": b}
    trace_of = {"a": traces.a, "b": traces.b}
    n_ep, n_t = traces.n_episodes, traces.n_steps
    vec = {k: _state_vectors(m, trace_of[k], k) for k, m in machines.items()}
    folds = _fold_indices(n_ep, config.n_folds, generator)
    display = {k: Whitening(explained_variance=config.explained_variance,
                            rank_tolerance=config.rank_tolerance).fit(v)
               for k, v in vec.items()}
    outputs = {k: trace_of[k].outputs.detach().cpu() for k in machines}

    results, reliable, notes, invalid = {}, [], [], []
    for direction, (src, dst) in zip(DIRECTIONS, (("a", "b"), ("b", "a")), strict=True):
        reasons = []
        y_src = outputs[src].flatten(0, 1)
        discrete = measure == "error" and _discrete_pair(machines[src], y_src, machines[dst],
                                                         outputs[dst].flatten(0, 1))
        variance = math.nan
        if measure == "error":
            g = _features(machines[src], y_src, discrete)
            width = _features(machines[dst], outputs[dst][:1].flatten(0, 1), discrete).shape[1]
            variance = float(((g - g.mean(0)) ** 2).sum(1).mean())
            if g.shape[1] != width:
                variance = math.nan
                reasons.append(
                    f"outputs of machine {src} ({g.shape[1]} features) and {dst} ({width}) "
                    "differ in size: the output error is undefined (give both machines "
                    "distribution(y) to compare by KL)")
            elif not variance > 0:
                reasons.append(f"machine {src}'s outputs have no variance: the normalised "
                               "output error is undefined")
            else:
                g_dst = _features(machines[dst], outputs[dst].flatten(0, 1), discrete)
                variance_dst = float(((g_dst - g_dst.mean(0)) ** 2).sum(1).mean())
                if variance < NEAR_CONSTANT_RATIO * variance_dst:
                    reasons.append(
                        f"machine {src}'s outputs are nearly constant (variance {variance:.2g}, "
                        f"machine {dst}'s {variance_dst:.2g}): the normalised error divides by "
                        "that small variance")
        if display[dst].rank_ == 0:
            reasons.append(f"machine {dst}'s states have no variance: nothing to simulate")
            results[direction] = None
        else:
            results[direction] = _run_direction(src, dst, machines, trace_of, vec, folds,
                                                config, measure, discrete, variance, generator)
            r = results[direction]
            bad = float(np.isnan(r.out_item).mean())
            invalid.append(bad)
            if bad > 0 and not reasons:
                reasons.append(f"{bad:.1%} of the embedded states gave invalid or non-finite "
                               f"outputs of machine {dst} (left out of D_o)")
            d_s = float(np.nanmean(r.d_s))
            if d_s > 1:
                reasons.append(
                    f"D_s = {d_s:.3g} > 1 on held-out episodes: the map does worse than "
                    f"machine {dst}'s mean state (held-out states outside the training range, "
                    "e.g. heavy-tailed state coordinates)")
            heavy = _top_share(r.out_item)
            if heavy > TOP_SHARE_LIMIT and np.nanmean(r.out_item) > 1e-3:
                reasons.append(
                    f"D_o is dominated by a few states: the top 1 % of held-out items carry "
                    f"{heavy:.0%} of it (machine {dst}'s output function may be ill-conditioned "
                    "there; see output_dissimilarity_per_step)")
            needed = config.min_states_per_dimension * (display[src].rank_ + 1)
            if min(r.n_train_states) < needed:
                reasons.append(
                    f"{min(r.n_train_states)} training states for a source of rank "
                    f"{display[src].rank_}: fewer than {config.min_states_per_dimension:g} × "
                    f"(rank + 1) = {needed:g}; pass more episodes")
        if results[direction] is None:
            invalid.append(math.nan)
        reliable.append(not reasons)
        notes.append("; ".join(reasons))
    return _dataset(results, machines, vec, outputs, display, folds, config, measure, note,
                    reliable, notes, invalid, n_t)


def _dataset(results, machines, vec, outputs, display, folds, config, measure, note,
             reliable, notes, invalid, n_t) -> xr.Dataset:
    n_ep = vec["a"].shape[0]
    n_folds = len(folds)
    nan_fold = [math.nan] * n_folds

    def per_direction(fn, default=math.nan):
        return np.array([fn(r) if r is not None else default for r in results.values()])

    stats = {}
    for name, attr in (("state_dissimilarity", "d_s"), ("output_dissimilarity", "d_o"),
                       ("state_dissimilarity_shuffled", "null_d_s"),
                       ("output_dissimilarity_shuffled", "null_d_o")):
        pairs = [(_mean_sem(getattr(r, attr)) if r is not None else (math.nan, math.nan))
                 for r in results.values()]
        stats[name] = np.array([p[0] for p in pairs])
        stats[f"{name}_sem"] = np.array([p[1] for p in pairs])
    if not config.shuffled_null:
        for name in list(stats):
            if "shuffled" in name:
                del stats[name]

    def step_curve(r, which):
        if r is None:
            return np.full(n_t, np.nan)
        arr = r.sq_step if which == "s" else r.out_item
        if np.isnan(arr).all():
            return np.full(n_t, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(arr, axis=0)

    data_vars = {name: (("direction",), value) for name, value in stats.items()}
    data_vars.update({
        "state_dissimilarity_fold": (("direction", "fold"), np.stack(
            [np.array(r.d_s) if r is not None else nan_fold for r in results.values()])),
        "output_dissimilarity_fold": (("direction", "fold"), np.stack(
            [np.array(r.d_o) if r is not None else nan_fold for r in results.values()])),
        "state_dissimilarity_per_step": (("direction", "t"), np.stack(
            [step_curve(r, "s") for r in results.values()])),
        "output_dissimilarity_per_step": (("direction", "t"), np.stack(
            [step_curve(r, "o") for r in results.values()])),
        "reliable": (("direction",), np.array(reliable, dtype=bool)),
        "reliability_note": (("direction",), np.array(notes, dtype=object)),
        "invalid_output_fraction": (("direction",), np.array(invalid, dtype=np.float64)),
        "n_components": (("direction",), per_direction(
            lambda r: int(np.median(r.n_components)), 0).astype(int)),
        "best_epoch": (("direction", "fold"), np.stack(
            [np.array(r.best_epoch) if r is not None else np.zeros(n_folds, int)
             for r in results.values()])),
        "rank_a": ((), display["a"].rank_),
        "rank_b": ((), display["b"].rank_),
        "explained_variance_ratio_a": (("pc_a",), display["a"].explained_variance_ratio_),
        "explained_variance_ratio_b": (("pc_b",), display["b"].explained_variance_ratio_),
    })
    raw_a = vec["a"].reshape(-1, vec["a"].shape[-1])
    raw_b = vec["b"].reshape(-1, vec["b"].shape[-1])
    data_vars["linear_cka"] = ((), linear_cka(raw_a, raw_b))
    data_vars["procrustes_distance"] = ((), procrustes_distance(raw_a, raw_b))
    if config.dsa:
        data_vars["dsa_distance"] = ((), dsa_distance(vec["a"], vec["b"]))
    data_vars.update(_figure_data(results, vec, outputs, display, n_ep, n_t))
    attrs = _attrs(measure, note, n_folds, config)
    return xr.Dataset(
        data_vars,
        coords={"direction": list(DIRECTIONS), "fold": np.arange(n_folds),
                "episode": np.arange(n_ep), "t": np.arange(1, n_t + 1)},
        attrs=attrs,
    )


def _figure_data(results, vec, outputs, display, n_ep: int, n_t: int) -> dict:
    """Figure data in the all-episode whitening (first k display components): whitened
    and embedded states, own and embedded outputs, per machine and direction."""
    data_vars = {}
    k = {key: display[key].n_components_ for key in ("a", "b")}
    for key in ("a", "b"):
        data_vars[f"whitened_{key}"] = (("episode", "t", f"component_{key}"),
                                        display[key].transform(vec[key])[..., : k[key]])
        data_vars[f"output_{key}"] = (("episode", "t", f"output_{key}"),
                                      outputs[key].reshape(n_ep, n_t, -1).double().numpy())
    for direction, (src, dst) in zip(DIRECTIONS, (("a", "b"), ("b", "a")), strict=True):
        r = results[direction]
        if r is None:
            continue
        data_vars[f"embedded_{dst}_from_{src}"] = (
            ("episode", "t", f"component_{dst}"),
            display[dst].transform(r.embedded)[..., : k[dst]])
        data_vars[f"output_{dst}_from_{src}"] = (("episode", "t", f"output_{dst}"), r.outputs)
    return data_vars


def _attrs(measure: str, note: str, n_folds: int, config) -> dict:
    """The Dataset's attrs: what D_o measures, conventions, invariances and the config."""
    return {
        "output_measure": "sum_t KL(pi^source || pi^target at embedded state), mean over "
                          "episodes (eq. 2), nats" if measure == "kl" else
                          "normalised output error: mean ||g(y^source) - g(y^target at "
                          "embedded state)||^2 / Var(g(y^source)); 1 = predicting the mean",
        "output_measure_note": note,
        "direction_convention": "a→b: phi maps a's states into b's state space (b simulates a)",
        "state_dissimilarity_units": "target's whitened PCA units on its reported components "
                                     "(0 exact, 1 = the target's mean state)",
        "null_shuffled": "map fitted on time-shuffled pairs (target states permuted in time "
                         "within each training episode), scored on the aligned held-out pairs",
        "n_folds": n_folds,
        "trajprobe_version": __version__,
        **{f"invariances_{name}": ", ".join(k for k, v in flags.items() if v)
           for name, flags in INVARIANCES.items()},
        **{f"config_{key}": (str(value) if isinstance(value, bool) else value)
           for key, value in asdict(config).items()},
    }


_METHOD = "\n".join(f"        {line}" if line else "" for line in __doc__.splitlines())
simulation.__doc__ = f"{simulation.__doc__}\n    Method (module docstring)::\n\n{_METHOD}\n"
