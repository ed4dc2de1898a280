"""State coordinates that suit heavy tails: log coordinates for positive parameters.

A Bayes machine's state is a posterior's parameters; counts, shapes and rates are
positive and can span decades within one set of episodes (a Gamma rate from 1 to 2·10⁴).
A map fitted by least squares in raw coordinates spends its whole fit on the largest
values and extrapolates on the rest; in log coordinates the same states are a
well-conditioned cloud. :class:`Coordinates` chooses, per entry of the state vector s:

* **declared**: a machine with a ``positive`` attribute (one bool per state-vector entry,
  as :class:`~trajprobe.reference_models.conjugate.ConjugatePredictor` has) gets
  u = log s on every declared entry;
* **detected**: otherwise an entry is logged when it is positive on every fitting state
  and spans at least :data:`LOG_RANGE` (max / min);
* every other entry is kept, u = s.

The inverse is s = exp(u) on the logged entries, with u clipped to the fitted range of
log s widened by :data:`LOG_MARGIN` on each side (a map cannot send a state to e^{700});
:meth:`Coordinates.forward` maps a non-positive value of a logged entry (e.g. predicted
by a map fitted in raw coordinates) to the fitted minimum of that entry.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LOG_MARGIN", "LOG_RANGE", "Coordinates", "declared_positive"]

LOG_RANGE = 100.0
"""An undeclared positive entry is logged when max / min over the fitting states ≥ this."""

LOG_MARGIN = 3.0
"""Logged entries are clipped to their fitted log-range widened by this (e³ ≈ 20×)."""


def declared_positive(machine, state_size: int) -> np.ndarray | None:
    """The machine's ``positive`` mask ``[S]`` if it declares one of the right length."""
    mask = getattr(machine, "positive", None)
    if mask is None or isinstance(mask, (bool, str)):
        return None
    try:
        out = np.asarray(mask, dtype=bool).reshape(-1)
    except (TypeError, ValueError):
        return None
    return out if out.shape == (state_size,) else None


class Coordinates:
    """u = log s on positive heavy-tailed (or declared) entries, u = s elsewhere.

    Args:
        declared: a bool mask ``[S]`` of entries to log (None: detect); ``False`` entries
            are never logged.
        enabled: False gives the identity (raw coordinates).

    Fitted attributes: ``log_`` ``[S]`` bool, ``low_``/``high_`` ``[S]`` the clip range of
    u on logged entries, ``floor_`` ``[S]`` the smallest fitted value of s.
    """

    def __init__(self, declared: np.ndarray | None = None, *, enabled: bool = True):
        self.declared = None if declared is None else np.asarray(declared, dtype=bool)
        self.enabled = enabled

    def fit(self, states: np.ndarray) -> Coordinates:
        """Choose the logged entries from ``states`` ``[..., S]``."""
        x = np.asarray(states, dtype=np.float64).reshape(-1, states.shape[-1])
        if not self.enabled:
            return self._identity(x.shape[1])
        positive = (x > 0).all(0)
        if self.declared is not None:
            log = self.declared & positive
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                spread = x.max(0) / np.where(positive, x.min(0), 1.0)
            log = positive & (spread >= LOG_RANGE)
        if not log.any():
            return self._identity(x.shape[1])
        self.log_ = log
        self.floor_ = np.where(log, np.where(positive, x.min(0), 1.0), -np.inf)
        with np.errstate(divide="ignore"):
            logs = np.log(np.where(log, x, 1.0))
        self.low_ = np.where(log, logs.min(0) - LOG_MARGIN, -np.inf)
        self.high_ = np.where(log, logs.max(0) + LOG_MARGIN, np.inf)
        return self

    def _identity(self, size: int) -> Coordinates:
        """Fitted as the identity on ``size`` entries (nothing logged, nothing clipped)."""
        self.log_ = np.zeros(size, dtype=bool)
        self.floor_, self.low_ = np.full(size, -np.inf), np.full(size, -np.inf)
        self.high_ = np.full(size, np.inf)
        return self

    @property
    def is_identity(self) -> bool:
        """True when no entry is logged."""
        return not bool(self.log_.any())

    def forward(self, states: np.ndarray) -> np.ndarray:
        """s ``[..., S]`` → u ``[..., S]``."""
        if self.is_identity:
            return np.asarray(states, dtype=np.float64)
        out = np.array(states, dtype=np.float64)
        s = out[..., self.log_]
        out[..., self.log_] = np.log(np.where(s > 0, s, self.floor_[self.log_]))
        return out

    def inverse(self, u: np.ndarray) -> np.ndarray:
        """u ``[..., S]`` → s ``[..., S]`` (logged entries clipped, module docstring)."""
        if self.is_identity:
            return np.asarray(u, dtype=np.float64)
        out = np.array(u, dtype=np.float64)
        out[..., self.log_] = np.exp(np.clip(out[..., self.log_], self.low_[self.log_],
                                             self.high_[self.log_]))
        return out

    def describe(self) -> str:
        """'raw' or 'log on entries i, j' (for attrs and notes)."""
        if self.is_identity:
            return "raw"
        return "log on entries " + ",".join(str(i) for i in np.flatnonzero(self.log_))
