"""KL(p ‖ q) for heavy-tailed p (Lomax, Student-t) by p-adapted quadrature in log space.

The Bayes predictives of the exponential and Normal–Gamma tasks are Lomax and Student-t,
and so are the Meta-Learners' outputs on those tasks. torch registers no KL for these
pairs, and a generic change of variables loses the tails when a shape parameter is small
(an embedded state near the edge of the parameter space): the KL of a Student-t with
ν = 10⁻³ against one with ν = 2 is ≈ 2·10³ nats, which plain quadrature reported as 0.04.

Here KL(p ‖ q) = E_p[log p(X) − log q(X)] by a quadrature adapted to p, whose nodes are
carried as ℓ = log|X − m| (never overflowing), with log p and log q evaluated on the
same nodes (so KL(p ‖ p) = 0 exactly):

* p = Lomax(a, b): X = b·(e^{E/a} − 1) with E ~ Exp(1), so E_p[h(X)] = ∫ e^{−E} h dE,
  by Gauss–Legendre in t = √E on [0, 1] and Gauss–Laguerre beyond;
  ℓ = log b + log(e^{E/a} − 1) and log p(X) = log(a/b) − (a + 1) E/a.
* p = StudentT(ν, m, s): X = m + s·sign·|tan(π(u − ½))|^{1/κ}, κ = min(ν, 1), by
  Gauss–Legendre in u; for ν ≥ 1 this is the Cauchy quantile, for ν < 1 it stretches the
  tails so that density × Jacobian stays bounded.

log q is evaluated from ℓ in closed form for q in {Lomax, Student-t, Normal, Exponential,
Gamma} (e.g. log(1 + X/b) = softplus(ℓ − log b)); for any other q at X itself (which may
overflow to ±inf, giving an infinite KL, the correct limit when q's tail is lighter).
Tested against scipy (tests/test_compare_behaviour.py).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import distributions as D
from torch.nn import functional as F

__all__ = ["heavy_tailed_kl", "lomax_parameters"]

LAGUERRE_POINTS = 96
"""Gauss–Laguerre nodes for a Lomax p."""

LEGENDRE_POINTS = 512
"""Gauss–Legendre nodes for a Student-t p."""


@lru_cache(maxsize=4)
def _laguerre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.laguerre.laggauss(n)


@lru_cache(maxsize=4)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return (nodes + 1.0) / 2.0, weights / 2.0


def _exponential_nodes(dtype: torch.dtype, device: torch.device
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights for ∫_0^∞ e^{−E} h(E) dE: E = t² on [0, 1] (Gauss–Legendre in t,
    which smooths log E and the kink of a small Lomax shape), Gauss–Laguerre beyond."""
    t, wt = _legendre(LEGENDRE_POINTS // 2)
    e_near = t**2
    w_near = wt * 2 * t * np.exp(-e_near)
    x, wx = _laguerre(LAGUERRE_POINTS)
    nodes = np.concatenate([e_near, 1.0 + x])
    weights = np.concatenate([w_near, wx * math.exp(-1.0)])
    return (torch.as_tensor(nodes, dtype=dtype, device=device),
            torch.as_tensor(weights, dtype=dtype, device=device))


def lomax_parameters(dist: D.Distribution) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(shape a, scale b) if ``dist`` is a Lomax built as Pareto(b, a) shifted by −b, else None."""
    if not isinstance(dist, D.TransformedDistribution) or not isinstance(dist.base_dist,
                                                                          D.Pareto):
        return None
    if len(dist.transforms) != 1 or not isinstance(dist.transforms[0], D.AffineTransform):
        return None
    shift = dist.transforms[0]
    base = dist.base_dist
    if not (torch.is_tensor(shift.scale) or shift.scale == 1.0):
        return None
    if torch.is_tensor(shift.scale) and not bool((shift.scale == 1).all()):
        return None
    if not bool(torch.as_tensor(shift.loc + base.scale == 0).all()):
        return None
    return base.alpha, base.scale


def _log_expm1(y: torch.Tensor) -> torch.Tensor:
    """log(e^y − 1) for y > 0 without overflow."""
    big = y > 20
    small = torch.log(torch.expm1(torch.where(big, torch.ones_like(y), y)))
    return torch.where(big, y + torch.log1p(-torch.exp(-y)), small)


def _log_abs_shifted(ell: torch.Tensor, sign: torch.Tensor, delta: torch.Tensor
                     ) -> torch.Tensor:
    """log|sign·e^ℓ + δ| without overflow (−inf where it is exactly 0)."""
    far = (delta == 0) | (ell > torch.log(delta.abs()) + 2.0)
    near = torch.log(torch.abs(sign * torch.exp(torch.clamp(ell, max=80.0)) + delta))
    ratio = torch.where(far, delta * torch.exp(-torch.clamp(ell, min=-80.0)),
                        torch.zeros_like(ell))
    return torch.where(far, ell + torch.log1p(sign * ratio), near)


def _log_q(q: D.Distribution, ell: torch.Tensor, sign: torch.Tensor, loc: torch.Tensor
           ) -> torch.Tensor:
    """log q(X) at X = loc + sign·e^ℓ, ``[n, *batch]``."""
    lomax = lomax_parameters(q)
    if lomax is not None:
        a, b = lomax
        inside = (sign > 0) | (ell == -math.inf)
        log_x = ell if not bool((loc != 0).any()) else _log_abs_shifted(ell, sign, loc)
        value = torch.log(a) - torch.log(b) - (a + 1) * F.softplus(log_x - torch.log(b))
        return torch.where(inside, value, torch.full_like(value, -math.inf))
    if isinstance(q, (D.StudentT, D.Normal)):
        log_r = _log_abs_shifted(ell, sign, loc - q.loc) - torch.log(q.scale)
        if isinstance(q, D.Normal):
            return -0.5 * torch.exp(2 * log_r) - torch.log(q.scale) - 0.5 * math.log(2 * math.pi)
        df = q.df
        const = (torch.lgamma((df + 1) / 2) - torch.lgamma(df / 2)
                 - 0.5 * torch.log(df * math.pi) - torch.log(q.scale))
        return const - (df + 1) / 2 * F.softplus(2 * log_r - torch.log(df))
    if isinstance(q, (D.Exponential, D.Gamma)) and not bool((loc != 0).any()):
        rate = q.rate
        conc = torch.ones_like(rate) if isinstance(q, D.Exponential) else q.concentration
        value = (conc * torch.log(rate) - torch.lgamma(conc) + (conc - 1) * ell
                 - rate * torch.exp(torch.clamp(ell, max=700.0)))
        return torch.where(sign > 0, value, torch.full_like(value, -math.inf))
    x = loc + sign * torch.exp(torch.clamp(ell, max=700.0))
    with torch.no_grad():
        try:
            return q.log_prob(x)
        except ValueError:  # outside q's support
            return torch.full_like(x, -math.inf)


def heavy_tailed_kl(p: D.Distribution, q: D.Distribution) -> torch.Tensor | None:
    """KL(p ‖ q) ``[*batch]`` for a Lomax or Student-t ``p``; None for any other ``p``."""
    lomax = lomax_parameters(p)
    if lomax is not None:
        a, b = lomax
        e, w = _exponential_nodes(a.dtype, a.device)
        e = e.reshape(-1, *([1] * a.dim()))
        w = w.reshape(-1, *([1] * a.dim()))
        ell = torch.log(b) + _log_expm1(e / a)
        log_p = torch.log(a) - torch.log(b) - (a + 1) * e / a  # log p(X), exactly linear in E
        log_q = _log_q(q, ell, torch.ones_like(ell), torch.zeros_like(b))
        return (w * (log_p - log_q)).sum(0)
    if isinstance(p, D.StudentT):
        df, loc, scale = p.df, p.loc, p.scale
        dtype = loc.dtype
        u, w = (torch.as_tensor(v, dtype=dtype, device=loc.device)
                for v in _legendre(LEGENDRE_POINTS))
        u = u.reshape(-1, *([1] * loc.dim()))
        w = w.reshape(-1, *([1] * loc.dim()))
        kappa = torch.clamp(df, max=1.0)
        angle = math.pi * (u - 0.5)
        log_tan = torch.log(torch.abs(torch.tan(angle)))
        sign = torch.sign(angle)
        ell = torch.log(scale) + log_tan / kappa
        # log p(X) + log |dX/du|, with |X − m| = e^ℓ
        log_p = (torch.lgamma((df + 1) / 2) - torch.lgamma(df / 2) - 0.5 * torch.log(df * math.pi)
                 - torch.log(scale) - (df + 1) / 2 * F.softplus(2 * (ell - torch.log(scale))
                                                                - torch.log(df)))
        log_jac = (torch.log(scale) - torch.log(kappa) + (1 / kappa - 1) * log_tan
                   + math.log(math.pi) - 2 * torch.log(torch.abs(torch.cos(angle))))
        density = torch.exp(log_p + log_jac)
        log_q = _log_q(q, ell, sign, loc)
        # Both expectations on the same nodes, so KL(p ‖ p) is exactly 0.
        terms = torch.where(density > 0, density * (log_p - log_q), torch.zeros_like(log_q))
        return (w * terms).sum(0)
    return None
