"""Linearised dynamics of any machine: Jacobians of its step, and along a trajectory.

Around a state s and an input x, a machine's transition s' = F(s, x) and output
y = f(x, s) are, to first order (Sussillo & Barak 2013, eq. 2),

    F(s + δs, x) ≈ F(s, x) + J δs,      J = ∂F/∂s   [S, S]
    f(x, s + δs) ≈ f(x, s) + J_y δs,    J_y = ∂f/∂s  [O, S]

in the machine's flattened state vector (:func:`trajprobe.machine.state_vector`; for an
LSTM ``[h, c]``). An eigenvalue λ of J is a mode that a perturbation follows as
λ^k after k steps: |λ| < 1 decays with time constant τ = −1 / log|λ| steps, |λ| = 1 is
a perfect memory (τ = ∞), |λ| > 1 grows (τ < 0). :func:`linearise` gives them at every
step of a :class:`~trajprobe.Trace`: how fast a meta-learner's memory decays as evidence
accumulates. Derivatives come from torch autograd, so the machine's ``step`` must be
differentiable in its state (a :class:`~trajprobe.adapters.jax.JaxMachine`: wrap it with
:func:`trajprobe.adapters.jax.differentiable` first).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
import xarray as xr

from trajprobe import machine as sm
from trajprobe._version import __version__
from trajprobe.guard import eval_mode
from trajprobe.traces import Trace
from trajprobe.validation import check_positive_int

__all__ = ["jacobians", "linearise", "time_constants"]

_CHUNK_ELEMENTS = 2**24
"""Jacobian entries (N · S · S) computed in one batched backward pass: 64 MB in float32."""


def rows_per_chunk(size: int) -> int:
    """How many states of ``size`` units get their Jacobians in one batched pass."""
    return max(1, min(4096, _CHUNK_ELEMENTS // max(size * size, 1)))


def _not_differentiable(machine: Any, what: str) -> TypeError:
    hint = ("; a JAX machine computes outside torch's autograd: wrap it with "
            "trajprobe.adapters.jax.differentiable(machine)"
            if hasattr(machine, "with_params") else
            "; its step must be built from differentiable torch operations (no .detach(), "
            "no numpy, no torch.no_grad inside step)")
    return TypeError(f"machine: {type(machine).__name__}.step is not differentiable: "
                     f"{what}{hint}")


def vector_step(machine: sm.StateMachine, x: torch.Tensor, vectors: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One step from state vectors: ``(y [N, ...], F(s) [N, S])`` for ``vectors [N, S]``."""
    y, new = machine.step(x, sm.state_from_vector(machine, vectors))
    return y, sm.state_vector(machine, new)


def _rows_jacobian(machine: Any, out: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
    """``∂out[n] / ∂inp[n]`` ``[N, P, S]`` for ``out [N, P]`` whose rows depend on their own
    row of ``inp [N, S]`` only (the batch rows of a machine are independent episodes)."""
    if not out.requires_grad:
        raise _not_differentiable(machine, "its outputs carry no gradient")
    n, p = out.shape
    eye = torch.eye(p, dtype=out.dtype, device=out.device).unsqueeze(1).expand(p, n, p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # vmap's slow-fallback notice
            (grads,) = torch.autograd.grad(out, inp, grad_outputs=eye, retain_graph=True,
                                           is_grads_batched=True, allow_unused=True)
    except (RuntimeError, NotImplementedError):  # a backward vmap cannot batch: one by one
        rows = [torch.autograd.grad(out[:, k].sum(), inp, retain_graph=True,
                                    allow_unused=True)[0] for k in range(p)]
        if any(r is None for r in rows):
            raise _not_differentiable(machine, "the state does not reach its outputs") from None
        grads = torch.stack(rows)
    if grads is None:
        raise _not_differentiable(machine, "the new state does not depend on the old one")
    return grads.permute(1, 0, 2)


def jacobians(
    machine: sm.StateMachine,
    x: torch.Tensor,
    vectors: torch.Tensor,
    *,
    output: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The step's Jacobians at N (input, state) pairs, in state-vector coordinates.

    Args:
        machine: any machine whose ``step`` is differentiable by torch autograd.
        x: ``[N, ...]`` inputs.
        vectors: ``[N, S]`` state vectors s (see :func:`trajprobe.machine.state_vector`).
        output: also compute the output Jacobian.

    Returns:
        ``(F, J, J_y)``: the next state vectors F(s, x) ``[N, S]``, J = ∂F/∂s ``[N, S, S]``
        (row: next-state unit, column: state unit) and J_y = ∂f/∂s ``[N, O, S]`` with the
        output flattened to O features (None unless ``output``). Sussillo & Barak 2013 eq. 2.

    Raises:
        TypeError: the step is not differentiable in the state (e.g. a JAX machine).
    """
    parts = []
    step = rows_per_chunk(vectors.shape[1])
    with eval_mode(machine), torch.enable_grad():
        for start in range(0, max(len(vectors), 1), step):
            s = vectors[start:start + step].detach().clone().requires_grad_(True)
            y, new = vector_step(machine, x[start:start + step], s)
            jac = _rows_jacobian(machine, new, s)
            jac_y = (_rows_jacobian(machine, y.reshape(y.shape[0], -1), s) if output else None)
            parts.append((new.detach(), jac.detach(), None if jac_y is None else jac_y.detach()))
    if len(parts) == 1:
        return parts[0]
    new, jac, jac_y = zip(*parts, strict=True)
    return torch.cat(new), torch.cat(jac), torch.cat(jac_y) if output else None


def time_constants(eigenvalues: torch.Tensor | np.ndarray | xr.DataArray
                   ) -> np.ndarray | xr.DataArray:
    """τ = −1 / log|λ| in steps, elementwise: a mode's decay time (inf at |λ| = 1, 0 at
    λ = 0, negative for a growing mode |λ| > 1)."""
    if isinstance(eigenvalues, torch.Tensor):
        eigenvalues = eigenvalues.detach().cpu().numpy()
    magnitude = np.abs(eigenvalues)
    with np.errstate(divide="ignore"):
        tau = np.where(magnitude == 1, np.inf, -1.0 / np.log(magnitude))
    if isinstance(eigenvalues, xr.DataArray):
        return eigenvalues.copy(data=tau).rename("timescale")
    return tau


def _sorted_eigenvalues(jac: torch.Tensor, modes: int | None) -> torch.Tensor:
    """Eigenvalues ``[N, modes]`` (complex128) by decreasing |λ|."""
    lam = torch.linalg.eigvals(jac.double())
    order = torch.argsort(lam.abs(), dim=-1, descending=True)
    lam = torch.gather(lam, -1, order)
    return lam if modes is None else lam[..., :modes]


def _spectrum_where_finite(jac: torch.Tensor, jac_y: torch.Tensor, modes: int | None
                           ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Eigenvalues ``[N, modes]`` of ``jac`` and output gains ``[N]`` of ``jac_y``; NaN on
    the rows where either Jacobian has a non-finite entry (LAPACK fails on them); and
    how many such rows there are."""
    finite = torch.isfinite(jac).flatten(1).all(1) & torch.isfinite(jac_y).flatten(1).all(1)
    size = jac.shape[-1] if modes is None else min(modes, jac.shape[-1])
    lam = torch.full((jac.shape[0], size), complex(math.nan, math.nan),
                     dtype=torch.complex128, device=jac.device)
    gain = torch.full((jac.shape[0],), math.nan, dtype=torch.float64, device=jac.device)
    if bool(finite.any()):
        lam[finite] = _sorted_eigenvalues(jac[finite], modes)
        gain[finite] = torch.linalg.matrix_norm(jac_y[finite].double(), ord=2)
    return lam, gain, int((~finite).sum())


def linearise(
    machine: sm.StateMachine,
    trace: Trace,
    *,
    modes: int | None = None,
    keep_jacobians: bool = False,
) -> xr.Dataset:
    """The machine's linearisation at every step of a trace (Sussillo & Barak 2013 eq. 2).

    At step t (1..T) the step maps s_{t-1} to s_t under x_t; its Jacobian
    J_t = ∂s_t/∂s_{t-1} ``[S, S]`` and output Jacobian ∂y_t/∂s_{t-1} ``[O, S]`` are taken
    in the machine's state-vector coordinates.

    Args:
        machine: the machine that made ``trace``, its ``step`` differentiable (torch).
        trace: from :func:`trajprobe.rollout` or :func:`trajprobe.interact`.
        modes: keep the ``modes`` eigenvalues of largest |λ| (None: all S).
        keep_jacobians: also return the Jacobians themselves (E·T·S² numbers).

    Returns:
        A Dataset over ``(episode, t, mode)``: ``eigenvalues`` (complex, by decreasing |λ|),
        ``magnitude`` |λ|, ``timescale`` τ = −1/log|λ| in steps (see
        :func:`time_constants`), ``output_gain (episode, t)`` the largest singular value
        of ∂y_t/∂s_{t-1}; with ``keep_jacobians``, ``jacobian (episode, t, unit, unit_from)``
        and ``output_jacobian (episode, t, output, unit_from)``. A step whose Jacobian
        has a non-finite entry (the derivative is undefined there, e.g. √s at s = 0) gets
        NaN eigenvalues and gain, with one RuntimeWarning that counts such steps.

    Raises:
        TypeError: the step is not differentiable in the state.
    """
    if not isinstance(trace, Trace):
        raise TypeError(f"trace: expected a trajprobe.Trace, got {type(trace).__name__}")
    if modes is not None:
        modes = check_positive_int(modes, "modes")
    e, t = trace.n_episodes, trace.n_steps
    before = sm.tree_map(lambda leaf: leaf[:, :-1].flatten(0, 1), trace.states)
    vectors = sm.state_vector(machine, before)
    inputs = trace.inputs.flatten(0, 1).to(vectors.device)
    lams, gains, jacs, jac_ys = [], [], [], []
    step, undefined = rows_per_chunk(vectors.shape[1]), 0
    for start in range(0, e * t, step):
        rows = slice(start, start + step)
        _, jac, jac_y = jacobians(machine, inputs[rows], vectors[rows])
        lam, gain, bad = _spectrum_where_finite(jac, jac_y, modes)
        lams.append(lam)
        gains.append(gain)
        undefined += bad
        if keep_jacobians:
            jacs.append(jac)
            jac_ys.append(jac_y)
    if undefined:
        warnings.warn(f"linearise: the Jacobian is not finite at {undefined} of {e * t} steps "
                      "(the step's derivative is undefined there); their eigenvalues and "
                      "output gain are NaN", RuntimeWarning, stacklevel=2)
    lam = torch.cat(lams).reshape(e, t, -1).cpu().numpy()
    return _linearised_dataset(lam, torch.cat(gains).reshape(e, t).cpu().numpy(),
                               torch.cat(jacs).reshape(e, t, *jacs[0].shape[1:]).cpu().numpy()
                               if keep_jacobians else None,
                               torch.cat(jac_ys).reshape(e, t, *jac_ys[0].shape[1:]).cpu()
                               .numpy() if keep_jacobians else None)


def _linearised_dataset(lam: np.ndarray, gain: np.ndarray, jac: np.ndarray | None,
                        jac_y: np.ndarray | None) -> xr.Dataset:
    e, t, m = lam.shape
    data = {
        "eigenvalues": (("episode", "t", "mode"), lam),
        "magnitude": (("episode", "t", "mode"), np.abs(lam)),
        "timescale": (("episode", "t", "mode"), time_constants(lam)),
        "output_gain": (("episode", "t"), gain),
    }
    if jac is not None:
        data["jacobian"] = (("episode", "t", "unit", "unit_from"), jac)
        data["output_jacobian"] = (("episode", "t", "output", "unit_from"), jac_y)
    ds = xr.Dataset(data, coords={"episode": np.arange(e), "t": np.arange(1, t + 1),
                                  "mode": np.arange(m)})
    ds["eigenvalues"].attrs["long_name"] = "eigenvalues of ∂s_t/∂s_{t-1}, by decreasing |λ|"
    ds["timescale"].attrs.update(long_name="time constant −1/log|λ|", units="steps")
    ds["output_gain"].attrs["long_name"] = "largest singular value of ∂y_t/∂s_{t-1}"
    ds.attrs.update(trajprobe_version=__version__, reference="Sussillo & Barak 2013, eq. 2",
                    time_convention="t: the step from s_{t-1} to s_t under x_t")
    return ds
