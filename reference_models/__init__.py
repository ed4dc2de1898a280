"""Bayes-optimal reference machines: state = sufficient statistics, same input encoding
as the meta-learner for the same task."""

__all__: list[str] = []
