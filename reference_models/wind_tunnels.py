"""The exact Bayes machines of the Bayesian wind tunnels (Agarwal, Dalal & Misra 2025).

Defined beside their tasks in :mod:`trajprobe.tasks.wind_tunnel_posteriors` (so that a task
can hand out its own Bayes machine, ``task.bayes_machine()``, without the core importing
this layer) and published here with the other Bayes-optimal machines. Each has
``from_task(task, **kwargs)``:

* :class:`BijectionPosterior` — bijection elimination (uniform over unrevealed images);
* :class:`AssociativeRecallPosterior` — associative recall (certain if stored, else uniform);
* :class:`HMMForwardFilter` — HMM filtering (the forward algorithm);
* :class:`ChangePointBetaBernoulli` — the regime-switching coin (Adams & MacKay 2007).
"""

from trajprobe.tasks.wind_tunnel_posteriors import (
    AssociativeRecallPosterior,
    BijectionPosterior,
    BijectionState,
    ChangePointBetaBernoulli,
    ChangePointState,
    HMMForwardFilter,
)

__all__ = [
    "AssociativeRecallPosterior",
    "BijectionPosterior",
    "BijectionState",
    "ChangePointBetaBernoulli",
    "ChangePointState",
    "HMMForwardFilter",
]
