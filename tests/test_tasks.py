"""Tasks: seeded sampling, encodings, ground truth, probe inputs (Rabinowitz 2019 §3–5)."""

import math

import pytest
import torch

from trajprobe.tasks import (
    ContextualBandit,
    Environment,
    Episodes,
    FourierRegression,
    LinearRegression,
    Task,
    band_pass,
    haar_orthogonal,
    make_generator,
)

F64 = torch.float64


# --- linear regression --------------------------------------------------------------------


def test_linear_regression_is_a_task_with_the_shared_encoding():
    task = LinearRegression(3, noise_std=0.0)
    assert isinstance(task, Task)
    assert (task.input_size, task.output_size) == (6, 3)
    ep = task.sample(4, 5, seed=0, dtype=F64)
    assert ep.inputs.shape == (4, 5, 6) and ep.targets.shape == (4, 5, 3)
    x, y_prev = ep.inputs[..., :3], ep.inputs[..., 3:]
    # noise-free: y_t = W x_t exactly; input at t carries y_{t-1}, y_0 = 0
    torch.testing.assert_close(ep.targets, torch.einsum("eij,etj->eti", ep.params["W"], x))
    assert torch.equal(y_prev[:, 0], torch.zeros(4, 3, dtype=F64))
    assert torch.equal(y_prev[:, 1:], ep.targets[:, :-1])


def test_linear_regression_same_seed_same_episodes():
    task = LinearRegression(2)
    a, b = task.sample(3, 4, seed=7), task.sample(3, 4, seed=7)
    c = task.sample(3, 4, seed=8)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.params["W"], b.params["W"])
    assert not torch.equal(a.inputs, c.inputs)


def test_linear_regression_noise_has_the_given_std():
    task = LinearRegression(2, noise_std=0.5)
    ep = task.sample(200, 50, seed=1, dtype=F64)
    resid = ep.targets - torch.einsum("eij,etj->eti", ep.params["W"], ep.inputs[..., :2])
    assert abs(resid.std().item() - 0.5) < 0.01


def test_prior_entries_have_variance_prior_scale_squared_and_svd_matches():
    task = LinearRegression(2, prior_scale=3.0)
    p = task.sample_params(20000, seed=0, dtype=F64)
    assert abs(p["W"].var().item() - 9.0) < 0.2
    assert abs(p["W"].mean().item()) < 0.05
    recon = p["U"] @ torch.diag_embed(p["s"]) @ p["V"].mT
    torch.testing.assert_close(recon, p["W"])
    assert bool((p["s"][:, 0] >= p["s"][:, 1]).all())


def test_given_spectrum_with_haar_singular_vectors():
    task = LinearRegression(3)
    spectrum = torch.tensor([2.0, 0.5, 0.04], dtype=F64)
    p = task.sample_params(500, spectrum=spectrum, seed=3, dtype=F64)
    eye = torch.eye(3, dtype=F64).expand(500, 3, 3)
    torch.testing.assert_close(p["U"].mT @ p["U"], eye)
    torch.testing.assert_close(p["V"].mT @ p["V"], eye)
    # the singular values of W are exactly the given spectrum
    torch.testing.assert_close(torch.linalg.svdvals(p["W"]), spectrum.expand(500, 3))
    # diag(U^T W V) = s (eq. 3 applied to the target itself)
    torch.testing.assert_close(
        torch.diagonal(p["U"].mT @ p["W"] @ p["V"], dim1=-2, dim2=-1), spectrum.expand(500, 3)
    )
    # uniquely rotated: different episodes get different W
    assert not torch.allclose(p["W"][0], p["W"][1])


def test_haar_orthogonal_second_moments():
    # For Haar O(n), E[Q_ij] = 0 and E[Q_ij^2] = 1/n for every entry.
    q = haar_orthogonal(20000, 3, generator=make_generator(0), dtype=F64)
    assert q.mean(0).abs().max().item() < 0.02
    torch.testing.assert_close(q.square().mean(0), torch.full((3, 3), 1 / 3, dtype=F64),
                               atol=0.01, rtol=0)
    # determinant ±1 in equal proportion (the sign correction makes it Haar on O(n))
    det = torch.linalg.det(q)
    assert abs(det.mean().item()) < 0.03


def test_spectrum_shape_and_sign_errors():
    task = LinearRegression(2)
    with pytest.raises(ValueError, match=r"spectrum: expected shape \[2\]"):
        task.sample_params(3, spectrum=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="non-negative"):
        task.sample_params(3, spectrum=[1.0, -2.0])
    with pytest.raises(ValueError, match="dim"):
        LinearRegression(0)
    with pytest.raises(ValueError, match="noise_std"):
        LinearRegression(2, noise_std=-1.0)


def test_linear_probe_inputs_replace_x_and_keep_previous_y():
    task = LinearRegression(2)
    ep = task.sample(3, 4, seed=0)
    pin = task.probe_inputs(ep, 10, seed=1)
    assert pin.shape == (3, 4, 10, 4)
    assert torch.equal(pin[..., 2:], ep.inputs[:, :, None, 2:].expand(-1, -1, 10, -1))
    assert torch.equal(task.probe_points(pin), pin[..., :2])
    # fresh points per (episode, step), seeded
    assert not torch.equal(pin[0, 0, :, :2], pin[0, 1, :, :2])
    assert torch.equal(pin, task.probe_inputs(ep.inputs, 10, seed=1))
    with pytest.raises(ValueError, match=r"inputs: expected shape \[E, T, 4\]"):
        task.probe_inputs(torch.zeros(3, 4, 5))


# --- Fourier regression -------------------------------------------------------------------


def test_fourier_grid_is_footnote_1():
    task = FourierRegression()
    grid = task.grid(dtype=F64)
    assert grid.shape == (40,)
    assert abs(grid.mean().item()) < 1e-15
    torch.testing.assert_close(grid[0], torch.tensor(-0.4875, dtype=F64))
    torch.testing.assert_close(torch.diff(grid), torch.full((39,), 0.025, dtype=F64))


def test_fourier_sampling_and_encoding():
    task = FourierRegression(n_modes=5, noise_std=0.0)
    ep = task.sample(6, 30, seed=2, dtype=F64)
    assert isinstance(task, Task)
    assert ep.inputs.shape == (6, 30, 2) and ep.targets.shape == (6, 30, 1)
    x = ep.inputs[..., 0]
    assert bool(((x >= -0.5) & (x < 0.5)).all())
    ph, amp = ep.params["phases"], ep.params["amplitudes"]
    assert bool(((ph >= 0) & (ph < 2 * math.pi)).all()) and torch.equal(amp, torch.ones_like(amp))
    k = torch.arange(1, 6, dtype=F64)
    g = torch.sin(2 * math.pi * k * x[..., None] + ph[:, None]).sum(-1)
    torch.testing.assert_close(ep.targets[..., 0], g)
    assert torch.equal(ep.inputs[:, 1:, 1], ep.targets[:, :-1, 0])
    assert torch.equal(ep.inputs[:, 0, 1], torch.zeros(6, dtype=F64))
    same = task.sample(6, 30, seed=2, dtype=F64)
    assert torch.equal(same.inputs, ep.inputs)


def test_fourier_amplitude_options():
    uniform = FourierRegression(amplitudes="uniform").sample_params(2000, seed=0)
    a = uniform["amplitudes"]
    assert bool(((a >= 0) & (a <= 1)).all()) and abs(a.mean().item() - 0.5) < 0.02
    assert band_pass(5, 3, 5) == (0.0, 0.0, 1.0, 1.0, 1.0)
    bp = FourierRegression(amplitudes=band_pass(5, 3, 5)).sample_params(4, seed=0)
    assert torch.equal(bp["amplitudes"], torch.tensor([[0.0, 0, 1, 1, 1]]).expand(4, 5))
    with pytest.raises(ValueError, match="amplitudes: expected 5"):
        FourierRegression(amplitudes=(1.0, 2.0))
    with pytest.raises(ValueError, match="n_points"):
        FourierRegression(n_modes=20, n_points=40)


def test_fourier_target_coefficients_closed_form():
    # DFT on the grid x_n = x_0 + n/N of a sin(2πkx + φ) is a N/(2i) e^{i(2πk x_0 + φ)}.
    task = FourierRegression(amplitudes="uniform")
    p = task.sample_params(5, seed=1, dtype=F64)
    coef = task.target_coefficients(p)
    x0 = task.grid(dtype=F64)[0]
    k = torch.arange(1, 6, dtype=F64)
    expected = p["amplitudes"] * 40 / 2j * torch.exp(1j * (2 * math.pi * k * x0 + p["phases"]))
    torch.testing.assert_close(coef, expected)


def test_fourier_probe_inputs():
    task = FourierRegression()
    ep = task.sample(2, 3, seed=0)
    pin = task.probe_inputs(ep)
    assert pin.shape == (2, 3, 40, 2)
    assert torch.equal(pin[1, 2, :, 0], task.grid())
    assert torch.equal(pin[..., 1], ep.inputs[..., 1:2].expand(-1, -1, 40))


# --- contextual bandits -------------------------------------------------------------------


def test_bandit_is_a_bandit_task_with_the_shared_encoding():
    task = ContextualBandit(n_contexts=3, n_actions=4)
    assert isinstance(task, Environment)
    assert task.input_size == 8 and task.output_size == 4
    ctx = torch.tensor([0, 2])
    x0 = task.encode(ctx, None, None)
    torch.testing.assert_close(x0, torch.tensor([[1.0, 0, 0, 0, 0, 0, 0, 0],
                                                 [0, 0, 1, 0, 0, 0, 0, 0]]))
    x1 = task.encode(ctx, torch.tensor([3, 1]), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(x1, torch.tensor([[1.0, 0, 0, 0, 0, 0, 1, 1],
                                                 [0, 0, 1, 0, 1, 0, 0, 0]]))


def test_bandit_params_independent_and_conflicting():
    gen = make_generator(0)
    indep = ContextualBandit(5, 5).sample_params(4000, generator=gen)["correct"]
    assert indep.shape == (4000, 5) and indep.dtype == torch.long
    # independent uniform draws: some episodes repeat a correct action across contexts,
    # each action has frequency ~1/5
    assert bool((torch.tensor([len(set(r.tolist())) for r in indep[:200]]) < 5).any())
    freq = torch.bincount(indep.flatten(), minlength=5) / indep.numel()
    assert (freq - 0.2).abs().max().item() < 0.01
    confl = ContextualBandit(5, 5, conflicting=True).sample_params(200, generator=gen)["correct"]
    assert all(len(set(r.tolist())) == 5 for r in confl)
    with pytest.raises(ValueError, match="n_contexts"):
        ContextualBandit(6, 5, conflicting=True)
    with pytest.raises(ValueError, match="p_correct"):
        ContextualBandit(p_correct=1.5)


def test_bandit_rewards_follow_p_correct_and_p_incorrect():
    task = ContextualBandit(2, 3, p_correct=0.9, p_incorrect=0.3)
    params = {"correct": torch.tensor([[1, 2]]).expand(40000, 2)}
    ctx = torch.zeros(40000, dtype=torch.long)
    gen = make_generator(5)
    torch.testing.assert_close(task.expected_reward(params, ctx[:1]),
                               torch.tensor([[0.3, 0.9, 0.3]], dtype=F64))
    r_good = task.reward(params, ctx, torch.ones(40000, dtype=torch.long), generator=gen)
    r_bad = task.reward(params, ctx, torch.zeros(40000, dtype=torch.long), generator=gen)
    assert abs(r_good.mean().item() - 0.9) < 0.01 and abs(r_bad.mean().item() - 0.3) < 0.01
    assert set(r_good.unique().tolist()) <= {0.0, 1.0}


def test_bandit_contexts_uniform_and_probe_inputs():
    task = ContextualBandit(4, 3)
    gen = make_generator(0)
    params = task.sample_params(100, generator=gen)
    ctx = task.contexts(params, 200, generator=gen)
    assert ctx.shape == (100, 200)
    freq = torch.bincount(ctx.flatten(), minlength=4) / ctx.numel()
    assert (freq - 0.25).abs().max().item() < 0.01
    inputs = torch.stack(
        [task.encode(ctx[:, 0], None, None),
         task.encode(ctx[:, 1], torch.zeros(100, dtype=torch.long), torch.ones(100))], dim=1)
    pin = task.probe_inputs(inputs)
    assert pin.shape == (100, 2, 4, 8)
    assert torch.equal(pin[..., :4], torch.eye(4).expand(100, 2, 4, 4))
    assert torch.equal(pin[..., 4:], inputs[:, :, None, 4:].expand(-1, -1, 4, -1))


def test_episodes_is_the_shared_container():
    ep = LinearRegression(2).sample(1, 1, seed=0)
    assert isinstance(ep, Episodes) and set(ep.params) == {"W", "U", "s", "V"}


# --- linear regression with any output size and input covariance (issue 29) -------------


def test_scalar_output_regression_is_garg_task():
    task = LinearRegression(5, noise_std=0.0, out_dim=1)
    assert (task.input_size, task.output_size, task.n_modes) == (6, 1, 5)
    ep = task.sample(4, 11, seed=0, dtype=F64)
    assert ep.targets.shape == (4, 11, 1) and ep.params["W"].shape == (4, 1, 5)
    x = ep.inputs[..., :5]
    torch.testing.assert_close(ep.targets, torch.einsum("eyx,etx->ety", ep.params["W"], x))
    assert torch.equal(ep.inputs[:, 1:, 5:], ep.targets[:, :-1])
    # modes are the input directions: W = Σ_k s_k U_k e_kᵀ with s = |w|, U = sign(w)
    p = ep.params
    torch.testing.assert_close(p["U"] * p["s"][:, None], p["W"])
    assert torch.equal(p["V"][0], torch.eye(5, dtype=F64))


def test_given_strengths_for_a_scalar_output_fix_every_weight_up_to_sign():
    task = LinearRegression(3, out_dim=1)
    p = task.sample_params(400, spectrum=[2.0, 0.5, 0.1], seed=1, dtype=F64)
    torch.testing.assert_close(p["W"].abs()[:, 0], torch.tensor([2.0, 0.5, 0.1],
                                                                dtype=F64).expand(400, 3))
    assert 150 < int((p["W"][:, 0, 0] > 0).sum()) < 250  # random signs


def test_input_covariance_has_the_chosen_spectrum():
    task = LinearRegression(3, out_dim=2, input_spectrum=(4.0, 1.0, 0.25))
    ep = task.sample(2000, 10, seed=0, dtype=F64)
    var = ep.inputs[..., :3].reshape(-1, 3).var(0)
    torch.testing.assert_close(var, torch.tensor([4.0, 1.0, 0.25], dtype=F64), rtol=0.03,
                               atol=0)
    probes = task.probe_inputs(ep, 50, seed=0)[..., :3].reshape(-1, 3)
    torch.testing.assert_close(probes.var(0), var, rtol=0.03, atol=0)
    assert ep.params["U"].shape == (2000, 2, 2) and ep.params["V"].shape == (2000, 3, 2)
    with pytest.raises(ValueError, match="input_spectrum"):
        LinearRegression(3, input_spectrum=(1.0, -1.0, 1.0))


def test_square_regression_is_unchanged_by_the_new_fields():
    """out_dim = dim and Σ = I draw exactly the episodes of before (pinned numbers)."""
    a = LinearRegression(2).sample(2, 3, seed=0)
    b = LinearRegression(2, out_dim=2).sample(2, 3, seed=0)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.params["U"], b.params["U"])
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(2, 2, 2, generator=gen)
    x = torch.randn(2, 3, 2, generator=gen)
    torch.testing.assert_close(a.params["W"], w, rtol=0, atol=0)
    torch.testing.assert_close(a.inputs[..., :2], x, rtol=0, atol=0)


def test_active_dims_zero_the_trailing_coordinates():
    task = LinearRegression(4, noise_std=0.0, out_dim=1)
    ep = task.sample(3, 5, seed=0, active_dims=2)
    assert bool((ep.inputs[..., 2:4] == 0).all()) and bool((ep.inputs[..., :2] != 0).all())
    w = ep.params["W"][:, 0, :2]
    torch.testing.assert_close(ep.targets[..., 0], torch.einsum("ex,etx->et", w,
                                                                ep.inputs[..., :2]))
