"""Bayesian linear regression machine: eq. 7 directly, brute-force Gaussian conditioning."""

from __future__ import annotations

import pytest
import torch

from trajprobe import probe, rollout
from trajprobe.reference_models.linear_regression import BayesianLinearRegression
from trajprobe.tasks.regression import LinearRegression

ALPHA, SIGMA = 0.7, 0.3


def data(n_episodes=3, n_steps=8, dx=3, dy=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = ALPHA * torch.randn(n_episodes, dy, dx, generator=gen, dtype=torch.float64)
    x = torch.randn(n_episodes, n_steps, dx, generator=gen, dtype=torch.float64)
    y = x @ w.mT + SIGMA * torch.randn(n_episodes, n_steps, dy, generator=gen,
                                       dtype=torch.float64)
    y_prev = torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], dim=1)
    return x, y, torch.cat([x, y_prev], dim=-1)


def test_posterior_mean_equals_eq7_at_every_step():
    x, y, inputs = data()
    machine = BayesianLinearRegression(3, 2, prior_scale=ALPHA, noise_std=SIGMA)
    trace = rollout(machine, inputs)
    for t in range(1, x.shape[1] + 1):
        state = machine.state_from_vector(trace.state_vectors(machine)[:, t])
        w_hat = machine.posterior_mean(state)                       # [E, dy, dx]
        X, Y = x[:, : t - 1], y[:, : t - 1]                          # t-1 completed pairs
        lam = X.mT @ X + (SIGMA / ALPHA) ** 2 * torch.eye(3, dtype=torch.float64)
        eq7 = Y.mT @ X @ torch.linalg.inv(lam)                       # W̄ = YᵀX Λ⁻¹
        torch.testing.assert_close(w_hat, eq7, rtol=1e-10, atol=1e-12)
        # the output at t is W̄_t x_t
        torch.testing.assert_close(trace.outputs[:, t - 1],
                                   (eq7 @ x[:, t - 1, :, None])[..., 0], rtol=1e-10, atol=1e-12)


def test_posterior_equals_brute_force_gaussian_conditioning():
    """vec W ~ N(0, α² I); y_n = (I_dy ⊗ x_nᵀ) vec W + ε: condition the joint Gaussian."""
    x, y, inputs = data(n_episodes=1, n_steps=6)
    dx, dy = 3, 2
    machine = BayesianLinearRegression(dx, dy, prior_scale=ALPHA, noise_std=SIGMA)
    state = rollout(machine, inputs).states
    final = machine.state_from_vector(machine.state_vector(
        type(state)(*(leaf[:, -1] for leaf in state))))
    n = 5                                                           # pairs absorbed by s_6
    A = torch.cat([torch.kron(torch.eye(dy, dtype=torch.float64), x[0, i][None])
                   for i in range(n)])                               # [n dy, dy dx]
    prior_cov = ALPHA**2 * torch.eye(dx * dy, dtype=torch.float64)
    cov_y = A @ prior_cov @ A.T + SIGMA**2 * torch.eye(n * dy, dtype=torch.float64)
    gain = prior_cov @ A.T @ torch.linalg.inv(cov_y)
    mean = gain @ y[0, :n].reshape(-1)
    post_cov = prior_cov - gain @ A @ prior_cov
    torch.testing.assert_close(machine.posterior_mean(final)[0], mean.reshape(dy, dx),
                               rtol=1e-9, atol=1e-12)
    # predictive variance of y at a new x: σ² + x Σ_row xᵀ, same for every output
    x_new = torch.tensor([[0.3, -1.2, 0.8]], dtype=torch.float64)
    pred = machine.predictive(x_new, final)
    var = SIGMA**2 + (torch.kron(torch.eye(dy, dtype=torch.float64), x_new) @ post_cov
                      @ torch.kron(torch.eye(dy, dtype=torch.float64), x_new).T).diagonal()
    torch.testing.assert_close(pred.variance[0], var, rtol=1e-9, atol=1e-12)


def test_first_output_is_prior_mean_and_y0_is_ignored():
    machine = BayesianLinearRegression(2)
    x = torch.tensor([[0.5, -1.0, 7.0, 7.0]], dtype=torch.float64)   # y_0 slot non-zero
    y, state = machine.step(x, machine.initial_state(1))
    assert y.tolist() == [[0.0, 0.0]]
    assert state.xx.abs().sum() == 0 and state.xy.abs().sum() == 0
    assert state.pending.tolist() == [[0.5, -1.0]]


def test_from_task_runs_on_task_episodes_and_probes():
    task = LinearRegression(dim=2, noise_std=0.1, prior_scale=1.5)
    machine = BayesianLinearRegression.from_task(task)
    assert (machine.prior_scale, machine.noise_std, machine.input_size) == (1.5, 0.1, 4)
    episodes = task.sample(4, 20, seed=0, dtype=torch.float64)
    trace = rollout(machine, episodes.inputs)
    # after 19 pairs at σ = 0.1 the posterior mean is close to the true W
    s20 = type(trace.states)(*(leaf[:, -1] for leaf in trace.states))
    err = (machine.posterior_mean(s20) - episodes.params["W"]).abs().max()
    assert err < 0.15
    # probes from forked states equal re-running the history with the probe input
    probes = task.probe_inputs(episodes.inputs, n_probes=3, seed=1)
    ys = probe(machine, trace, probes)
    t = 7
    inputs = episodes.inputs.clone()
    inputs[:, t - 1] = probes[:, t - 1, 2]
    torch.testing.assert_close(ys[:, t - 1, 2], rollout(machine, inputs).outputs[:, t - 1])


def test_state_from_vector_projects_onto_psd():
    machine = BayesianLinearRegression(2, 1)  # ridge σ²/α² = 1
    vec = torch.zeros(1, 4 + 2 + 2 + 1, dtype=torch.float64)
    vec[0, :4] = torch.tensor([1.0, 3.0, 1.0, 1.0])        # Λ not symmetric, below the ridge
    vec[0, 4:6] = torch.tensor([0.5, -1.0])                # W̄ᵀ
    vec[0, -1] = -2.0
    state = machine.state_from_vector(vec)
    torch.testing.assert_close(state.xx, state.xx.mT)
    assert torch.linalg.eigvalsh(state.xx).min() >= -1e-12
    # symmetric part [[1,2],[2,1]] has eigenvalues 3, -1 -> Λ keeps 3 along (1,1)/√2 and
    # the ridge 1 along (1,-1)/√2, so XᵀX = Λ − I = [[1, 1], [1, 1]]
    torch.testing.assert_close(state.xx[0], torch.ones(2, 2, dtype=torch.float64))
    # the posterior mean is kept: Λ⁻¹ XᵀY = W̄ᵀ
    torch.testing.assert_close(machine.posterior_mean(state)[0, 0],
                               torch.tensor([0.5, -1.0], dtype=torch.float64))
    assert state.steps.item() == 0.0


def test_state_vector_round_trips_and_holds_the_posterior_mean():
    *_, inputs = data()
    machine = BayesianLinearRegression(3, 2, prior_scale=ALPHA, noise_std=SIGMA)
    trace = rollout(machine, inputs)
    vectors = trace.state_vectors(machine)[:, 5]
    state = machine.state_from_vector(vectors)
    torch.testing.assert_close(machine.state_vector(state), vectors, rtol=1e-9, atol=1e-9)
    w_bar = machine.posterior_mean(state)                        # [E, dy, dx]
    torch.testing.assert_close(vectors[:, 9:15], w_bar.mT.reshape(-1, 6))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [({"x_dim": 0}, ValueError, "x_dim"),
     ({"x_dim": 2, "prior_scale": 0.0}, ValueError, "prior_scale"),
     ({"x_dim": 2, "noise_std": -1.0}, ValueError, "noise_std"),
     ({"x_dim": 2, "y_dim": 1.5}, TypeError, "y_dim")],
)
def test_bad_arguments(kwargs, error, name):
    # validation.check_positive_int: TypeError for a non-integer, ValueError below 1
    with pytest.raises(error, match=name):
        BayesianLinearRegression(**kwargs)


def test_bad_input_shape():
    machine = BayesianLinearRegression(2)
    with pytest.raises(ValueError, match=r"x: expected shape \[3, 4\]"):
        machine.step(torch.zeros(3, 3), machine.initial_state(3))


def test_exchangeability_of_completed_pairs():
    """Permuting the (x, y) pairs leaves the sufficient statistics and W̄ unchanged."""
    x, y, _ = data(n_episodes=2, n_steps=7)
    perm = torch.tensor([3, 0, 6, 2, 5, 1, 4])
    machine = BayesianLinearRegression(3, 2, prior_scale=ALPHA, noise_std=SIGMA)

    def final(xs, ys):
        pad_x = torch.cat([xs, torch.zeros_like(xs[:, :1])], dim=1)   # one more step
        y_prev = torch.cat([torch.zeros_like(ys[:, :1]), ys], dim=1)
        trace = rollout(machine, torch.cat([pad_x, y_prev], dim=-1))
        return type(trace.states)(*(leaf[:, -1] for leaf in trace.states))

    a, b = final(x, y), final(x[:, perm], y[:, perm])
    torch.testing.assert_close(b.xx, a.xx)
    torch.testing.assert_close(b.xy, a.xy)
    torch.testing.assert_close(machine.posterior_mean(b), machine.posterior_mean(a))


def test_least_squares_on_a_scalar_output_gives_q_one_once_d_examples_are_seen():
    import trajprobe

    d = 4
    task = LinearRegression(d, noise_std=0.0, out_dim=1, input_spectrum=(3.0, 1.0, 0.5, 0.1))
    machine = BayesianLinearRegression.from_task(task, noise_std=1e-6)  # ridge λ = 1e-12
    assert (machine.x_dim, machine.y_dim) == (d, 1)
    ds = trajprobe.measure(machine, task, episodes=20, steps=8, probes=16, seed=0)
    q = torch.as_tensor(ds["q"].values)  # [E, T, d]
    torch.testing.assert_close(q[:, d:], torch.ones(20, 8 - d, d, dtype=q.dtype))
    assert float((q[:, :d] - 1).abs().max()) > 0.1  # fewer than d examples: underdetermined
    assert float(q[:, 0].abs().max()) == 0.0  # no example: ŵ = 0
