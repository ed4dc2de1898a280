"""Bayesian wind tunnels (Agarwal, Dalal & Misra 2025): tasks with an exact posterior.

Every task here is an open-loop prediction task whose Bayes-optimal predictive is known
in closed form and whose episodes cannot be memorised (each draws fresh latent structure).
``task.bayes_machine()`` gives that exact Bayes machine
(:mod:`trajprobe.tasks.wind_tunnel_posteriors`), and :func:`trajprobe.posterior_error`
scores any machine against it in bits, position by position.

* ``BijectionElimination(V)``: a bijection π on V symbols per episode; input
  [one-hot x_t, one-hot π(x_{t-1})] ``[2V]``; target π(x_t); Bayes: ``BijectionPosterior``.
* ``AssociativeRecall(K, V, P)``: a value per key, P keys stored; input [one-hot k_t,
  one-hot value (store) or zeros (query)] ``[K + V]``; target the value of k_t; Bayes:
  ``AssociativeRecallPosterior``.
* ``HMMFiltering(K)``: a hidden path z_1..z_T of a known HMM; input [one-hot x_{t-1},
  flag] ``[M + 1]``; target x_t; Bayes: ``HMMForwardFilter`` (the forward algorithm).
* ``RegimeSwitchingCoin(α, β, h)``: biases redrawn at change points; input [x_{t-1}, flag]
  ``[2]``; target x_t; Bayes: ``ChangePointBetaBernoulli`` (Adams & MacKay 2007).

At t = 1 the "previous" part of the input is zero (and the flag 0): the output of step 1
is the prior predictive. Targets are ``[E, T]`` class indices (long), or 0/1 floats for
the coin, so ``task.distribution(y).log_prob(targets)`` scores them; ``distribution`` is
the meta-learner's head (Categorical or Bernoulli logits). Like the prediction tasks,
the measurement of :func:`trajprobe.measure` is the log-loss of every prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import distributions as D

from trajprobe.heads import HEADS
from trajprobe.task_protocol import Episodes, Seed, make_generator
from trajprobe.tasks.exchangeable import permute_examples
from trajprobe.tasks.prediction import PredictionTask
from trajprobe.tasks.wind_tunnel_posteriors import (
    AssociativeRecallPosterior,
    BijectionPosterior,
    ChangePointBetaBernoulli,
    HMMForwardFilter,
)
from trajprobe.validation import check_positive, check_positive_int

__all__ = [
    "AssociativeRecall",
    "BijectionElimination",
    "HMMFiltering",
    "RegimeSwitchingCoin",
    "default_hmm",
]


def _shift(one_hot: torch.Tensor) -> torch.Tensor:
    """Row t of the result is row t − 1 of ``one_hot`` ``[E, T, V]`` (zeros at t = 1)."""
    shifted = torch.zeros_like(one_hot)
    shifted[:, 1:] = one_hot[:, :-1]
    return shifted


class _WindTunnel(PredictionTask):
    """A prediction task with an exact Bayes machine, of class ``bayes_class``."""

    bayes_class: ClassVar[type]

    def bayes_machine(self, *, device: torch.device | str | None = None) -> Any:
        """The exact Bayes machine of this task, in float64 (module docstring)."""
        return self.bayes_class.from_task(self, device=device)


class _Categorical(_WindTunnel):
    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """The meta-learner's head: Categorical(logits = y) from ``y`` ``[..., output_size]``."""
        return HEADS["categorical"](y)


@dataclass(frozen=True)
class BijectionElimination(_Categorical):
    """A hidden random bijection π on V symbols; at step t predict π(x_t), then see it.

    Each episode draws π uniformly from the V! bijections and queries x_1..x_T, i.i.d.
    uniform over the V symbols (``fresh_queries=False``, repeats are certain) or without
    repetition (``fresh_queries=True``, T ≤ V: the Bayes entropy is exactly log₂(V − t + 1)).
    Input at t ``[2V]`` = [one-hot x_t, one-hot π(x_{t-1})]; target π(x_t) (long);
    params ``"permutation"`` ``[E, V]`` (π as a table) and ``"queries"`` ``[E, T]``.
    The Bayes predictive is uniform over the images not yet revealed for a new query and
    certain for a revealed one (``BijectionPosterior``).
    """

    n_symbols: int = 8
    fresh_queries: bool = False
    bayes_class = BijectionPosterior

    def __post_init__(self) -> None:
        check_positive_int(self.n_symbols, "n_symbols")
        if self.n_symbols < 2:
            raise ValueError(f"n_symbols: expected at least 2 symbols, got {self.n_symbols}")

    @property
    def input_size(self) -> int:  # type: ignore[override]
        """2V: the query and the previous query's image, one-hot."""
        return 2 * self.n_symbols

    @property
    def output_size(self) -> int:  # type: ignore[override]
        """V logits."""
        return self.n_symbols

    def sample(self, n_episodes: int, n_steps: int, *, seed: Seed = None,
               device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> Episodes:
        """Draw π and the queries per episode (class docstring for the layout)."""
        e, t, v = (check_positive_int(n_episodes, "n_episodes"),
                   check_positive_int(n_steps, "n_steps"), self.n_symbols)
        if self.fresh_queries and t > v:
            raise ValueError(f"n_steps: fresh queries need n_steps <= n_symbols = {v}, got {t}")
        gen = make_generator(seed, device)
        perm = torch.rand(e, v, generator=gen, device=gen.device).argsort(1)
        if self.fresh_queries:
            queries = torch.rand(e, v, generator=gen, device=gen.device).argsort(1)[:, :t]
        else:
            queries = torch.randint(0, v, (e, t), generator=gen, device=gen.device)
        images = perm.gather(1, queries)
        inputs = torch.cat([F.one_hot(queries, v), _shift(F.one_hot(images, v))], dim=2)
        return Episodes(inputs=inputs.to(device=device, dtype=dtype),
                        targets=images.to(device),
                        params={"permutation": perm.to(device), "queries": queries.to(device)})

    def permute_history(self, episodes: Episodes, t: int, *, seed: Seed = None
                        ) -> torch.Tensor:
        """Inputs ``[E, T, 2V]`` whose revealed pairs (x_i, π(x_i)), i < t, are shuffled per
        episode, x_t left pending: the posterior over π after step t is unchanged (the
        sufficiency test's hook, :func:`~trajprobe.tasks.exchangeable.permute_examples`)."""
        return permute_examples(episodes.inputs, t, self.n_symbols, seed=seed)


@dataclass(frozen=True)
class AssociativeRecall(_Categorical):
    """Key–value pairs, then queries: recall the value of a stored key.

    Each episode gives every one of K keys a value drawn uniformly from V values,
    independently. Steps 1..P (``n_pairs``) store P distinct keys, chosen at random: the
    input shows the key and its value (the target is that value, a copy). Every later step
    queries a key drawn uniformly from all K (its value part is zero): stored with
    probability P/K, then certain, else uniform over the V values. Input ``[K + V]``;
    target the value (long); params ``"values"`` ``[E, K]`` and ``"keys"`` ``[E, T]``.
    """

    n_keys: int = 8
    n_values: int = 8
    n_pairs: int = 4
    bayes_class = AssociativeRecallPosterior

    def __post_init__(self) -> None:
        for name in ("n_keys", "n_values", "n_pairs"):
            check_positive_int(getattr(self, name), name)
        if self.n_values < 2:
            raise ValueError(f"n_values: expected at least 2 values, got {self.n_values}")
        if self.n_pairs > self.n_keys:
            raise ValueError(f"n_pairs: expected at most n_keys = {self.n_keys} stored pairs "
                             f"(distinct keys), got {self.n_pairs}")

    @property
    def input_size(self) -> int:  # type: ignore[override]
        """K + V: the key and the value (zeros at a query), one-hot."""
        return self.n_keys + self.n_values

    @property
    def output_size(self) -> int:  # type: ignore[override]
        """V logits."""
        return self.n_values

    def sample(self, n_episodes: int, n_steps: int, *, seed: Seed = None,
               device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> Episodes:
        """Draw the values, the stored keys and the queries (class docstring)."""
        e, t = check_positive_int(n_episodes, "n_episodes"), check_positive_int(n_steps, "n_steps")
        k, v, p = self.n_keys, self.n_values, min(self.n_pairs, t)
        gen = make_generator(seed, device)
        values = torch.randint(0, v, (e, k), generator=gen, device=gen.device)
        stored = torch.rand(e, k, generator=gen, device=gen.device).argsort(1)[:, :p]
        queries = torch.randint(0, k, (e, t - p), generator=gen, device=gen.device)
        keys = torch.cat([stored, queries], dim=1)
        targets = values.gather(1, keys)
        shown = F.one_hot(targets, v)
        shown[:, p:] = 0
        inputs = torch.cat([F.one_hot(keys, k), shown], dim=2)
        return Episodes(inputs=inputs.to(device=device, dtype=dtype), targets=targets.to(device),
                        params={"values": values.to(device), "keys": keys.to(device)})


def default_hmm(n_states: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The default HMM of :class:`HMMFiltering`: sticky, drifting, noisy.

    transition[k, k] = 0.75, transition[k, k + 1 mod K] = 0.2, the other 0.05 spread
    evenly over the remaining K − 2 states (K = 2: 0.8 stay, 0.2 switch); emission over
    M = K symbols: 0.6 on symbol k, 0.4 spread over the others; initial uniform.

    Returns:
        ``(transition [K, K], emission [K, K], initial [K])`` float64.
    """
    k = check_positive_int(n_states, "n_states")
    if k < 2:
        raise ValueError(f"n_states: expected at least 2 states, got {k}")
    eye = np.eye(k)
    step = np.roll(eye, 1, axis=1)
    if k == 2:
        transition = 0.8 * eye + 0.2 * step
    else:
        transition = 0.75 * eye + 0.2 * step + 0.05 / (k - 2) * (1 - eye - step)
    emission = 0.6 * eye + 0.4 / (k - 1) * (1 - eye)
    return transition, emission, np.full(k, 1.0 / k)


def _as_matrix(value: Any) -> tuple:
    return tuple(tuple(float(x) for x in row) for row in np.asarray(value, dtype=float))


@dataclass(frozen=True)
class HMMFiltering(_Categorical):
    """Predict the next observation of a hidden Markov model with known matrices.

    K hidden states, M observation symbols; z_1 ~ initial, z_t ~ transition[z_{t-1}],
    x_t ~ emission[z_t]. Only the hidden path is drawn per episode; the Bayes predictive
    P(x_t | x_<t) is the forward algorithm
    (:class:`~trajprobe.tasks.wind_tunnel_posteriors.HMMForwardFilter`). Matrices not given
    are :func:`default_hmm` ``(n_states)``. Input ``[M + 1]`` = [one-hot x_{t-1}, flag];
    target x_t (long); params ``"states"`` ``[E, T]`` the hidden path.
    """

    n_states: int = 5
    """K when ``transition`` is not given (else K = len(transition))."""
    transition: tuple | None = None
    emission: tuple | None = None
    initial: tuple | None = None
    bayes_class = HMMForwardFilter

    def __post_init__(self) -> None:
        given = self.transition is not None
        n = len(self.transition) if given else self.n_states
        defaults = default_hmm(n)
        for name, default in zip(("transition", "emission", "initial"), defaults, strict=True):
            value = getattr(self, name)
            value = default if value is None else value
            shaped = _as_matrix(value) if np.ndim(value) == 2 else tuple(
                float(x) for x in np.asarray(value, dtype=float))
            object.__setattr__(self, name, shaped)
        object.__setattr__(self, "n_states", n)
        self.bayes_machine()  # validates shapes and rows (ValueError naming the matrix)

    @property
    def n_symbols(self) -> int:
        """M."""
        return len(self.emission[0])

    @property
    def feature_size(self) -> int:  # type: ignore[override]
        """M (one-hot)."""
        return self.n_symbols

    @property
    def output_size(self) -> int:  # type: ignore[override]
        """M logits."""
        return self.n_symbols

    def features(self, observations: torch.Tensor) -> torch.Tensor:
        """One-hot ``[E, T, M]`` of symbols ``[E, T]``."""
        return F.one_hot(observations.long(), self.n_symbols)

    def _draw(self, rng: np.random.Generator, n_episodes: int, n_steps: int):
        transition, emission = np.asarray(self.transition), np.asarray(self.emission)
        states = np.empty((n_episodes, n_steps), dtype=np.int64)
        states[:, 0] = _categorical(rng, np.asarray(self.initial)[None].repeat(n_episodes, 0))
        for t in range(1, n_steps):
            states[:, t] = _categorical(rng, transition[states[:, t - 1]])
        obs = _categorical(rng, emission[states.reshape(-1)]).reshape(n_episodes, n_steps)
        return obs, {"states": states}


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of ``probs`` ``[N, K]``: ``[N]`` int64."""
    u = rng.random((probs.shape[0], 1))
    return np.minimum((u > np.cumsum(probs, 1)).sum(1), probs.shape[1] - 1).astype(np.int64)


@dataclass(frozen=True)
class RegimeSwitchingCoin(_WindTunnel):
    """A coin whose bias is redrawn at change points (the non-stationary task of
    nonstationary_mbml): p_1 ~ Beta(α, β); for t ≥ 2, with probability ``hazard`` a change
    point redraws p_t ~ Beta(α, β), else p_t = p_{t-1}; x_t ~ Bernoulli(p_t).

    The Bayes predictive is Bayesian online change-point detection (Adams & MacKay 2007,
    :class:`~trajprobe.tasks.wind_tunnel_posteriors.ChangePointBetaBernoulli`), exact for
    episodes of up to ``horizon`` steps (its state holds run lengths 0..horizon − 1; a
    longer episode is a ValueError). Input ``[2]`` = [x_{t-1}, flag]; target x_t (0/1
    float); params ``"bias"`` ``[E, T]`` p_t and ``"change"`` ``[E, T]`` (1 at a change
    point, t ≥ 2). Meta-learner head: 1 logit.
    """

    alpha: float = 1.0
    beta: float = 1.0
    hazard: float = 0.1
    horizon: int = 100
    feature_size = 1
    bayes_class = ChangePointBetaBernoulli
    output_size = 1

    def __post_init__(self) -> None:
        check_positive(self.alpha, "alpha")
        check_positive(self.beta, "beta")
        check_positive(self.hazard, "hazard", strict=False)
        if self.hazard > 1:
            raise ValueError(f"hazard: expected a probability in [0, 1], got {self.hazard!r}")
        check_positive_int(self.horizon, "horizon")

    def sample(self, n_episodes: int, n_steps: int, *, seed: Seed = None,
               device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> Episodes:
        """Draw the biases and the flips (class docstring); n_steps ≤ ``horizon``."""
        if check_positive_int(n_steps, "n_steps") > self.horizon:
            raise ValueError(f"n_steps: expected at most horizon = {self.horizon} (the exact "
                             f"Bayes machine's longest run), got {n_steps}; build "
                             f"RegimeSwitchingCoin(horizon={n_steps}, ...)")
        return super().sample(n_episodes, n_steps, seed=seed, device=device, dtype=dtype)

    def _draw(self, rng: np.random.Generator, n_episodes: int, n_steps: int):
        change = rng.random((n_episodes, n_steps)) < self.hazard
        change[:, 0] = False
        fresh = rng.beta(self.alpha, self.beta, size=(n_episodes, n_steps))
        regime = np.maximum.accumulate(np.where(change, np.arange(n_steps), 0), axis=1)
        bias = np.take_along_axis(fresh, regime, axis=1)
        x = (rng.random((n_episodes, n_steps)) < bias).astype(np.float64)
        return x, {"bias": bias, "change": change.astype(np.float64)}

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """Bernoulli(logits) from raw outputs ``[..., 1]``."""
        return HEADS["bernoulli"](y)

