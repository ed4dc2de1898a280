"""Probes on a machine's forked states: linear (effective spectra), Fourier, policy.

Pure tensor estimators, reusable for any learner whose probe set and outputs are known.
"""

from trajprobe.probes.fourier import (
    fourier_coefficients,
    fourier_grid,
    fourier_projection,
    spectral_energy_ratio,
)
from trajprobe.probes.linear import effective_map, effective_spectrum, spectrum_ratio
from trajprobe.probes.policy import (
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
