"""Cross-validation over episodes for one direction of :func:`~.simulation`.

The episodes are split into folds; for each held-out fold, maps are fitted on the other
episodes (:class:`~.simulation_map.SimulationMap`: φ selected on validation episodes by
D_s, φ_o by D_o) and scored on the held-out ones (D_s of φ, D_o of φ_o), together with,
in one batch of target-output evaluations: the best constant map (the bound D_o must not
exceed) and the time-shuffled null (a closed-form map fitted and selected on pairs whose
target states are permuted in time within each training episode; the same validation
episodes and constant candidates as the map). Each episode is filled in once, when held
out.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from trajprobe.compare.simulation_constant import search_constant
from trajprobe.compare.simulation_outputs import OutputScorer, fold_output
from trajprobe.randomness import make_generator

__all__ = ["KINDS", "DirectionResult", "fold_indices", "fold_seeds", "run_direction",
           "time_shuffled"]

KINDS = ("map", "constant", "shuffled")
"""The maps scored on every held-out fold."""


def fold_indices(n_episodes: int, n_folds: int, generator: torch.Generator
                 ) -> list[np.ndarray]:
    """``n_folds`` disjoint sorted episode-index arrays covering ``range(n_episodes)``."""
    if n_episodes < 2 * n_folds:
        raise ValueError(
            f"inputs: expected at least {2 * n_folds} episodes for {n_folds}-fold "
            f"cross-validation over episodes (2 per fold), got {n_episodes}; pass more "
            "episodes or a smaller SimulationConfig.n_folds")
    order = torch.randperm(n_episodes, generator=generator).numpy()
    return [np.sort(f) for f in np.array_split(order, n_folds)]


def fold_seeds(n_folds: int, generator: torch.Generator) -> list[tuple[int, int]]:
    """Each fold's two seeds (the maps' and the shuffled null's permutation), drawn from
    ``generator`` in order: everything :func:`run_direction` draws from it, so a caller that
    skips a direction advances it the same way by calling this."""
    return [tuple(int(s) for s in torch.randint(0, 2**62, (2,), generator=generator))
            for _ in range(n_folds)]


def time_shuffled(states: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """Each episode's states ``[E, T, S]`` permuted in time (one permutation per episode)."""
    n_ep, n_t = states.shape[:2]
    perm = torch.argsort(torch.rand(n_ep, n_t, generator=generator), dim=1).numpy()
    return np.take_along_axis(states, perm[:, :, None], axis=1)


@dataclass
class DirectionResult:
    """Per-direction results over all folds; arrays over ``kind`` follow :data:`KINDS`."""

    d_s: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    d_o: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    sq_step: np.ndarray | None = None  # [E, T] the map's squared error (reported comps)
    out_item: np.ndarray | None = None  # [kind, E, T] per-item output dissimilarity
    embedded: np.ndarray | None = None  # [E, T, S_dst] φ(s_src) in dst's full state space
    outputs: np.ndarray | None = None  # [E, T, O_dst] dst's outputs at φ_o's states
    best_epoch: list[int] = field(default_factory=list)
    strength: list[float] = field(default_factory=list)
    output_strength: list[float] = field(default_factory=list)
    coordinates: list[str] = field(default_factory=list)
    n_components: list[int] = field(default_factory=list)
    n_train_states: list[int] = field(default_factory=list)


def _cached_loss(scorer: OutputScorer, episodes: np.ndarray, states: np.ndarray,
                 cache: dict) -> np.ndarray:
    """The selection loss of each candidate ``[C, V]`` (:func:`_selection`), evaluating only the
    candidates not seen before in this fold (the shuffled null tries the same constants
    on the same validation episodes as the map)."""
    # Keys from a float32 subsample: the null's whitening sums the same states in another
    # order, so its constant candidates agree with the map's to round-off only.
    flat = states.reshape(states.shape[0], -1)
    step = max(1, flat.shape[1] // 997)
    keys = [hash((episodes.tobytes(), flat[c, ::step].astype(np.float32).tobytes()))
            for c in range(states.shape[0])]
    new = [c for c, key in enumerate(keys) if key not in cache]
    if new:
        values = scorer.items(episodes, states[new]).reshape(len(new), -1)
        cache.update({keys[c]: v for c, v in zip(new, values, strict=True)})
    return _selection(np.stack([cache[key] for key in keys]), states.shape[2])


def _selection(per: np.ndarray, n_steps: int) -> np.ndarray:
    """Per-episode mean D_o ``[C, V]`` from items ``[C, V·T]``; a candidate with invalid
    (NaN) items is inf unless every candidate has some (then its valid items count)."""
    bad = np.isnan(per).any(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(per.reshape(per.shape[0], -1, n_steps), axis=2)
    if (~bad).any():
        mean[bad] = np.inf
    return mean


def run_direction(src_vec: np.ndarray, dst_vec: np.ndarray, positive, folds, config,
                  scorer: OutputScorer, generator: torch.Generator, shuffled: bool
                  ) -> DirectionResult:
    """All folds of one direction. ``positive`` = (source mask, target mask) or Nones."""
    n_ep, n_t = src_vec.shape[:2]
    res = DirectionResult(sq_step=np.full((n_ep, n_t), np.nan),
                          out_item=np.full((len(KINDS), n_ep, n_t), np.nan),
                          embedded=np.zeros((n_ep, n_t, dst_vec.shape[2])))
    by_outputs = scorer.measure == "kl" or scorer.variance > 0  # else D_o is undefined
    for test, seeds in zip(folds, fold_seeds(len(folds), generator), strict=True):
        train = np.setdiff1d(np.arange(n_ep), test)

        cache: dict = {}

        def loss(val, states, train=train, cache=cache):
            return _cached_loss(scorer, train[val], states, cache)

        def search(val, candidates, spread, train=train, cache=cache):
            # The shuffled null searches the same states on the same episodes: found once.
            key = ("constant", train[val].tobytes(), candidates.tobytes())
            if key not in cache:
                cache[key] = search_constant(scorer, train[val], candidates, spread=spread,
                                             refine=config.refine_constant)
            return cache[key]

        fit = {"source_positive": positive[0], "target_positive": positive[1],
               "validation_loss": loss if by_outputs else None,
               "constant_search": search if by_outputs else None}
        src_train, src_test = src_vec[train], src_vec[test]  # indexed (copied) once
        dst_train = dst_vec[train]
        phi = config.make_map(seeds[0]).fit(src_train, dst_train, **fit)
        embedded, for_outputs = phi.transform_pair(src_test)
        states = {"map": for_outputs, "constant": phi.transform_constant(src_test)}
        placed = {"map": embedded, "constant": states["constant"]}
        if shuffled:
            target = time_shuffled(dst_train, make_generator(seeds[1]))
            null = config.make_map(seeds[0], closed_form=True).fit(src_train, target,
                                                                   sides_from=phi, **fit)
            placed["shuffled"], states["shuffled"] = null.transform_pair(src_test)
        kinds = list(states)
        per, y = scorer.items(test, np.stack([states[k] for k in kinds]), keep_outputs=True)
        truth = phi.reported(dst_vec[test])  # whitened once for every kind
        for i, kind in enumerate(kinds):
            squared = (phi.reported(placed[kind]) - truth) ** 2
            res.d_s[kind].append(float(squared.mean()))
            res.d_o[kind].append(fold_output(scorer.measure, per[i]))
            res.out_item[KINDS.index(kind), test] = per[i]
            if kind == "map":
                res.sq_step[test] = squared.mean(-1)
        res.embedded[test] = embedded
        y_np = y[0].detach().to("cpu", torch.float64).reshape(len(test), n_t, -1).numpy()
        if res.outputs is None:
            res.outputs = np.zeros((n_ep, n_t, y_np.shape[-1]))
        res.outputs[test] = y_np
        res.best_epoch.append(phi.best_epoch_)
        res.strength.append(phi.strength_)
        res.output_strength.append(phi.output_strength_)
        res.coordinates.append(" → ".join(phi.coordinates_))
        res.n_components.append(phi.n_components_)
        res.n_train_states.append(phi.n_train_states_)
    return res
