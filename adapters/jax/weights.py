"""Copy a torch LSTM's weights into the JAX frameworks' LSTMs (gate orders differ).

torch (``nn.LSTM``, ``nn.LSTMCell``) and Equinox stack the gates as (i, f, g, o) in
weights ``[4H, in]`` with two biases (torch) or one; Haiku's ``hk.LSTM`` stacks
(i, g, f, o) in one ``[in + H, 4H]`` matrix over ``[x, h]`` and adds 1 to the forget
gate's pre-activation; Flax's ``LSTMCell`` keeps one ``[in, H]`` kernel per gate for x
(``ii, if, ig, io``) and one per gate, with the bias, for h (``hi, hf, hg, ho``). The
same weights give the same machine in every framework, which is how the JAX adapters are
tested against trajprobe's torch adapters.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import torch
from torch import nn

__all__ = ["flax_lstm_params", "haiku_lstm_params"]

_GATES = ("i", "f", "g", "o")  # torch's order


def _gates(module: nn.LSTM | nn.LSTMCell) -> tuple[dict[str, np.ndarray], ...]:
    """Per-gate ``W_x [H, in]``, ``W_h [H, H]`` and summed bias ``[H]`` of a 1-layer LSTM."""
    if isinstance(module, nn.LSTM):
        if module.num_layers != 1 or module.bidirectional or module.proj_size:
            raise ValueError(
                "module: expected a one-layer, unidirectional nn.LSTM without projection, got "
                f"num_layers={module.num_layers}, bidirectional={module.bidirectional}, "
                f"proj_size={module.proj_size}"
            )
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    elif isinstance(module, nn.LSTMCell):
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    else:
        raise TypeError(f"module: expected nn.LSTM or nn.LSTMCell, got {type(module).__name__}")
    with torch.no_grad():
        w_ih, w_hh = (getattr(module, n).detach().cpu().numpy() for n in names[:2])
        bias = np.zeros(w_ih.shape[0], w_ih.dtype)
        for n in names[2:]:
            if getattr(module, n, None) is not None:
                bias = bias + getattr(module, n).detach().cpu().numpy()
    split = lambda a: dict(zip(_GATES, np.split(a, 4), strict=True))  # noqa: E731
    return split(w_ih), split(w_hh), split(bias)


def _linear(readout: nn.Linear) -> dict[str, jnp.ndarray]:
    if not isinstance(readout, nn.Linear):
        raise TypeError(f"readout: expected nn.Linear or None, got {type(readout).__name__}")
    w = readout.weight.detach().cpu().numpy().T
    b = (readout.bias.detach().cpu().numpy() if readout.bias is not None
         else np.zeros(w.shape[1], w.dtype))
    return {"w": jnp.asarray(w), "b": jnp.asarray(b)}


def haiku_lstm_params(module: nn.LSTM | nn.LSTMCell, readout: nn.Linear | None = None,
                      *, name: str = "lstm", readout_name: str = "linear") -> dict:
    """``hk.Params`` for ``hk.LSTM(H)`` (and an ``hk.Linear`` readout) from torch weights.

    The parameter names are those of :func:`~trajprobe.adapters.jax.haiku_core` with
    ``core=lambda: hk.LSTM(H)`` and ``readout=lambda h: hk.Linear(O)(h)``:
    ``{name}/linear`` and ``readout_name``.
    """
    w_x, w_h, b = _gates(module)
    order = ("i", "g", "f", "o")  # Haiku's
    w = np.concatenate(
        [np.concatenate([w_x[g] for g in order]).T, np.concatenate([w_h[g] for g in order]).T]
    )
    bias = np.concatenate([b[g] - (1.0 if g == "f" else 0.0) for g in order])
    params = {f"{name}/linear": {"w": jnp.asarray(w), "b": jnp.asarray(bias.astype(w.dtype))}}
    if readout is not None:
        params[readout_name] = _linear(readout)
    return params


def flax_lstm_params(module: nn.LSTM | nn.LSTMCell) -> dict:
    """Variables ``{"params": ...}`` for ``flax.linen.LSTMCell(H)`` from torch weights."""
    w_x, w_h, b = _gates(module)
    params = {}
    for g in _GATES:
        params[f"i{g}"] = {"kernel": jnp.asarray(w_x[g].T)}
        params[f"h{g}"] = {"kernel": jnp.asarray(w_h[g].T), "bias": jnp.asarray(b[g])}
    return {"params": params}
