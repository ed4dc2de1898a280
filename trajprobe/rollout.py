"""Run a machine over fixed input sequences and keep every state: the ``Trace``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

from trajprobe import machine as sm
from trajprobe.validation import as_tensor, check_finite_tensor, check_ndim_at_least

__all__ = ["Trace", "rollout"]


@dataclass(frozen=True)
class Trace:
    """Everything a machine did on a batch of episodes.

    Attributes:
        inputs: ``[E, T, ...]`` the inputs x_1..x_T.
        outputs: ``[E, T, ...]`` the outputs y_1..y_T.
        states: a state pytree whose leaves are ``[E, T+1, ...]``: s_0..s_T, where s_t
            is the state after t observations. Probing "at t" uses s_{t-1}.
        attrs: free-form metadata carried into :meth:`to_dataset`.
    """

    inputs: torch.Tensor
    outputs: torch.Tensor
    states: sm.State
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_episodes(self) -> int:
        """E, the number of episodes."""
        return self.inputs.shape[0]

    @property
    def n_steps(self) -> int:
        """T, the number of steps per episode."""
        return self.inputs.shape[1]

    def state_at(self, t: int) -> sm.State:
        """s_t for every episode (``t`` in 0..T): leaves ``[E, ...]``."""
        if not 0 <= t <= self.n_steps:
            raise ValueError(f"t: expected a step in 0..{self.n_steps}, got {t}")
        return sm.tree_map(lambda leaf: leaf[:, t], self.states)

    def state_vectors(self, machine: sm.StateMachine) -> torch.Tensor:
        """All states as vectors ``[E, T+1, S]`` (via :func:`trajprobe.machine.state_vector`)."""
        flat = sm.tree_map(lambda leaf: leaf.flatten(0, 1), self.states)
        vectors = sm.state_vector(machine, flat)
        return vectors.reshape(self.n_episodes, self.n_steps + 1, -1)

    def to_dataset(self, machine: sm.StateMachine | None = None) -> xr.Dataset:
        """The trace as an ``xarray.Dataset``.

        Variables ``inputs (episode, t, input)``, ``outputs (episode, t, output...)`` and,
        with ``t`` running 1..T, ``states (episode, t, state)`` = s_t after t observations
        plus ``initial_state (episode, state)`` = s_0. State vectors come from
        ``machine.state_vector`` when a machine is given, else the default flattening.
        """
        vectors = (
            self.state_vectors(machine)
            if machine is not None
            else sm._default_state_vector(sm.tree_map(lambda x: x.flatten(0, 1), self.states))
            .reshape(self.n_episodes, self.n_steps + 1, -1)
        )
        t = np.arange(1, self.n_steps + 1)
        coords = {"episode": np.arange(self.n_episodes), "t": t}
        return xr.Dataset(
            {
                "inputs": (("episode", "t", *feature_dims("input", self.inputs.dim() - 2)),
                           _numpy(self.inputs)),
                "outputs": (("episode", "t", *feature_dims("output", self.outputs.dim() - 2)),
                            _numpy(self.outputs)),
                "states": (("episode", "t", "state"), _numpy(vectors[:, 1:])),
                "initial_state": (("episode", "state"), _numpy(vectors[:, 0])),
            },
            coords=coords,
            attrs=dict(self.attrs),
        )


def feature_dims(prefix: str, n: int) -> tuple[str, ...]:
    """Names for ``n`` trailing feature axes: ``(prefix,)`` or ``(prefix_0, prefix_1, ...)``."""
    if n == 1:
        return (prefix,)
    return tuple(f"{prefix}_{i}" for i in range(n))


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def rollout(
    machine: sm.StateMachine,
    inputs: torch.Tensor | np.ndarray | xr.DataArray,
    *,
    initial_state: sm.State | None = None,
) -> Trace:
    """Run ``machine`` open-loop over fixed inputs, keeping every state.

    Runs without autograd (``torch.no_grad``; results are ordinary tensors) on the
    machine's device (that of its initial state): y_t = f(x_t, s_{t-1}),
    s_t = g(x_t, s_{t-1}) (DESIGN.md §1; Mikulik et al. eq. 1).

    Args:
        machine: any :class:`~trajprobe.StateMachine`.
        inputs: ``[E, T, ...]`` episodes × steps × input features (a DataArray must have
            dims ``episode, t`` leading).
        initial_state: s_0 with leaves ``[E, ...]``; ``machine.initial_state(E)`` if None.

    Returns:
        A :class:`Trace` with outputs ``[E, T, ...]`` and states ``[E, T+1, ...]`` per leaf.
    """
    if not isinstance(machine, sm.StateMachine):
        raise TypeError(
            "machine: expected a StateMachine (initial_state(batch_size) and step(x, state)), "
            f"got {type(machine).__name__}; wrap a torch module with trajprobe.adapters.wrap"
        )
    inputs = as_tensor(inputs, "inputs", dims=("episode", "t"))
    check_ndim_at_least(inputs, 3, "inputs", "[episode, t, features...]")
    n_episodes, n_steps = inputs.shape[:2]
    if n_steps < 1:
        raise ValueError(f"inputs: expected at least one step, got shape {tuple(inputs.shape)}")
    check_finite_tensor(inputs, "inputs")
    with torch.no_grad():
        state = machine.initial_state(n_episodes) if initial_state is None else initial_state
        sm.check_state(state, n_episodes, "initial_state")
        device = sm.tree_leaves(state)[0].device
        inputs = inputs.to(device=device, dtype=_input_dtype(inputs, state))
        states = [state]
        outputs = []
        for t in range(n_steps):
            y, state = machine.step(inputs[:, t], state)
            outputs.append(y)
            states.append(state)
        outputs_t = torch.stack(outputs, dim=1)
        states_t = sm.stack(states, dim=1)
    for i, leaf in enumerate(sm.tree_leaves(states_t)):
        if leaf.is_floating_point() and not bool(torch.isfinite(leaf).all()):
            bad = int((~torch.isfinite(leaf)).flatten(2).any(-1).any(0).nonzero()[0])
            raise ValueError(f"machine: state leaf {i} became NaN or inf at t={bad}")
    return Trace(inputs=inputs, outputs=outputs_t, states=states_t)


def _input_dtype(inputs: torch.Tensor, state: sm.State) -> torch.dtype:
    """Floating inputs take the state's floating dtype; others are left as they are."""
    if not inputs.is_floating_point():
        return inputs.dtype
    for leaf in sm.tree_leaves(state):
        if leaf.is_floating_point():
            return leaf.dtype
    return inputs.dtype
