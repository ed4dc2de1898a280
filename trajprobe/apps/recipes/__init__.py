"""The papers' set-ups as typed configurations at three presets: smoke, quick, paper.

>>> from trajprobe.apps import recipes
>>> recipe = recipes.get("linear-regression-2d/meta-learner", "quick")
>>> result = recipe.train("runs/lr2d", seed=0)  # or trajprobe.apps.training.train(recipe, ...)

Research-specific curriculum stages (the bandit recipe's ``"confused"`` stage) live in
:mod:`trajprobe.apps.recipes.curricula`; the recipes pass them to the training loop.
Each quick preset's tuning is a study in ``docs/studies/``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from trajprobe.apps.recipes.catalogue import RECIPES, Recipe, _mikulik_entries
from trajprobe.apps.recipes.config import (
    CPU_FLOPS,
    PRESETS,
    RECIPE_FILE,
    LearnerConfig,
    LearnerRecipe,
    MetaLearnerRecipe,
    ModelConfig,
    default_out_dir,
    format_seconds,
)
from trajprobe.io import check_recorded, load_checkpoint, load_json
from trajprobe.validation import did_you_mean

__all__ = [
    "CPU_FLOPS",
    "PRESETS",
    "LearnerConfig",
    "LearnerRecipe",
    "MetaLearnerRecipe",
    "ModelConfig",
    "Recipe",
    "default_out_dir",
    "get",
    "load_trained",
    "names",
    "table",
]


def _all() -> dict[str, tuple[str, object]]:
    table = dict(RECIPES)
    for name, make in _mikulik_entries().items():
        table[name] = (f"Mikulik meta-learner on {name.split('/', 1)[1]} (Fig. 4)", make)
    return table


def names() -> tuple[str, ...]:
    """Every recipe name, in the papers' order."""
    return tuple(_all())


def get(name: str, preset: str = "quick") -> Recipe:
    """The recipe ``name`` at ``preset`` (``"smoke"``, ``"quick"`` or ``"paper"``)."""
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    table = _all()
    if name not in table:
        raise ValueError(f"name: no recipe {name!r}{did_you_mean(name, table)} "
                         f"(valid names: {', '.join(table)})")
    description, make = table[name]
    return replace(make(preset), name=name, description=description)


def table(preset: str | None = None) -> list[tuple[str, str, str, str]]:
    """Rows (name, preset, estimated time on this CPU, description) for listings."""
    rows = []
    for name in names():
        for p in (preset,) if preset else PRESETS:
            recipe = get(name, p)
            rows.append((name, p, format_seconds(recipe.estimated_seconds()),
                         recipe.description))
    return rows


def load_trained(path: str | Path, *, device: torch.device | str | None = None
                 ) -> tuple[MetaLearnerRecipe, torch.nn.Module]:
    """A trained Meta-Learner from a run directory or one of its checkpoint files.

    The run directory (made by :meth:`MetaLearnerRecipe.train`, ``trajprobe train`` or
    ``trajprobe reproduce``) holds ``recipe.json``, which names the recipe, preset and seed;
    a directory loads ``latest.pt``, a file loads that checkpoint.
    """
    from trajprobe.apps.training import LATEST, load_model

    path = Path(path)
    if not path.exists():
        siblings = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
        raise FileNotFoundError(f"path: no training run or checkpoint at {str(path)!r}"
                                f"{did_you_mean(path.name, siblings)}")
    run_dir = path if path.is_dir() else path.parent
    info_path = run_dir / RECIPE_FILE
    if not info_path.is_file():
        raise ValueError(
            f"path: {str(path)!r} is not a trajprobe training run (no {RECIPE_FILE} in "
            f"{str(run_dir)!r}); train one with `trajprobe train RECIPE --out DIR`"
        )
    info = load_json(info_path, {"name": str, "preset": str, "seed": int})  # names file, field
    recipe = get(info["name"], info["preset"])
    if not isinstance(recipe, MetaLearnerRecipe):
        raise ValueError(f"path: recipe {info['name']!r} is not a trained Meta-Learner")
    checkpoint = path if path.is_file() else run_dir / LATEST
    _check_record(info_path, info, recipe, checkpoint)
    model = load_model(checkpoint, recipe.build_model(int(info["seed"])),
                       map_location=str(device or "cpu"))
    return recipe, model.to(device or "cpu")


def _check_record(info_path: Path, info: dict, recipe: MetaLearnerRecipe, checkpoint: Path
                  ) -> None:
    """``recipe.json`` as a whole against the recipe it names and the checkpoint's record:
    the task it records, and the task the checkpoint records."""
    from trajprobe.apps.training import describe_task

    task = describe_task(recipe.task)
    check_recorded(info_path, "task", info.get("task"), task, f"recipe {recipe.name!r}")
    if checkpoint.is_file():
        saved = load_checkpoint(checkpoint, required=("model",))
        check_recorded(info_path, "name", task, saved.get("task"),
                       f"the task recorded in the checkpoint {str(checkpoint)!r}")
