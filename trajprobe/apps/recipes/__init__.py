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

from trajprobe.apps.recipes.catalogue import RECIPES, Recipe, _mikulik_entries
from trajprobe.apps.recipes.config import (
    CPU_FLOPS,
    PRESETS,
    LearnerConfig,
    LearnerRecipe,
    MetaLearnerRecipe,
    ModelConfig,
    default_out_dir,
    format_seconds,
)
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


_MOVED = {"load_trained": "trajprobe.apps.load_run (recipe, task, machine, seed = "
                          "load_run(path)), which also reloads runs of one's own recipes"}


def __getattr__(name: str):
    """A pointer to the new place of a name that moved (``load_trained``)."""
    if name in _MOVED:
        raise AttributeError(f"trajprobe.apps.recipes.{name} was replaced by {_MOVED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
