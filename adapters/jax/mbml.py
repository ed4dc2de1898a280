"""Predictors of google-deepmind/nonstationary_mbml (``predictors.Predictor``) as machines.

That repository's predictors share one interface, ``initial_state(params, rng,
batch_size)`` and ``unroll(params, rng, batch [B, T, ...], init_state)``. A machine needs
one step, which exists in two of its three kinds of predictor:

* ``ScanPredictor`` (the Bayes-optimal ``OptimalPredictor`` family) defines it:
  ``s_t = update_state(rng, s_{t-1}, x_t)``, ``y_t = output_from_state(rng, s_t)``.
* ``RNNPredictor`` (the ``'rnn'`` factory) unrolls with ``return_all_states=True``:
  a one-step unroll from s_{t-1} returns y_t and s_t.
* ``InContextPredictor`` (the ``'transformer'`` and ``'sliding_window_transformer'``
  factories) has no state (``initial_state`` is None): its ``unroll`` reads the whole
  history at once, so no per-step function exists short of making the history itself
  the state. It is refused with that explanation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import torch

from trajprobe.adapters.jax.machine import JaxMachine, as_input_shape

__all__ = ["mbml_predictor"]


def mbml_predictor(
    predictor: Any,
    params: Any,
    *,
    input_shape: int | tuple[int, ...] | None = None,
    seed: int = 0,
    distribution: Callable[[torch.Tensor], torch.distributions.Distribution] | None = None,
    device: torch.device | str = "cpu",
) -> JaxMachine:
    """A nonstationary_mbml predictor (RNN or Bayes-optimal) as a machine.

    Args:
        predictor: a ``predictors.Predictor`` with ``initial_state(params, rng,
            batch_size)``, and either ``update_state`` and ``output_from_state``
            (a ``ScanPredictor``) or an ``unroll`` returning ``(outputs, all_states)``
            (an ``RNNPredictor`` built with ``return_all_states=True``, as the
            repository's ``'rnn'`` factory does).
        params: the predictor's parameters (``hk.Params`` for an RNN; the prior's
            parameter tuples for an optimal predictor).
        input_shape: per-episode input shape, checked on every step when given.
        seed: the ``jax.random.PRNGKey`` passed as ``rng`` to every call (the same key
            at every step: deterministic predictors ignore it).
        distribution, device: as for :class:`JaxMachine`.

    Raises:
        TypeError: ``predictor`` lacks the interface; an ``unroll`` that does not return
            its states.
        ValueError: a predictor without state (``InContextPredictor``, transformers).
    """
    for method in ("initial_state", "unroll"):
        if not callable(getattr(predictor, method, None)):
            raise TypeError(
                f"predictor: expected a nonstationary_mbml Predictor with {method}(...), got "
                f"{type(predictor).__name__}"
            )
    rng = jax.random.PRNGKey(seed)
    state = predictor.initial_state(params, rng, 1)
    if not jax.tree_util.tree_leaves(state):
        raise ValueError(
            f"predictor: {type(predictor).__name__}.initial_state returned {state!r}: the "
            "predictor carries no state between steps (its unroll reads the whole history "
            "at once, as InContextPredictor and the transformers do), so it has no "
            "per-step function for trajprobe to run; wrap a recurrent predictor instead"
        )
    scan = callable(getattr(predictor, "update_state", None)) and callable(
        getattr(predictor, "output_from_state", None)
    )
    step = _scan_step(predictor, rng) if scan else _unroll_step(predictor, rng)

    def initial_state(p, batch_size):
        return predictor.initial_state(p, rng, batch_size)

    return JaxMachine(step, params, initial_state, input_shape=as_input_shape(input_shape),
                      distribution=distribution, device=device)


def _scan_step(predictor: Any, rng: jax.Array):
    def step(params, x, state):
        state = predictor.update_state(rng, state, x)
        return predictor.output_from_state(rng, state), state

    return step


def _unroll_step(predictor: Any, rng: jax.Array):
    def step(params, x, state):
        result = predictor.unroll(params, rng, x[:, None], state)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(
                f"predictor: {type(predictor).__name__}.unroll returned "
                f"{type(result).__name__}, expected (outputs, all_states); build the RNN "
                "with return_all_states=True so one step's new state can be read"
            )
        outputs, states = result
        return outputs[:, 0], jax.tree_util.tree_map(lambda leaf: leaf[:, 0], states)

    return step
