"""Exact Bayes machines of the Bayesian wind tunnels (Agarwal, Dalal & Misra 2025).

A wind tunnel is a task whose posterior predictive is known in closed form, so a learner's
predictive can be scored against it in bits (:func:`trajprobe.posterior_error`). Each
machine here is a :class:`~trajprobe.StateMachine` with ``distribution``; its state is the
task's sufficient statistic, its inputs are exactly the task's encoding
(:mod:`trajprobe.tasks.wind_tunnels`), its output at t the posterior predictive of the
target of step t, and it computes in float64.

=========================  =================================  ==========================
machine                    state (sufficient statistic)       output y_t, distribution
=========================  =================================  ==========================
BijectionPosterior         revealed pairs ``[B, V, V]``,      P(π(x_t)) ``[B, V]``,
                           last query ``[B, V]``              Categorical
AssociativeRecallPosterior stored pairs ``[B, K, V]``         P(value) ``[B, V]``,
                                                              Categorical
HMMForwardFilter           belief P(z_t | x_<t) ``[B, K]``    P(x_t) ``[B, M]``,
                                                              Categorical
ChangePointBetaBernoulli   run-length posterior ``[B, R]``,   P(x_t = 1) ``[B, 1]``,
                           heads per run length ``[B, R]``    Bernoulli
=========================  =================================  ==========================

The machines live beside the tasks (in the core) so that a task can hand out its own
Bayes machine (``task.bayes_machine()``) without the core importing the reference layer;
:mod:`trajprobe.reference_models.wind_tunnels` is their public home.

States not produced by the machine's own updates (``state_from_vector``, e.g. a state
mapped in by a simulation map) are used as they are: the maths below is linear or
normalised in them, so a fractional state gives a mixture, and every output is
renormalised to a distribution.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import distributions as D

from trajprobe.devices import resolve_device
from trajprobe.validation import check_finite_tensor, check_positive_int

__all__ = [
    "AssociativeRecallPosterior",
    "BijectionPosterior",
    "BijectionState",
    "ChangePointBetaBernoulli",
    "ChangePointState",
    "HMMForwardFilter",
]

_TINY = 1e-300
"""Floor of a normaliser (an all-zero row of a state that no history produces)."""


def recall(table: torch.Tensor, key: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
    """The predictive of the value bound to ``key``: certain if stored, else uniform on ``free``.

    y = k·R + (1 − |k·R|) · free / Σ free, renormalised (uniform over all V values where
    ``free`` is all zero, which only a state no history produces can give: the output stays
    a distribution).

    Args:
        table: ``[B, K, V]`` row k = one-hot of the value stored for key k (zeros if none).
        key: ``[B, K]`` one-hot query key.
        free: ``[B, V]`` indicator of the values an unstored key can take.

    Returns:
        ``[B, V]`` probabilities.
    """
    known = torch.einsum("bk,bkv->bv", key, table)
    mass = known.sum(-1, keepdim=True).clamp(0.0, 1.0)
    total = free.sum(-1, keepdim=True)
    uniform = torch.where(total > 0, free / total.clamp_min(_TINY),
                          torch.full_like(free, 1.0 / free.shape[-1]))
    y = known.clamp_min(0.0) + (1.0 - mass) * uniform
    return y / y.sum(-1, keepdim=True).clamp_min(_TINY)


class _Machine:
    """Shared validation, device and dtype of the wind-tunnel Bayes machines."""

    input_size: int
    output_size: int

    def __init__(self, *, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        if not dtype.is_floating_point:
            raise TypeError(f"dtype: expected a floating dtype, got {dtype}")
        self.dtype = dtype
        self.device = resolve_device(device)

    def _zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(*shape, dtype=self.dtype, device=self.device)

    def _input(self, x: Any, batch: int, layout: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor [B, {self.input_size}], "
                            f"got {type(x).__name__}")
        if x.shape != (batch, self.input_size):
            raise ValueError(f"x: expected shape [{batch}, {self.input_size}] ({layout}), "
                             f"got {tuple(x.shape)}")
        check_finite_tensor(x, "x")
        return x.to(device=self.device, dtype=self.dtype)

    def _leaf(self, leaf: Any, shape: tuple[int, ...], name: str) -> torch.Tensor:
        if not isinstance(leaf, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor [B, {', '.join(map(str, shape))}], "
                            f"got {type(leaf).__name__}")
        if leaf.dim() != len(shape) + 1 or tuple(leaf.shape[1:]) != shape:
            raise ValueError(f"{name}: expected shape [B, {', '.join(map(str, shape))}], "
                             f"got {tuple(leaf.shape)}")
        check_finite_tensor(leaf, name)
        return leaf.to(device=self.device, dtype=self.dtype)

    def output(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        """The output function f(x, s) alone."""
        return self.step(x, state)[0]

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"

    def _config(self) -> dict:
        return {}


class _CategoricalOutput:
    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """Categorical(probs = y) from ``y`` ``[..., V]``."""
        return D.Categorical(probs=y)


class BijectionState(NamedTuple):
    """State of :class:`BijectionPosterior`.

    Attributes:
        revealed: ``[B, V, V]`` row i = one-hot π(i) once revealed, else zeros.
        query: ``[B, V]`` one-hot of the last query x_{t-1}, whose image the next input shows.
    """

    revealed: torch.Tensor
    query: torch.Tensor


class BijectionPosterior(_CategoricalOutput, _Machine):
    """Bayes machine of bijection elimination: a uniform prior over the V! bijections π.

    Input at t ``[B, 2V]`` = [one-hot x_t, one-hot π(x_{t-1})] (zeros at t = 1). The step
    records the pair (x_{t-1}, π(x_{t-1})) in R, then predicts π(x_t): certain if x_t was
    revealed, else uniform over the V − k images not yet revealed (entropy log₂(V − k)).
    """

    def __init__(self, n_symbols: int = 8, **kwargs: Any) -> None:
        self.n_symbols = check_positive_int(n_symbols, "n_symbols")
        self.input_size, self.output_size = 2 * self.n_symbols, self.n_symbols
        super().__init__(**kwargs)

    @classmethod
    def from_task(cls, task: Any, **kwargs: Any) -> BijectionPosterior:
        """The Bayes machine of a :class:`~trajprobe.tasks.BijectionElimination`."""
        return cls(task.n_symbols, **kwargs)

    def _config(self) -> dict:
        return {"n_symbols": self.n_symbols}

    def initial_state(self, batch_size: int) -> BijectionState:
        """Nothing revealed, no pending query."""
        b, v = check_positive_int(batch_size, "batch_size"), self.n_symbols
        return BijectionState(self._zeros(b, v, v), self._zeros(b, v))

    def step(self, x: torch.Tensor, state: BijectionState) -> tuple[torch.Tensor, BijectionState]:
        """Record (x_{t-1}, π(x_{t-1})) and predict π(x_t).

        Returns:
            ``(y_t [B, V], s_t)``: the posterior predictive of π(x_t) and the new state.
        """
        v = self.n_symbols
        revealed = self._leaf(state[0], (v, v), "state.revealed")
        pending = self._leaf(state[1], (v,), "state.query")
        x = self._input(x, revealed.shape[0], "one-hot query x_t, one-hot image π(x_{t-1})")
        query, image = x[:, :v], x[:, v:]
        revealed = (revealed + pending[:, :, None] * image[:, None, :]).clamp(0.0, 1.0)
        free = (1.0 - revealed.sum(1)).clamp(0.0, 1.0)
        return recall(revealed, query, free), BijectionState(revealed, query)


class AssociativeRecallPosterior(_CategoricalOutput, _Machine):
    """Bayes machine of associative recall: every key's value uniform and independent.

    Input at t ``[B, K + V]`` = [one-hot key k_t, one-hot value] (the value part is zero at
    a query). A store step binds k_t to its value and predicts it (certain); a query
    predicts the stored value, or uniform over the V values for a key not stored.
    """

    def __init__(self, n_keys: int = 8, n_values: int = 8, **kwargs: Any) -> None:
        self.n_keys = check_positive_int(n_keys, "n_keys")
        self.n_values = check_positive_int(n_values, "n_values")
        self.input_size, self.output_size = self.n_keys + self.n_values, self.n_values
        super().__init__(**kwargs)

    @classmethod
    def from_task(cls, task: Any, **kwargs: Any) -> AssociativeRecallPosterior:
        """The Bayes machine of a :class:`~trajprobe.tasks.AssociativeRecall`."""
        return cls(task.n_keys, task.n_values, **kwargs)

    def _config(self) -> dict:
        return {"n_keys": self.n_keys, "n_values": self.n_values}

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Nothing stored: R = 0 ``[B, K, V]``."""
        return self._zeros(check_positive_int(batch_size, "batch_size"),
                           self.n_keys, self.n_values)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (k_t, v_t) if shown, then predict the value of k_t: ``(y_t [B, V], R_t)``."""
        table = self._leaf(state, (self.n_keys, self.n_values), "state")
        x = self._input(x, table.shape[0], "one-hot key, one-hot value or zeros")
        key, value = x[:, : self.n_keys], x[:, self.n_keys:]
        table = (table + key[:, :, None] * value[:, None, :]).clamp(0.0, 1.0)
        free = torch.ones_like(value)
        return recall(table, key, free), table


def _stochastic(values: Any, shape: tuple[int, ...], name: str) -> torch.Tensor:
    """A float64 tensor of ``shape`` whose last axis sums to 1 (ValueError otherwise)."""
    matrix = torch.as_tensor(values, dtype=torch.float64)
    if tuple(matrix.shape) != shape:
        raise ValueError(f"{name}: expected shape {list(shape)}, got {list(matrix.shape)}")
    if not bool(torch.isfinite(matrix).all()) or bool((matrix < 0).any()):
        raise ValueError(f"{name}: expected finite non-negative probabilities")
    sums = matrix.sum(-1)
    if not bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-9)):
        raise ValueError(f"{name}: expected every row to sum to 1, got sums "
                         f"{[round(float(s), 6) for s in sums.reshape(-1)]}")
    return matrix


class HMMForwardFilter(_CategoricalOutput, _Machine):
    """Bayes machine of HMM filtering: the forward algorithm.

    Hidden z_t ∈ {0..K-1}: z_1 ~ initial, z_t | z_{t-1} ~ transition[z_{t-1}];
    x_t | z_t ~ emission[z_t] over M symbols. State b_t = P(z_t | x_1..x_{t-1}) ``[B, K]``
    (s_0 = s_1 = initial). Input ``[B, M + 1]`` = [one-hot x_{t-1}, flag] (flag 0 at t = 1):
    b_t = normalise(b_{t-1} ⊙ emission[:, x_{t-1}]) · transition; output y_t = b_t · emission,
    the predictive P(x_t | x_<t) ``[B, M]``. A fractional flag w mixes: w·b_t + (1 − w)·b_{t-1}.
    """

    def __init__(self, transition: Any, emission: Any, initial: Any, **kwargs: Any) -> None:
        transition = torch.as_tensor(transition, dtype=torch.float64)
        k = transition.shape[0] if transition.dim() == 2 else 0
        self.transition = _stochastic(transition, (k, k), "transition")
        emission = torch.as_tensor(emission, dtype=torch.float64)
        m = emission.shape[-1] if emission.dim() == 2 else 0
        self.emission = _stochastic(emission, (k, m), "emission")
        self.initial = _stochastic(initial, (k,), "initial")
        self.n_states, self.n_symbols = k, m
        self.input_size, self.output_size = m + 1, m
        super().__init__(**kwargs)
        self.transition, self.emission, self.initial = (
            t.to(device=self.device, dtype=self.dtype)
            for t in (self.transition, self.emission, self.initial))

    @classmethod
    def from_task(cls, task: Any, **kwargs: Any) -> HMMForwardFilter:
        """The Bayes machine of an :class:`~trajprobe.tasks.HMMFiltering`."""
        return cls(task.transition, task.emission, task.initial, **kwargs)

    def _config(self) -> dict:
        return {"n_states": self.n_states, "n_symbols": self.n_symbols}

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """The initial distribution of z_1, ``[B, K]``."""
        return self.initial.expand(check_positive_int(batch_size, "batch_size"), -1).clone()

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward step on x_{t-1}; predict x_t: ``(y_t [B, M], b_t [B, K])``."""
        belief = self._leaf(state, (self.n_states,), "state").clamp_min(0.0)
        belief = belief / belief.sum(-1, keepdim=True).clamp_min(_TINY)
        x = self._input(x, belief.shape[0], "one-hot x_{t-1}, flag")
        obs, w = x[:, : self.n_symbols], x[:, self.n_symbols:].clamp(0.0, 1.0)
        filtered = belief * (obs @ self.emission.T)
        filtered = filtered / filtered.sum(-1, keepdim=True).clamp_min(_TINY)
        belief = w * (filtered @ self.transition) + (1.0 - w) * belief
        return belief @ self.emission, belief


class ChangePointState(NamedTuple):
    """State of :class:`ChangePointBetaBernoulli` (index r = run length, 0..R-1).

    Attributes:
        weights: ``[B, R]`` P(r_t = r | x_1..x_{t-1}), the run-length posterior.
        heads: ``[B, R]`` ones among the last r observations (the run's Beta counts are
            α + heads and β + r − heads).
    """

    weights: torch.Tensor
    heads: torch.Tensor


class ChangePointBetaBernoulli(_Machine):
    """Bayes machine of the regime-switching coin: Bayesian online change-point detection.

    Adams & MacKay (2007) with a constant hazard h and a Beta(α, β) prior per regime.
    r_t = observations since the last change before x_t (r_1 = 0; r_t = 0 with probability
    h, else r_{t-1} + 1). Input ``[B, 2]`` = [x_{t-1}, flag]. Absorbing x = x_{t-1}:
    post(r) ∝ w(r)·p_r(x), p_r(1) = (α + heads_r)/(α + β + r); w'(0) = h,
    w'(r + 1) = (1 − h)·post(r); heads'(0) = 0, heads'(r + 1) = heads_r + x. Output
    y_t = Σ_r w'(r)·(α + heads'_r)/(α + β + r), P(x_t = 1 | x_<t) ``[B, 1]``.

    Exact for episodes of up to ``horizon`` steps (run lengths 0..horizon − 1); a step that
    would need a longer run raises ValueError rather than truncate.
    """

    output_size = 1
    input_size = 2

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, hazard: float = 0.1,
                 horizon: int = 100, **kwargs: Any) -> None:
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a finite positive number, got {value!r}")
        if not (isinstance(hazard, (int, float)) and 0.0 <= hazard <= 1.0):
            raise ValueError(f"hazard: expected a probability in [0, 1], got {hazard!r}")
        self.alpha, self.beta, self.hazard = float(alpha), float(beta), float(hazard)
        self.horizon = check_positive_int(horizon, "horizon")
        super().__init__(**kwargs)
        self._run = torch.arange(self.horizon, dtype=self.dtype, device=self.device)

    @classmethod
    def from_task(cls, task: Any, **kwargs: Any) -> ChangePointBetaBernoulli:
        """The Bayes machine of a :class:`~trajprobe.tasks.RegimeSwitchingCoin`."""
        return cls(task.alpha, task.beta, task.hazard, task.horizon, **kwargs)

    def _config(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta, "hazard": self.hazard,
                "horizon": self.horizon}

    def initial_state(self, batch_size: int) -> ChangePointState:
        """r_1 = 0 with certainty, no counts."""
        weights = self._zeros(check_positive_int(batch_size, "batch_size"), self.horizon)
        weights[:, 0] = 1.0
        return ChangePointState(weights, torch.zeros_like(weights))

    def _p_one(self, heads: torch.Tensor) -> torch.Tensor:
        return (self.alpha + heads) / (self.alpha + self.beta + self._run)

    def step(self, x: torch.Tensor, state: ChangePointState
             ) -> tuple[torch.Tensor, ChangePointState]:
        """Absorb x_{t-1}, predict x_t: ``(y_t [B, 1], s_t)``."""
        weights = self._leaf(state[0], (self.horizon,), "state.weights").clamp_min(0.0)
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(_TINY)
        heads = self._leaf(state[1], (self.horizon,), "state.heads")
        heads = torch.minimum(heads.clamp_min(0.0), self._run)
        x = self._input(x, weights.shape[0], "x_{t-1}, flag")
        obs, w = x[:, :1].clamp(0.0, 1.0), x[:, 1:].clamp(0.0, 1.0)
        p_one = self._p_one(heads)
        joint = weights * (obs * p_one + (1.0 - obs) * (1.0 - p_one))
        post = joint / joint.sum(-1, keepdim=True).clamp_min(_TINY)
        if bool(((post[:, -1:] * w) > 0).any()):
            raise ValueError(f"x: a run of more than {self.horizon - 1} observations; this "
                             f"machine is exact for episodes of up to horizon = "
                             f"{self.horizon} steps (build it with a longer horizon)")
        first = torch.full_like(post[:, :1], self.hazard)
        moved = torch.cat([first, (1.0 - self.hazard) * post[:, :-1]], dim=1)
        shifted = torch.cat([torch.zeros_like(first), heads[:, :-1] + obs], dim=1)
        weights, heads = w * moved + (1.0 - w) * weights, w * shifted + (1.0 - w) * heads
        y = (weights * self._p_one(heads)).sum(-1, keepdim=True)
        return y, ChangePointState(weights, heads)

    def distribution(self, y: torch.Tensor) -> D.Distribution:
        """Bernoulli(p) from ``y`` ``[..., 1]``."""
        return D.Bernoulli(probs=y[..., 0])
