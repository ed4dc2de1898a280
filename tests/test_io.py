"""Files: atomic writes, checkpoint validation, netCDF round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from trajprobe import io


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), io.atomic_write(target, "w") as f:
        f.write("half of the new")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]  # no temp left
    with io.atomic_write(target, "w") as f:
        f.write("new")
    assert target.read_text() == "new"


def test_checkpoint_round_trip_is_exact(tmp_path):
    state = {"model": {"w": torch.randn(3, 4, dtype=torch.float64)}, "step": 7,
             "config": {"lr": 1e-3, "name": "adam", "betas": (0.9, 0.999)}}
    path = io.save_checkpoint(state, tmp_path / "sub" / "c.pt")
    back = io.load_checkpoint(path, required=("model", "step"))
    assert back["step"] == 7 and back["format"] == io.CHECKPOINT_FORMAT
    assert back["config"]["betas"] == (0.9, 0.999)
    torch.testing.assert_close(back["model"]["w"], state["model"]["w"], rtol=0, atol=0)


def test_truncated_or_foreign_checkpoints_give_clear_errors(tmp_path):
    path = io.save_checkpoint({"w": torch.randn(100, 100)}, tmp_path / "c.pt")
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"path: .*c\.pt.* truncated or corrupt"):
            io.load_checkpoint(path)
    torch.save({"w": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="expected a trajprobe checkpoint"):
        io.load_checkpoint(tmp_path / "plain.pt")
    io.save_checkpoint({"w": torch.zeros(2)}, tmp_path / "ok.pt")
    with pytest.raises(ValueError, match=r"lacks the entries \['step'\]"):
        io.load_checkpoint(tmp_path / "ok.pt", required=("w", "step"))
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        io.load_checkpoint(tmp_path / "missing.pt")


def test_dataset_round_trip_keeps_values_coords_and_structured_attrs(tmp_path):
    ds = xr.Dataset(
        {"loss": (("step",), np.array([3.0, 2.0, 1.5])),
         "episodes": (("step",), np.array([200, 400, 600], dtype=np.int64))},
        coords={"step": np.array([1, 2, 3])},
        attrs={"config": {"lr": 0.01, "betas": [0.9, 0.999]}, "kind": "supervised",
               "flag": True, "nothing": None},
    )
    ds["loss"].attrs["units"] = "nats"
    io.save_dataset(ds, tmp_path / "m.nc")
    back = io.load_dataset(tmp_path / "m.nc")
    xr.testing.assert_identical(back, ds)
    assert back.attrs["config"] == {"lr": 0.01, "betas": [0.9, 0.999]}
    assert back.attrs["flag"] is True and back.attrs["nothing"] is None
    assert [p.name for p in tmp_path.iterdir()] == ["m.nc"]


def test_load_dataset_rejects_a_broken_file(tmp_path):
    (tmp_path / "bad.nc").write_bytes(b"not netcdf at all")
    with pytest.raises(ValueError, match="not a readable netCDF file"):
        io.load_dataset(tmp_path / "bad.nc")
