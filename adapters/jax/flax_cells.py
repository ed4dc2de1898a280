"""Flax recurrent cells, linen (``nn.RNNCellBase``) and NNX, as machines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import torch
from flax import linen, nnx

from trajprobe.adapters.jax.machine import JaxMachine, as_input_shape, check_params

__all__ = ["flax_cell", "nnx_cell"]


def _required_shape(input_shape: int | tuple[int, ...] | None, what: str) -> tuple[int, ...]:
    shape = as_input_shape(input_shape)
    if shape is None:
        raise ValueError(
            f"input_shape: required ({what}); pass the per-episode input shape, e.g. "
            "input_shape=4 for 4 input features"
        )
    return shape


def _variables(params: Any) -> Any:
    """Linen variables: ``{"params": ...}``; bare parameter dicts are wrapped."""
    if isinstance(params, dict) and "params" not in params:
        return {"params": params}
    return params


def flax_cell(
    cell: linen.RNNCellBase,
    params: Any = None,
    *,
    input_shape: int | tuple[int, ...],
    readout: linen.Module | Callable[[jax.Array], jax.Array] | None = None,
    readout_params: Any = None,
    seed: int = 0,
    distribution: Callable[[torch.Tensor], torch.distributions.Distribution] | None = None,
    device: torch.device | str = "cpu",
) -> JaxMachine:
    """A Flax linen cell, e.g. ``nn.LSTMCell``, ``nn.OptimizedLSTMCell``, ``nn.GRUCell``.

    Runs ``carry, out = cell.apply(params, carry, x)`` and ``y = readout(out)``; the
    state is the cell's carry (``(c, h)`` for the LSTM cells), batch leading, and s_0 is
    ``cell.initialize_carry(PRNGKey(seed), (B, *input_shape))``. Several layers are one
    user cell (any ``nn.RNNCellBase`` subclass, or any linen module with ``__call__(carry,
    inputs) -> (carry, out)`` and ``initialize_carry(rng, input_shape)``).

    Args:
        cell: the (unbound) linen cell.
        params: its variables as returned by ``cell.init`` (``{"params": ...}``; a bare
            parameter dict is accepted too), e.g. ``rnn_variables["params"]["cell"]``
            from an ``nn.RNN``; None initialises random ones from ``seed``.
        input_shape: per-episode input shape (an int for vectors): needed for the carry.
        readout: applied to the cell's output: a linen module (with ``readout_params``,
            random from ``seed`` if None) or a function; identity if None.
        readout_params: the readout module's variables.
        seed: the ``jax.random.PRNGKey`` seed of random parameters and of the carry.
        distribution, device: as for :class:`JaxMachine`.

    Raises:
        TypeError: ``cell`` is not a linen module with ``initialize_carry``.
        ValueError: ``params`` do not match the cell (names and shapes listed).

    Example:
        >>> machine = flax_cell(nn.LSTMCell(64), variables, input_shape=4,
        ...                     readout=nn.Dense(2), readout_params=dense_variables)
    """
    if not isinstance(cell, linen.Module) or not hasattr(cell, "initialize_carry"):
        raise TypeError(
            "cell: expected a flax.linen cell with initialize_carry (an nn.RNNCellBase such "
            f"as nn.LSTMCell(64)), got {type(cell).__name__}; for NNX cells use nnx_cell"
        )
    shape = _required_shape(input_shape, "for the cell's initialize_carry")
    key_params, key_readout = jax.random.split(jax.random.PRNGKey(seed))
    carry_key = jax.random.PRNGKey(seed)
    x0 = jnp.zeros((1, *shape))
    carry0 = cell.initialize_carry(carry_key, x0.shape)
    expected = jax.eval_shape(cell.init, key_params, carry0, x0)
    if params is None:
        params = cell.init(key_params, carry0, x0)
    else:
        params = _variables(params)
        check_params(expected, params, "params")
    variables = {"cell": params}

    apply_readout = None
    if isinstance(readout, linen.Module):
        out0 = jax.eval_shape(cell.apply, params, carry0, x0)[1]
        expected_ro = jax.eval_shape(readout.init, key_readout, out0)
        if readout_params is None:
            readout_params = readout.init(key_readout, jnp.zeros(out0.shape, out0.dtype))
        else:
            readout_params = _variables(readout_params)
            check_params(expected_ro, readout_params, "readout_params")
        variables["readout"] = readout_params

        def apply_readout(v, out):
            return readout.apply(v["readout"], out)
    elif readout is not None:
        if not callable(readout):
            raise TypeError(
                f"readout: expected a linen module, a callable or None, got "
                f"{type(readout).__name__}"
            )
        if readout_params is not None:
            raise ValueError("readout_params: given for a readout that is not a linen module")

        def apply_readout(v, out):
            return readout(out)

    def step(v, x, carry):
        carry, out = cell.apply(v["cell"], carry, x)
        return (out if apply_readout is None else apply_readout(v, out)), carry

    def initial_state(v, batch_size):
        return cell.initialize_carry(carry_key, (batch_size, *shape))

    return JaxMachine(step, variables, initial_state, input_shape=shape,
                      distribution=distribution, device=device)


def nnx_cell(
    cell: nnx.Module,
    *,
    input_shape: int | tuple[int, ...],
    readout: nnx.Module | Callable[[jax.Array], jax.Array] | None = None,
    seed: int = 0,
    distribution: Callable[[torch.Tensor], torch.distributions.Distribution] | None = None,
    device: torch.device | str = "cpu",
) -> JaxMachine:
    """A Flax NNX cell, e.g. ``nnx.LSTMCell``, ``nnx.OptimizedLSTMCell``, ``nnx.GRUCell``.

    NNX modules hold their parameters; they are taken out with ``nnx.split`` (cell and
    readout together) and put back with ``nnx.merge`` inside the compiled step::

        carry, out = cell(carry, x);   y = readout(out)

    The state is the carry (``(c, h)`` for the LSTM cells), batch leading; s_0 is
    ``cell.initialize_carry((B, *input_shape), nnx.Rngs(seed))``. The modules are not
    modified; later changes to them are not seen (build a new machine).

    Args:
        cell: an NNX cell with ``__call__(carry, inputs) -> (carry, out)`` and
            ``initialize_carry(input_shape, rngs)``.
        input_shape: per-episode input shape (an int for vectors): needed for the carry.
        readout: an NNX module or a function applied to the cell's output; identity if None.
        seed: seed of the ``nnx.Rngs`` given to ``initialize_carry``.
        distribution, device: as for :class:`JaxMachine`.

    Example:
        >>> cell = nnx.LSTMCell(4, 64, rngs=nnx.Rngs(0))
        >>> machine = nnx_cell(cell, input_shape=4, readout=nnx.Linear(64, 2, rngs=nnx.Rngs(1)))
    """
    if not isinstance(cell, nnx.Module) or not hasattr(cell, "initialize_carry"):
        raise TypeError(
            "cell: expected a flax.nnx cell with initialize_carry (e.g. "
            f"nnx.LSTMCell(4, 64, rngs=nnx.Rngs(0))), got {type(cell).__name__}; "
            "for linen cells use flax_cell"
        )
    if readout is not None and not callable(readout):
        raise TypeError(
            f"readout: expected an NNX module, a callable or None, got {type(readout).__name__}"
        )
    shape = _required_shape(input_shape, "for the cell's initialize_carry")
    module_readout = readout if isinstance(readout, nnx.Module) else None
    graphdef, state = nnx.split((cell, module_readout))

    def step(params, x, carry):
        live_cell, live_readout = nnx.merge(graphdef, params)
        carry, out = live_cell(carry, x)
        if live_readout is not None:
            out = live_readout(out)
        elif readout is not None:
            out = readout(out)
        return out, carry

    def initial_state(params, batch_size):
        return cell.initialize_carry((batch_size, *shape), nnx.Rngs(seed))

    return JaxMachine(step, state, initial_state, input_shape=shape,
                      distribution=distribution, device=device)
