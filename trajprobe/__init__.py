"""trajprobe: measure how recurrent learners learn.

Every learner is a state machine (``initial_state`` + ``step``); :func:`rollout` runs it
over fixed inputs and :func:`probe` evaluates counterfactual inputs from its forked states.
"""

from importlib.metadata import PackageNotFoundError, version

from trajprobe.machine import StateMachine
from trajprobe.measure import context_dynamics, effective_spectra, fourier_spectra
from trajprobe.probe import probe
from trajprobe.rollout import Trace, rollout, rollout_env

try:
    __version__ = version("trajprobe")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "StateMachine",
    "Trace",
    "__version__",
    "context_dynamics",
    "effective_spectra",
    "fourier_spectra",
    "probe",
    "rollout",
    "rollout_env",
]
