"""One of each (issue 24): one mean ± s.e., one driver for histories, one calling convention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from trajprobe.dynamics import mean_sem

# --- mean_sem: one meaning for one value, NaN and inf -----------------------------------------


def test_mean_sem_known_answer():
    mean, sem = mean_sem([1.0, 2.0, 3.0])
    assert mean == 2.0 and sem == pytest.approx(1 / math.sqrt(3))  # s.d. 1, n = 3


def test_mean_sem_of_one_value_has_an_undefined_sem():
    mean, sem = mean_sem([4.0])
    assert mean == 4.0 and math.isnan(sem)


def test_mean_sem_nan_propagates_and_inf_gives_an_infinite_mean():
    assert all(math.isnan(v) for v in mean_sem([1.0, math.nan, 3.0]))
    mean, sem = mean_sem([1.0, math.inf])
    assert mean == math.inf and math.isnan(sem)
    with pytest.raises(ValueError, match="values: expected at least one value"):
        mean_sem([])


def test_mean_sem_on_a_dataarray_reduces_dim_with_the_same_meaning():
    da = xr.DataArray([[1.0, 2.0, 3.0], [1.0, math.nan, 2.0], [0.0, 0.0, math.inf]],
                      dims=("t", "seed"), coords={"t": [1, 2, 3]})
    mean, sem = mean_sem(da, "seed")
    assert mean.dims == ("t",) and list(mean["t"].values) == [1, 2, 3]
    np.testing.assert_allclose(mean.values, [2.0, np.nan, np.inf])
    np.testing.assert_allclose(sem.values, [1 / math.sqrt(3), np.nan, np.nan])
    one_mean, one_sem = mean_sem(da.isel(seed=[0]), "seed")
    np.testing.assert_array_equal(one_mean.values, [1.0, 1.0, 0.0])
    assert bool(one_sem.isnull().all())
    # reducing over every dim equals the scalar version
    assert mean_sem(da.isel(t=0))[0].item() == mean_sem([1.0, 2.0, 3.0])[0]
    with pytest.raises(ValueError, match=r"dim: \['episode'\] not in"):
        mean_sem(da, "episode")
    with pytest.raises(ValueError, match="dim: only for a DataArray"):
        mean_sem([1.0, 2.0], "seed")
