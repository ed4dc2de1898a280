"""Turn foreign models into :class:`~trajprobe.StateMachine` objects.

* :func:`wrap` — ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` and their ``*Cell`` versions.
* :class:`TorchCore` — any module whose ``forward(x, state)`` returns ``(y, state)``.
* :class:`Learner` — a network trained by SGD/Adam (torch.func, vmapped over learners),
  with the papers' Learners :func:`linear_regression_learner`, :func:`mlp_learner` and
  :func:`bandit_learner` (run closed-loop by :func:`trajprobe.interact`).

JAX models (Haiku, Flax linen and NNX, Equinox, nonstationary_mbml predictors) live in
:mod:`trajprobe.adapters.jax` (``pip install trajprobe[jax]``), imported on its own, so
that importing this package never imports JAX.
"""

from trajprobe.adapters.torch_core import TorchCore
from trajprobe.adapters.torch_learner import (
    SGD,
    Adam,
    DecoupledLinearPolicy,
    Learner,
    MSELoss,
    ReinforceLoss,
    bandit_learner,
    linear_regression_learner,
    mlp_learner,
)
from trajprobe.adapters.torch_rnn import LSTMState, TorchCell, TorchRNN, wrap

__all__ = [
    "SGD",
    "Adam",
    "DecoupledLinearPolicy",
    "LSTMState",
    "Learner",
    "MSELoss",
    "ReinforceLoss",
    "TorchCell",
    "TorchCore",
    "TorchRNN",
    "bandit_learner",
    "linear_regression_learner",
    "mlp_learner",
    "wrap",
]
