"""Reload a training run: its recipe, its task and its trained machine, from its directory.

A run directory is what :meth:`~trajprobe.apps.recipes.MetaLearnerRecipe.train`,
``trajprobe train``, ``trajprobe reproduce`` and :func:`~trajprobe.apps.sweep.sweep` (one per
seed, under ``runs/``) write: ``recipe.json`` (the recipe's name, preset and seed, its task
by importable class path and fields, its model and training configuration) beside the
checkpoints (``latest.pt``, ``checkpoint_<step>.pt``). Its files are owned by
:mod:`trajprobe.apps.training.run_dirs` (write, read, validate, resolve); :func:`load_run`
is the one loader built on it, used by the ``trajprobe`` command (``measure``,
``compare``, ``--untrained``), sweeps and reproduce targets alike, so a run of one's own
recipe works wherever a bundled one does.

>>> from trajprobe.apps import load_run
>>> recipe, task, machine, seed = load_run("runs/bern")  # doctest: +SKIP
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import sys
import typing
from pathlib import Path
from typing import Any, NamedTuple

import torch

from trajprobe.apps import recipes as catalogue
from trajprobe.apps.recipes.config import PRESETS, MetaLearnerRecipe, ModelConfig
from trajprobe.apps.training import (
    OptimiserConfig,
    PolicyGradientConfig,
    SupervisedConfig,
)
from trajprobe.apps.training.run_dirs import (
    RunRecord,
    describe_task,
    differences,
    load_weights,
    read_run_record,
    task_class_path,
    task_differences,
    with_defaults,
)

__all__ = ["Run", "load_run"]

TRAINING_KINDS = {"supervised": SupervisedConfig, "policy_gradient": PolicyGradientConfig}


class Run(NamedTuple):
    """A reloaded training run (unpacks as ``recipe, task, machine, seed``).

    Attributes:
        recipe: the :class:`~trajprobe.apps.recipes.MetaLearnerRecipe` that trained it.
        task: the recipe's task (``recipe.task``), the same object.
        machine: the trained model, a state machine (``initial_state`` + ``step``), in
            eval mode on the device asked for.
        seed: the training seed.
    """

    recipe: MetaLearnerRecipe
    task: Any
    machine: torch.nn.Module
    seed: int

    @property
    def label(self) -> str:
        """``"name (preset, seed N)"``, for messages and result attributes."""
        return f"{self.recipe.name} ({self.recipe.preset}, seed {self.seed})"


def load_run(path: str | Path, *, device: torch.device | str | None = None,
             recipe: MetaLearnerRecipe | None = None) -> Run:
    """The recipe, the task and the trained machine of a run directory (or checkpoint file).

    A bundled recipe's run is rebuilt from the catalogue (``trajprobe recipes``); a run of
    one's own :class:`~trajprobe.apps.recipes.MetaLearnerRecipe` is rebuilt from its
    ``recipe.json``: the task class is imported by the module path it was recorded under
    (e.g. ``my_tasks.PoissonRate``) and given the recorded fields, and the model and training
    configurations are read back. A directory loads ``latest.pt``; a checkpoint file loads
    that checkpoint. Either way the checkpoint must record the recipe's task.

    Args:
        path: a run directory or one of its checkpoint files.
        device: where the machine goes (None: the CPU).
        recipe: the recipe that trained the run, when the caller holds it (a sweep, a
            reproduce target): the record is checked against it (name, preset and task)
            instead of rebuilding the recipe from it.

    Raises:
        FileNotFoundError: nothing at ``path`` (or a link that leads nowhere).
        ValueError: ``path`` is not a run (no ``recipe.json``), or its ``recipe.json`` lacks
            a field or holds one of another type; its task class cannot be imported (the
            message says how to make it importable); the rebuilt task differs from the
            recorded one, or the checkpoint's from the recipe's (every differing field, both
            values); the run predates recorded model configurations and is not a bundled
            recipe's; ``recipe`` is not the one the record names.
    """
    record = read_run_record(path)
    seed = int(record.info["seed"])
    if recipe is not None:
        _check_given(record, recipe)
        field = "task"
    else:
        bundled = _bundled(record.info)
        recipe, field = (bundled, "name") if bundled is not None else (
            _own_recipe(record.info, record.path), "task")
    machine = load_weights(record, recipe.build_model(seed), recipe.task, field=field,
                           map_location=str(device or "cpu"))
    return Run(recipe, recipe.task, machine.to(device or "cpu").eval(), seed)


def _check_given(record: RunRecord, recipe: MetaLearnerRecipe) -> None:
    """ValueError unless ``recipe`` is the one ``record`` names (name, preset, task)."""
    keys = ("name", "preset")
    changed = differences({k: record.info[k] for k in keys},
                          {k: getattr(recipe, k) for k in keys}, labels=("recorded", "given"))
    changed += [f"task.{line}" for line in task_differences(
        record.info.get("task"), describe_task(recipe.task), labels=("recorded", "given"))]
    if changed:
        raise ValueError(f"recipe: {str(record.path)!r} records another recipe than the one "
                         f"given ({'; '.join(changed)}); load the run with its own recipe, "
                         "or without one")


def _bundled(info: dict[str, Any]) -> MetaLearnerRecipe | None:
    """The catalogue's recipe that ``info`` records (same name, task, model and training),
    or None: one's own recipe under a bundled name, or a run of an older catalogue, is
    rebuilt from its record."""
    if info["name"] not in catalogue.names() or info["preset"] not in PRESETS:
        return None
    recipe = catalogue.get(info["name"], info["preset"])
    if not isinstance(recipe, MetaLearnerRecipe):
        return None
    recorded = info.get("task")
    if recorded is not None and task_differences(recorded, describe_task(recipe.task)):
        return None
    for key, config in (("model", recipe.model), ("training", recipe.training)):
        if isinstance(info.get(key), dict) and differences(
                with_defaults(info[key], config), dataclasses.asdict(config)):
            return None
    return recipe


def _own_recipe(info: dict[str, Any], info_path: Path) -> MetaLearnerRecipe:
    """A user's MetaLearnerRecipe, rebuilt from its ``recipe.json``."""
    if "model" not in info or "training" not in info:
        raise ValueError(
            f"path: {str(info_path)!r} records recipe {info['name']!r}, which is not a bundled "
            "recipe, and no model or training configuration (a run trained before "
            "load_run existed): load it with its recipe, load_run(path, recipe=RECIPE), "
            "or train it again with recipe.train(DIR)")
    task = _task(info.get("task"), info_path)
    kind = info.get("training_kind", "supervised")
    return MetaLearnerRecipe(
        name=info["name"], preset=info["preset"], paper=info.get("paper", ""), task=task,
        model=_dataclass(ModelConfig, info["model"]),
        training=_dataclass(TRAINING_KINDS[kind], info["training"]),
        description=info.get("description", ""), agent=info.get("agent", "meta-learner"))


def _task(recorded: dict[str, Any] | None, info_path: Path) -> Any:
    """The task ``recorded`` describes: its class imported by path, its fields given."""
    if not recorded or "class" not in recorded:
        raise ValueError(f"path: {str(info_path)!r} records no task class (a task that is "
                         "not a dataclass cannot be rebuilt); pass it to your recipe again")
    cls = _import_class(recorded["class"], info_path)
    hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in recorded and field.init:
            kwargs[field.name] = _field_value(recorded[field.name], hints.get(field.name))
    task = cls(**kwargs)
    changed = task_differences(recorded, describe_task(task))
    if changed:
        raise ValueError(f"path: {str(info_path)!r} records a task that {recorded['class']} "
                         f"does not rebuild ({'; '.join(changed)})")
    return task


def _import_class(class_path: str, info_path: Path) -> type:
    """The class named ``module.QualName`` (the longest importable module prefix); a class
    of the running script is taken from ``__main__`` (importing the script would run it)."""
    parts = class_path.split(".")
    in_main = _attribute(sys.modules.get("__main__"), parts[-1:])
    if isinstance(in_main, type) and task_class_path(in_main) == class_path:
        return in_main
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            break
        return obj
    where = ("a notebook, python -c or stdin" if parts[0] == "__main__"
             else f"module {'.'.join(parts[:-1])!r}, not importable from here")
    raise ValueError(
        f"path: {str(info_path)!r} was trained on task class {class_path!r}, defined in "
        f"{where}; make it importable (a .py file on sys.path, e.g. run from the folder of "
        f"the script that trained it, or move the class into a module and import it there "
        f"before training), then load again (sys.path starts {sys.path[:2]})")


def _attribute(obj: Any, names: list[str]) -> Any:
    for name in names:
        obj = getattr(obj, name, None)
    return obj


def _field_value(value: Any, hint: Any) -> Any:
    """A recorded field value as the field wants it (``describe_task`` keeps non-plain
    values as their ``repr``; tuples come back from JSON as lists)."""
    if isinstance(value, str) and hint is not str:
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return _tuples(value)


def _dataclass(cls: type, data: dict[str, Any]) -> Any:
    """``cls(**data)`` with nested dataclass fields rebuilt and JSON lists made tuples."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in data or not field.init:
            continue
        value = data[field.name]
        nested = hints.get(field.name)
        if dataclasses.is_dataclass(nested) and isinstance(value, dict):
            kwargs[field.name] = _dataclass(nested, value)
        elif nested is OptimiserConfig or (isinstance(value, dict) and field.name == "optimiser"):
            kwargs[field.name] = _dataclass(OptimiserConfig, value)
        else:
            kwargs[field.name] = _tuples(value)
    return cls(**kwargs)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
