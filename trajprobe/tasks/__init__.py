"""Task distributions: each knows how to sample episodes, encode them as machine inputs,
build probe inputs from a history, and its ground-truth structure."""

from trajprobe.tasks.base import BanditTask, Episodes, Seed, Task, make_generator

__all__ = ["BanditTask", "Episodes", "Seed", "Task", "make_generator"]
