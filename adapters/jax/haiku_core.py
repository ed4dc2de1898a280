"""Haiku recurrent cores (``hk.RNNCore``) as machines."""

from __future__ import annotations

from collections.abc import Callable

import haiku as hk
import jax
import jax.numpy as jnp
import torch

from trajprobe.adapters.jax.machine import JaxMachine, as_input_shape, check_params

__all__ = ["haiku_core"]


def haiku_core(
    core: Callable[[], hk.RNNCore],
    params: hk.Params | None = None,
    *,
    readout: Callable[[jax.Array], jax.Array] | None = None,
    input_shape: int | tuple[int, ...] | None = None,
    seed: int = 0,
    distribution: Callable[[torch.Tensor], torch.distributions.Distribution] | None = None,
    device: torch.device | str = "cpu",
) -> JaxMachine:
    """A Haiku recurrent core, e.g. ``hk.LSTM``, ``hk.GRU``, ``hk.DeepRNN``, as a machine.

    Haiku modules exist only inside a transformed function, so pass a function that
    *builds* the core. It is built, with the readout, inside ``hk.multi_transform``::

        y_t, s_t = readout(core(x_t, s_{t-1}))          s_0 = core.initial_state(B)

    Module names, hence parameter names, are those of a transformed function whose first
    act is ``core()`` (e.g. ``lstm/linear`` for ``hk.LSTM``; ``linear`` for an
    ``hk.Linear`` readout), as in the usual training function
    ``core = make_core(); hk.dynamic_unroll(core, ...); hk.Linear(...)(...)``.

    The core must be deterministic and stateless in Haiku's sense: it is applied without
    an rng (``hk.without_apply_rng``; dropout in the core fails) and without Haiku state
    (``hk.transform_with_state`` and ``hk.get_state`` are not supported).

    Args:
        core: a function of no arguments returning an ``hk.RNNCore`` (``__call__(inputs,
            prev_state) -> (output, next_state)`` and ``initial_state(batch_size)``),
            e.g. ``lambda: hk.DeepRNN([hk.LSTM(64), hk.LSTM(64)])``.
        params: the trained parameters (``hk.Params``); None initialises random ones from
            ``seed`` (then ``input_shape`` is required).
        readout: applied to the core's output inside the transform: a function, which may
            create Haiku modules (``lambda h: hk.Linear(2)(h)``); identity if None.
        input_shape: per-episode input shape (an int for vectors); checked on every step,
            and needed to initialise parameters.
        seed: the ``jax.random.PRNGKey`` seed of random parameters.
        distribution, device: as for :class:`JaxMachine`.

    Returns:
        A :class:`JaxMachine`; its state is the core's state pytree (``hk.LSTMState``
        for ``hk.LSTM``, a tuple of per-layer states for ``hk.DeepRNN``), batch leading.

    Raises:
        TypeError: ``core`` is not callable or does not build an ``hk.RNNCore``.
        ValueError: ``params`` is None and ``input_shape`` is not given.

    Example:
        >>> machine = haiku_core(lambda: hk.LSTM(64), params,
        ...                      readout=lambda h: hk.Linear(2)(h), input_shape=4)
    """
    if not callable(core) or isinstance(core, hk.Module):
        raise TypeError(
            "core: expected a function that builds the core inside the transform, e.g. "
            f"lambda: hk.LSTM(64), got {type(core).__name__}"
        )
    if readout is not None and not callable(readout):
        raise TypeError(f"readout: expected a callable or None, got {type(readout).__name__}")
    shape = as_input_shape(input_shape)

    def build():
        module = core()
        if not isinstance(module, hk.RNNCore):
            raise TypeError(
                f"core: expected the function to return an hk.RNNCore, got "
                f"{type(module).__name__}"
            )

        def initial_state(batch_size):
            return module.initial_state(batch_size)

        def step(x, state):
            out, state = module(x, state)
            return (out if readout is None else readout(out)), state

        def init(x):
            return step(x, initial_state(x.shape[0]))

        return init, (initial_state, step)

    transformed = hk.without_apply_rng(hk.multi_transform(build))
    if params is None:
        if shape is None:
            raise ValueError(
                "input_shape: required to initialise random parameters (params=None); "
                "pass input_shape=<input size>, or the trained params"
            )
        params = transformed.init(jax.random.PRNGKey(seed), jnp.zeros((1, *shape)))
    elif shape is not None:
        expected = jax.eval_shape(transformed.init, jax.random.PRNGKey(0), jnp.zeros((1, *shape)))
        check_params(expected, params, "params")
    apply_initial, apply_step = transformed.apply
    return JaxMachine(
        apply_step,
        params,
        apply_initial,
        input_shape=shape,
        distribution=distribution,
        device=device,
    )
