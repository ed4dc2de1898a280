"""The best constant map: the bound D_o is read against (Mikulik et al. 2020 §3.4).

A constant map sends every source state to one target state s*. The target is a Mealy
machine, so its output at item (k, t) is still f_M(x_t^M, s*): a constant state is not a
constant output. s* is therefore scored through the target's own output function on the
validation items,

    L(s) = mean over validation items (k, t) of ℓ(y_{k,t}^src, f_M(x_{k,t}^M, s)),

with ℓ the per-item D_o of :mod:`.simulation_outputs` (KL in nats, or the normalised
squared error), and the minimiser is the bound: ``output_dissimilarity_constant``.

**Candidates** (:func:`constant_candidates`): every distinct training state of the
target, or, when there are more than ``n_states``, ``n_states`` of them evenly spaced in
lexicographic order (the same rows for any order of the states, so the time-shuffled null
searches the same set), plus each coordinate's minimum and maximum state.

**Search** (:func:`search_constant`), in order of cost:

* Outputs that do not read the input (f_M(x, s) identical for every validation input at
  a few candidate states): one output per candidate, scored from the source's sufficient
  statistics per validation episode k —
  squared error: ‖ĝ − ḡ_k‖² + tr Cov_k(g) (ḡ_k, Cov_k over episode k's steps);
  categorical / Bernoulli KL: mean_t Σ_j p_j log p_j − Σ_j p̄_{k,j} log q_j
  (p̄_k the mean probabilities, the first term minus the mean entropy);
  other KLs: each item's KL to each candidate's one distribution (no machine calls).
* Otherwise the candidates are screened (:data:`SCREEN`): every one on a few validation
  items spread evenly over the episodes, the best on more, the last few on every
  validation item (N inputs from one state at once: the target's ``output_many`` when it
  has one; each distinct input once, :func:`~.simulation_outputs.distinct_rows`).
* Where the target is differentiable (autograd through ``state_from_vector``, its output
  function and ℓ), the winner is refined by :data:`REFINE_STEPS` Adam steps on L, each
  coordinate in units of the training states' spread; the refined state is kept only if
  it lowers L (scored without autograd, as the candidates were).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.special import xlogy

from trajprobe import machine as sm
from trajprobe.compare.behaviour import distribution_of, kl
from trajprobe.compare.simulation_outputs import (
    CHUNK_ITEMS,
    OutputScorer,
    discrete_pair,
    distinct_rows,
)

__all__ = ["REFINE_STEPS", "SCREEN", "constant_candidates", "search_constant"]

SORT_KEYS = 4
"""Coordinates the candidates are sorted by (lexicographically; more cost more): the same
rows are chosen for any order of the states unless distinct states tie in all of them."""

SCREEN = ((32, 32), (128, 4))
"""The screens of an output that reads its input, in order: (validation items, candidates
kept). Every candidate is scored on the first's items (evenly spread over the episodes),
the best 32 on 128 items, the best 4 on every validation item."""

REFINE_STEPS = 10
"""Adam steps refining the best constant state of a differentiable target."""

REFINE_RATE = 0.1
"""Adam's step size, in units of the training states' spread per coordinate."""

REFINE_ITEMS = 256
"""Validation items (evenly spaced) the refinement's loss is computed on."""


def constant_candidates(states: np.ndarray, n_states: int) -> np.ndarray:
    """Target states tried as constant maps: ``states`` ``[n, S]`` → ``[C, S]``.

    The distinct rows (an episode's s_0 is usually every episode's), all of them when at
    most ``n_states``, else ``n_states`` evenly spaced in lexicographic order of the first
    :data:`SORT_KEYS` coordinates; plus each coordinate's arg-min and arg-max row; in that
    order (so the result depends on the set of states, not their order).
    """
    flat = np.asarray(states, dtype=np.float64).reshape(-1, states.shape[-1])
    if flat.shape[0] == 0 or n_states == 0:
        return flat[:0]
    ordered = flat[np.lexsort(flat[:, :SORT_KEYS].T[::-1])]
    distinct = np.concatenate([[True], (ordered[1:] != ordered[:-1]).any(1)])
    ordered = ordered[distinct]
    n = ordered.shape[0]
    chosen = (np.arange(n) if n <= n_states else
              np.linspace(0, n - 1, n_states).round().astype(int))
    extremes = np.concatenate([ordered.argmin(0), ordered.argmax(0)])
    return ordered[np.union1d(chosen, extremes)]


def search_constant(scorer: OutputScorer, episodes: np.ndarray, candidates: np.ndarray, *,
                    spread: np.ndarray | None = None, refine: bool = True) -> np.ndarray:
    """The candidate state with the lowest mean D_o over the validation ``episodes``
    (module docstring) and, when ``refine`` and the target allows, its refinement if that
    scores lower: ``[1, S]`` or ``[2, S]`` (best candidate, refined state).

    Args:
        scorer: the direction's :class:`~.simulation_outputs.OutputScorer`.
        episodes: validation episode indices ``[V]`` (into the scorer's arrays).
        candidates: target state vectors ``[C, S]`` (:func:`constant_candidates`).
        spread: per-coordinate scale ``[S]`` of the refinement's steps (None: 1).
    """
    x = scorer.x_dst[torch.as_tensor(episodes)].flatten(0, 1).to(scorer.device)
    y_src = scorer.y_src[torch.as_tensor(episodes)]
    states = torch.as_tensor(candidates, dtype=scorer.dtype, device=scorer.device)
    if _reads_input(scorer, states[:4], x[_spaced(x.shape[0], 64)]):
        mean = _screen(scorer, states, x, y_src.flatten(0, 1))
    else:
        mean = _closed_form(scorer, states, x[:1], y_src)
    best = int(np.argmin(mean))
    found = [candidates[best]]
    if refine and np.isfinite(mean[best]):
        refined = _refine(scorer, candidates[best], x, y_src.flatten(0, 1), spread)
        if refined is not None:
            found.append(refined)
    return np.stack(found)


def _spaced(n: int, k: int) -> torch.Tensor:
    """``min(n, k)`` indices evenly spaced over ``range(n)``."""
    return torch.as_tensor(np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int)))


def _reads_input(scorer: OutputScorer, states: torch.Tensor, x: torch.Tensor) -> bool:
    """False when f_M(x, s) is the same for every one of the inputs ``x`` at every one of
    ``states`` (exactly; NaN counts as reading the input)."""
    if x.shape[0] < 2:
        return True
    y = scorer.grid(states, x)
    return not bool(torch.equal(y, y[:, :1].expand_as(y)))


def _mean_losses(per: np.ndarray) -> np.ndarray:
    """Mean loss per candidate ``[C]`` from items ``[C, N]``: a candidate with invalid
    (NaN) items is inf unless every candidate has some (then its valid items count)."""
    bad = np.isnan(per).any(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a candidate whose items are all NaN
        mean = np.nanmean(per, 1)
    if (~bad).any():
        mean[bad] = np.inf
    return np.where(np.isnan(mean), np.inf, mean)


def _items(scorer: OutputScorer, states: torch.Tensor, x: torch.Tensor, y_src: torch.Tensor
           ) -> np.ndarray:
    """Per-item D_o ``[C, n]`` of states ``[C, S]`` on inputs ``[n, ...]``."""
    y = scorer.grid(states, x).flatten(0, 1)
    ref = y_src.repeat(states.shape[0], *([1] * (y_src.dim() - 1)))
    return scorer.score_items(ref, y).reshape(states.shape[0], -1)


def _screen(scorer: OutputScorer, states: torch.Tensor, x: torch.Tensor,
            y_src: torch.Tensor) -> np.ndarray:
    """Mean D_o per candidate ``[C]`` for an output that reads its input, through the
    screens of :data:`SCREEN` (candidates dropped by a screen: inf)."""
    n, kept = x.shape[0], np.arange(states.shape[0])
    for n_items, n_keep in SCREEN:
        if n <= n_items or kept.size <= n_keep:
            break
        sub = _spaced(n, n_items)
        mean = _mean_losses(_items(scorer, states[torch.as_tensor(kept)], x[sub], y_src[sub]))
        kept = kept[np.argsort(mean, kind="stable")[:n_keep]]
    out = np.full(states.shape[0], np.inf)
    out[kept] = _mean_losses(_items(scorer, states[torch.as_tensor(kept)], x, y_src))
    return out


def _closed_form(scorer: OutputScorer, states: torch.Tensor, x0: torch.Tensor,
                 y_src: torch.Tensor) -> np.ndarray:
    """Mean D_o per candidate ``[C]`` for an output that ignores its input: one output per
    candidate, the source's sufficient statistics (module docstring); ``y_src`` ``[V, T, ...]``."""
    y = scorer.grid(states, x0)[:, 0]  # [C, ...]
    n_v, n_t = y_src.shape[:2]
    flat = y_src.flatten(0, 1)
    if scorer.measure == "error":
        if not scorer.variance > 0:
            return np.full(states.shape[0], np.inf)
        g = scorer.features_of(scorer.src, flat).reshape(n_v, n_t, -1)
        try:
            g_hat = scorer.features_of(scorer.dst, y)  # [C, F]
        except ValueError:
            return _mean_losses(_broadcast_items(scorer, y, flat))
        mean, spread = g.mean(1), ((g - g.mean(1, keepdims=True)) ** 2).sum(-1).mean(1)
        per = (((g_hat[:, None] - mean[None]) ** 2).sum(-1) + spread[None]) / scorer.variance
        return _mean_losses(np.where(np.isfinite(per), per, np.nan))
    if discrete_pair(scorer.src, flat, scorer.dst, y):
        p = scorer.features_of(scorer.src, flat, discrete=True).reshape(n_v, n_t, -1)
        try:
            q = scorer.features_of(scorer.dst, y, discrete=True)  # [C, K]
        except ValueError:
            return _mean_losses(_broadcast_items(scorer, y, flat))
        if q.shape[-1] == p.shape[-1]:
            negentropy = xlogy(p, p).sum(-1).mean(1)  # [V]
            with np.errstate(divide="ignore", invalid="ignore"):
                cross = xlogy(p.mean(1)[None], q[:, None]).sum(-1)  # [C, V]
            per = np.clip(negentropy[None] - cross, 0.0, None)
            return _mean_losses(np.where(np.isfinite(per), per, np.nan))
    return _mean_losses(_broadcast_items(scorer, y, flat))


def _broadcast_items(scorer: OutputScorer, y: torch.Tensor, y_src: torch.Tensor) -> np.ndarray:
    """Per-item D_o ``[C, N]`` of each candidate's one output ``y`` ``[C, ...]`` against
    every source output ``y_src`` ``[N, ...]`` (no machine calls)."""
    n = y_src.shape[0]
    per_chunk = max(1, CHUNK_ITEMS // n)
    out = []
    for start in range(0, y.shape[0], per_chunk):
        chunk = y[start:start + per_chunk]
        emb = chunk.repeat_interleave(n, dim=0)
        ref = y_src.repeat(chunk.shape[0], *([1] * (y_src.dim() - 1)))
        out.append(scorer.score_items(ref, emb).reshape(chunk.shape[0], n))
    return np.concatenate(out)


def _torch_loss(scorer: OutputScorer, y_src: torch.Tensor):
    """Mean per-item D_o with autograd (the refinement's objective), as a function of the
    target's outputs ``y``; the source's side is computed once."""
    if scorer.measure == "kl":
        p = distribution_of(scorer.src, y_src.to(torch.float64), "source")

        def divergence(y: torch.Tensor) -> torch.Tensor:
            q = distribution_of(scorer.dst, y.to(torch.float64), "target")
            return kl(p, q, n_points=scorer.n_points).mean()
        return divergence
    g_src = torch.as_tensor(scorer.features_of(scorer.src, y_src), dtype=torch.float64)

    def error(y: torch.Tensor) -> torch.Tensor:
        if scorer.discrete:
            probs = distribution_of(scorer.dst, y.to(torch.float64), "target").probs
            g = torch.stack([1 - probs, probs], dim=-1) if probs.dim() == 1 else probs
        else:
            g = y.to(torch.float64)
        g = g.reshape(g.shape[0], -1)
        return ((g_src - g) ** 2).sum(1).mean() / scorer.variance
    return error


def _refine(scorer: OutputScorer, state: np.ndarray, x: torch.Tensor,
            y_src: torch.Tensor, spread: np.ndarray | None) -> np.ndarray | None:
    """Adam on the constant state's validation loss (module docstring): the best of the
    last iterates if it scores lower than ``state`` on the same items, else None. Targets
    without autograd (or invalid on the way) are skipped."""
    if scorer.measure == "error" and not scorer.variance > 0:
        return None
    sub = _spaced(x.shape[0], REFINE_ITEMS)
    x, y_src = x[sub], y_src[sub]
    rows, index = distinct_rows(x)  # the state's output at each distinct input once
    n = rows.shape[0]
    start = torch.as_tensor(state, dtype=scorer.dtype, device=scorer.device)
    scale = torch.ones_like(start) if spread is None else torch.as_tensor(
        np.where(np.asarray(spread) > 0, spread, 1.0), dtype=scorer.dtype, device=scorer.device)
    delta = torch.zeros_like(start, requires_grad=True)
    moment, second = torch.zeros_like(start), torch.zeros_like(start)
    tried = []
    try:
        objective = _torch_loss(scorer, y_src)
        with torch.enable_grad():
            for step in range(1, REFINE_STEPS + 1):
                s = (start + scale * delta).unsqueeze(0).expand(n, -1)
                y = sm.output(scorer.dst, rows, sm.state_from_vector(scorer.dst, s))
                value = objective(y[index])
                if not torch.isfinite(value) or not value.requires_grad:
                    break
                (grad,) = torch.autograd.grad(value, delta)
                if not torch.isfinite(grad).all():
                    break
                with torch.no_grad():  # Adam (β = 0.9, 0.999), written out: torch.optim
                    moment.mul_(0.9).add_(grad, alpha=0.1)  # imports torch._dynamo (seconds)
                    second.mul_(0.999).addcmul_(grad, grad, value=0.001)
                    delta -= REFINE_RATE * (moment / (1 - 0.9**step)) / (
                        (second / (1 - 0.999**step)).sqrt() + 1e-8)
                tried.append((start + scale * delta).detach().clone())
    except (RuntimeError, ValueError, NotImplementedError, TypeError):
        pass
    if not tried:
        return None
    candidates = torch.stack([start, *tried[-4:]])  # scored on the same items as the start
    per = _mean_losses(_items(scorer, candidates, x, y_src))
    best = int(np.argmin(per))
    if best == 0 or not per[best] < per[0]:
        return None
    return candidates[best].to("cpu", torch.float64).numpy()
