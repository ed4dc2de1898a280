"""What a run directory was trained with, and refusing to mix another run into it.

A checkpoint records the loop (``kind``), the config (JSON) and the task
(:func:`describe_task`: its class by importable module path, and its fields). A run is
resumed or reused only with the same three; every refusal names each setting that
differs, with the run's value and the given one.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from trajprobe import io
from trajprobe.apps.training.checkpoints import LATEST

__all__ = ["check_run_dir", "describe_task", "differences", "task_class_path", "task_differences",
           "unloadable_task_message", "with_defaults"]

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


def task_differences(before: dict[str, Any] | None, current: dict[str, Any] | None
                     ) -> list[str]:
    """:func:`differences` of two :func:`describe_task` descriptions (none if either is
    None: an older record, or a task of unknown identity). A class recorded as
    ``__main__.Q`` matches any class ``Q`` (its module is unknown)."""
    if before is None or current is None:
        return []
    before, current = _jsonable(before), _jsonable(current)
    if _same_class(before.get("class"), current.get("class")):
        before = {**before, "class": current.get("class")}
    return differences(before, current)


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
