"""Presets as data: one value per scale, ``smoke``, ``quick`` and ``paper``.

Every recipe and every reproduce target runs at three presets (``smoke``: seconds, for
tests; ``quick``: minutes on a laptop CPU; ``paper``: the papers' scale). Whatever differs
between them is written as a :class:`Presets` of three values and looked up by name, in one
place, instead of branching on the preset's name:

>>> Presets(smoke=32, quick=32, paper=128)["quick"]
32
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Generic, TypeVar

__all__ = ["Presets"]

S = TypeVar("S")


@dataclass(frozen=True)
class Presets(Generic[S]):
    """One value per preset, e.g. a reproduce target's frozen settings dataclass
    (its ``SETTINGS``), a recipe's training config or a model width.

    ``presets[name]`` resolves a preset name (the names of
    :data:`trajprobe.apps.recipes.PRESETS`, the fields below, in that order).

    Attributes:
        smoke: seconds, for tests.
        quick: minutes on a laptop CPU.
        paper: the papers' scale.
    """

    smoke: S
    quick: S
    paper: S

    def __getitem__(self, preset: str) -> S:
        """The value of ``preset``; an unknown name is refused with the names listed."""
        names = [f.name for f in fields(self)]
        if preset not in names:
            raise ValueError(f"preset: expected one of {', '.join(names)}, got {preset!r}")
        return getattr(self, preset)
