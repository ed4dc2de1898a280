"""Fixed and slow points of any machine under a constant input (Sussillo & Barak 2013).

A machine's transition F(s, x) under a constant input x has fixed points s* = F(s*, x);
Sussillo & Barak (2013, eq. 3) find them, and the slow points around them, as the minima
of the speed

    q(s) = ½ ‖F(s, x) − s‖²

started from many states the network visits. Here the minimisation runs jointly over a
batch of initial states (each its own problem, with its own step size), in the machine's
flattened state vector (:func:`trajprobe.machine.state_vector`: ``[h, c]`` for an LSTM,
every leaf of a dict state), so any machine whose ``step`` torch autograd can
differentiate is analysed alike: a torch RNN or custom module, a state-space model, a
JAX model through :func:`trajprobe.adapters.jax.differentiable`. The linearisation at each
point, J = ∂F/∂s (eq. 2), gives its eigenvalues λ; a point is stable when every |λ| < 1.

Two optimisers: ``"newton"`` (default), a Levenberg–Marquardt step on the residual
r = F(s) − s, δ = −(AᵀA + μI)⁻¹ Aᵀ r with A = J − I, whose damping μ adapts per initial
state (÷3 after a step that lowers q, ×10 after one that does not) and whose length is
held within a trust radius per state (starting at half of ‖F(s₀) − s₀‖, doubled after
an accepted step it cut, quartered after a rejected one), so that each state is carried
to a point near it instead of jumping across basins; and ``"adam"``,
FixedPointFinder's choice (Golub & Sussillo 2018), Adam on q with a per-state adaptive
learning rate. The options and their defaults follow FixedPointFinder: ``tol_q``,
``tol_dq``, ``max_iters``, ``tol_unique`` (a Euclidean distance, as its
``FixedPoints.find`` measures it), outliers by distance, noise on the initial states.

A saddle between two attractors may lie near none of the initial states (on the
flip-flop, the centre of the cube lies ~2 from every state of FixedPointFinder's own
example, noise 0.5 in 16 units), and a local search does not reach it. With
``bridges=True`` (default) a second search starts from the midpoint of each pair of
stable points found, and what it finds joins the points with ``count`` 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import xarray as xr

from trajprobe import machine as sm
from trajprobe._version import __version__
from trajprobe.guard import eval_mode
from trajprobe.linearised import (
    _not_differentiable,
    _sorted_eigenvalues,
    jacobians,
    rows_per_chunk,
    vector_step,
)
from trajprobe.randomness import Seed, make_generator
from trajprobe.traces import Trace
from trajprobe.validation import as_tensor, check_positive, check_positive_int

__all__ = ["fixed_points"]

_REFERENCE = "Sussillo & Barak 2013, Neural Computation 25(3), eqs. 2-3"
TRUST_START = 0.5
"""The Newton trust radius starts at this fraction of ‖F(s₀) − s₀‖ (see _NewtonState)."""


@dataclass(frozen=True)
class _Options:
    method: str
    tol_q: float
    tol_dq: float
    max_iters: int
    learning_rate: float
    adaptive: bool


def fixed_points(
    machine: sm.StateMachine,
    inputs: torch.Tensor | np.ndarray,
    initial_states: sm.State | torch.Tensor | Trace,
    *,
    samples: int = 256,
    noise: float = 0.0,
    method: Literal["newton", "adam"] = "newton",
    tol_q: float = 1e-12,
    tol_dq: float = 1e-20,
    max_iters: int = 5000,
    learning_rate: float = 1e-2,
    adaptive: bool = True,
    max_q: float | None = None,
    tol_unique: float = 1e-3,
    outlier_distance: float | None = 10.0,
    bridges: bool = True,
    seed: Seed = 0,
) -> xr.Dataset:
    """Fixed and slow points of ``machine`` under a constant input (Sussillo & Barak 2013).

    Minimises q(s) = ½‖F(s, x) − s‖² (eq. 3) from every initial state, jointly as a batch,
    until each state has q < ``tol_q``, or improves q by less than ``tol_dq`` per step,
    or ``max_iters`` steps have run. The end points are then filtered (non-finite; farther
    than ``outlier_distance`` from the initial states; q above ``max_q``), merged into
    unique points, and linearised: J = ∂F/∂s (eq. 2) and its eigenvalues.

    Args:
        machine: any machine whose ``step`` torch autograd can differentiate in the state.
        inputs: the constant input x: one input ``[input...]`` shared by every initial
            state, or one per initial state ``[N, input...]``.
        initial_states: where to start: a state pytree with N episodes on the leading axis
            (``machine.initial_state``'s structure), state vectors ``[N, S]``, or a
            :class:`~trajprobe.Trace` from which ``samples`` states s_t (t ≥ 1) are drawn
            uniformly over (episode, t).
        samples: states drawn from a trace (ignored for given states).
        noise: standard deviation of Gaussian noise added to each initial state vector
            (FixedPointFinder's ``noise_scale``), so that saddles are approached from off
            the trajectories.
        method: ``"newton"`` (Levenberg–Marquardt) or ``"adam"`` (see the module notes).
        tol_q: stop a state once q < ``tol_q``.
        tol_dq: stop a state once a step improves q by less than ``tol_dq`` (scaled by the
            learning rate for Adam, as FixedPointFinder does).
        max_iters: at most this many steps (per search: the bridge search has its own).
        learning_rate: Adam's initial learning rate (per state); ignored by ``"newton"``.
        adaptive: adapt the learning rate per state (×1.05 after a step that lowers q,
            ×0.9 after one that raises it); ``"newton"`` always adapts its damping.
        max_q: keep only points whose q is at most this (slow points included); None keeps
            every point, as FixedPointFinder does.
        tol_unique: two points are one if their Euclidean distance is at most this
            (FixedPointFinder's ``FixedPoints.find``); the one with the smaller q is kept.
        outlier_distance: drop points farther from the initial states' centroid than this
            many times the initial states' mean distance to it (None: keep them).
        bridges: also search from the midpoint of each pair of stable points found under
            the same input (at most a quarter as many as the initial states, drawn at
            random if more), for the saddles between attractors (module notes).
        seed: draws the trace samples and the noise.

    Returns:
        A Dataset over ``point`` (unique points by increasing q), ``unit`` (state vector),
        ``unit_from`` and ``mode``: ``state (point, unit)``, ``speed (point)`` = q,
        ``eigenvalues (point, mode)`` of J (complex, by decreasing |λ|),
        ``stable (point)`` (every |λ| < 1), ``jacobian (point, unit, unit_from)``,
        ``input (point, input)``, ``count (point)`` (initial states that ended there; 0
        for a point found only from a midpoint between stable points),
        ``converged (point)`` (q < ``tol_q``); the options, the numbers dropped, and the
        bridge search's ``bridge_starts``, ``bridge_iterations`` and ``bridge_points`` (new
        points it found) in attrs.

    Raises:
        TypeError: the machine's step is not differentiable (a JAX machine needs
            :func:`trajprobe.adapters.jax.differentiable`).
        ValueError: inputs whose batch does not match the initial states.
    """
    options = _options(method, tol_q, tol_dq, max_iters, learning_rate, adaptive)
    samples = check_positive_int(samples, "samples")
    check_positive(noise, "noise", strict=False)
    check_positive(tol_unique, "tol_unique")
    generator = make_generator(seed)
    start = _initial_vectors(machine, initial_states, samples, generator)
    if noise > 0:
        start = start + noise * torch.randn(start.shape, generator=generator).to(start)
    x = _as_inputs(inputs, start.shape[0], start)
    with eval_mode(machine):
        end, q, iterations = _optimise(machine, x, start, options)
        keep, dropped = _keep(end, q, start, max_q, outlier_distance)
        end, q, x_end = end[keep], q[keep], x[keep]
        weight = torch.ones(len(q), dtype=torch.long)
        idx, counts = _unique(end, q, x_end, tol_unique, weight)
        new, jac = _linearise(machine, x_end[idx], end[idx])
        lam = _sorted_eigenvalues(jac, None)
        bridge_starts = bridge_iterations = bridge_points = 0
        if bridges:
            mids, x_mid = _midpoints(end[idx], x_end[idx], (lam.abs() < 1).all(1),
                                     max(1, len(start) // 4), generator)
            bridge_starts = len(mids)
            if bridge_starts:
                b_end, b_q, bridge_iterations = _optimise(machine, x_mid, mids, options)
                b_keep, _ = _keep(b_end, b_q, start, max_q, outlier_distance)
                end = torch.cat([end, b_end[b_keep]])
                q = torch.cat([q, b_q[b_keep]])
                x_end = torch.cat([x_end, x_mid[b_keep]])
                weight = torch.cat([weight, weight.new_zeros(int(b_keep.sum()))])
                idx, counts = _unique(end, q, x_end, tol_unique, weight)
                new, jac = _linearise(machine, x_end[idx], end[idx])
                lam = _sorted_eigenvalues(jac, None)
                bridge_points = int((counts == 0).sum())
        state, xs = end[idx], x_end[idx]
    speed = 0.5 * (new - state).double().pow(2).sum(1)
    ds = _dataset(state, speed, lam, jac, xs, counts, tol_q)
    ds.attrs.update(
        method=options.method, tol_q=tol_q, tol_dq=tol_dq, max_iters=max_iters,
        iterations=iterations, learning_rate=learning_rate, adaptive=int(adaptive),
        tol_unique=tol_unique, noise=noise, max_q=np.nan if max_q is None else max_q,
        outlier_distance=np.nan if outlier_distance is None else outlier_distance,
        initial_states=start.shape[0], **dropped, bridges=int(bridges),
        bridge_starts=bridge_starts, bridge_iterations=bridge_iterations,
        bridge_points=bridge_points, reference=_REFERENCE, trajprobe_version=__version__,
    )
    return ds


def _options(method: str, tol_q: float, tol_dq: float, max_iters: int, learning_rate: float,
             adaptive: bool) -> _Options:
    if method not in ("newton", "adam"):
        raise ValueError(f"method: expected 'newton' or 'adam', got {method!r}")
    check_positive(tol_q, "tol_q", strict=False)
    check_positive(tol_dq, "tol_dq", strict=False)
    check_positive(learning_rate, "learning_rate")
    return _Options(method, float(tol_q), float(tol_dq), check_positive_int(max_iters, "max_iters"),
                    float(learning_rate), bool(adaptive))


def _initial_vectors(machine: sm.StateMachine, initial: sm.State | torch.Tensor | Trace,
                     samples: int, generator: torch.Generator) -> torch.Tensor:
    """The initial state vectors ``[N, S]``."""
    template = sm.state_vector(machine, machine.initial_state(1))
    size = template.shape[1]
    if isinstance(initial, Trace):
        vectors = initial.state_vectors(machine)[:, 1:].flatten(0, 1)
        pick = torch.randint(vectors.shape[0], (samples,), generator=generator)
        vectors = vectors[pick.to(vectors.device)]
    elif isinstance(initial, torch.Tensor | np.ndarray) and np.ndim(initial) == 2 \
            and initial.shape[1] == size:
        vectors = as_tensor(initial, "initial_states", dtype=template.dtype)
    else:
        try:
            sm.batch_size_of(initial, "initial_states")
            vectors = sm.state_vector(machine, initial)
        except (TypeError, ValueError, AttributeError) as error:
            raise ValueError(
                f"initial_states: expected a Trace, state vectors [N, {size}] or a state "
                f"with the structure of machine.initial_state and N leading ({error})"
            ) from None
    if vectors.shape[1] != size or not bool(torch.isfinite(vectors).all()):
        raise ValueError(f"initial_states: expected finite state vectors [N, {size}], got "
                         f"shape {tuple(vectors.shape)}")
    return vectors.detach().to(device=template.device, dtype=template.dtype)


def _as_inputs(inputs: torch.Tensor | np.ndarray, n: int, like: torch.Tensor) -> torch.Tensor:
    """The constant inputs, one per initial state: ``[N, input...]``."""
    x = as_tensor(inputs, "inputs", dtype=like.dtype).to(like.device)
    if x.dim() == 0:
        raise ValueError("inputs: expected one input [input...] or [N, input...], got a scalar")
    if x.dim() >= 2 and x.shape[0] == n and n > 1:
        return x
    if x.dim() >= 2 and x.shape[0] == 1:
        x = x[0]
    return x.unsqueeze(0).expand(n, *x.shape).contiguous()


def _speed(machine: sm.StateMachine, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """q(s) = ½‖F(s, x) − s‖² per row ``[N]`` (eq. 3), without gradients."""
    with torch.no_grad():
        return 0.5 * (vector_step(machine, x, s)[1] - s).double().pow(2).sum(1)


def _optimise(machine: sm.StateMachine, x: torch.Tensor, start: torch.Tensor,
              options: _Options) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Run the optimiser until every state stops: (end points, their q, iterations)."""
    s = start.clone()
    q = _speed(machine, x, s)
    active = torch.ones(len(s), dtype=torch.bool, device=s.device)
    state = _NewtonState(s, q) if options.method == "newton" else _AdamState(s, options)
    iteration = 0
    while iteration < options.max_iters:
        active &= q >= options.tol_q
        rows = active.nonzero().squeeze(1)
        if len(rows) == 0:
            break
        iteration += 1
        proposal = state.propose(machine, x[rows], s[rows], rows)
        q_new = _speed(machine, x[rows], proposal)
        better = q_new < q[rows]
        improved = q[rows] - q_new
        state.adapt(rows, better)
        accept = better | (options.method == "adam")
        s[rows[accept]] = proposal[accept]
        q[rows[accept]] = q_new[accept]
        active[rows[state.stalled(rows, better, improved, options)]] = False
    return s, q, iteration


class _NewtonState:
    """Levenberg–Marquardt on r(s) = F(s) − s with a damping μ and a trust radius per state.

    The radius starts at ``TRUST_START`` × ‖r(s₀)‖ (a fraction of how far the machine itself
    moves from s₀), doubles after an accepted step that it cut and falls to a quarter after a
    rejected one. Early steps therefore follow the Newton flow from each initial state to a
    nearby point instead of jumping across basins; near a point the radius no longer binds
    and the step is the full Gauss–Newton one (quadratic convergence).
    """

    def __init__(self, s: torch.Tensor, q: torch.Tensor):
        self.mu = torch.full((len(s),), 1e-3, dtype=torch.float64, device=s.device)
        self.radius = TRUST_START * (2 * q).sqrt()
        self.cut = torch.zeros(len(s), dtype=torch.bool, device=s.device)

    def propose(self, machine, x, s, rows) -> torch.Tensor:
        chunk = rows_per_chunk(s.shape[1])
        return torch.cat([self._step(machine, x[i:i + chunk], s[i:i + chunk], rows[i:i + chunk])
                          for i in range(0, len(s), chunk)])

    def _step(self, machine, x, s, rows) -> torch.Tensor:
        new, jac, _ = jacobians(machine, x, s, output=False)
        eye = torch.eye(s.shape[1], dtype=torch.float64, device=s.device)
        a = jac.double() - eye
        r = (new - s).double()
        lhs = a.transpose(1, 2) @ a + self.mu[rows, None, None] * eye
        step = torch.linalg.solve(lhs, -(a.transpose(1, 2) @ r.unsqueeze(2))).squeeze(2)
        length = step.norm(dim=1)
        scale = (self.radius[rows] / length).nan_to_num(1.0).clamp(max=1.0)
        self.cut[rows] = scale < 1
        return (s.double() + scale[:, None] * step).to(s.dtype)

    def adapt(self, rows, better) -> None:
        self.mu[rows] = torch.where(better, self.mu[rows] / 3, self.mu[rows] * 10).clamp(1e-12)
        grow = torch.where(self.cut[rows], 2.0, 1.0).to(self.radius)
        self.radius[rows] *= torch.where(better, grow, torch.full_like(grow, 0.25))

    def stalled(self, rows, better, improved, options) -> torch.Tensor:
        return (better & (improved < options.tol_dq)) | (self.mu[rows] > 1e12)


class _AdamState:
    """Adam on q(s) with a learning rate per state (FixedPointFinder's optimiser)."""

    def __init__(self, s: torch.Tensor, options: _Options):
        self.m = torch.zeros_like(s)
        self.v = torch.zeros_like(s)
        self.t = torch.zeros(len(s), dtype=s.dtype, device=s.device)
        self.lr = torch.full((len(s),), options.learning_rate, dtype=s.dtype, device=s.device)
        self.adaptive = options.adaptive

    def propose(self, machine, x, s, rows) -> torch.Tensor:
        with torch.enable_grad():
            leaf = s.detach().clone().requires_grad_(True)
            q = 0.5 * (vector_step(machine, x, leaf)[1] - leaf).pow(2).sum()
            if not q.requires_grad:
                raise _not_differentiable(machine, "its new state carries no gradient")
            (grad,) = torch.autograd.grad(q, leaf)
        b1, b2 = 0.9, 0.999
        self.t[rows] += 1
        self.m[rows] = b1 * self.m[rows] + (1 - b1) * grad
        self.v[rows] = b2 * self.v[rows] + (1 - b2) * grad.square()
        t = self.t[rows, None]
        m_hat = self.m[rows] / (1 - b1**t)
        v_hat = self.v[rows] / (1 - b2**t)
        return s - self.lr[rows, None] * m_hat / (v_hat.sqrt() + 1e-8)

    def adapt(self, rows, better) -> None:
        if self.adaptive:
            self.lr[rows] *= torch.where(better, 1.05, 0.9).to(self.lr)

    def stalled(self, rows, better, improved, options) -> torch.Tensor:
        return improved.abs() < options.tol_dq * self.lr[rows].double()


def _keep(end: torch.Tensor, q: torch.Tensor, start: torch.Tensor, max_q: float | None,
          outlier_distance: float | None) -> tuple[torch.Tensor, dict[str, int]]:
    """Which end points to keep, and how many each filter dropped."""
    finite = torch.isfinite(end).all(1) & torch.isfinite(q)
    near = torch.ones_like(finite)
    if outlier_distance is not None:
        centre = start.double().mean(0)
        scale = (start.double() - centre).norm(dim=1).mean()
        if scale > 0:
            near = (end.double() - centre).norm(dim=1) <= outlier_distance * scale
    slow = torch.ones_like(finite) if max_q is None else q <= max_q
    keep = finite & near & slow
    return keep, {"dropped_nonfinite": int((~finite).sum()),
                  "dropped_outliers": int((finite & ~near).sum()),
                  "dropped_fast": int((finite & near & ~slow).sum())}


def _linearise(machine: sm.StateMachine, x: torch.Tensor, state: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """F(s) ``[P, S]`` and J = ∂F/∂s ``[P, S, S]`` at the points (eq. 2)."""
    if len(state) == 0:
        return state, state.new_zeros(0, state.shape[1], state.shape[1])
    new, jac, _ = jacobians(machine, x, state, output=False)
    return new, jac


def _midpoints(points: torch.Tensor, x: torch.Tensor, stable: torch.Tensor, most: int,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Midpoints of pairs of stable points under the same input, and that input.

    A saddle separates two attractors' basins, often between them; a search from the
    midpoint reaches saddles that no initial state lies near. At most ``most`` pairs,
    drawn at random when there are more.
    """
    rows = stable.nonzero().squeeze(1)
    pairs = torch.combinations(rows, 2)
    if len(pairs):
        flat = x.flatten(1)
        pairs = pairs[(flat[pairs[:, 0]] == flat[pairs[:, 1]]).all(1)]
    if len(pairs) > most:
        pairs = pairs[torch.randperm(len(pairs), generator=generator)[:most]]
    mids = 0.5 * (points[pairs[:, 0]] + points[pairs[:, 1]]) if len(pairs) else points[:0]
    return mids, x[pairs[:, 0]] if len(pairs) else x[:0]


def _unique(points: torch.Tensor, q: torch.Tensor, x: torch.Tensor, tol: float,
            weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy merge by increasing q: indices of the unique points and their counts.

    Two points (under the same input) are one when their Euclidean distance is at most
    ``tol`` (FixedPointFinder's ``FixedPoints.find``). Taken by increasing q, each point
    not yet claimed is kept and claims every unclaimed point within ``tol`` of it; its count
    is the summed ``weight`` (default 1) of the points it claims, itself included.
    """
    order = torch.argsort(q)
    points, flat_x = points[order].double(), x.flatten(1)[order]
    weight = torch.ones(len(q), dtype=torch.long) if weight is None else weight.cpu()[order.cpu()]
    free = torch.ones(len(q), dtype=torch.bool, device=points.device)
    kept: list[int] = []
    counts: list[int] = []
    while bool(free.any()):
        rest = free.nonzero().squeeze(1)  # by increasing q: the first is kept
        i = int(rest[0])
        same = (points[rest] - points[i]).norm(dim=1) <= tol
        same &= (flat_x[rest] == flat_x[i]).all(1)
        claimed = rest[same]
        free[claimed] = False
        kept.append(int(order[i]))
        counts.append(int(weight[claimed.cpu()].sum()))
    return torch.tensor(kept, dtype=torch.long), torch.tensor(counts, dtype=torch.long)


def _dataset(state: torch.Tensor, speed: torch.Tensor, lam: torch.Tensor, jac: torch.Tensor,
             x: torch.Tensor, counts: torch.Tensor, tol_q: float) -> xr.Dataset:
    n, size = state.shape
    lam_np = lam.cpu().numpy().reshape(n, size)
    ds = xr.Dataset(
        {
            "state": (("point", "unit"), state.detach().cpu().numpy()),
            "speed": (("point",), speed.cpu().numpy()),
            "eigenvalues": (("point", "mode"), lam_np),
            "stable": (("point",), (np.abs(lam_np) < 1).all(1)),
            "jacobian": (("point", "unit", "unit_from"), jac.cpu().numpy()),
            "input": (("point", "input"), x.flatten(1).cpu().numpy()),
            "count": (("point",), counts.cpu().numpy()),
            "converged": (("point",), speed.cpu().numpy() < tol_q),
        },
        coords={"point": np.arange(n), "unit": np.arange(size),
                "unit_from": np.arange(size), "mode": np.arange(size)},
    )
    ds["speed"].attrs["long_name"] = "q = ½‖F(s, x) − s‖² (Sussillo & Barak 2013 eq. 3)"
    ds["eigenvalues"].attrs["long_name"] = "eigenvalues of ∂F/∂s, by decreasing |λ|"
    ds["stable"].attrs["long_name"] = "every |λ| < 1"
    ds["count"].attrs["long_name"] = "initial states that converged to this point"
    return ds
