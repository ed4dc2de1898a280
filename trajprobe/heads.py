"""Output heads: the predictive distribution a network's raw outputs ``y [..., K]`` stand for.

One registry for the whole library: tasks name the head their Meta-Learner uses
(``task.distribution``), models and adapters accept a head by name (``distribution="normal"``)
or any callable ``y -> torch.distributions.Distribution``. Positive parameters go through
softplus.

==============  ===  ==========================================================
name            K    distribution
==============  ===  ==========================================================
``bernoulli``   1    Bernoulli(logits = y₀)
``categorical`` C    Categorical(logits = y)
``normal``      2    Normal(loc = y₀, scale = softplus(y₁))
``lomax``       2    Lomax(shape = softplus(y₀), scale = softplus(y₁))
``student_t``   3    StudentT(df = softplus(y₀), loc = y₁, scale = softplus(y₂))
==============  ===  ==========================================================
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import distributions as D
from torch.nn.functional import softplus

__all__ = ["HEADS", "head_size", "lomax", "resolve_head"]

Head = Callable[[torch.Tensor], D.Distribution]


def lomax(shape: torch.Tensor, scale: torch.Tensor) -> D.Distribution:
    """The Lomax (Pareto type II) distribution, p(x) = (a/b)(1 + x/b)^-(a+1) on x ≥ 0.

    Built as ``Pareto(scale=b, alpha=a)`` shifted by ``-b`` (torch has no Lomax). It is the
    posterior predictive of exponential observations under a Gamma(a, rate b) prior.

    Args:
        shape: ``[...]`` the shape a > 0.
        scale: ``[...]`` the scale b > 0.
    """
    base = D.Pareto(scale=scale, alpha=shape)
    return D.TransformedDistribution(base, [D.AffineTransform(loc=-scale, scale=1.0)])


def _bernoulli(y: torch.Tensor) -> D.Distribution:
    return D.Bernoulli(logits=y[..., 0])


def _categorical(y: torch.Tensor) -> D.Distribution:
    return D.Categorical(logits=y)


def _normal(y: torch.Tensor) -> D.Distribution:
    return D.Normal(y[..., 0], softplus(y[..., 1]))


def _lomax(y: torch.Tensor) -> D.Distribution:
    return lomax(softplus(y[..., 0]), softplus(y[..., 1]))


def _student_t(y: torch.Tensor) -> D.Distribution:
    return D.StudentT(softplus(y[..., 0]), y[..., 1], softplus(y[..., 2]))


HEADS: dict[str, Head] = {
    "bernoulli": _bernoulli,
    "categorical": _categorical,
    "normal": _normal,
    "lomax": _lomax,
    "student_t": _student_t,
}
"""Head name → ``y [..., K] -> Distribution`` (table in the module docstring)."""

_SIZES = {"bernoulli": 1, "normal": 2, "lomax": 2, "student_t": 3}


def head_size(name: str, n_classes: int | None = None) -> int:
    """The output width K the head ``name`` needs (``n_classes`` for ``categorical``)."""
    if name == "categorical":
        if n_classes is None or n_classes < 2:
            raise ValueError(f"n_classes: expected >= 2 classes for 'categorical', got {n_classes}")
        return n_classes
    if name not in _SIZES:
        raise ValueError(f"name: expected one of {sorted(HEADS)}, got {name!r}")
    return _SIZES[name]


def resolve_head(distribution: str | Head | None, name: str = "distribution") -> Head | None:
    """A head from a registry name, a callable (returned as is) or None (no head)."""
    if distribution is None or callable(distribution):
        return distribution
    if distribution not in HEADS:
        raise ValueError(
            f"{name}: expected one of {sorted(HEADS)}, a callable or None, got {distribution!r}"
        )
    return HEADS[distribution]
