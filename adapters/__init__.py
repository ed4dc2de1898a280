"""Turn foreign models into :class:`~trajprobe.StateMachine` objects.

* :func:`wrap` — ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` and their ``*Cell`` versions.
* :class:`TorchCore` — any module whose ``forward(x, state)`` returns ``(y, state)``.
* :func:`wrap_transformer`, :func:`wrap_gpt2`, :class:`CausalTransformer` — causal
  transformers (your own ``nn.TransformerEncoder`` model, Hugging Face GPT-2 with
  read-in / read-out) whose state is a preallocated key/value cache (:class:`KVState`).
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
    LinearChainLearner,
    MSELoss,
    ReinforceLoss,
    bandit_learner,
    linear_regression_learner,
    mlp_learner,
)
from trajprobe.adapters.torch_rnn import LSTMState, TorchCell, TorchRNN, wrap
from trajprobe.adapters.torch_transformer import (
    CachedBlock,
    CacheReadout,
    CacheSummary,
    CausalTransformer,
    EncoderLayerBlock,
    GPT2BlockAdapter,
    Interleaved,
    KVState,
    OneToken,
    wrap_gpt2,
    wrap_transformer,
)

__all__ = [
    "SGD",
    "Adam",
    "CacheReadout",
    "CacheSummary",
    "CachedBlock",
    "CausalTransformer",
    "DecoupledLinearPolicy",
    "EncoderLayerBlock",
    "GPT2BlockAdapter",
    "Interleaved",
    "KVState",
    "LSTMState",
    "Learner",
    "LinearChainLearner",
    "MSELoss",
    "OneToken",
    "ReinforceLoss",
    "TorchCell",
    "TorchCore",
    "TorchRNN",
    "bandit_learner",
    "linear_regression_learner",
    "mlp_learner",
    "wrap",
    "wrap_gpt2",
    "wrap_transformer",
]
