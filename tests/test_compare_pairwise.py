"""pairwise_simulation: many agents at once, as labelled D_s/D_o matrices (issue 25)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trajprobe.adapters import wrap
from trajprobe.compare import SimulationConfig, pairwise_simulation
from trajprobe.reference_models.conjugate import BetaBernoulli
from trajprobe.tasks.prediction import BernoulliPrediction

CONFIG = SimulationConfig(n_hidden_layers=0, n_folds=3)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def agents():
    torch.manual_seed(0)
    gru = wrap(nn.GRU(2, 8, batch_first=True), nn.Linear(8, 1), distribution="bernoulli")
    return {"bayes": BetaBernoulli(), "bayes_2_1": BetaBernoulli(2.0, 1.0), "gru": gru}


@pytest.fixture(scope="module")
def inputs():
    return BernoulliPrediction().sample(60, 10, seed=0).inputs


def test_matrices_are_labelled_by_source_and_target(agents, inputs):
    ds = pairwise_simulation(agents, inputs, config=CONFIG, seed=0)
    assert list(ds["agent"].values) == ["bayes", "bayes_2_1", "gru"]
    assert ds["state_dissimilarity"].dims == ("agent", "other_agent")
    d_s = ds["state_dissimilarity"]
    # (α + 1, β) is an affine copy of (α, β): each simulates the other exactly.
    assert float(d_s.sel(agent="bayes", other_agent="bayes_2_1")) < 0.01
    assert float(d_s.sel(agent="bayes_2_1", other_agent="bayes")) < 0.01
    assert np.all(np.diag(d_s.values) == 0)
    assert np.isfinite(d_s.sel(agent="gru")).all() and np.isfinite(d_s.sel(other_agent="gru")).all()
    np.testing.assert_allclose(ds["distance"], ds["distance"].T)
    assert ds["embedding"].dims == ("agent", "mds_axis")
    assert ds["reliable"].dtype == bool and "j simulates i" in ds.attrs["direction_convention"]


def test_dask_client_gives_the_same_numbers(agents, inputs):
    distributed = pytest.importorskip("distributed")
    serial = pairwise_simulation(agents, inputs, config=CONFIG, seed=1)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=None) as client:
        parallel = pairwise_simulation(agents, inputs, config=CONFIG, client=client, seed=1)
    np.testing.assert_array_equal(serial["state_dissimilarity"], parallel["state_dissimilarity"])
    np.testing.assert_array_equal(serial["output_dissimilarity"],
                                  parallel["output_dissimilarity"])


def test_mds_figure(agents, inputs):
    from trajprobe.compare.plots import plot_agents_mds
    fig = plot_agents_mds(pairwise_simulation(agents, inputs, config=CONFIG, seed=0))
    assert len(fig.axes) >= 2


def test_bad_arguments_name_themselves(agents, inputs):
    with pytest.raises(ValueError, match="machines: expected at least 2"):
        pairwise_simulation({"a": BetaBernoulli()}, inputs)
    with pytest.raises(ValueError, match=r"encode: expected keys.*\['nobody'\]"):
        pairwise_simulation(agents, inputs, encode={"nobody": lambda x: x})
