"""The applications, built on the core: models, training, recipes, sweep, reproduce, cli.

They use the core (everything in ``trajprobe/`` outside ``apps/``) and are never imported
by it; within them, ``cli > reproduce > sweep > recipes > training > models`` (import
contracts in ``pyproject.toml``, checked in CI).

:func:`load_run` reloads a training run (bundled or one's own): its recipe, task and
trained machine.
"""

from trajprobe.apps.runs import Run, load_run

__all__ = ["Run", "load_run"]
