"""The wheel holds exactly one top-level package, and imports work the same once installed."""

from __future__ import annotations

import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = {"trajprobe": "trajprobe", "adapters": "trajprobe/adapters",
               "reference_models": "trajprobe/reference_models"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, builder_python) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [builder_python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )
    (path,) = out.glob("trajprobe-*.whl")
    return path


def test_wheel_has_one_top_level_package_with_every_module(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"trajprobe"}
    expected = {
        f"{dest}/{p.relative_to(ROOT / src).as_posix()}"
        for src, dest in SOURCE_DIRS.items()
        for p in (ROOT / src).rglob("*.py")
    }
    assert expected <= set(names), sorted(expected - set(names))


def test_every_source_package_is_declared():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())
                   ["tool"]["setuptools"]["packages"])
    for src, dest in SOURCE_DIRS.items():
        for init in (ROOT / src).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / src).parts
            name = ".".join((*dest.split("/"), *rel))
            assert name in declared, f"{name} ({init.parent}) is missing from pyproject.toml"


def test_installed_wheel_imports_from_anywhere(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    # When this test runs inside a virtualenv, --system-site-packages shows the nested venv
    # the base interpreter's packages, not this venv's (torch, numpy, ...): point a .pth at
    # them. The wheel, in the nested venv's own site-packages, still comes first on sys.path.
    nested = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                             "['purelib'])"], check=True, capture_output=True, text=True)
    Path(nested.stdout.strip(), "_outer_env.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    code = (
        "import trajprobe, trajprobe.adapters, trajprobe.reference_models, pathlib;"
        "print(pathlib.Path(trajprobe.__file__).parent);"
        "print(pathlib.Path(trajprobe.adapters.__file__).parent)"
    )
    out = subprocess.run([python, "-c", code], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout.split()
    assert out[0].startswith(str(venv)) and out[1] == f"{out[0]}/adapters"
    cli = subprocess.run([venv / "bin" / "trajprobe", "--version"], capture_output=True, text=True,
                         check=True)
    assert cli.stdout.startswith("trajprobe 0.")
