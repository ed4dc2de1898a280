"""Task pools and their Bayes machine dMMSE (Raventós et al. 2023); Garg's scalar-output task
measured on their TransformerModel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import trajprobe
from trajprobe.reference_models import BayesianLinearRegression, DiscreteMMSE
from trajprobe.tasks import LinearRegression, TaskPool

F64 = torch.float64


def _pool(size, dim=3, noise=0.5, seed=1):
    return TaskPool(LinearRegression(dim, noise_std=noise, out_dim=1), size=size, seed=seed)


def test_pool_episodes_use_its_members_uniformly_and_the_pool_is_fixed():
    pool = _pool(4)
    ep = pool.sample(4000, 6, seed=0, dtype=F64)
    index = ep.params["task_index"]
    targets = pool.targets(dtype=F64)
    assert torch.equal(ep.params["W"], targets[index])
    counts = torch.bincount(index, minlength=4).double() / 4000
    assert float((counts - 0.25).abs().max()) < 0.03
    # drawn once: the same targets from another episode draw, nested across sizes
    assert torch.equal(pool.targets(dtype=F64), _pool(4).targets(dtype=F64))
    assert torch.equal(_pool(16).targets(dtype=F64)[:4], targets)
    assert not torch.equal(_pool(4, seed=2).targets(dtype=F64), targets)
    x = ep.inputs[..., :3]
    resid = ep.targets[..., 0] - torch.einsum("ex,etx->et", ep.params["W"][:, 0], x)
    assert abs(float(resid.std()) - 0.5) < 0.02


def test_infinite_pool_is_the_prior_task_bit_for_bit():
    task = LinearRegression(3, noise_std=0.5, out_dim=1)
    a, b = TaskPool(task, size=None).sample(5, 7, seed=3), task.sample(5, 7, seed=3)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert bool((a.params["task_index"] == -1).all())
    with pytest.raises(ValueError, match="size"):
        TaskPool(task).targets()


def test_dmmse_equals_the_posterior_over_the_pool_by_hand():
    pool = _pool(5, dim=2, noise=0.7)
    machine = DiscreteMMSE.from_task(pool)
    ep = pool.sample(3, 6, seed=4, dtype=F64)
    trace = trajprobe.rollout(machine, ep.inputs)
    targets = pool.targets(dtype=F64)[:, 0]  # [M, d]
    x, y = ep.inputs[..., :2], ep.targets[..., 0]
    for e in range(3):
        for t in range(6):  # prediction of y_t from pairs 1..t-1, by Bayes' rule
            prior = torch.full((5,), 1 / 5, dtype=F64)
            lik = torch.ones(5, dtype=F64)
            for i in range(t):
                mean = targets @ x[e, i]
                lik = lik * torch.exp(-(y[e, i] - mean) ** 2 / (2 * 0.7**2)) / math.sqrt(
                    2 * math.pi * 0.7**2)
            post = prior * lik / (prior * lik).sum()
            expected = float(post @ (targets @ x[e, t]))
            assert abs(float(trace.outputs[e, t, 0]) - expected) < 1e-10


def test_one_task_pool_predicts_that_task_from_the_first_step():
    pool = _pool(1)
    ep = pool.sample(4, 5, seed=0, dtype=F64)
    out = trajprobe.rollout(DiscreteMMSE.from_task(pool), ep.inputs).outputs
    clean = torch.einsum("eyx,etx->ety", ep.params["W"], ep.inputs[..., :3])
    torch.testing.assert_close(out, clean)  # t = 1 included: no example needed
    ds = trajprobe.measure(DiscreteMMSE.from_task(pool), pool, episodes=ep, probes=10)
    torch.testing.assert_close(torch.as_tensor(ds["q"].values), torch.ones(4, 5, 3, dtype=F64))


def test_dmmse_approaches_ridge_as_the_pool_grows():
    task = LinearRegression(2, noise_std=0.5, out_dim=1)
    ridge = BayesianLinearRegression.from_task(task)
    episodes = task.sample(200, 6, seed=9, dtype=F64)  # fresh tasks from the prior
    ridge_out = trajprobe.rollout(ridge, episodes.inputs).outputs
    gaps = []
    for size in (4, 64, 4096):
        machine = DiscreteMMSE.from_task(TaskPool(task, size=size, seed=0))
        out = trajprobe.rollout(machine, episodes.inputs).outputs
        gaps.append(float((out - ridge_out).square().mean() / ridge_out.square().mean()))
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.01, gaps


def test_dmmse_predictive_is_the_exact_mixture():
    pool = _pool(3, dim=2)
    mean_machine = DiscreteMMSE.from_task(pool)
    machine = DiscreteMMSE.from_task(pool, output="predictive")
    ep = pool.sample(4, 5, seed=2, dtype=F64)
    trace = trajprobe.rollout(machine, ep.inputs)
    dist = machine.distribution(trace.outputs)
    means = trajprobe.rollout(mean_machine, ep.inputs).outputs
    torch.testing.assert_close(dist.mean, means)
    # t = 1: uniform weights, so the density is the average of the three components
    y = torch.zeros(4, 1, dtype=F64)
    comps = pool.targets(dtype=F64)[:, 0] @ ep.inputs[:, 0, :2].T  # [M, E]
    by_hand = torch.distributions.Normal(comps, 0.5).log_prob(y[:, 0]).exp().mean(0)
    torch.testing.assert_close(dist.log_prob(y[:, None].expand(4, 5, 1))[:, 0].exp(), by_hand)


def test_dmmse_bad_inputs_raise():
    with pytest.raises(ValueError, match="targets"):
        DiscreteMMSE(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="noise_std"):
        DiscreteMMSE(torch.zeros(3, 1, 2), noise_std=0.0)
    machine = DiscreteMMSE(torch.zeros(3, 1, 2))
    with pytest.raises(ValueError, match=r"x: expected shape \[2, 3\]"):
        machine.step(torch.zeros(2, 4), machine.initial_state(2))
    with pytest.raises(ValueError, match="size"):
        TaskPool(LinearRegression(2), size=0)


# -- Garg et al.'s TransformerModel, measured on their scalar-output task --------------

try:
    import transformers
except ImportError:  # the optional extra trajprobe[transformers]
    transformers = None


class GargTransformerModel(nn.Module):
    """dtsip/in-context-learning src/models.py's TransformerModel, as they build it (a
    stand-in for their class: same attributes, same forward; not edited to be wrapped)."""

    def __init__(self, n_dims, n_positions, n_embd=32, n_layer=2, n_head=4):
        super().__init__()
        configuration = transformers.GPT2Config(
            n_positions=2 * n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False,
        )
        self.n_positions, self.n_dims = n_positions, n_dims
        self._read_in = nn.Linear(n_dims, n_embd)
        self._backbone = transformers.GPT2Model(configuration)
        self._read_out = nn.Linear(n_embd, 1)

    @staticmethod
    def _combine(xs_b, ys_b):
        bsize, points, dim = xs_b.shape
        ys_b_wide = torch.cat((ys_b.view(bsize, points, 1),
                               torch.zeros(bsize, points, dim - 1, device=ys_b.device)), axis=2)
        zs = torch.stack((xs_b, ys_b_wide), dim=2)
        return zs.view(bsize, 2 * points, dim)

    def forward(self, xs, ys, inds=None):
        embeds = self._read_in(self._combine(xs, ys))
        output = self._backbone(inputs_embeds=embeds).last_hidden_state
        return self._read_out(output)[:, ::2, 0]


@pytest.mark.transformers  # skipped without it (tests/conftest.py)
def test_measure_runs_on_garg_transformer_model_and_gives_q_for_every_direction():
    from trajprobe.adapters import Interleaved, wrap_gpt2

    torch.manual_seed(0)
    dims, points = 5, 11
    model = GargTransformerModel(dims, points).eval()
    machine = wrap_gpt2(model._backbone, read_in=model._read_in, read_out=model._read_out,
                        max_len=points, layout=Interleaved(dims, 1))
    task = LinearRegression(dims, noise_std=0.0, out_dim=1)
    assert (task.input_size, task.output_size) == (dims + 1, 1)
    episodes = task.sample(3, points, seed=0)
    ds = trajprobe.measure(machine, task, episodes=episodes, probes=20, seed=0)
    assert ds["q"].dims == ("episode", "t", "mode") and ds["q"].shape == (3, points, dims)
    assert list(ds["mode"].values) == [1, 2, 3, 4, 5]
    assert bool(ds["q"].notnull().all())
    # q is read from their model re-run: the least-squares map from probe x to their
    # forward on [history, probe x] at step t, projected on e_k, over the true w_k
    probes = task.probe_inputs(episodes, 20, seed=torch.Generator().manual_seed(0))
    x, y = episodes.inputs[..., :dims], episodes.targets[..., 0]
    t = 4  # three examples, then the probe query
    with torch.no_grad():
        seq_x = torch.cat([x[:, None, : t - 1].expand(3, 20, t - 1, dims),
                           probes[:, t - 1, :, None, :dims]], dim=2).flatten(0, 1)
        seq_y = torch.cat([y[:, None, : t - 1].expand(3, 20, t - 1),
                           torch.zeros(3, 20, 1)], dim=2).flatten(0, 1)
        out = model(seq_x, seq_y)[:, -1].reshape(3, 20)
    design = torch.cat([probes[:, t - 1, :, :dims], torch.ones(3, 20, 1)], dim=-1).double()
    w_hat = torch.linalg.lstsq(design, out.double()[..., None]).solution[:, :dims, 0]
    q = w_hat / episodes.params["W"][:, 0].double()
    torch.testing.assert_close(torch.as_tensor(ds["q"].sel(t=t).values).double(), q, rtol=1e-3,
                               atol=1e-4)


# -- the recipes ------------------------------------------------------------------------


def test_garg_paper_preset_is_their_task_sizes_and_curriculum():
    from trajprobe.apps import recipes

    recipe = recipes.get("garg-linear-regression-20d/transformer", "paper")
    task = recipe.task
    assert (task.task.dim, task.task.y_dim, task.task.noise_std) == (20, 1, 0.0)
    cfg = recipe.training
    assert (cfg.n_steps, cfg.batch_size, cfg.optimiser.lr) == (41, 64, 1e-4)
    assert cfg.n_episodes // cfg.batch_size == 500_000
    # 5 → 20 dimensions and 11 → 41 examples, one stage per 2,000 steps
    assert cfg.curriculum == tuple((2_000 / 500_000, 2 * k + 1) for k in range(5, 20))
    assert [cfg.length_at(s, 500_000) for s in (0, 1_999, 2_000, 29_999, 30_000)] == [
        11, 11, 13, 39, 41]
    ep = task.sample(3, 11, seed=0)  # the first stage: five dimensions
    assert bool((ep.inputs[..., 5:20] == 0).all()) and bool((ep.inputs[..., :5] != 0).all())
    assert bool((task.sample(3, 41, seed=0).inputs[..., :20] != 0).all())
    model = recipe.model
    assert (model.size, model.layers, model.heads, model.interleaved) == (256, 12, 8, True)
    five = recipes.get("garg-linear-regression-5d/transformer", "paper").training
    assert five.curriculum == ()  # their toy.yaml: d = 5 and 11 examples throughout


def test_task_diversity_paper_preset_is_raventos_configuration():
    from trajprobe.apps import recipes
    from trajprobe.apps.recipes.in_context import TASK_DIVERSITY_LADDER, task_diversity_name

    assert TASK_DIVERSITY_LADDER["paper"][:-1] == tuple(2**k for k in range(1, 21))
    recipe = recipes.get(task_diversity_name(2**10), "paper")
    pool = recipe.task
    assert (pool.size, pool.task.dim, pool.task.y_dim, pool.task.noise_std) == (1024, 8, 1, 0.5)
    cfg = recipe.training
    assert (cfg.n_steps, cfg.batch_size, cfg.n_episodes // cfg.batch_size) == (16, 256, 500_000)
    opt = cfg.optimiser
    assert (opt.name, opt.lr, opt.schedule, opt.warmup) == ("adam", 1e-3, "linear", 0.5)
    # the triangle: up to 1e-3 at 250k steps, back to 0 at 500k
    assert opt.lr_at(124_999, 500_000) == pytest.approx(5e-4)
    assert opt.lr_at(250_000, 500_000) == pytest.approx(1e-3)
    assert opt.lr_at(375_000, 500_000) == pytest.approx(5e-4)
    model = recipe.model
    assert (model.size, model.layers, model.heads, model.interleaved) == (128, 8, 2, True)
    assert recipes.get(task_diversity_name(None), "quick").task.size is None


# -- trajprobe reproduce task-diversity, smoke preset -------------------------------------

def _ridge_errors(episodes, noise_std: float, prior_scale: float) -> np.ndarray:
    """MSE / d against wᵀx per position t of the ridge posterior mean, by its closed form:
    w_t = (XᵀX + σ²/τ² I)⁻¹ Xᵀy over the t − 1 examples before t (numpy, float64)."""
    x = episodes.inputs[..., :-1].double().numpy()
    y = episodes.targets[..., 0].double().numpy()
    w = episodes.params["W"][:, 0].double().numpy()
    n, t_max, d = x.shape
    prediction = np.zeros((n, t_max))
    for t in range(t_max):
        xs, ys = x[:, :t], y[:, :t]
        gram = np.einsum("eti,etj->eij", xs, xs) + (noise_std / prior_scale) ** 2 * np.eye(d)
        w_t = np.linalg.solve(gram, np.einsum("eti,et->ei", xs, ys)[..., None])[..., 0]
        prediction[:, t] = np.einsum("ei,ei->e", w_t, x[:, t])
    return ((prediction - np.einsum("ei,eti->et", w, x)) ** 2).mean(0) / d


def test_the_ridge_closed_form_is_the_ridge_machine():
    """The test's closed form against BayesianLinearRegression on the smoke task (d = 4)."""
    from trajprobe.apps import recipes
    from trajprobe.apps.recipes.in_context import task_diversity_name
    from trajprobe.traces import rollout

    task = recipes.get(task_diversity_name(None), "smoke").task.task
    episodes = task.sample(8, 16, seed=3)
    ridge = BayesianLinearRegression.from_task(task)
    outputs = rollout(ridge, episodes.inputs).outputs[..., 0].double()
    clean = torch.einsum("ex,etx->et", episodes.params["W"][:, 0].double(),
                         episodes.inputs[..., :task.dim].double())
    machine = ((outputs - clean) ** 2).mean(0).numpy() / task.dim
    np.testing.assert_allclose(machine, _ridge_errors(episodes, task.noise_std,
                                                      task.prior_scale), rtol=1e-9)
    assert machine[0] == pytest.approx(1.0, rel=0.5)  # no example: E(wᵀx)² / d = 1


def _ladder_simulation(d_o, d_s):
    """A ``simulation`` Dataset as ``_simulations`` concatenates it: D_o and D_s of the
    transformer into (a→b) and from (b→a) each Bayes machine; ``d_o``/``d_s`` (M, seed,
    reference) give a→b, b→a is their double."""
    import xarray as xr

    from trajprobe.apps.reproduce import task_diversity as td

    dims = ("M", "seed", "reference", "direction")
    coords = {"M": ["1", "4", "16", "64", "∞"], "reference": list(td.REFERENCES),
              "direction": ["a→b", "b→a"]}

    def both(into):
        into = np.asarray(into, float)[..., None]
        return (dims, np.concatenate([into, 2 * into], axis=-1))

    d_o = both(d_o)
    return xr.Dataset({"output_dissimilarity": d_o, "state_dissimilarity": both(d_s),
                       "output_dissimilarity_constant": (dims, np.ones(d_o[1].shape)),
                       "reliable": (dims, np.ones(d_o[1].shape, bool))}, coords=coords)


def test_threshold_by_d_o_is_the_first_m_from_which_ridge_simulates_the_outputs_better():
    """M* by D_o beside M* by D_s: the smallest M of the ladder from which D_o into ridge
    stays below D_o into dMMSE (M = 4 is closer to ridge but M = 16 is not, so 64 is the
    answer; at M = ∞ the two machines coincide); D_s crosses at 4; a ladder where ridge never
    wins gives inf."""
    from trajprobe.apps.reproduce import task_diversity as td

    sizes = [1, 4, 16, 64, None]
    # (M, seed, reference): reference 0 is dMMSE, 1 is ridge; two seeds averaged
    d_o = [[[0.01, 0.5], [0.03, 0.7]],      # M = 1: dMMSE simulates it
           [[0.6, 0.3], [0.6, 0.5]],        # M = 4: ridge (0.4 < 0.6)
           [[0.3, 0.5], [0.5, 0.4]],        # M = 16: dMMSE again (0.4 < 0.45)
           [[1.0, 0.2], [0.8, 0.2]],        # M = 64: ridge
           [[0.2, 0.2], [0.2, 0.2]]]        # M = ∞: one machine
    d_s = [[[0.1, 0.5]] * 2] + [[[0.6, 0.2]] * 2] * 4
    rows = {row.quantity: row for row in td._simulation_rows(_ladder_simulation(d_o, d_s),
                                                             sizes)}
    by_o = next(row for name, row in rows.items() if name.startswith("threshold M* by D_o"))
    by_s = next(row for name, row in rows.items() if name.startswith("threshold M* by D_s"))
    assert by_o.ours == 64.0 and by_s.ours == 4.0
    assert by_o.paper == td.PAPER_THRESHOLD and by_o.agent == "Transformer"
    # a transformer dMMSE simulates at every finite M: never within the ladder
    never = np.array(d_o)
    never[:-1] = [[[0.1, 0.9]] * 2] * 4
    rows = td._simulation_rows(_ladder_simulation(never, d_s), sizes)
    assert math.isinf(next(r for r in rows if r.quantity.startswith("threshold M* by D_o")).ours)


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    from trajprobe.apps.reproduce import reproduce

    out = tmp_path_factory.mktemp("task-diversity") / "task-diversity-smoke"
    reproduce("task-diversity", preset="smoke", out_dir=out, scheduler=None, progress=False)
    return out


@pytest.mark.slow
def test_task_diversity_smoke_results_have_the_bayes_machines_known_answers(smoke_dir):
    from trajprobe.apps import load_run, recipes
    from trajprobe.apps.recipes.in_context import task_diversity_name
    from trajprobe.apps.reproduce import read_results
    from trajprobe.apps.reproduce import task_diversity as td

    results = read_results(smoke_dir / "results.nc")
    err = results["errors"]["error"]
    assert err.dims == ("M", "seed", "machine", "tasks", "t")
    assert list(err["M"].values) == ["1", "16", "∞"]
    # dMMSE on its one-task pool knows w from t = 1: zero error against wᵀx
    assert float(err.sel(M="1", machine="dMMSE", tasks="pool").max()) < 1e-12
    # at M = ∞ dMMSE is ridge: both rows are the ridge posterior mean's error, computed
    # here by its closed form on the same episodes (the report uses one object for both)
    recipe = recipes.get(task_diversity_name(None), "smoke")
    pool, points = recipe.task, recipe.training.n_steps
    settings = td.SETTINGS.smoke
    sets = {"pool": pool.sample(settings.n_eval, points, seed=54_321),
            "fresh": pool.task.sample(settings.n_eval, points, seed=12_345)}
    for tasks, episodes in sets.items():
        expected = _ridge_errors(episodes, pool.task.noise_std, pool.task.prior_scale)
        for machine in ("dMMSE", "Ridge"):
            got = err.sel(M="∞", machine=machine, tasks=tasks).values  # (seed, t)
            np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), rtol=1e-9,
                                       err_msg=f"{machine}, {tasks} tasks")
    # with no example ridge predicts 0: E(wᵀx)² / d = 1
    assert float(err.sel(machine="Ridge", tasks="fresh").isel(t=0).mean()) == pytest.approx(
        1.0, rel=0.5)
    q = results["spectra"]["q"]
    assert q.dims == ("M", "machine", "t", "mode") and list(q["M"].values) == ["1", "∞"]
    # ridge learns every direction of fresh tasks from 16 examples of d = 4
    assert float(q.sel(M="∞", machine="Ridge").isel(t=-1).min()) > 0.5
    sim = results["simulation"]
    d_o = sim["output_dissimilarity"]
    assert d_o.dims == ("M", "seed", "reference", "direction")
    assert list(sim["reference"].values) == ["dMMSE", "Ridge"]
    # at M = ∞ dMMSE is ridge: the report runs one comparison for both; a second path
    # compares the M = ∞ transformer with two ridge machines built here
    model = load_run(smoke_dir / "runs" / task_diversity_name(None).replace("/", "-")
                     / "seed0").machine
    ridge = {name: BayesianLinearRegression(pool.task.dim, 1, prior_scale=pool.task.prior_scale,
                                            noise_std=pool.task.noise_std)
             for name in td.REFERENCES}
    compared = pool.task.sample(settings.n_simulation, points, seed=2_024)
    again = td._simulations([model], ridge, compared, settings.simulation)
    for name in ("state_dissimilarity", "output_dissimilarity"):
        for reference in td.REFERENCES:
            np.testing.assert_allclose(
                sim[name].sel(M="∞", reference=reference, seed=0).values,
                again[name].sel(reference=reference, seed=0).values, rtol=1e-6,
                equal_nan=True, err_msg=f"{name}, {reference}")
    # dMMSE on a one-task pool predicts w x whatever its state: every map gives the
    # constant map's D_o
    into = sim.sel(direction="a→b")
    assert into["output_dissimilarity"].sel(M="1", reference="dMMSE").values == pytest.approx(
        into["output_dissimilarity_constant"].sel(M="1", reference="dMMSE").values, rel=1e-9)
    # D_o into the transformer's summary is undefined; D_s in both directions is finite
    assert bool(d_o.sel(direction="b→a").isnull().all())
    assert bool(np.isfinite(sim["state_dissimilarity"]).all())
    # sufficiency: both Bayes machines ignore the order of the examples (0 to rounding),
    # except dMMSE on a one-task pool, which no context moves (0 / 0); the transformer's
    # ratio is defined at every M
    ratio = results["sufficiency"]["ratio_overall"]
    assert ratio.dims == ("M", "machine", "seed")
    bayes = ratio.sel(machine=["dMMSE", "Ridge"]).drop_sel(M="1")
    assert float(abs(bayes).max()) < 1e-12
    assert float(abs(ratio.sel(M="1", machine="Ridge")).max()) < 1e-12
    assert bool(ratio.sel(M="1", machine="dMMSE").isnull().all())
    assert bool(np.isfinite(ratio.sel(machine="Transformer")).all())


@pytest.mark.slow
def test_task_diversity_smoke_report_and_pins(smoke_dir, assert_pinned):
    report = (smoke_dir / "report.md").read_text()
    assert "threshold M*" in report and "dMMSE" in report
    assert "D_o Transformer → dMMSE" in report
    for stem in ("mse_vs_pool_size", "mse_vs_position", "spectra", "simulation_vs_pool_size",
                 "sufficiency_vs_pool_size"):
        assert (smoke_dir / "figures" / f"{stem}.png").is_file()
    assert "sufficiency ratio (pooled over t; shuffled / another context)" in report
    assert_pinned(smoke_dir, "task-diversity")
