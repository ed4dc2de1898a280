"""The installed version of trajprobe, for results' ``attrs`` (no import of the package root)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trajprobe")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
