"""Estimators on probed outputs: linear (effective spectra), Fourier, policy.

Pure tensor functions, reusable for any learner whose probe set and outputs are known;
the probe engine (:func:`trajprobe.probe`) forks a machine's states and produces the outputs.
"""

from trajprobe.estimators.fourier import (
    fourier_coefficients,
    fourier_grid,
    fourier_projection,
    spectral_energy_ratio,
)
from trajprobe.estimators.linear import effective_map, effective_spectrum, spectrum_ratio
from trajprobe.estimators.policy import (
    correct_action_probability,
    expected_context_reward,
    expected_reward,
    policy_probabilities,
)

__all__ = [
    "correct_action_probability",
    "effective_map",
    "effective_spectrum",
    "expected_context_reward",
    "expected_reward",
    "fourier_coefficients",
    "fourier_grid",
    "fourier_projection",
    "policy_probabilities",
    "spectral_energy_ratio",
    "spectrum_ratio",
]
