"""Ideal observers of neurogym's cognitive tasks, exact Bayes machines (issue 37).

Defined beside the tasks in :mod:`trajprobe.tasks.ideal_observers` (so that
:class:`~trajprobe.tasks.neurogym_trials.NeurogymTask` hands out its own,
``task.bayes_machine()``, without the core importing this layer) and published here with
the other Bayes-optimal machines. Each has ``from_env(env)`` and ``accepts(env)``:

* :class:`PerceptualDecisionObserver` — ``PerceptualDecisionMaking``: the posterior over
  the choice, marginalised over the coherence levels; state = log-likelihood per
  (coherence, choice).
* :class:`ContextDecisionObserver` — ``ContextDecisionMaking`` (Mante et al. 2013): the
  relevant modality's choice posterior, weighted by the posterior over the context.

:func:`ideal_observer` finds the observer of an environment.
"""

from trajprobe.tasks.ideal_observers import (
    IDEAL_OBSERVERS,
    ContextDecisionObserver,
    ContextDecisionState,
    PerceptualDecisionObserver,
    PerceptualDecisionState,
    ideal_observer,
)

__all__ = ["IDEAL_OBSERVERS", "ContextDecisionObserver", "ContextDecisionState",
           "PerceptualDecisionObserver", "PerceptualDecisionState", "ideal_observer"]
