"""In-context regression set-ups as recipes: Garg et al. 2022 and Raventós et al. 2023.

* ``garg-linear-regression-{5,10,20}d/transformer`` — Garg et al.'s task and training
  (github.com/dtsip/in-context-learning, ``src/conf/base.yaml``, ``linear_regression.yaml``,
  ``toy.yaml``, ``models/standard.yaml``): y = wᵀx with a scalar y and no noise, w ~ N(0, I),
  x ~ N(0, I); a GPT-2-style decoder with x and y as interleaved tokens (12 layers, 8 heads,
  d_model 256 at ``paper``); prompts of 2d + 1 examples; Adam 1e-4, batch 64, 500k steps;
  their curriculum: dimensions from 5 and prompts from 11 examples, +1 dimension and +2
  examples every 2,000 steps until d and 2d + 1 (:class:`GargCurriculum`). Differences:
  our GPT has no dropout (theirs: GPT-2's 0.1 defaults are kept in their config).
* ``task-diversity/transformer-m<M>`` — Raventós et al.'s pretraining on a pool of M tasks
  (github.com/mansheej/icl-task-diversity, ``icl/configs/example.py``): d = 8, 16 examples,
  noise 0.5, w ~ N(0, I); a GPT-2 of 8 layers, d_model 128, 2 heads; Adam 1e-3 with their
  triangle schedule (linear warm-up over 250k steps, then linear decay to 0 at 500k);
  batch 256. ``m<M>`` is the pool size (``minf``: the prior, M = ∞). Differences: their
  tokens are [0, x] and [y, 0] of width d + 1, ours Garg's x and [y, 0] of width d; the
  pool is nested across M (:class:`~trajprobe.tasks.TaskPool`).

``quick`` keeps each task and shrinks the model and training to minutes on a 2-core CPU;
``smoke`` runs in seconds for tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from trajprobe.apps.presets import Presets
from trajprobe.apps.recipes.config import (
    PRESETS,
    MetaLearnerRecipe,
    ModelConfig,
    scaled_training,
)
from trajprobe.apps.training import OptimiserConfig, SupervisedConfig
from trajprobe.tasks import Episodes, LinearRegression, Seed, TaskPool
from trajprobe.validation import check_positive_int

if TYPE_CHECKING:
    import xarray as xr

    from trajprobe.measurement import Probed

__all__ = [
    "GARG",
    "RECIPES",
    "TASK_DIVERSITY",
    "TASK_DIVERSITY_LADDER",
    "GargCurriculum",
    "garg_curriculum",
    "task_diversity_name",
]

_G = "Garg et al. 2022"
_R = "Raventós et al. 2023"

GARG: dict[str, int] = {"steps": 500_000, "batch": 64, "interval": 2_000, "start": 5}
"""Garg et al.'s training length, batch, curriculum interval and first dimension."""

TASK_DIVERSITY: dict[str, float] = {"dim": 8, "points": 16, "noise": 0.5, "steps": 500_000,
                                    "batch": 256, "lr": 1e-3, "warmup": 0.5}
"""Raventós et al.'s set-up (``icl/configs/example.py``)."""

QUICK_DIM = 4
"""d of the quick and smoke task-diversity presets (the threshold grows with d)."""

TASK_DIVERSITY_LADDER: Presets[tuple[int | None, ...]] = Presets(
    smoke=(1, 16, None),
    quick=(1, 4, 16, 64, 256, None),
    paper=(*(2**k for k in range(1, 21)), None),
)
"""Pool sizes M per preset (None: M = ∞, the prior); paper: Raventós's 2¹ … 2²⁰."""


@dataclass(frozen=True)
class GargCurriculum:
    """Garg et al.'s curriculum over dimensions, keyed by the episode length of each stage.

    The training loop's curriculum (:class:`~trajprobe.apps.training.SupervisedConfig`)
    plays shorter episodes first; Garg et al. grow the prompt (11 → 2d + 1 examples, +2)
    and the dimension (5 → d, +1) together, so a stage of T = 2k + 1 examples shows
    inputs whose coordinates beyond the first k are zero (their ``n_dims_truncated``).
    Episodes of any other length use all ``task.dim`` coordinates, so measuring on this
    task is measuring on ``task``.

    Args:
        task: the scalar-output :class:`~trajprobe.tasks.LinearRegression`.
        dims_by_length: ``((T_s, k_s), ...)``: episodes of length T_s use k_s dimensions.
    """

    task: LinearRegression
    dims_by_length: tuple[tuple[int, int], ...] = ()

    @property
    def input_size(self) -> int:
        """As ``task``."""
        return self.task.input_size

    @property
    def output_size(self) -> int:
        """As ``task``."""
        return self.task.output_size

    def active_dims(self, n_steps: int) -> int:
        """The dimensions shown in episodes of ``n_steps`` examples."""
        return dict(self.dims_by_length).get(n_steps, self.task.dim)

    def sample(self, n_episodes: int, n_steps: int, *, seed: Seed = None,
               device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> Episodes:
        """``task.sample`` with the stage's dimensions (:meth:`active_dims`)."""
        check_positive_int(n_steps, "n_steps")
        return self.task.sample(n_episodes, n_steps, seed=seed, device=device, dtype=dtype,
                                active_dims=self.active_dims(n_steps))

    def probe_inputs(self, inputs, n_probes: int | None = 100, *, seed: Seed = None
                     ) -> torch.Tensor:
        """As ``task.probe_inputs``."""
        return self.task.probe_inputs(inputs, n_probes, seed=seed)

    def summarise(self, probed: Probed) -> xr.Dataset:
        """As ``task.summarise``."""
        return self.task.summarise(probed)


def garg_curriculum(dim: int, total_steps: int, *, interval: int = GARG["interval"],
                    start: int = GARG["start"]) -> tuple[tuple[tuple[float, int], ...],
                                                         tuple[tuple[int, int], ...]]:
    """Garg et al.'s schedule for d = ``dim`` over ``total_steps`` outer steps: the training
    curriculum ``((share, T), ...)`` and the task's ``dims_by_length`` ``((T, k), ...)``:
    k = start … dim - 1 dimensions with T = 2k + 1 examples, ``interval`` steps each."""
    ks = range(min(start, dim), dim)
    share = interval / total_steps
    return tuple((share, 2 * k + 1) for k in ks), tuple((2 * k + 1, k) for k in ks)


def _garg(dim: int) -> Callable[[str], MetaLearnerRecipe]:
    """Garg et al.'s set-up at d = ``dim`` (module docstring). Quick and smoke: 2 layers,
    d_model 64, 4 heads, 400k episodes (6,250 steps) with the curriculum's shares kept."""

    def make(preset: str) -> MetaLearnerRecipe:
        n_steps = 2 * dim + 1
        total = GARG["steps"]
        stages, dims = garg_curriculum(dim, total)
        task = GargCurriculum(LinearRegression(dim, noise_std=0.0, out_dim=1), dims)
        paper = SupervisedConfig(total * GARG["batch"], n_steps, GARG["batch"],
                                 optimiser=OptimiserConfig("adam", 1e-4), curriculum=stages,
                                 save_every=1_000)
        quick = SupervisedConfig(400_000, n_steps, GARG["batch"],
                                 optimiser=OptimiserConfig("adam", 1e-3, "cosine", warmup=0.05),
                                 max_grad_norm=1.0, save_every=500, log_every=50,
                                 curriculum=stages)
        small = ModelConfig("gpt", 64, layers=2, heads=4, max_len=n_steps, interleaved=True)
        model = Presets(smoke=small, quick=small, paper=ModelConfig(
            "gpt", 256, layers=12, heads=8, max_len=n_steps, interleaved=True))[preset]
        return MetaLearnerRecipe(
            name="", preset=preset, paper=f"{_G} §3 (their conf/, see the module docstring)",
            task=task, model=model, training=scaled_training(preset, paper=paper, quick=quick),
        )
    return make


def task_diversity_name(size: int | None) -> str:
    """The recipe of pool size ``size`` (None: M = ∞): ``task-diversity/transformer-m<M>``."""
    return f"task-diversity/transformer-m{'inf' if size is None else size}"


def task_diversity_task(preset: str, size: int | None) -> TaskPool:
    """The pretraining task of pool size ``size`` at ``preset`` (pool seed 0)."""
    dim = Presets(smoke=QUICK_DIM, quick=QUICK_DIM, paper=int(TASK_DIVERSITY["dim"]))[preset]
    base = LinearRegression(dim, noise_std=TASK_DIVERSITY["noise"], out_dim=1)
    return TaskPool(base, size=size, seed=0)


def _task_diversity(size: int | None) -> Callable[[str], MetaLearnerRecipe]:
    """Raventós et al.'s pretraining at pool size ``size`` (module docstring). Quick: d = 4,
    a GPT of 4 layers, d_model 32, 2 heads, Adam 2·10⁻³ on a triangle schedule (10 % warm-up)
    over 1M episodes of batch 64."""

    def make(preset: str) -> MetaLearnerRecipe:
        points, batch = int(TASK_DIVERSITY["points"]), int(TASK_DIVERSITY["batch"])
        optimiser = OptimiserConfig("adam", TASK_DIVERSITY["lr"], "linear",
                                    warmup=TASK_DIVERSITY["warmup"])
        paper = SupervisedConfig(int(TASK_DIVERSITY["steps"]) * batch, points, batch,
                                 optimiser=optimiser, save_every=1_000, log_every=100)
        # quick: depth, not width or length, brings the M = ∞ rung to ridge: 2 layers of 32
        # stayed 23-36 % above ridge after 1-1.5M episodes, 4 layers of 32 came within 2 %
        # after 1M (pilots on this 2-core machine, 4-8 min of one core per rung).
        quick = SupervisedConfig(1_000_000, points, 64,
                                 optimiser=OptimiserConfig("adam", 2e-3, "linear", warmup=0.1),
                                 max_grad_norm=1.0, save_every=1_000, log_every=100)
        width, layers = Presets(smoke=(32, 4), quick=(32, 4), paper=(128, 8))[preset]
        return MetaLearnerRecipe(
            name="", preset=preset, paper=f"{_R} §2 (their icl/configs/example.py)",
            task=task_diversity_task(preset, size),
            model=ModelConfig("gpt", width, layers=layers, heads=2, max_len=points,
                              interleaved=True),
            training=scaled_training(preset, paper=paper, quick=quick),
        )
    return make


def _ladder_sizes() -> tuple[int | None, ...]:
    sizes = {m for preset in PRESETS for m in TASK_DIVERSITY_LADDER[preset] if m is not None}
    return (*sorted(sizes), None)


RECIPES: dict[str, tuple[str, Callable[[str], MetaLearnerRecipe]]] = {
    "garg-linear-regression-5d/transformer": (f"{_G}: GPT-2 (paper: 12 × 256, 8 heads), "
                                              "scalar y = wᵀx, interleaved tokens, d = 5",
                                              _garg(5)),
    "garg-linear-regression-10d/transformer": ("as above, d = 10, curriculum 5 → 10",
                                               _garg(10)),
    "garg-linear-regression-20d/transformer": ("as above, d = 20, curriculum 5 → 20",
                                               _garg(20)),
    **{task_diversity_name(m): (f"{_R}: GPT-2 pretrained on "
                                f"{'the prior (M = ∞)' if m is None else f'a pool of M = {m}'}",
                                _task_diversity(m))
       for m in _ladder_sizes()},
}
"""Name → (one-line description, preset → recipe) of the in-context regression set-ups."""
