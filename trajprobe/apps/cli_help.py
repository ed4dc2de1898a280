"""The help text of the ``trajprobe`` command: examples per command, and a formatter that
shows every option's default."""

from __future__ import annotations

import argparse

__all__ = ["EPILOGS", "HelpFormatter"]

_EPILOG_REPRODUCE = """examples:
  trajprobe reproduce linear-regression                 # quick preset, ./trajprobe-runs/...
  trajprobe reproduce contextual-bandits --preset smoke --out /tmp/cb
  trajprobe reproduce bayes-optimal --seeds 3 --device cuda
An interrupted run picks up where it stopped: run the same command again."""

_EPILOG_SWEEP = """examples:
  trajprobe sweep linear-regression-2d/meta-learner --seeds 4           # LocalCluster here
  trajprobe sweep bayes-optimal/bernoulli_beta_1_1 --preset paper --seeds 10 \\
      --scheduler tcp://10.0.0.5:8786 --out /shared/sweeps/bern      # an existing cluster
Each seed is one Dask task: train (resuming from its last checkpoint), then measure every
checkpoint. Results merge into OUT/sweep.nc as seeds finish; run the same command again
to resume an interrupted sweep (finished seeds are not redone). Needs
  pip install "trajprobe[distributed]"   (or --scheduler none: one seed after another)."""

_EPILOG_TRAIN = """examples:
  trajprobe recipes                                     # what there is, with estimated cost
  trajprobe train linear-regression-2d/meta-learner --preset quick --out runs/lr2d
  trajprobe train bayes-optimal/bernoulli_beta_1_1 --seed 1 --out runs/bern1"""

_EPILOG_COMPARE = """examples:
  trajprobe compare runs/bern1 bayes --task bernoulli_beta_1_1
  trajprobe compare runs/bern1 runs/bern2 --task bernoulli_beta_1_1 --out bern.nc
A and B are each a training run directory (from `trajprobe train`, `reproduce`, `sweep`
or recipe.train(DIR), of a bundled recipe or one's own), a checkpoint file inside one
(checkpoint_<step>.pt, latest.pt), or `bayes` for the task's Bayes-optimal machine."""

_EPILOG_MEASURE = """examples:
  trajprobe measure runs/lr2d --out lr2d-measure          # effective spectra (eqs. 3, 5)
  trajprobe measure runs/fourier --episodes 50            # Fourier projections (eq. 10)
The measurement is the one of the task the run was trained on (its recipe): effective
spectra, Fourier projections, per-context policies, log-loss or rewards."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Epilogs as written, and every option's default in its help: "(default: X)" is
    appended unless the help already names the default (options whose default is None say
    in words what happens)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or not action.option_strings or action.default is None
                or action.default is False or action.default is argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


EPILOGS = {"reproduce": _EPILOG_REPRODUCE, "sweep": _EPILOG_SWEEP, "train": _EPILOG_TRAIN,
           "compare": _EPILOG_COMPARE, "measure": _EPILOG_MEASURE}
"""Examples shown below each command's options (``trajprobe COMMAND --help``)."""
