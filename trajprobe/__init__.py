"""trajprobe: measure how recurrent learners learn.

Every learner is a state machine (``initial_state`` + ``step``); :func:`rollout` runs it
over fixed inputs, :func:`interact` runs it in an environment, :func:`histories` does
whichever a task needs, :func:`probe` evaluates counterfactual inputs from its forked
states and :func:`measure` gives a task's own measurement of it; :func:`sufficiency` asks
whether it treats histories with equal Bayes posteriors as the same.
"""

from trajprobe._version import __version__
from trajprobe.compare.sufficiency import sufficiency
from trajprobe.fixed_point_search import fixed_points
from trajprobe.linearised import linearise
from trajprobe.machine import StateMachine
from trajprobe.measurement import context_dynamics, effective_spectra, fourier_spectra, measure
from trajprobe.posterior import posterior_error
from trajprobe.probing import probe
from trajprobe.traces import Trace, histories, interact, rollout

__all__ = [
    "StateMachine",
    "Trace",
    "__version__",
    "context_dynamics",
    "effective_spectra",
    "fixed_points",
    "fourier_spectra",
    "histories",
    "interact",
    "linearise",
    "measure",
    "posterior_error",
    "probe",
    "rollout",
    "sufficiency",
]
