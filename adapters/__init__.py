"""Turn foreign models into :class:`~trajprobe.StateMachine` objects.

* :func:`wrap` — ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` and their ``*Cell`` versions.
* :class:`TorchCore` — any module whose ``forward(x, state)`` returns ``(y, state)``.
"""

from trajprobe.adapters.torch_core import TorchCore
from trajprobe.adapters.torch_rnn import LSTMState, TorchCell, TorchRNN, wrap

__all__ = ["LSTMState", "TorchCell", "TorchCore", "TorchRNN", "wrap"]
