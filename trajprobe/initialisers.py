"""PyTorch's default initialisation, drawn from a given generator instead of the global RNG.

``nn.Linear``, the recurrent layers (``nn.RNN``/``GRU``/``LSTM`` and their cells) and any
other module with weights are re-drawn with PyTorch's own rules, so a seed fixes a
network without touching ``torch``'s global random state (STYLE.md principle 6):

* ``nn.Linear``: weight and bias ~ U(-1/√fan_in, 1/√fan_in) (the same distribution as
  PyTorch's Kaiming-uniform default with a = √5);
* recurrent layers: every parameter ~ U(-1/√hidden_size, 1/√hidden_size).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["torch_default_init", "truncated_normal_init"]

_RECURRENT = (nn.RNNBase, nn.RNNCellBase)


@torch.no_grad()
def torch_default_init(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every ``nn.Linear`` and recurrent layer of ``module`` from ``generator``.

    Args:
        module: any module; its ``nn.Linear``, ``nn.RNN``/``GRU``/``LSTM`` (and cell)
            sub-modules are re-initialised in place, in ``module.modules()`` order.
        generator: a ``torch.Generator`` on the module's device.

    Returns:
        ``module``, for chaining.
    """
    for layer in module.modules():
        if isinstance(layer, _RECURRENT):
            bound = 1 / math.sqrt(layer.hidden_size)
            for p in layer.parameters(recurse=False):
                nn.init.uniform_(p, -bound, bound, generator=generator)
        elif isinstance(layer, nn.Linear):
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
            if layer.bias is not None:
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return module


@torch.no_grad()
def truncated_normal_init(module: nn.Module, generator: torch.Generator, std: float) -> nn.Module:
    """Every parameter ~ N(0, std²) truncated at ±2σ (Rabinowitz A.1/A.5), from ``generator``."""
    for p in module.parameters():
        nn.init.trunc_normal_(p, std=std, a=-2 * std, b=2 * std, generator=generator)
    return module
