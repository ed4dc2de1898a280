"""Files: atomic writes, checkpoint validation, netCDF round trips."""

from __future__ import annotations

import os

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


def test_complex_variables_round_trip(tmp_path):
    """netCDF has no complex type: eigenvalues are stored as two real parts, joined on load."""
    eig = np.array([[0.9 + 0.2j, 0.9 - 0.2j], [0.5 + 0j, -0.1 + 0j]])
    ds = xr.Dataset({"eigenvalues": (("point", "mode"), eig, {"units": "per step"}),
                     "speed": (("point",), np.array([1e-9, 2e-7]))})
    io.save_dataset(ds, tmp_path / "fp.nc")
    back = io.load_dataset(tmp_path / "fp.nc")
    xr.testing.assert_identical(back, ds)
    assert back["eigenvalues"].dtype == np.complex128
    from trajprobe.apps.reproduce import read_results
    from trajprobe.io import save_datasets

    save_datasets({"fixed_points": ds}, tmp_path / "results.nc")
    xr.testing.assert_identical(read_results(tmp_path / "results.nc")["fixed_points"], ds)


def test_load_dataset_rejects_a_broken_file(tmp_path):
    (tmp_path / "bad.nc").write_bytes(b"not netcdf at all")
    with pytest.raises(ValueError, match="not a readable netCDF file"):
        io.load_dataset(tmp_path / "bad.nc")


# --------------------------------------------------------------- checksums (issue 27)

def _tensor_data_offset(path, name_end: str = "data/0") -> int:
    """Byte offset of a stored tensor's raw data inside a torch zip archive."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(name_end))
    with open(path, "rb") as handle:
        handle.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", handle.read(4))
    return info.header_offset + 30 + name_len + extra_len


def _flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def test_bytes_flipped_inside_a_tensor_are_detected_and_an_intact_sibling_offered(tmp_path):
    weights = torch.randn(64, 64)
    older = io.save_checkpoint({"model": {"w": weights}, "step": 1}, tmp_path / "checkpoint_1.pt")
    os.utime(older, (1, 1))  # older than latest
    latest = io.save_checkpoint({"model": {"w": weights * 2}, "step": 2}, tmp_path / "latest.pt")
    _flip(latest, _tensor_data_offset(latest) + 1000)
    assert isinstance(torch.load(latest, weights_only=True), dict)  # torch does not notice
    with pytest.raises(ValueError) as err:
        io.load_checkpoint(latest)
    message = str(err.value)
    assert "latest.pt" in message
    assert "is damaged: its content does not match the checksum" in message
    assert f"the newest intact checkpoint beside it is {str(older)!r}" in message
    assert "\x1b" not in message
    assert torch.equal(io.load_checkpoint(older)["model"]["w"], weights)


def test_the_checksum_covers_every_entry_and_ignores_the_device_and_key_order(tmp_path):
    a = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "step": 3, "extra": [1, (2.5, "x")]}
    b = {"extra": [1, (2.5, "x")], "step": 3, "model": {"w": torch.arange(6.0).reshape(2, 3)}}
    assert io.checkpoint_digest(a) == io.checkpoint_digest(b)
    assert io.checkpoint_digest(a) != io.checkpoint_digest({**a, "step": 4})
    changed = {**a, "model": {"w": torch.arange(6.0).reshape(3, 2)}}  # same bytes, new shape
    assert io.checkpoint_digest(a) != io.checkpoint_digest(changed)
    saved = io.load_checkpoint(io.save_checkpoint(a, tmp_path / "c.pt"))
    assert saved["checksum"] == io.checkpoint_digest(saved)


def test_a_checkpoint_without_a_checksum_still_loads(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": io.CHECKPOINT_FORMAT, "model": {"w": torch.ones(2)}}, path)
    assert torch.equal(io.load_checkpoint(path, required=("model",))["model"]["w"], torch.ones(2))


def test_a_crafted_pickle_is_named_as_such_without_running_it(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "c.pt"
    torch.save({"format": io.CHECKPOINT_FORMAT, "x": Evil()}, path)
    # torch >= 2.4 names it "GLOBAL posix.system", older torch "Unsupported class posix.system"
    with pytest.raises(ValueError, match=r"holds objects a checkpoint may not .*(GLOBAL|Unsupp"
                       r"orted class) (posix|os)\.system") as err:
        io.load_checkpoint(path)
    assert "\x1b" not in str(err.value) and not (tmp_path / "pwned").exists()


# ------------------------------------------------------------ run records (issue 27)

def test_load_json_names_the_file_and_the_field(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text('{"name": "x", "seed": "0"}')
    with pytest.raises(ValueError, match=r"recipe.json' lacks the field 'preset'"):
        io.load_json(path, {"name": str, "preset": str})
    with pytest.raises(ValueError, match=r"recipe.json' field 'seed' is '0', expected a int"):
        io.load_json(path, {"name": str, "seed": int})
    path.write_text('{"seed": true}')
    with pytest.raises(ValueError, match=r"field 'seed' is True, expected a int"):
        io.load_json(path, {"seed": int})
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"holds a JSON list, expected an object"):
        io.load_json(path, {})
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"is not readable JSON"):
        io.load_json(path, {})
    path.write_text('{"name": "x", "seed": 1}')
    assert io.load_json(path, {"name": str, "seed": int}) == {"name": "x", "seed": 1}


def test_check_recorded_compares_as_json_and_names_the_fields(tmp_path):
    io.check_recorded("r.json", "task", {"a": [1, 2]}, {"a": (1, 2)}, "x")  # tuple == list
    io.check_recorded("r.json", "task", None, {"a": 1}, "x")  # written before the field
    with pytest.raises(ValueError, match=r"'r.json' field 'task' disagrees with recipe 'b' "
                                         r"\(alpha: 1.0 here, 5.0 there\)"):
        io.check_recorded("r.json", "task", {"alpha": 1.0, "c": 1}, {"alpha": 5.0, "c": 1},
                          "recipe 'b'")


# ---------------------------------------------------------------- full disks (issue 27)

def test_a_write_that_runs_out_of_space_is_one_clear_error_and_leaves_nothing(tmp_path):
    import errno

    target = tmp_path / "metrics.nc"
    target.write_text("old")
    with pytest.raises(io.DiskFullError) as err, io.atomic_write(target, size_hint=5_000_000):
        raise OSError(errno.ENOSPC, "No space left on device")
    message = str(err.value)
    assert err.value.errno == errno.ENOSPC and "\n" not in message
    assert message.startswith(f"no space left on the device to write {str(target)!r}: it "
                              "needs about 5.0 MB")
    assert "run the same command again to resume" in message
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "metrics.nc"]


def test_other_write_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), io.atomic_write(tmp_path / "x"):
        raise RuntimeError("boom")


def test_format_bytes():
    assert [io.format_bytes(n) for n in (512, 1500, 2.5e9, 7.2e12)] == [
        "512 B", "1.5 kB", "2.5 GB", "7.2 TB"]
