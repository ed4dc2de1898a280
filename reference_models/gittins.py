"""Gittins indices by calibration over a dynamic programme, with cached tables.

The Gittins index of an arm in state s is the per-step reward λ of a *retirement*
option (a known arm paying λ for ever) that makes the decision-maker indifferent
between retiring now and pulling the arm at least once more (Gittins 1979; Gittins,
Glazebrook & Weber 2011, ch. 8). For discount γ and retirement value λ / (1 - γ):

    V_λ(s) = max( λ / (1 - γ),  C_λ(s) ),
    C_λ(s) = E[r | s] + γ E[ V_λ(s') | s ],        ν(s) = λ such that C_λ(s) = λ / (1 - γ).

Playing the arm of largest index is Bayes-optimal for the discounted infinite-horizon
multi-armed bandit with independent arms (Mikulik et al. 2020 §3.1 use this for their
two-armed Bernoulli and Gaussian bandits).

Two families:

* **Bernoulli arms with Beta(α, β) posteriors.** State (α, β); a success moves to
  (α + 1, β), a failure to (α, β + 1), with probability α / (α + β). The dynamic
  programme runs on the lattice (α0 + i, β0 + j), i + j ≤ n_max + horizon, truncated at
  the last level by the known-mean value max(λ, p) / (1 - γ) (the horizon is long enough
  that γ^horizon makes the truncation negligible; see ``default_horizon``).
  Calibration: one backward pass evaluates C_λ - λ / (1 - γ) and its derivative in λ at
  *every* state for a grid of λ values at once; for each state the index is bracketed
  by the grid cell where the sign changes and then located within a certified interval:
  the function is convex and decreasing in λ (a maximum of affine functions of λ minus
  a line), so the chord through the bracket ends bounds the root from above and the
  tangents at both ends bound it from below. The reported index is the root of the
  cubic Hermite interpolant (values and slopes at both ends) clipped to that interval;
  ``BernoulliGittinsTable.bound`` is the interval's width, a guaranteed bound on the
  calibration error (excluding truncation). The function has kinks at the indices of
  the descendant states, so the error falls only like 1 / n_lambda and grows with the
  depth of the state (its index bends within a narrower range of λ). With the default
  1024-point grid (γ = 0.9, against a 8192-point grid): states with fewer than 20
  observations, bound ≤ 1.4e-5 and actual error ≤ 3.5e-6; 50-100 observations, bound
  ≤ 3.5e-4, error ≤ 1.3e-4; 100-200 observations, bound ≤ 4.4e-4, error ≤ 2e-4.
  (Plain bisection per state would need one dynamic programme per state and iteration;
  the tests check the table against such a per-state bisection.)
* **Gaussian arms with known reward variance σ².** With posterior N(μ, σ² / n) on the
  arm's mean, ν(μ, n, σ, γ) = μ + σ ν(0, n, 1, γ): the *standardised index* ν(0, n, 1, γ)
  depends on n only (Gittins 1979). Retirement enters only through m = μ - λ, so one
  backward pass over n on a grid of m gives the continuation value G_n(m) for every
  retirement reward; the calibration is bisection on m (i.e. on λ = -m) for the zero of
  G_n. Expectations over the next posterior mean m' ~ N(m, 1 / (n (n + 1))) use
  Gauss-Legendre quadrature on the continuation region only (where the integrand is
  smooth) and a cubic spline of G_{n+1}; the last level uses the known-mean value.

Tables are cached (``functools.lru_cache``) per (prior lattice, discount, size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.interpolate import CubicSpline

from trajprobe.validation import check_positive_int

__all__ = [
    "BernoulliGittinsTable",
    "GaussianGittinsTable",
    "bernoulli_gittins_index",
    "bernoulli_gittins_table",
    "default_horizon",
    "gaussian_gittins_index",
    "gaussian_gittins_table",
    "standardized_gaussian_gittins_index",
]

_TABLE_STEP = 50
"""Tables grow in steps of this many levels so that nearby queries share one cache entry."""


# ----------------------------------------------------------------------------- validation


def _check_discount(discount: float) -> float:
    if isinstance(discount, bool) or not isinstance(discount, (int, float, np.floating)):
        raise TypeError(f"discount: expected a float in (0, 1), got {discount!r}")
    discount = float(discount)
    if not 0.0 < discount < 1.0:
        raise ValueError(f"discount: expected a number in the open interval (0, 1), got {discount}")
    return discount


def _check_positive_array(value: np.ndarray, name: str) -> None:
    bad = ~(np.isfinite(value) & (value > 0))
    if bad.any():
        raise ValueError(
            f"{name}: expected finite positive values (a proper prior), "
            f"got {value[bad].ravel()[:5]}"
        )


def _check_n_max(n_max: int) -> int:
    if isinstance(n_max, bool) or not isinstance(n_max, (int, np.integer)) or n_max < 0:
        raise ValueError(f"n_max: expected a non-negative int, got {n_max!r}")
    return int(n_max)


def default_horizon(discount: float, *, gaussian: bool = False) -> int:
    """Levels the dynamic programme looks beyond the deepest tabulated state.

    ``ceil(c / (1 - γ))`` with c = 4 (Bernoulli) or 10 (Gaussian), at least 50: 400 /
    1000 levels at γ = 0.99. Quadrupling it changes a Bernoulli table (n_max = 50) by
    at most 6e-7 at γ = 0.9 and 3e-6 at γ = 0.99 (the tests check < 1e-5 at γ = 0.9).
    """
    discount = _check_discount(discount)
    c = 10.0 if gaussian else 4.0
    return max(50, math.ceil(c / (1.0 - discount)))


def _split_lattice(value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Write x > 0 as base + k with base in (0, 1] (rounded to 1e-9) and integer k >= 0."""
    k = np.ceil(value - 1.0 - 1e-9)
    k = np.maximum(k, 0.0)
    base = np.round(value - k, 9)
    return base, k.astype(np.int64)


# ----------------------------------------------------------------------------- Bernoulli


@dataclass(frozen=True)
class BernoulliGittinsTable:
    """Gittins indices of Bernoulli arms on the lattice (α0 + i, β0 + j), i + j ≤ n_max.

    Attributes:
        alpha0, beta0: the lattice origin (a Beta prior).
        discount: γ.
        index: ``[n_max + 1, n_max + 1]`` ν(α0 + i, β0 + j) at ``[i, j]``; NaN where
            i + j > n_max. Read-only.
        bound: same shape, certified bound on ``|index - exact|`` from the calibration
            (the width of the interval known to hold the root; horizon truncation excluded).
        horizon: levels the dynamic programme ran beyond n_max.
    """

    alpha0: float
    beta0: float
    discount: float
    index: np.ndarray
    bound: np.ndarray
    horizon: int

    @property
    def n_max(self) -> int:
        """The deepest tabulated level (i + j)."""
        return self.index.shape[0] - 1

    def lookup(self, successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
        """ν(α0 + successes, β0 + failures); integer arrays of any (common) shape."""
        successes = np.asarray(successes, dtype=np.int64)
        failures = np.asarray(failures, dtype=np.int64)
        if (successes < 0).any() or (failures < 0).any():
            raise ValueError("successes, failures: expected non-negative counts")
        if (successes + failures > self.n_max).any():
            raise ValueError(
                f"successes + failures: expected at most n_max = {self.n_max}, "
                f"got {int((successes + failures).max())}"
            )
        return self.index[successes, failures]


def _hermite_root(f0: np.ndarray, f1: np.ndarray, m0: np.ndarray, m1: np.ndarray) -> np.ndarray:
    """Zero t in [0, 1] of the cubic Hermite interpolant with values f0 > 0 >= f1 and
    slopes m0, m1 at t = 0, 1 (vectorised bisection; the interpolant may be non-monotone,
    in which case the first sign change found by bisection is returned)."""
    lo = np.zeros_like(f0)
    hi = np.ones_like(f0)
    for _ in range(40):
        t = 0.5 * (lo + hi)
        t2 = t * t
        t3 = t2 * t
        v = (2 * t3 - 3 * t2 + 1) * f0 + (t3 - 2 * t2 + t) * m0
        v += (3 * t2 - 2 * t3) * f1 + (t3 - t2) * m1
        pos = v > 0
        lo = np.where(pos, t, lo)
        hi = np.where(pos, hi, t)
    return 0.5 * (lo + hi)


@lru_cache(maxsize=32)
def _bernoulli_table_cached(
    alpha0: float, beta0: float, discount: float, n_max: int, horizon: int, n_lambda: int
) -> BernoulliGittinsTable:
    g = discount
    lam = np.linspace(0.0, 1.0, n_lambda)[:, None]  # [K, 1] retirement rewards
    retire = lam / (1.0 - g)  # value of retiring, [K, 1]
    d_retire = 1.0 / (1.0 - g)  # its derivative in λ
    index = np.full((n_max + 1, n_max + 1), np.nan)
    bound = np.full((n_max + 1, n_max + 1), np.nan)

    last = n_max + horizon
    i = np.arange(last + 1)
    p = (alpha0 + i) / (alpha0 + beta0 + last)  # cell i: α0 + i successes, β0 + last - i failures
    value = np.maximum(lam, p) / (1.0 - g)  # known-mean truncation, [K, last + 1]
    d_value = np.where(lam >= p, d_retire, 0.0)
    cols = np.arange(n_max + 1)
    for n in range(last - 1, -1, -1):
        i = np.arange(n + 1)
        p = (alpha0 + i) / (alpha0 + beta0 + n)
        # C = p (1 + γ V(success)) + (1 - p) γ V(failure), and its derivative in λ
        fail, fail_d = value[:, :-1], d_value[:, :-1]
        cont = value[:, 1:] - fail
        cont *= p
        cont += fail
        cont *= g
        cont += p
        d_cont = d_value[:, 1:] - fail_d
        d_cont *= p
        d_cont += fail_d
        d_cont *= g
        keep = cont > retire
        if n <= n_max:
            diff = cont - retire  # convex, strictly decreasing in λ (slope <= -1)
            d_diff = d_cont - d_retire
            k = np.clip((diff >= 0).sum(axis=0) - 1, 0, n_lambda - 2)
            c = cols[: n + 1]
            l0, l1 = lam[k, 0], lam[k + 1, 0]
            f0, f1 = diff[k, c], diff[k + 1, c]
            s0, s1 = d_diff[k, c], d_diff[k + 1, c]
            chord = np.clip(l0 + f0 * (l1 - l0) / (f0 - f1), l0, l1)  # upper bound on the root
            lower = np.clip(np.maximum(l0 - f0 / s0, l1 - f1 / s1), l0, chord)  # tangents
            estimate = np.clip(_hermite_root(f0, f1, s0 * (l1 - l0), s1 * (l1 - l0)), 0.0, 1.0)
            # state (i, n - i) of this level sits at table position [i, n - i]
            index[i, n - i] = np.clip(l0 + (l1 - l0) * estimate, lower, chord)
            bound[i, n - i] = chord - lower
        value = np.maximum(cont, retire)
        d_value = np.where(keep, d_cont, d_retire)
    index.flags.writeable = False
    bound.flags.writeable = False
    return BernoulliGittinsTable(alpha0, beta0, g, index, bound, horizon)


def bernoulli_gittins_table(
    alpha0: float,
    beta0: float,
    discount: float,
    n_max: int,
    *,
    horizon: int | None = None,
    n_lambda: int = 1024,
) -> BernoulliGittinsTable:
    """Gittins indices for every Beta(α0 + i, β0 + j) with i + j ≤ ``n_max`` (cached).

    Cost: one backward pass over (n_max + horizon)² / 2 states × ``n_lambda`` retirement
    rewards (about 1 s for n_max = 200 at γ = 0.99; ``benchmarks/gittins.py``).

    Args:
        alpha0, beta0: the lattice origin, > 0 (e.g. the prior Beta(1, 1)).
        discount: γ in (0, 1).
        n_max: deepest level tabulated (number of observations).
        horizon: levels beyond ``n_max`` before truncation; ``default_horizon(discount)``.
        n_lambda: size of the λ grid used to bracket the indices (>= 16).

    Raises:
        ValueError: non-positive or non-finite α0, β0, γ outside (0, 1), bad sizes.
    """
    _check_positive_array(np.asarray([alpha0], dtype=float), "alpha0")
    _check_positive_array(np.asarray([beta0], dtype=float), "beta0")
    discount = _check_discount(discount)
    n_max = _check_n_max(n_max)
    horizon = default_horizon(discount) if horizon is None else horizon
    check_positive_int(horizon, "horizon")
    if isinstance(n_lambda, bool) or not isinstance(n_lambda, (int, np.integer)) or n_lambda < 16:
        raise ValueError(f"n_lambda: expected an int >= 16, got {n_lambda!r}")
    return _bernoulli_table_cached(
        float(alpha0), float(beta0), discount, n_max, int(horizon), int(n_lambda)
    )


def _round_up(n: int) -> int:
    return max(_TABLE_STEP, _TABLE_STEP * math.ceil(n / _TABLE_STEP))


def bernoulli_gittins_index(
    alpha: float | np.ndarray, beta: float | np.ndarray, discount: float
) -> float | np.ndarray:
    """Gittins index of a Bernoulli arm with posterior Beta(α, β), for discount γ.

    Looked up in cached :func:`bernoulli_gittins_table` tables: the query is written as
    (base + i, base' + j) with bases in (0, 1] and integer i, j, and one table per base
    pair is computed up to the deepest query (rounded up to a multiple of 50).

    Args:
        alpha, beta: > 0, scalars or arrays broadcasting together.
        discount: γ in (0, 1).

    Returns:
        A float for scalar inputs, else an array of the broadcast shape.

    Example values (γ = 0.9): ν(1, 1) = 0.7029, ν(2, 2) = 0.6346, ν(10, 2) = 0.8695.
    """
    discount = _check_discount(discount)
    a = np.asarray(alpha, dtype=float)
    b = np.asarray(beta, dtype=float)
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError as err:
        raise ValueError(
            f"alpha, beta: expected shapes that broadcast, got {a.shape} and {b.shape}"
        ) from err
    _check_positive_array(a, "alpha")
    _check_positive_array(b, "beta")
    base_a, i = _split_lattice(a)
    base_b, j = _split_lattice(b)
    out = np.empty(a.shape)
    pairs = np.stack([base_a.ravel(), base_b.ravel()], axis=1)
    for ba, bb in np.unique(pairs, axis=0) if pairs.size else []:
        sel = (base_a == ba) & (base_b == bb)
        depth = int((i[sel] + j[sel]).max())
        table = bernoulli_gittins_table(float(ba), float(bb), discount, _round_up(depth))
        out[sel] = table.lookup(i[sel], j[sel])
    return float(out) if out.ndim == 0 else out


# ----------------------------------------------------------------------------- Gaussian


@dataclass(frozen=True)
class GaussianGittinsTable:
    """Standardised Gaussian Gittins indices ν(0, n0 + k, 1, γ) for k = 0..n_max.

    Attributes:
        n0: the first level (posterior precision in units of observations, > 0).
        discount: γ.
        index: ``[n_max + 1]`` ν(0, n0 + k, 1, γ) at ``[k]``. Read-only.
        horizon: levels the dynamic programme ran beyond n_max.
    """

    n0: float
    discount: float
    index: np.ndarray
    horizon: int

    @property
    def n_max(self) -> int:
        """The deepest tabulated level k."""
        return self.index.shape[0] - 1


def _root_on_piece(spline: CubicSpline, x: np.ndarray, k: int, iterations: int = 60) -> float:
    """Bisection for the zero of an increasing cubic-spline piece on [x_k, x_{k+1}]."""
    c = spline.c[:, k]
    lo, hi = 0.0, float(x[k + 1] - x[k])
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if ((c[0] * mid + c[1]) * mid + c[2]) * mid + c[3] > 0:
            hi = mid
        else:
            lo = mid
    return float(x[k] + 0.5 * (lo + hi))


def _zero_of(values: np.ndarray, grid: np.ndarray) -> tuple[float, CubicSpline]:
    """The zero of an increasing function sampled on ``grid`` (cubic spline + bisection)."""
    spline = CubicSpline(grid, values)
    positive = np.nonzero(values > 0)[0]
    if positive.size == 0 or positive[0] == 0:
        raise RuntimeError("Gaussian Gittins DP: the calibration grid does not bracket the index")
    return _root_on_piece(spline, grid, int(positive[0]) - 1), spline


@lru_cache(maxsize=32)
def _gaussian_table_cached(
    n0: float, discount: float, n_max: int, horizon: int, n_grid: int, n_quad: int
) -> GaussianGittinsTable:
    g = discount
    width, tail = 10.0, 8.5  # grid half-width in posterior std units; quadrature cut-off
    z = np.linspace(-width, width, n_grid)
    u, wu = np.polynomial.legendre.leggauss(n_quad)
    last = n_max + horizon
    m = z / math.sqrt(n0 + last)
    cont = m / (1.0 - g)  # known-mean truncation: continue for ever iff m > 0
    index = np.empty(n_max + 1)
    for k in range(last - 1, -1, -1):
        m_next, cont_next = m, cont
        m_star, spline = _zero_of(cont_next, m_next)  # retire below m_star at level k + 1
        n = n0 + k
        sigma = 1.0 / math.sqrt(n * (n + 1.0))  # std of the next posterior mean
        m = z / math.sqrt(n)
        # E[max(0, G_{k+1}(m + σ ξ))] = ∫_{ξ > (m* - m)/σ} G_{k+1}(m + σ ξ) φ(ξ) dξ
        lo = np.clip((m_star - m) / sigma, -tail, tail)
        half = 0.5 * (tail - lo)
        xi = lo[:, None] + half[:, None] * (u + 1.0)
        x = m[:, None] + sigma * xi
        vals = spline(x)
        beyond = x > m_next[-1]  # far right: continuing for ever, slope 1 / (1 - γ)
        vals = np.where(beyond, cont_next[-1] + (x - m_next[-1]) / (1.0 - g), vals)
        phi = np.exp(-0.5 * xi**2) / math.sqrt(2.0 * math.pi)
        expected = (vals * phi * wu).sum(axis=1) * half
        cont = m + g * expected  # G_k(m) = m + γ E[W_{k+1}(m')]
        if k <= n_max:
            root, _ = _zero_of(cont, m)  # calibration: λ = -m makes continuing worth 0
            index[k] = -root
    index.flags.writeable = False
    return GaussianGittinsTable(n0, g, index, horizon)


def gaussian_gittins_table(
    n0: float,
    discount: float,
    n_max: int,
    *,
    horizon: int | None = None,
    n_grid: int = 401,
    n_quad: int = 48,
) -> GaussianGittinsTable:
    """Standardised indices ν(0, n0 + k, 1, γ), k = 0..``n_max`` (cached).

    Args:
        n0: > 0, posterior precision of the arm's mean in units of observations
            (σ² / prior variance).
        discount: γ in (0, 1).
        n_max: deepest level tabulated.
        horizon: levels beyond ``n_max`` before the known-mean truncation;
            ``default_horizon(discount, gaussian=True)``.
        n_grid, n_quad: grid size over m = μ - λ per level and quadrature nodes.

    Raises:
        ValueError: non-positive n0, γ outside (0, 1), bad sizes.
    """
    _check_positive_array(np.asarray([n0], dtype=float), "n0")
    discount = _check_discount(discount)
    n_max = _check_n_max(n_max)
    horizon = default_horizon(discount, gaussian=True) if horizon is None else horizon
    check_positive_int(horizon, "horizon")
    for name, v, least in (("n_grid", n_grid, 51), ("n_quad", n_quad, 8)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise ValueError(f"{name}: expected an int >= {least}, got {v!r}")
    return _gaussian_table_cached(
        float(n0), discount, n_max, int(horizon), int(n_grid), int(n_quad)
    )


def standardized_gaussian_gittins_index(
    n: float | np.ndarray, discount: float
) -> float | np.ndarray:
    """ν(0, n, 1, γ): the Gittins index of a N(0, 1/n) posterior with unit reward variance.

    ``n`` > 0 may be fractional; it is written as base + k with base in (0, 1] and one
    cached table per base. Published values (Gittins; Powell 2007 table 10.2), e.g.
    γ = 0.99: ν(1) = 1.5758, ν(2) = 1.0415, ν(10) = 0.3528.
    """
    discount = _check_discount(discount)
    n_arr = np.asarray(n, dtype=float)
    _check_positive_array(n_arr, "n")
    base, k = _split_lattice(n_arr)
    out = np.empty(n_arr.shape)
    for b in np.unique(base):
        sel = base == b
        table = gaussian_gittins_table(float(b), discount, _round_up(int(k[sel].max())))
        out[sel] = table.index[k[sel]]
    return float(out) if out.ndim == 0 else out


def gaussian_gittins_index(
    mean: float | np.ndarray,
    n: float | np.ndarray,
    discount: float,
    reward_std: float = 1.0,
) -> float | np.ndarray:
    """ν(μ, n, σ, γ) = μ + σ ν(0, n, 1, γ) for an arm with posterior N(μ, σ² / n).

    Args:
        mean: posterior mean μ of the arm's mean reward.
        n: > 0, posterior precision in units of observations (σ² / posterior variance).
        discount: γ in (0, 1).
        reward_std: σ > 0, the known reward standard deviation.
    """
    if not (np.isfinite(reward_std) and reward_std > 0):
        raise ValueError(f"reward_std: expected a finite positive number, got {reward_std!r}")
    mean_arr = np.asarray(mean, dtype=float)
    if not np.isfinite(mean_arr).all():
        raise ValueError("mean: expected finite values, got NaN or inf")
    out = mean_arr + reward_std * np.asarray(standardized_gaussian_gittins_index(n, discount))
    return float(out) if out.ndim == 0 else out
