"""Run directories: the one owner of their record (write, read, validate, resolve), what a
run was trained with, and refusing to mix another run into it.

A run directory holds :data:`RECIPE_FILE` (``recipe.json``: the recipe's name, preset and
seed, its task by importable class path and fields, its model and training configuration)
beside the checkpoints (``latest.pt``, ``checkpoint_<step>.pt``). It is written only by
:func:`write_run_record` and read only by :func:`read_run_record`;
:func:`trajprobe.apps.load_run` turns that record into the recipe, task and machine.

A checkpoint records the loop (``kind``), the config (JSON) and the task
(:func:`describe_task`: its class by importable module path, and its fields). A run is
resumed or reused only with the same three; every refusal names each setting that
differs, with the run's value and the given one.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

from torch import nn

from trajprobe import io
from trajprobe.apps.training.checkpoints import LATEST, load_state
from trajprobe.validation import did_you_mean

__all__ = ["RECIPE_FILE", "RECORD_FIELDS", "RunRecord", "check_run_dir", "check_run_info",
           "describe_task", "differences", "load_weights", "read_run_record", "resolve_run",
           "task_class_path", "task_differences", "unloadable_task_message", "with_defaults",
           "write_run_record"]

RECIPE_FILE = "recipe.json"
"""Written into every training run directory: which recipe, preset, seed and task made it."""

RECORD_FIELDS: dict[str, type] = {"name": str, "preset": str, "seed": int}
"""The fields every ``recipe.json`` has, with their types (checked on every read)."""

RESUMABLE_CHANGES = ("save_every", "log_every")
"""Config fields a resumed run may change: they do not change the numbers."""

MAIN = "__main__"


def task_class_path(cls: type) -> str:
    """``"module.QualName"`` of a task class, with the module as another script imports it.

    A class defined in the script that was run (module ``__main__``) is recorded under the
    name that script has on ``sys.path`` (``python train.py`` in ``/work`` gives
    ``train.Task``; ``python -m lab.train`` gives ``lab.train.Task``), so a script that
    imports the class from there is recognised as using the same class. A class of a
    notebook, ``python -c`` or stdin stays ``__main__.Task`` (see
    :func:`unloadable_task_message`).
    """
    module = cls.__module__
    if module == MAIN:
        module = _main_module_name() or MAIN
    return f"{module}.{cls.__qualname__}"


def _main_module_name() -> str | None:
    """The importable name of the ``__main__`` module, or None if it has none."""
    main = sys.modules.get(MAIN)
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and not spec.name.endswith(MAIN):
        return spec.name
    file = getattr(main, "__file__", None)
    if not file or not file.endswith(".py"):
        return None
    path = Path(file).resolve().with_suffix("")
    for entry in sys.path:
        try:
            parts = path.relative_to(Path(entry or ".").resolve()).parts
        except (OSError, ValueError):
            continue
        if parts and all(part.isidentifier() for part in parts):
            return ".".join(parts)
    return None


def unloadable_task_message(task: Any) -> str | None:
    """Why a run of ``task`` cannot be reloaded from another script (None: it can)."""
    if not dataclasses.is_dataclass(task):
        return None
    path = task_class_path(type(task))
    if not path.startswith(f"{MAIN}."):
        return None
    name = type(task).__qualname__
    return (f"task: {name} is defined in __main__ (a notebook, python -c or stdin), so a "
            f"run records it as {path!r} and another script cannot load it or be "
            f"recognised as using it; move the class {name} into a module (a .py file on "
            f"the path, e.g. my_tasks.py) and import it (from my_tasks import {name})")


def describe_task(task: Any) -> dict[str, Any] | None:
    """A JSON description of ``task`` (its class and fields) that a run directory records,
    so a run is never resumed, reused or relabelled with another task.

    ``"class"`` is :func:`task_class_path`. None for a task that is not a dataclass: its
    identity is unknown (a default ``repr`` holds a memory address), so such runs are
    checked by their config alone. A field whose metadata has ``"added": True`` (a field
    added after runs were recorded) is described only when it differs from its default,
    so older run directories still match.
    """
    if not dataclasses.is_dataclass(task):
        return None
    out: dict[str, Any] = {"class": task_class_path(type(task))}
    for f in dataclasses.fields(task):
        value = getattr(task, f.name)
        if f.metadata.get("added") and value == f.default:
            continue
        plain = isinstance(value, int | float | str | bool | None)
        out[f.name] = value if plain else repr(value)
    return out


def differences(before: dict[str, Any], given: dict[str, Any], *, ignore: tuple[str, ...] = (),
                labels: tuple[str, str] = ("run", "given")) -> list[str]:
    """``"name: run X, given Y"`` for every setting that differs between two JSON dicts;
    nested dicts by dotted names (``"optimiser.lr: run 0.01, given 0.02"``)."""
    out = []
    for key in sorted(set(before) | set(given)):
        if key in ignore:
            continue
        a, b = _jsonable(before.get(key)), _jsonable(given.get(key))
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{line}" for line in differences(a, b, labels=labels)]
        elif a != b:
            out.append(f"{key}: {labels[0]} {a!r}, {labels[1]} {b!r}")
    return out


def check_run_dir(out_dir: str | Path, kind: str, config: Any, task: Any) -> None:
    """Refuse, before anything is written, to resume a run in ``out_dir`` that was trained
    with another kind of loop, another config or another task (see :func:`describe_task`).

    Raises:
        ValueError: naming the directory and every setting that differs, with both values.
    """
    latest = Path(out_dir) / LATEST
    if not latest.exists():
        return
    saved = io.load_checkpoint(latest, required=("config", "step"))
    check_same_config(saved, kind, config, latest)
    check_same_task(saved, task, latest)


def check_same_task(saved: dict[str, Any], task: Any, path: Path) -> None:
    """ValueError unless ``task`` is the task of the checkpoint ``saved`` (read from
    ``path``). A side recorded as ``__main__.Q`` matches any class ``Q`` (its module is
    unknown: runs recorded before classes were named by their importable module)."""
    changed = task_differences(saved.get("task"), describe_task(task))
    if changed:
        from_main = any(f"'{MAIN}." in line for line in changed)
        hint = ("; a class defined in __main__ cannot be recognised from another script: move "
                "it into an importable module" if from_main else "")
        raise ValueError(f"task: differs from the task of the run in {str(path.parent)!r} "
                         f"({'; '.join(changed)}); use another out directory for another "
                         f"task{hint}")


def task_differences(before: dict[str, Any] | None, current: dict[str, Any] | None, *,
                     labels: tuple[str, str] = ("run", "given")) -> list[str]:
    """:func:`differences` of two :func:`describe_task` descriptions (none if either is
    None: an older record, or a task of unknown identity). A class recorded as
    ``__main__.Q`` matches any class ``Q`` (its module is unknown)."""
    if before is None or current is None:
        return []
    before, current = _jsonable(before), _jsonable(current)
    if _same_class(before.get("class"), current.get("class")):
        before = {**before, "class": current.get("class")}
    return differences(before, current, labels=labels)


def _same_class(a: Any, b: Any) -> bool:
    if not (isinstance(a, str) and isinstance(b, str)):
        return a == b
    if a.startswith(f"{MAIN}.") or b.startswith(f"{MAIN}."):
        return a.rsplit(".", 1)[-1] == b.rsplit(".", 1)[-1]
    return a == b


def check_same_config(saved: dict[str, Any], kind: str, config: Any, path: Path) -> None:
    """ValueError unless ``kind`` and ``config`` are those of the checkpoint ``saved``
    (fields added to the config since it was written count as their defaults)."""
    if saved.get("kind") != kind:
        raise ValueError(f"out_dir: {str(path)!r} holds a {saved.get('kind')!r} run, "
                         f"not a {kind!r} run (kind: run {saved.get('kind')!r}, given "
                         f"{kind!r}); use another out_dir or resume=False")
    current = dataclasses.asdict(config)
    before = with_defaults(saved["config"], config)
    changed = differences(before, current, ignore=RESUMABLE_CHANGES,
                          labels=("checkpoint", "given"))
    if changed:
        raise ValueError(f"config: differs from the run being resumed in {str(path)!r} "
                         f"({', '.join(changed)}); use the same config, another out_dir, "
                         "or resume=False")


def with_defaults(saved: dict[str, Any], config: Any) -> dict[str, Any]:
    """A saved config (a JSON dict) with fields added to ``config``'s dataclass since it was
    written set to their defaults, so an upgrade does not orphan old runs and sweeps."""
    out = dict(saved)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and isinstance(out.get(f.name), dict):
            out[f.name] = with_defaults(out[f.name], value)
        elif f.name not in out and f.default is not dataclasses.MISSING:
            out[f.name] = f.default
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# ------------------------------------------------------------------ the run's record


class RunRecord(NamedTuple):
    """A run directory's ``recipe.json``, read and checked (:func:`read_run_record`).

    Attributes:
        run_dir: the run directory.
        checkpoint: the checkpoint to load: the file given, or the run's :data:`LATEST`.
        path: the record's file, ``run_dir / recipe.json``.
        info: its fields (at least :data:`RECORD_FIELDS`, of their types).
    """

    run_dir: Path
    checkpoint: Path
    path: Path
    info: dict[str, Any]

    @property
    def label(self) -> str:
        """``"name (preset, seed N)"``, for messages and result attributes."""
        return f"{self.info['name']} ({self.info['preset']}, seed {self.info['seed']})"


def resolve_run(path: str | Path) -> tuple[Path, Path]:
    """``(run directory, checkpoint)`` of a run directory or one of its checkpoint files.

    A directory gives its :data:`LATEST`; a file gives itself and its folder.

    Raises:
        FileNotFoundError: nothing at ``path`` (with the closest name beside it), or a
            symbolic link that leads nowhere (a loop, or a missing target).
        ValueError: ``path`` is not in a run directory (no :data:`RECIPE_FILE`).
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise FileNotFoundError(f"path: {str(path)!r} is a symbolic link that leads to no "
                                "file (a loop of links, or its target is gone); give the run "
                                "directory itself")
    if not path.exists():
        parent = path.parent
        siblings = ([p.name for p in parent.iterdir() if p.name != path.name]
                    if parent.is_dir() else [])
        raise FileNotFoundError(f"path: no training run or checkpoint at {str(path)!r}"
                                f"{did_you_mean(path.name, siblings)}")
    run_dir = path if path.is_dir() else path.parent
    if not (run_dir / RECIPE_FILE).is_file():
        raise ValueError(f"path: {str(path)!r} is not a trajprobe training run (no "
                         f"{RECIPE_FILE} in {str(run_dir)!r}); train one with "
                         "recipe.train(DIR) or `trajprobe train RECIPE --out DIR`")
    return run_dir, (path if path.is_file() else run_dir / LATEST)


def read_run_record(path: str | Path) -> RunRecord:
    """The ``recipe.json`` of a run directory or checkpoint (:func:`resolve_run`), with
    :data:`RECORD_FIELDS` checked.

    Raises:
        FileNotFoundError, ValueError: as :func:`resolve_run`; the record is not JSON, or
            a field of :data:`RECORD_FIELDS` is missing or of another type (the message
            names the file and the field).
    """
    run_dir, checkpoint = resolve_run(path)
    record = run_dir / RECIPE_FILE
    return RunRecord(run_dir, checkpoint, record, io.load_json(record, RECORD_FIELDS))


def check_run_info(out_dir: str | Path, info: dict[str, Any]) -> None:
    """Refuse to train into ``out_dir`` when its ``recipe.json`` names another run.

    Raises:
        ValueError: ``out_dir`` exists and is not a directory, or its ``recipe.json``
            records another recipe, preset, seed or task.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir: {str(out)!r} is a file, not a run directory; "
                         "give a new or existing directory")
    path = out / RECIPE_FILE
    if not path.is_file():
        return
    saved = io.load_json(path, {}, argument="out_dir", remedy="use another directory")
    keys = [k for k in RECORD_FIELDS if k in saved]
    given = json.loads(json.dumps({k: info.get(k) for k in keys}))
    changed = differences({k: saved[k] for k in keys}, given)
    if "task" in saved:
        changed += [f"task.{line}" for line in task_differences(saved["task"], info.get("task"))]
    if changed:
        raise ValueError(
            f"out_dir: {str(out)!r} holds another training run ({'; '.join(changed)}); nothing "
            "was written: give another --out, or the run's own recipe, preset and seed to "
            "resume it"
        )


def write_run_record(out_dir: str | Path, info: dict[str, Any], *, kind: str, config: Any,
                     task: Any) -> None:
    """Write ``out_dir/recipe.json`` (atomically) for a run about to train, after refusing
    (before anything is written) a directory that holds another run: another record
    (:func:`check_run_info`) or a checkpoint of another loop, config or task
    (:func:`check_run_dir`).

    Args:
        out_dir: the run directory (made if missing).
        info: the record (a recipe's ``run_info(seed)``), with :data:`RECORD_FIELDS`.
        kind, config, task: the training loop, its config and the task, as the
            checkpoints record them.
    """
    missing = [k for k, t in RECORD_FIELDS.items() if not isinstance(info.get(k), t)]
    if missing:
        raise ValueError(f"info: expected the fields {', '.join(RECORD_FIELDS)} "
                         f"(str, str, int), got {info!r}")
    check_run_info(out_dir, info)
    check_run_dir(out_dir, kind, config, task)
    with io.atomic_write(Path(out_dir) / RECIPE_FILE, "w") as handle:
        json.dump(info, handle)


def load_weights(record: RunRecord, model: nn.Module, task: Any, *, field: str = "task",
                 map_location: str = "cpu") -> nn.Module:
    """Load ``record``'s checkpoint into ``model`` (in place), after checking that the
    checkpoint was trained on ``task`` (the task the record's recipe gives).

    Args:
        record: the run (:func:`read_run_record`).
        model: a fresh model of the run's architecture.
        task: the recipe's task.
        field: the record's field that chose ``task``, for the message (``"name"`` for a
            bundled recipe, ``"task"`` for one's own).
        map_location: where the tensors load.

    Raises:
        ValueError: the checkpoint is damaged or does not fit ``model``, or it records
            another task (every differing field, both values).
    """
    saved = io.load_checkpoint(record.checkpoint, map_location=map_location,
                               required=("model",))
    changed = task_differences(saved.get("task"), describe_task(task),
                               labels=("checkpoint", RECIPE_FILE))
    if changed:
        raise ValueError(f"path: {str(record.path)!r} field {field!r} disagrees with the task "
                         f"recorded in the checkpoint {str(record.checkpoint)!r} "
                         f"({'; '.join(changed)}); the run directory was edited or mixed "
                         "up: restore the file")
    load_state(model, saved["model"], "model", record.checkpoint)
    return model
