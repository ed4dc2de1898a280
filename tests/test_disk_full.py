"""A disk that fills up during ``train`` or ``reproduce`` (issue 27): one line naming the file
and the space needed, nothing half-written, and the same command resumes, bit-identically,
once there is space.

The disk is a small tmpfs (``mount -t tmpfs -o size=...``), grown in place with
``mount -o remount,size=...``; the tests skip where mounting is not permitted (not root,
or a container without CAP_SYS_ADMIN).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from trajprobe import io
from trajprobe.apps import recipes
from trajprobe.apps.cli import main

RECIPE = "bayes-optimal/bernoulli_beta_1_1"


class SmallDisk:
    """A tmpfs mounted at ``path``; :meth:`grow` remounts it larger (contents kept)."""

    def __init__(self, path: Path, size: str):
        self.path = path
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()[:200]}")

    def grow(self, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def unmount(self) -> None:
        subprocess.run(["umount", str(self.path)], check=False)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "disk", "600k")
    try:
        yield disk
    finally:
        disk.unmount()


def _one_error_line(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _nothing_half_written(root: Path) -> None:
    """No temporary file is left, and every checkpoint and netCDF file reads back intact."""
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    for path in root.rglob("*.pt"):
        io.load_checkpoint(path)  # verifies the checksum
    for path in root.rglob("*.nc"):
        io.load_dataset(path)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return io.load_checkpoint(run / "latest.pt")["model"]


@pytest.mark.parametrize("write", ["checkpoint", "netcdf"])
def test_a_real_full_disk_under_torch_and_netcdf_is_a_disk_full_error(small_disk, write):
    """torch says ``enforce fail at inline_container.cc``, netCDF ``HDF error``: both become
    one DiskFullError naming the file, and the old file stays."""
    import numpy as np
    import xarray as xr

    target = small_disk.path / ("latest.pt" if write == "checkpoint" else "metrics.nc")
    target.write_bytes(b"old")
    big = torch.randn(1_000_000)  # 4 MB on a 600 kB disk
    with pytest.raises(io.DiskFullError) as err:
        if write == "checkpoint":
            io.save_checkpoint({"model": {"w": big}}, target)
        else:
            io.save_dataset(xr.Dataset({"x": ("i", np.asarray(big))}), target)
    assert str(err.value).startswith(f"no space left on the device to write {str(target)!r}: "
                                      "it needs about 4.0 MB")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in small_disk.path.iterdir()) == [target.name]


@pytest.mark.slow
def test_train_on_a_full_disk_is_one_line_and_resumes_bit_identically(small_disk, capsys,
                                                                       tmp_path):
    run = small_disk.path / "run"
    argv = ["train", RECIPE, "--preset", "smoke", "--out", str(run), "--no-progress"]
    line = _one_error_line(capsys, argv)
    assert line.startswith("trajprobe train: error: no space left on the device to write "
                           f"'{run}/"), line
    assert "it needs about" in line and "free in" in line and "run the same command" in line
    _nothing_half_written(run)
    small_disk.grow("20m")
    assert main(argv) == 0
    reference = tmp_path / "reference"
    recipes.get(RECIPE, "smoke").train(reference, seed=0, progress=False)
    resumed, uninterrupted = _weights(run), _weights(reference)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


@pytest.mark.slow
def test_reproduce_on_a_full_disk_is_one_line_and_resumes_bit_identically(small_disk, capsys,
                                                                           tmp_path):
    out = small_disk.path / "lr"
    argv = ["reproduce", "linear-regression", "--preset", "smoke", "--out", str(out),
            "--no-progress", "--scheduler", "none"]
    refused = _one_error_line(capsys, argv)  # the estimate sees the disk too small first
    assert refused.startswith("trajprobe reproduce: error: reproduce linear-regression --preset "
                              "smoke --seeds 1: refused before any work: it writes about")
    assert refused.endswith("add --force to run it anyway") and not out.exists()
    argv.append("--force")
    line = _one_error_line(capsys, argv)
    assert line.startswith("trajprobe reproduce: error: no space left on the device to write "
                           f"'{out}/"), line
    _nothing_half_written(out)
    small_disk.grow("50m")
    assert main(argv) == 0
    assert (out / "report.md").is_file() and (out / "results.nc").is_file()
    _nothing_half_written(out)
    name = "linear-regression-2d/meta-learner"
    reference = tmp_path / "reference"
    recipes.get(name, "smoke").train(reference, seed=0, progress=False)
    resumed = _weights(out / "runs" / name.replace("/", "-") / "seed0")
    uninterrupted = _weights(reference)
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)
