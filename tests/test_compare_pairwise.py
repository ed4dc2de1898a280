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


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: the maps are small


@pytest.fixture(scope="module")
def agents():
    torch.manual_seed(0)
    gru = wrap(nn.GRU(2, 8, batch_first=True), nn.Linear(8, 1), distribution="bernoulli")
    return {"bayes": BetaBernoulli(), "bayes_2_1": BetaBernoulli(2.0, 1.0), "gru": gru}


@pytest.fixture(scope="module")
def inputs():
    return BernoulliPrediction().sample(60, 10, seed=0).inputs


@pytest.fixture(scope="module")
def result(agents, inputs):
    return pairwise_simulation(agents, inputs, config=CONFIG, seed=0)


def test_matrices_are_labelled_by_source_and_target(result):
    ds = result
    assert list(ds["agent"].values) == ["bayes", "bayes_2_1", "gru"]
    assert ds["state_dissimilarity"].dims == ("agent", "other_agent")
    d_s = ds["state_dissimilarity"]
    # (α + 1, β) is an affine copy of (α, β): each simulates the other exactly.
    assert float(d_s.sel(agent="bayes", other_agent="bayes_2_1")) < 0.01
    assert float(d_s.sel(agent="bayes_2_1", other_agent="bayes")) < 0.01
    assert np.isfinite(d_s.sel(agent="gru")).all() and np.isfinite(d_s.sel(other_agent="gru")).all()
    assert ds["embedding"].dims == ("agent", "mds_axis")
    assert ds["reliable"].dtype == bool and "j simulates i" in ds.attrs["direction_convention"]


def test_the_diagonal_is_each_machine_against_itself_measured(result):
    """The affine map of a machine into itself is exact (D_s at round-off), while the
    diagonal's nulls are those of a real comparison: the time-shuffled map and the
    constant map are far from 0 (a diagonal filled with 0 fails here)."""
    diagonal = {name: np.diag(result[name].values) for name in result.data_vars
                if result[name].dims == ("agent", "other_agent")}
    assert (diagonal["state_dissimilarity"] < 1e-20).all()
    assert (np.abs(diagonal["output_dissimilarity"]) < 1e-12).all()
    assert (diagonal["state_dissimilarity_shuffled"] > 0.3).all()
    # the constant map's D_o: a Bayes machine's predictions vary (> 0.3); the untrained
    # GRU's barely do, but they do
    assert (diagonal["output_dissimilarity_constant"][:2] > 0.3).all()
    assert diagonal["output_dissimilarity_constant"][2] > 1e-5
    assert diagonal["reliable"].all()


def test_the_embedding_places_the_affine_copies_together(result):
    """d(i, j) = ½(D_s(i→j) + D_s(j→i)) is symmetric by definition (module docstring); what
    can fail is its MDS: three points embed in the plane with their distances kept, the two
    Bayes machines (d ≈ 0) on one spot, the GRU ~0.25 away."""
    emb = result["embedding"].values
    fitted = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    distance = result["distance"].values.copy()
    np.fill_diagonal(distance, 0.0)
    np.testing.assert_allclose(fitted, distance, atol=0.02)
    assert fitted[0, 1] < 0.1 * min(fitted[0, 2], fitted[1, 2])


def test_dask_client_gives_the_same_numbers(agents, inputs):
    distributed = pytest.importorskip("distributed")
    two = {name: agents[name] for name in ("bayes", "gru")}
    serial = pairwise_simulation(two, inputs, config=CONFIG, seed=1)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=None) as client:
        parallel = pairwise_simulation(two, inputs, config=CONFIG, client=client, seed=1)
    # the same pairs and seeds on a worker thread: torch may sum in another order there,
    # so equal to float32 round-off (the GRU's states), relative; 1e-12 absolute for the
    # entries that are themselves round-off (the diagonal's D_s ~1e-31)
    for name in ("state_dissimilarity", "output_dissimilarity"):
        np.testing.assert_allclose(serial[name], parallel[name], rtol=1e-5, atol=1e-12)


def test_mds_figure_draws_the_embedding_and_the_matrix(result):
    from trajprobe.compare.plots import plot_agents_mds

    fig = plot_agents_mds(result)
    scatter, heat = fig.axes[:2]
    np.testing.assert_allclose(scatter.collections[0].get_offsets(), result["embedding"].values)
    assert [t.get_text() for t in scatter.texts] == ["bayes", "bayes_2_1", "gru"]
    cells = [t.get_text() for t in heat.texts]
    assert cells == [f"{v:.2g}" for v in result["state_dissimilarity"].values.ravel()]


def test_bad_arguments_name_themselves(agents, inputs):
    with pytest.raises(ValueError, match="machines: expected at least 2"):
        pairwise_simulation({"a": BetaBernoulli()}, inputs)
    with pytest.raises(ValueError, match=r"encode: expected keys.*\['nobody'\]"):
        pairwise_simulation(agents, inputs, encode={"nobody": lambda x: x})
