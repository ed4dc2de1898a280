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
state (÷3 after a step that lowers q, ×10 after one that does not); and ``"adam"``,
FixedPointFinder's choice (Golub & Sussillo 2018), Adam on q with a per-state adaptive
learning rate. The options and their defaults follow FixedPointFinder: ``tol_q``,
``tol_dq``, ``max_iters``, ``tol_unique``, outliers by distance, noise on the initial
states.
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
        max_iters: at most this many steps.
        learning_rate: Adam's initial learning rate (per state); ignored by ``"newton"``.
        adaptive: adapt the learning rate per state (×1.05 after a step that lowers q,
            ×0.9 after one that raises it); ``"newton"`` always adapts its damping.
        max_q: keep only points whose q is at most this (slow points included); None keeps
            every point, as FixedPointFinder does.
        tol_unique: two points are one if they differ by less than this in every unit
            (FixedPointFinder's rule); the one with the smaller q is kept.
        outlier_distance: drop points farther from the initial states' centroid than this
            many times the initial states' mean distance to it (None: keep them).
        seed: draws the trace samples and the noise.

    Returns:
        A Dataset over ``point`` (unique points by increasing q), ``unit`` (state vector),
        ``unit_from`` and ``mode``: ``state (point, unit)``, ``speed (point)`` = q,
        ``eigenvalues (point, mode)`` of J (complex, by decreasing |λ|),
        ``stable (point)`` (every |λ| < 1), ``jacobian (point, unit, unit_from)``,
        ``input (point, input)``, ``count (point)`` (initial states that ended there),
        ``converged (point)`` (q < ``tol_q``); the options and the numbers dropped in attrs.

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
        points, counts = _unique(end[keep], q[keep], x[keep], tol_unique)
        idx = keep.nonzero().squeeze(1)[points]
        state, xs = end[idx], x[idx]
        new, jac, _ = jacobians(machine, xs, state, output=False) if len(idx) else (
            state, state.new_zeros(0, state.shape[1], state.shape[1]), None)
    speed = 0.5 * (new - state).double().pow(2).sum(1)
    ds = _dataset(state, speed, _sorted_eigenvalues(jac, None), jac, xs, counts, tol_q)
    ds.attrs.update(
        method=options.method, tol_q=tol_q, tol_dq=tol_dq, max_iters=max_iters,
        iterations=iterations, learning_rate=learning_rate, adaptive=int(adaptive),
        tol_unique=tol_unique, noise=noise, max_q=np.nan if max_q is None else max_q,
        outlier_distance=np.nan if outlier_distance is None else outlier_distance,
        initial_states=start.shape[0], **dropped,
        reference=_REFERENCE, trajprobe_version=__version__,
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
    state = _NewtonState(s) if options.method == "newton" else _AdamState(s, options)
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
    """Levenberg–Marquardt on r(s) = F(s) − s with a damping μ per state."""

    def __init__(self, s: torch.Tensor):
        self.mu = torch.full((len(s),), 1e-3, dtype=torch.float64, device=s.device)

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
        return (s.double() + step).to(s.dtype)

    def adapt(self, rows, better) -> None:
        self.mu[rows] = torch.where(better, self.mu[rows] / 3, self.mu[rows] * 10).clamp(1e-12)

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


def _unique(points: torch.Tensor, q: torch.Tensor, x: torch.Tensor, tol: float
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy merge by increasing q: indices of the unique points and their counts.

    Two points (under the same input) are one when every unit differs by less than ``tol``.
    """
    order = torch.argsort(q)
    flat_x = x.flatten(1)
    kept: list[int] = []
    counts: list[int] = []
    for i in order.tolist():
        if kept:
            same = (points[kept] - points[i]).abs().amax(1) < tol
            same &= (flat_x[kept] == flat_x[i]).all(1)
            hits = same.nonzero()
            if len(hits):
                counts[int(hits[0])] += 1
                continue
        kept.append(i)
        counts.append(1)
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
