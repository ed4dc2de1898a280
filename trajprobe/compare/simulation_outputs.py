"""D_o item by item: the target's output function at embedded states against the source's.

For a direction src → dst and held-out items (episode k, step t), the source emitted
y_t^src = f_src(x_t^src, s_{t−1}^src) and the embedded state φ(s_{t−1}^src) gives
ŷ_t = f_dst(x_t^dst, φ(s_{t−1}^src)). Per item (Mikulik et al. 2020 eq. 2 and its
normalised-error fallback):

* ``"kl"``: KL(π^src ‖ π^dst at φ(s)), in nats; D_o = Σ_t mean_k (eq. 2);
* ``"error"``: ‖g(y^src) − g(ŷ)‖² / Var(g(y^src)), g the output or the probability
  vector of discrete distributions; D_o = mean over items (1 = predicting the mean).

An item whose target output is invalid or non-finite is NaN (left out, and counted).
:class:`OutputScorer` evaluates many candidate maps' states at once, in chunks.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from scipy.special import xlogy
from torch import nn

from trajprobe import machine as sm
from trajprobe.compare.behaviour import distribution_of, kl

__all__ = ["OutputScorer", "discrete_pair", "distinct_rows", "distribution_hint",
           "fold_output", "has_distribution", "resolve_measure", "top_share"]

CHUNK_ITEMS = 65536
"""Items per batch of target-output evaluations (bounds the memory of KL quadrature)."""

BLOCK_ITEMS = 4096
"""Items per call of the target's output function within a batch: a recurrent network's
gates for this many items stay in the core's cache (a GRU-64's output is about a third
faster in blocks of 4096 than in one call of 17,600 on the CPU; the same numbers)."""


def distinct_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``x`` ``[n, ...]`` as (rows ``[m, ...]``, index ``[n]``) with ``rows[index]``
    equal to ``x``: the distinct rows (equal bytes) when there are at most half as many
    (discrete inputs: coin flips, actions, symbols), else ``x`` itself and ``arange(n)``.

    A constant state's outputs depend only on the input, so they are computed once per
    distinct row and gathered (the same numbers: each is the same call on the same row).
    """
    n = x.shape[0]
    if n >= 4:  # rows compared by their bytes: equal bytes, the same call
        flat = x.detach().reshape(n, -1).contiguous().view(torch.uint8).cpu().numpy()
        keys = flat.view(np.dtype((np.void, flat.shape[1]))).ravel()  # any dtype's bytes
        first, inverse = np.unique(keys, return_index=True, return_inverse=True)[1:]
        if 2 * first.size <= n:
            return x[torch.as_tensor(first, device=x.device)], torch.as_tensor(
                inverse.ravel(), device=x.device)
    return x, torch.arange(n, device=x.device)


def has_distribution(machine: sm.StateMachine) -> bool:
    """True when the machine defines ``distribution(y)``."""
    return callable(getattr(machine, "distribution", None))


def resolve_measure(a: sm.StateMachine, b: sm.StateMachine, measure: str) -> tuple[str, str]:
    """The output measure (``"kl"`` or ``"error"``) and why, for ``output_measure``."""
    missing = [k for k, m in (("a", a), ("b", b)) if not has_distribution(m)]
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


def top_share(values: np.ndarray) -> float:
    """Share of the (finite) sum carried by the largest 1 % of ``values``."""
    flat = np.sort(values[np.isfinite(values)].ravel())[::-1]
    total = flat.sum()
    if flat.size == 0 or not total > 0:
        return 0.0
    return float(flat[: max(1, flat.size // 100)].sum() / total)


def fold_output(measure: str, per_item: np.ndarray) -> float:
    """D_o of one fold from per-item values ``[K, T]`` (NaN = invalid, left out)."""
    if np.isnan(per_item).all():
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step whose items are all NaN
        step = np.nanmean(per_item, axis=0)
    if measure == "kl":
        return float(np.nansum(step)) if np.isfinite(step).any() else math.nan
    return float(np.nanmean(per_item))


def distribution_hint(machines: dict, outputs: dict) -> str:
    """A suggestion for torch machines with two or more outputs and no ``distribution``:
    their outputs may be logits, better compared by KL than by a squared error."""
    hints = []
    for key, machine in machines.items():
        size = int(np.prod(outputs[key].shape[2:])) if outputs[key].dim() > 2 else 1
        if isinstance(machine, nn.Module) and size >= 2 and not has_distribution(machine):
            hints.append(f"machine {key} is a torch module with {size} outputs and no "
                         f"distribution(y): if they are logits, declare it (e.g. "
                         f"trajprobe.adapters.wrap(..., distribution='categorical')) to compare "
                         f"by KL instead of a squared error of logits")
    return "; ".join(hints)


def _features(machine: sm.StateMachine, y: torch.Tensor, discrete: bool) -> np.ndarray:
    """g(y) ``[N, F]``: the probability vector (discrete distributions) or the raw output."""
    if discrete:
        probs = distribution_of(machine, y.detach().to(torch.float64), "machine").probs
        y = torch.stack([1 - probs, probs], dim=-1) if probs.dim() == 1 else probs
    return y.detach().to("cpu", torch.float64).reshape(y.shape[0], -1).numpy()


def discrete_pair(a, y_a: torch.Tensor, b, y_b: torch.Tensor) -> bool:
    """True when both machines' outputs are discrete distributions with ``probs``."""
    if not (has_distribution(a) and has_distribution(b)):
        return False
    try:
        pa = distribution_of(a, y_a[:1].detach().to(torch.float64), "a")
        pb = distribution_of(b, y_b[:1].detach().to(torch.float64), "b")
    except (ValueError, TypeError):
        return False
    return all(p.has_enumerate_support and hasattr(p, "probs") for p in (pa, pb))


def _kl_items(src, y_src: torch.Tensor, dst, y_dst: torch.Tensor, n_points: int) -> np.ndarray:
    """KL(π^src ‖ π^dst) per item ``[N]``; NaN where dst's distribution is invalid."""
    y_src, y_dst = y_src.detach().to(torch.float64), y_dst.detach().to(torch.float64)
    out = np.full(y_src.shape[0], np.nan)
    finite = torch.isfinite(y_dst.reshape(y_dst.shape[0], -1)).all(1)
    try:
        p, q = distribution_of(src, y_src, "source"), distribution_of(dst, y_dst, "target")
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


class OutputScorer:
    """Per-item D_o of one direction src → dst (module docstring).

    Args:
        measure: ``"kl"`` or ``"error"``.
        src, dst: the machines; ``y_src`` ``[E, T, ...]`` the source's outputs and
            ``x_dst`` ``[E, T, ...]`` the target's inputs (its own encoding).
        n_points: quadrature nodes for KLs without a closed form.

    Attributes after construction: ``discrete``, ``variance`` (of g(y^src); NaN under KL),
    ``variance_dst`` (of g(y^dst)) and ``level`` (root mean square of g(y^src)) under the
    error, ``reasons`` (why the normalised error is undefined, in words).
    """

    def __init__(self, measure: str, src, y_src: torch.Tensor, dst, y_dst: torch.Tensor,
                 x_dst: torch.Tensor, n_points: int, names: tuple[str, str]):
        self.measure, self.src, self.dst, self.n_points = measure, src, dst, n_points
        self.y_src, self.x_dst = y_src.detach().cpu(), x_dst
        flat_src, flat_dst = self.y_src.flatten(0, 1), y_dst.detach().cpu().flatten(0, 1)
        self.discrete = measure == "error" and discrete_pair(src, flat_src, dst, flat_dst)
        self.variance, self.reasons = math.nan, []
        self.variance_dst, self.level = math.nan, math.nan
        if measure == "error":
            self._check_variance(flat_src, flat_dst, names)
        self.dtype, self.device = sm.machine_dtype(dst), sm.machine_device(dst)

    def _check_variance(self, y_src: torch.Tensor, y_dst: torch.Tensor, names) -> None:
        src, dst = names
        g = _features(self.src, y_src, self.discrete)
        g_dst = _features(self.dst, y_dst, self.discrete)
        if g.shape[1] != g_dst.shape[1]:
            self.reasons.append(
                f"outputs of machine {src} ({g.shape[1]} features) and {dst} ({g_dst.shape[1]}) "
                "differ in size: the output error is undefined (give both machines "
                "distribution(y) to compare by KL)")
            return
        variance = float(((g - g.mean(0)) ** 2).sum(1).mean())
        if not variance > 0:
            self.reasons.append(f"machine {src}'s outputs have no variance: the normalised "
                                "output error is undefined")
            return
        self.variance_dst = float(((g_dst - g_dst.mean(0)) ** 2).sum(1).mean())
        self.level = float(math.sqrt((g**2).sum(1).mean()))
        self.variance = variance

    def outputs(self, episodes: np.ndarray, states: np.ndarray) -> torch.Tensor:
        """f_dst(x^dst, state) for states ``[C, K, T, S]`` of ``episodes`` ``[K]``:
        ``[C, K, T, ...]``. A candidate whose state is the same at every item (a constant
        map) goes through :meth:`grid` when the target has ``output_many``: its K·T inputs
        from the one state, whose recurrent term is then computed once, and each distinct
        input once."""
        n_c, n_k, n_t = states.shape[:3]
        x = self.x_dst[torch.as_tensor(episodes)].flatten(0, 1).to(self.device)
        flat = states.reshape(n_c, n_k * n_t, -1)
        many = getattr(self.dst, "output_many", None)
        fixed = ((flat == flat[:, :1]).all(axis=(1, 2)) if callable(many)
                 else np.zeros(n_c, dtype=bool))
        parts = {}
        with torch.inference_mode():  # every candidate in one batch
            moving = np.flatnonzero(~fixed)
            if moving.size or not fixed.any():
                rows = flat if moving.size == n_c else flat[moving]  # no copy when all move
                vec = torch.as_tensor(rows.reshape(moving.size * n_k * n_t, -1),
                                      dtype=self.dtype, device=self.device)
                xs = x.repeat(moving.size, *([1] * (x.dim() - 1)))
                y = torch.cat([sm.output(self.dst, xs[i:i + BLOCK_ITEMS],
                                         sm.state_from_vector(self.dst, vec[i:i + BLOCK_ITEMS]))
                               for i in range(0, max(vec.shape[0], 1), BLOCK_ITEMS)])
                parts["moving"] = y.reshape(moving.size, n_k * n_t, *y.shape[1:])
            if fixed.any():
                one = torch.as_tensor(flat[fixed, 0], dtype=self.dtype, device=self.device)
                parts["fixed"] = self.grid(one, x)
            if len(parts) == 1:
                (y,) = parts.values()
            else:
                y = parts["moving"].new_empty((n_c, *parts["moving"].shape[1:]))
                y[torch.as_tensor(moving)] = parts["moving"]
                y[torch.as_tensor(np.flatnonzero(fixed))] = parts["fixed"].to(y.dtype)
        return y.reshape(n_c, n_k, n_t, *y.shape[2:])

    def grid(self, states: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """f_dst(x_i, s_c) for every state ``[C, S]`` at every input ``[n, ...]``:
        ``[C, n, ...]``. Each distinct input is evaluated once (:func:`distinct_rows`), N
        inputs from one state at once through the target's ``output_many`` when it has one,
        at most :data:`CHUNK_ITEMS` items per call."""
        rows, index = distinct_rows(x)
        dst, n = self.dst, rows.shape[0]
        many = getattr(dst, "output_many", None)
        per_chunk = max(1, CHUNK_ITEMS // n)
        out = []
        with torch.inference_mode():
            for start in range(0, states.shape[0], per_chunk):
                chunk = states[start:start + per_chunk]
                state = sm.state_from_vector(dst, chunk)
                if callable(many):
                    y = many(rows.unsqueeze(0).expand(chunk.shape[0], *rows.shape), state)
                else:
                    flat_x = rows.repeat(chunk.shape[0], *([1] * (rows.dim() - 1)))
                    y = sm.output(dst, flat_x, sm.repeat(state, n))
                    y = y.reshape(chunk.shape[0], n, *y.shape[1:])
                out.append(y)
        return torch.cat(out)[:, index]

    def items(self, episodes: np.ndarray, states: np.ndarray, *, keep_outputs: bool = False):
        """Per-item D_o ``[C, K, T]`` for candidate target states ``[C, K, T, S]``; with
        ``keep_outputs`` also the target's outputs ``[C, K·T, ...]`` (a tensor)."""
        n_c, n_k, n_t = states.shape[:3]
        out = np.full((n_c, n_k * n_t), np.nan)
        y_src = self.y_src[torch.as_tensor(episodes)].flatten(0, 1)
        per_chunk = max(1, CHUNK_ITEMS // (n_k * n_t))
        kept = []
        for start in range(0, n_c, per_chunk):
            chunk = states[start:start + per_chunk]
            y = self.outputs(episodes, chunk).flatten(0, 2)
            if keep_outputs:
                kept.append(y.reshape(chunk.shape[0], n_k * n_t, *y.shape[1:]))
            if self.measure == "error" and not self.variance > 0:
                continue
            ref = y_src.repeat(chunk.shape[0], *([1] * (y_src.dim() - 1)))
            out[start:start + chunk.shape[0]] = self._score(ref, y).reshape(chunk.shape[0], -1)
        out = out.reshape(n_c, n_k, n_t)
        return (out, torch.cat(kept)) if keep_outputs else out

    def mean_prediction_loss(self) -> float:
        """Per-item D_o of always predicting the source's mean output (its mean probability
        vector under a categorical or Bernoulli KL): 1 under the error, mean KL(p ‖ p̄)
        under such a KL, NaN otherwise (no mean in the family)."""
        if self.measure == "error":
            return 1.0 if self.variance > 0 else math.nan
        flat = self.y_src.flatten(0, 1)
        if not discrete_pair(self.src, flat, self.src, flat):
            return math.nan
        p = _features(self.src, flat, True)
        mean = p.mean(0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float((xlogy(p, p) - xlogy(p, mean)).sum(1).mean())

    def features_of(self, machine, y: torch.Tensor, discrete: bool | None = None) -> np.ndarray:
        """g(y) ``[N, F]`` of ``machine``'s outputs ``[N, ...]`` (the probability vector
        when ``discrete``; default: as the normalised error reads them)."""
        return _features(machine, y, self.discrete if discrete is None else discrete)

    def score_items(self, y_src: torch.Tensor, y_emb: torch.Tensor) -> np.ndarray:
        """Per-item D_o ``[N]`` of target outputs ``y_emb`` against ``y_src`` (``[N, ...]``)."""
        return self._score(y_src, y_emb)

    def _score(self, y_src: torch.Tensor, y_emb: torch.Tensor) -> np.ndarray:
        if self.measure == "kl":
            return _kl_items(self.src, y_src, self.dst, y_emb, self.n_points)
        g_src = _features(self.src, y_src, self.discrete)
        try:
            g_emb = _features(self.dst, y_emb, self.discrete)
        except ValueError:  # invalid distribution parameters at some embedded states
            return np.full(g_src.shape[0], np.nan)
        err = ((g_src - g_emb) ** 2).sum(1) / self.variance
        err[~np.isfinite(err)] = np.nan
        return err
