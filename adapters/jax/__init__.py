"""JAX models (Haiku, Flax linen and NNX, Equinox) as machines: ``pip install trajprobe[jax]``.

Every constructor returns a :class:`JaxMachine`, which speaks torch to the rest of
trajprobe (tensors cross by DLPack) and runs a jitted, pure JAX step underneath:

* :func:`haiku_core` — ``hk.RNNCore`` (``hk.LSTM``, ``hk.GRU``, ``hk.VanillaRNN``,
  ``hk.DeepRNN``, your own) with its params and an optional readout.
* :func:`flax_cell` — linen ``nn.RNNCellBase`` cells (``LSTMCell``, ``OptimizedLSTMCell``,
  ``GRUCell``, your own) with their variables.
* :func:`nnx_cell` — Flax NNX cells.
* :func:`equinox_cell` — Equinox cells (unbatched; vmapped) with a readout.
* :func:`mbml_predictor` — predictors of google-deepmind/nonstationary_mbml.
* :class:`JaxMachine` — any pure ``step(params, x, state) -> (y, state)``.
* :func:`differentiable` — a JaxMachine torch autograd can differentiate (fixed points).
* :func:`haiku_lstm_params`, :func:`flax_lstm_params` — a torch LSTM's weights for the
  Haiku and Flax LSTMs (gate orders differ), e.g. to check a port.

Importing :mod:`trajprobe.adapters` never imports JAX; this module does.
"""

try:
    import jax  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trajprobe.adapters.jax needs JAX: pip install 'trajprobe[jax]' (jax, dm-haiku, "
        "flax, equinox)"
    ) from error

from trajprobe.adapters.jax.differentiable import differentiable
from trajprobe.adapters.jax.machine import JaxMachine, check_params
from trajprobe.adapters.jax.weights import flax_lstm_params, haiku_lstm_params

__all__ = [
    "JaxMachine",
    "check_params",
    "differentiable",
    "equinox_cell",
    "flax_cell",
    "flax_lstm_params",
    "haiku_core",
    "haiku_lstm_params",
    "mbml_predictor",
    "nnx_cell",
]

_LAZY = {
    "haiku_core": ("trajprobe.adapters.jax.haiku_core", "dm-haiku"),
    "flax_cell": ("trajprobe.adapters.jax.flax_cells", "flax"),
    "nnx_cell": ("trajprobe.adapters.jax.flax_cells", "flax"),
    "equinox_cell": ("trajprobe.adapters.jax.equinox_cell", "equinox"),
    "mbml_predictor": ("trajprobe.adapters.jax.mbml", None),
}


def __getattr__(name: str):
    """Import a framework's constructor on first use, so each framework stays optional."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, package = _LAZY[name]
    try:
        value = getattr(importlib.import_module(module), name)
    except ImportError as error:
        if package is None:
            raise
        raise ImportError(
            f"trajprobe.adapters.jax.{name} needs {package}: pip install {package} "
            "(or pip install 'trajprobe[jax]' for all of them)"
        ) from error
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
