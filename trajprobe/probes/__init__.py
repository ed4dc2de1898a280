"""Probes on a machine's forked states: linear (effective spectra), Fourier, policy."""
