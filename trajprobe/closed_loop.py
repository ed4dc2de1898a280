"""Moved to :mod:`trajprobe.apps.training.closed_loop` (the player of policy-gradient
training, whose only user is training); importing this path warns and gives that module."""

from trajprobe._moved import alias

alias(__name__, "trajprobe.apps.training.closed_loop")
