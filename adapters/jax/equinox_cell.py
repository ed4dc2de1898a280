"""Equinox recurrent cells (``eqx.nn.LSTMCell``, ``eqx.nn.GRUCell``, your own) as machines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import torch

from trajprobe.adapters.jax.machine import JaxMachine, as_input_shape

__all__ = ["equinox_cell"]


def _hidden(state: Any) -> jax.Array:
    """The cell's output when it has none of its own: h, or the first element of (h, c)."""
    return state[0] if isinstance(state, tuple | list) else state


def equinox_cell(
    cell: eqx.Module,
    *,
    readout: Callable[[jax.Array], jax.Array] | None = None,
    initial_state: Any = None,
    output: Callable[[Any], jax.Array] | None = None,
    input_shape: int | tuple[int, ...] | None = None,
    distribution: Callable[[torch.Tensor], torch.distributions.Distribution] | None = None,
    device: torch.device | str = "cpu",
) -> JaxMachine:
    """An Equinox cell as a machine; the cell and the readout act on one episode, vmapped.

    Equinox cells are unbatched, ``state = cell(x, state)``, and return only the new
    state. The machine runs, for every episode of the batch (``jax.vmap``)::

        s_t = cell(x_t, s_{t-1});   y_t = readout(output(s_t))

    where ``output`` picks the hidden state h (the first element of ``eqx.nn.LSTMCell``'s
    ``(h, c)``; the state itself for ``eqx.nn.GRUCell``). Parameters are the arrays of
    the cell and the readout (``eqx.partition(..., eqx.is_array)``), passed to the
    compiled step as arguments.

    Args:
        cell: an ``eqx.Module`` with ``__call__(x, state) -> state`` on one episode.
        readout: an ``eqx.Module`` or a function of one episode's h, e.g.
            ``eqx.nn.Linear(64, 2, key=key)``; identity if None.
        initial_state: s_0 for *one* episode (no batch axis), repeated for the batch;
            zeros by default for ``eqx.nn.LSTMCell`` (``(h, c)``) and ``eqx.nn.GRUCell``,
            required for other cells.
        output: state → the core's output h, before the readout (default above).
        input_shape: per-episode input shape; default ``(cell.input_size,)`` when the cell
            has ``input_size``.
        distribution, device: as for :class:`JaxMachine`.

    Raises:
        TypeError: ``cell`` is not an ``eqx.Module``; ``initial_state`` missing for a cell
            whose state trajprobe cannot know.

    Example:
        >>> cell = eqx.nn.LSTMCell(4, 64, key=jax.random.PRNGKey(0))
        >>> machine = equinox_cell(cell, readout=eqx.nn.Linear(64, 2, key=jax.random.PRNGKey(1)))
    """
    if not isinstance(cell, eqx.Module):
        raise TypeError(f"cell: expected an equinox Module, got {type(cell).__name__}")
    for name, fn in (("readout", readout), ("output", output)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name}: expected a callable or None, got {type(fn).__name__}")
    if initial_state is None:
        initial_state = _default_initial_state(cell)
    if input_shape is None and isinstance(getattr(cell, "input_size", None), int):
        input_shape = cell.input_size
    shape = as_input_shape(input_shape)
    pick = _hidden if output is None else output
    params, static = eqx.partition((cell, readout), eqx.is_array)

    def one_episode(modules, x, state):
        live_cell, live_readout = modules
        state = live_cell(x, state)
        h = pick(state)
        return (h if live_readout is None else live_readout(h)), state

    def step(p, x, state):
        modules = eqx.combine(p, static)
        return jax.vmap(one_episode, in_axes=(None, 0, 0))(modules, x, state)

    return JaxMachine(step, params, initial_state, input_shape=shape,
                      distribution=distribution, device=device)


def _default_initial_state(cell: eqx.Module) -> Any:
    if isinstance(cell, eqx.nn.LSTMCell | eqx.nn.GRUCell):
        h = jnp.zeros(cell.hidden_size, cell.weight_hh.dtype)
        return (h, h) if isinstance(cell, eqx.nn.LSTMCell) else h
    raise TypeError(
        f"initial_state: required for a {type(cell).__name__} (Equinox cells do not define "
        "their initial state); pass one episode's state, e.g. jnp.zeros(hidden_size)"
    )
