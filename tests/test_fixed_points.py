"""Fixed points and linearised dynamics: closed-form systems are recovered exactly."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from trajprobe import fixed_points, rollout
from trajprobe.linearised import jacobians, linearise, time_constants

A = 0.25
"""g(u) = u + A (u − u³): fixed points u ∈ {−1, 0, 1}, g'(0) = 1 + A, g'(±1) = 1 − 2A."""


class Cubic:
    """s' = R g(Rᵀ s + x) in two units, a rotation R mixing them; the state is a dict.

    Under x = 0 the nine fixed points are R p for p ∈ {−1, 0, 1}², with Jacobian
    R diag(g'(p)) Rᵀ: the four corners stable (both λ = 0.5), the origin unstable (both
    1.25), the four edge midpoints saddles (0.5 and 1.25).
    """

    def __init__(self, theta: float = 0.3):
        c, s = math.cos(theta), math.sin(theta)
        self.rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)

    def initial_state(self, batch_size: int) -> dict[str, torch.Tensor]:
        zeros = torch.zeros(batch_size, 1, dtype=torch.float64)
        return {"h": zeros, "k": zeros.clone()}

    def step(self, x, state):
        s = torch.cat([state["h"], state["k"]], 1)
        u = s @ self.rotation + x
        new = (u + A * (u - u**3)) @ self.rotation.T
        return new.sum(1, keepdim=True), {"h": new[:, :1], "k": new[:, 1:]}


def _expected(machine: Cubic):
    points = np.array(list(itertools.product([-1.0, 0.0, 1.0], repeat=2)))
    slope = lambda p: 1 + A * (1 - 3 * p**2)  # noqa: E731
    return points @ machine.rotation.numpy().T, slope(points)


def _starts(n: int = 300, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 2, generator=generator, dtype=torch.float64) * 3 - 1.5


def _match(found: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """For each expected point, the index of the nearest found point."""
    return np.abs(found[None] - expected[:, None]).max(-1).argmin(1)


@pytest.mark.parametrize("method", ["newton", "adam"])
def test_cubic_fixed_points_stability_and_jacobians_in_closed_form(method):
    machine = Cubic()
    ds = fixed_points(machine, torch.zeros(2, dtype=torch.float64), _starts(), method=method)
    points, slopes = _expected(machine)
    assert ds.sizes["point"] == 9
    at = _match(ds.state.values, points)
    assert len(set(at)) == 9
    tol = 1e-6 if method == "newton" else 1e-5
    np.testing.assert_allclose(ds.state.values[at], points, atol=tol)
    rot = machine.rotation.numpy()
    for k, i in enumerate(at):
        np.testing.assert_allclose(ds.jacobian.values[i], rot @ np.diag(slopes[k]) @ rot.T,
                                   atol=10 * tol)
        lam = np.sort(ds.eigenvalues.values[i].real)
        np.testing.assert_allclose(lam, np.sort(slopes[k]), atol=10 * tol)
    np.testing.assert_array_equal(ds.stable.values[at], (slopes < 1).all(1))
    assert int(ds.stable.sum()) == 4
    assert int(ds["count"].sum()) == 300 - sum(v for k, v in ds.attrs.items()
                                               if k.startswith("dropped"))
    assert ds.speed.dims == ("point",) and ds.eigenvalues.dtype.kind == "c"


def test_newton_reaches_the_tolerance_on_q():
    ds = fixed_points(Cubic(), torch.zeros(2, dtype=torch.float64), _starts(50))
    assert bool(ds.converged.all()) and float(ds.speed.max()) < 1e-12


def test_a_constant_input_moves_the_fixed_points():
    # each unit: s = g(s + x), i.e. u = s + x solves u³ − u − x / A = 0 (one real root)
    machine = Cubic(theta=0.0)
    ds = fixed_points(machine, torch.full((2,), 0.1, dtype=torch.float64), _starts(50),
                      max_q=1e-12)
    roots = np.roots([1.0, 0.0, -1.0, -0.1 / A])
    u = roots[np.abs(roots.imag) < 1e-9].real.item()
    np.testing.assert_allclose(ds.state.values, [[u - 0.1, u - 0.1]], atol=1e-6)
    np.testing.assert_allclose(ds.eigenvalues.values[0].real, [1 + A * (1 - 3 * u**2)] * 2,
                               atol=1e-6)
    assert bool(ds.stable.all()) and ds.input.values.tolist() == [[0.1, 0.1]]


def test_trace_states_noise_and_seed_give_the_same_points_twice():
    machine = Cubic()
    trace = rollout(machine, torch.rand(4, 10, 2, dtype=torch.float64) - 0.5)
    one = fixed_points(machine, torch.zeros(2, dtype=torch.float64), trace, samples=40,
                       noise=0.5, seed=3)
    two = fixed_points(machine, torch.zeros(2, dtype=torch.float64), trace, samples=40,
                       noise=0.5, seed=3)
    np.testing.assert_array_equal(one.state.values, two.state.values)
    assert one.attrs["initial_states"] == 40


def test_state_pytrees_and_state_vectors_give_the_same_points():
    machine = Cubic()
    starts = _starts(60)
    state = {"h": starts[:, :1], "k": starts[:, 1:]}
    a = fixed_points(machine, torch.zeros(2, dtype=torch.float64), starts)
    b = fixed_points(machine, torch.zeros(2, dtype=torch.float64), state)
    # another code path (a pytree split from the vector): float64 round-off, the points O(1)
    np.testing.assert_allclose(a.state.values, b.state.values, rtol=1e-12, atol=1e-12)


def test_uniqueness_tolerance_outliers_and_max_q():
    machine = Cubic()
    merged = fixed_points(machine, torch.zeros(2, dtype=torch.float64), _starts(), tol_unique=3)
    assert merged.sizes["point"] == 1 and merged["count"].values.tolist() == [300]
    slow = fixed_points(machine, torch.zeros(2, dtype=torch.float64), _starts(50), max_iters=1,
                        max_q=1e-30)
    assert slow.sizes["point"] == 0 and slow.attrs["dropped_fast"] == 50
    # five starts within 1e-3 of each other travel ~0.3 to a corner: 100× their spread
    cluster = torch.full((5, 2), 0.9, dtype=torch.float64) + 1e-3 * _starts(5)
    far = fixed_points(machine, torch.zeros(2, dtype=torch.float64), cluster)
    assert far.attrs["dropped_outliers"] == 5 and far.sizes["point"] == 0
    kept = fixed_points(machine, torch.zeros(2, dtype=torch.float64), cluster,
                        outlier_distance=None)
    assert kept.attrs["dropped_outliers"] == 0 and kept["count"].values.tolist() == [5]


class _Detached(Cubic):
    def step(self, x, state):
        y, new = super().step(x, state)
        return y, {k: v.detach() for k, v in new.items()}


def test_a_step_without_gradients_is_a_clear_error():
    with pytest.raises(TypeError, match="not differentiable"):
        fixed_points(_Detached(), torch.zeros(2, dtype=torch.float64), _starts(5))
    with pytest.raises(TypeError, match="not differentiable"):
        fixed_points(_Detached(), torch.zeros(2, dtype=torch.float64), _starts(5),
                     method="adam")


def test_bad_arguments_name_themselves():
    machine = Cubic()
    with pytest.raises(ValueError, match="method"):
        fixed_points(machine, torch.zeros(2), _starts(5), method="lbfgs")
    with pytest.raises(ValueError, match="initial_states"):
        fixed_points(machine, torch.zeros(2), torch.zeros(5, 3))


class Linear:
    """s' = M s + B x, y = C s: the Jacobian is M everywhere, the output Jacobian C."""

    def __init__(self):
        self.m = torch.tensor([[0.9, 0.2, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, -0.8]],
                              dtype=torch.float64)
        self.c = torch.tensor([[1.0, 0.0, 2.0]], dtype=torch.float64)

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 3, dtype=torch.float64)

    def step(self, x, state):
        return state @ self.c.T, state @ self.m.T + x


def test_linearise_gives_the_linear_map_eigenvalues_and_time_constants():
    machine = Linear()
    trace = rollout(machine, torch.randn(2, 5, 3, dtype=torch.float64))
    ds = linearise(machine, trace, keep_jacobians=True)
    assert ds.eigenvalues.dims == ("episode", "t", "mode") and ds.sizes["mode"] == 3
    np.testing.assert_allclose(ds.magnitude.values, np.broadcast_to([0.9, 0.8, 0.5], (2, 5, 3)),
                               atol=1e-12)
    np.testing.assert_allclose(ds.timescale.sel(mode=0).values, -1 / np.log(0.9))
    np.testing.assert_allclose(ds.jacobian.values[1, 3], machine.m.numpy(), atol=1e-12)
    np.testing.assert_allclose(ds.output_jacobian.values[0, 0], machine.c.numpy(), atol=1e-12)
    np.testing.assert_allclose(ds.output_gain.values, np.sqrt(5.0))
    top = linearise(machine, trace, modes=1)
    assert top.sizes["mode"] == 1 and "jacobian" not in top


class RootStep(Linear):
    """s' = √|s| + x: the derivative is infinite at s = 0, the first step's state."""

    def step(self, x, state):
        return state @ self.c.T, state.abs().sqrt() + x


def test_linearise_reports_undefined_derivatives_as_nan_with_a_warning():
    trace = rollout(RootStep(), torch.ones(2, 4, 3, dtype=torch.float64))
    with pytest.warns(RuntimeWarning, match="not finite at 2 of 8 steps"):
        ds = linearise(RootStep(), trace)
    assert bool(np.isnan(ds.magnitude.isel(t=0)).all())
    assert bool(np.isnan(ds.output_gain.isel(t=0)).all())
    # from t = 2 the state is 1, then 2, ...: J = diag(1 / (2 √s))
    np.testing.assert_allclose(ds.magnitude.isel(t=1).values, 0.5)
    np.testing.assert_allclose(ds.output_gain.isel(t=1).values, np.sqrt(5.0))


def test_linearise_bayesian_regression_from_the_empty_state():
    """Λ_t = Λ_{t-1} + x xᵀ: the precision block of ∂s_t/∂s_{t-1} is the identity on
    symmetric Λ (the state vector is symmetrised: P = (I + swap) / 2), also at
    s_0 = (σ²/α² I, 0), where Λ's eigenvalues coincide (eigh's derivative is undefined)."""
    from trajprobe.reference_models import BayesianLinearRegression

    bayes = BayesianLinearRegression(2, 2, prior_scale=1.0, noise_std=0.1)
    inputs = torch.randn(3, 6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ds = linearise(bayes, rollout(bayes, inputs), keep_jacobians=True)
    assert bool(np.isfinite(ds.magnitude).all())
    swap = np.eye(4)[[0, 2, 1, 3]]  # Λ_ij ↔ Λ_ji in the row-major flattening
    np.testing.assert_allclose(ds.jacobian.values[..., :4, :4],
                               np.broadcast_to((np.eye(4) + swap) / 2, (3, 6, 4, 4)), atol=1e-9)


def test_time_constants_of_special_magnitudes():
    tau = time_constants(np.array([1.0, 0.0, np.exp(-0.5), 2.0]))
    assert tau[0] == np.inf and tau[1] == 0 and np.isclose(tau[2], 2.0) and tau[3] < 0


def test_jacobians_of_an_lstm_match_finite_differences():
    from trajprobe.apps.models import RabinowitzLSTM

    machine = RabinowitzLSTM(3, 2, 5, seed=0).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    s = torch.randn(4, 10, dtype=torch.float64) * 0.5
    _, jac, jac_y = jacobians(machine, x, s)
    eps = 1e-6
    for k in range(10):
        ds = torch.zeros(10, dtype=torch.float64)
        ds[k] = eps
        from trajprobe.linearised import vector_step

        y_plus, f_plus = vector_step(machine, x, s + ds)
        y_minus, f_minus = vector_step(machine, x, s - ds)
        np.testing.assert_allclose(jac[:, :, k], ((f_plus - f_minus) / (2 * eps)).detach(),
                                   atol=1e-8)
        np.testing.assert_allclose(jac_y[:, :, k], ((y_plus - y_minus) / (2 * eps)).detach(),
                                   atol=1e-8)



def _gru_pair():
    """A torch GRU and the same GRU in JAX (weights copied), wrapped for gradients."""
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    from trajprobe.adapters.jax import JaxMachine, differentiable
    from trajprobe.apps.recipes.flipflop import FlipFlopGRU

    torch_gru = FlipFlopGRU(3, 3, 8, seed=4)
    with torch.no_grad():
        torch_gru.gru.weight_hh_l0.mul_(2.0)
    w = {k: jnp.asarray(v.detach().numpy()) for k, v in torch_gru.state_dict().items()}

    def step(p, x, h):  # torch's nn.GRU equations, gates ordered [r, z, n]
        gi = x @ p["gru.weight_ih_l0"].T + p["gru.bias_ih_l0"]
        gh = h @ p["gru.weight_hh_l0"].T + p["gru.bias_hh_l0"]
        (ir, iz, i_n), (hr, hz, hn) = jnp.split(gi, 3, 1), jnp.split(gh, 3, 1)
        r, z = jax.nn.sigmoid(ir + hr), jax.nn.sigmoid(iz + hz)
        new = (1 - z) * jnp.tanh(i_n + r * hn) + z * h
        return new @ p["readout.weight"].T + p["readout.bias"], new

    jax_gru = JaxMachine(step, w, lambda p, b: jnp.zeros((b, 8), jnp.float32))
    return torch_gru, jax_gru, differentiable(jax_gru)


@pytest.mark.jax
def test_the_same_gru_in_torch_and_jax_has_the_same_jacobians_and_fixed_point():
    torch_gru, jax_gru, jax_diff = _gru_pair()
    starts = torch.rand(100, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with pytest.raises(TypeError, match="differentiable"):
        fixed_points(jax_gru, torch.zeros(3), starts)
    ours = fixed_points(torch_gru, torch.zeros(3), starts, max_q=1e-9)
    theirs = fixed_points(jax_diff, torch.zeros(3), starts, max_q=1e-9)
    assert ours.sizes["point"] == theirs.sizes["point"] == 1
    np.testing.assert_allclose(theirs.state.values, ours.state.values, atol=1e-5)
    np.testing.assert_allclose(theirs.eigenvalues.values, ours.eigenvalues.values, atol=1e-4)
    x, s = torch.randn(5, 3), starts[:5]
    _, jac_torch, jac_y_torch = jacobians(torch_gru, x, s)
    _, jac_jax, jac_y_jax = jacobians(jax_diff, x, s)
    np.testing.assert_allclose(jac_jax, jac_torch, atol=1e-5)
    np.testing.assert_allclose(jac_y_jax, jac_y_torch, atol=1e-5)


@pytest.mark.jax
def test_a_jax_cubic_has_the_nine_closed_form_fixed_points():
    jnp = pytest.importorskip("jax.numpy")
    from trajprobe.adapters.jax import JaxMachine, differentiable

    cubic = Cubic()
    rot = jnp.asarray(cubic.rotation.numpy(), dtype=jnp.float32)

    def step(p, x, s):
        u = s["h"] @ p + x
        new = (u + A * (u - u**3)) @ p.T
        return new.sum(1, keepdims=True), {"h": new}

    machine = differentiable(JaxMachine(step, rot, {"h": jnp.zeros(2, jnp.float32)}))
    ds = fixed_points(machine, torch.zeros(2), _starts().float())
    points, slopes = _expected(cubic)
    assert ds.sizes["point"] == 9
    at = _match(ds.state.values, points)
    np.testing.assert_allclose(ds.state.values[at], points, atol=1e-5)
    np.testing.assert_array_equal(ds.stable.values[at], (slopes < 1).all(1))


def test_plots_mark_points_by_stability_and_spectra_against_the_unit_circle():
    from matplotlib.figure import Figure

    from trajprobe.plots import plot_eigenvalue_spectra, plot_fixed_points, plot_time_constants

    machine = Cubic()
    ds = fixed_points(machine, torch.zeros(2, dtype=torch.float64), _starts(100))
    trace = rollout(machine, torch.zeros(3, 6, 2, dtype=torch.float64),
                    initial_state={"h": _starts(3)[:, :1], "k": _starts(3)[:, 1:]})
    fig = Figure()
    ax = plot_fixed_points(ds, trace.to_dataset(machine).states, components=2,
                           ax=fig.add_subplot(1, 3, 1))
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["stable (4)", "unstable (5)"] and len(ax.lines) == 3
    ax = plot_eigenvalue_spectra(ds, ax=fig.add_subplot(1, 3, 2))
    assert len(ax.collections) == 4 and ax.get_title() == "∂F/∂s at 4 stable fixed points"
    ax = plot_time_constants(linearise(machine, trace), modes=2, ax=fig.add_subplot(1, 3, 3))
    assert len(ax.lines) == 2
    with pytest.raises(ValueError, match="trajectories"):
        plot_fixed_points(ds, np.zeros((2, 3, 5)), components=2, ax=fig.add_subplot(2, 2, 4))


def test_chunked_jacobians_and_newton_steps_give_the_same_answers(monkeypatch):
    import trajprobe.linearised as lin

    machine = Cubic()
    whole = fixed_points(machine, torch.zeros(2, dtype=torch.float64), _starts(40))
    monkeypatch.setattr(lin, "_CHUNK_ELEMENTS", 3 * 4)  # three states per chunk
    assert lin.rows_per_chunk(2) == 3
    chunked = fixed_points(machine, torch.zeros(2, dtype=torch.float64), _starts(40))
    # other batch shapes may take other kernels (vectorised or not): float64 round-off of
    # O(1) numbers, 1e-12 relative (a Newton step does not amplify it at a converged point)
    np.testing.assert_allclose(chunked.state.values, whole.state.values, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(chunked.jacobian.values, whole.jacobian.values, rtol=1e-12,
                               atol=1e-12)


class UncoupledTanh:
    """A two-unit tanh RNN s' = tanh(W s + b) with W = diag(2, 3): its units are uncoupled.

    Each unit's fixed points are the three roots of u = tanh(w u + b) (found here by
    bisection), so the nine fixed points are their product: four stable corners (both
    |w sech²| < 1), the four edge saddles and the unstable centre.
    """

    w = torch.tensor([2.0, 3.0], dtype=torch.float64)
    b = torch.tensor([0.1, -0.05], dtype=torch.float64)

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 2, dtype=torch.float64)

    def step(self, x, state):
        new = torch.tanh(state * self.w + self.b + x)
        return new, new


def _tanh_roots(w: float, b: float) -> np.ndarray:
    grid = np.linspace(-1.5, 1.5, 3001)
    f = lambda u: np.tanh(w * u + b) - u  # noqa: E731
    roots = []
    for lo, hi in itertools.pairwise(grid):
        if f(lo) * f(hi) <= 0:
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if f(lo) * f(mid) > 0 else (lo, mid)
            roots.append(0.5 * (lo + hi))
    return np.array(roots)


def test_saddles_between_attractors_are_found_from_states_near_the_attractors_only():
    machine = UncoupledTanh()
    roots = [_tanh_roots(float(w), float(b)) for w, b in zip(machine.w, machine.b, strict=True)]
    assert [len(r) for r in roots] == [3, 3]
    expected = np.array(list(itertools.product(*roots)))
    slopes = np.stack([machine.w.numpy()[i] / np.cosh(machine.w.numpy()[i] * expected[:, i]
                                                       + machine.b.numpy()[i]) ** 2
                       for i in range(2)], 1)
    corners = expected[(np.abs(slopes) < 1).all(1)]
    generator = torch.Generator().manual_seed(0)
    starts = torch.as_tensor(corners).repeat(10, 1)
    starts = starts + 0.05 * torch.randn(starts.shape, generator=generator, dtype=torch.float64)
    ds = fixed_points(machine, torch.zeros(2, dtype=torch.float64), starts)
    # every start ends at its corner; the five unstable points lie near none of them and
    # are reached from the midpoints between the corners
    assert ds.sizes["point"] == 9 and int(ds.stable.sum()) == 4
    at = _match(ds.state.values, expected)
    assert len(set(at)) == 9
    # q < tol_q = 1e-12 stops a state within ~1e-6 of its point
    np.testing.assert_allclose(ds.state.values[at], expected, atol=1e-5)
    assert float(ds.speed.max()) < 1e-12
    np.testing.assert_allclose(np.sort(ds.eigenvalues.values[at].real, 1),
                               np.sort(slopes, 1), atol=1e-4)
    np.testing.assert_array_equal(ds.stable.values[at], (np.abs(slopes) < 1).all(1))
    np.testing.assert_array_equal(ds["count"].values[at] > 0, (np.abs(slopes) < 1).all(1))
    assert int(ds["count"].sum()) == 40 and ds.attrs["bridge_starts"] == 6
    assert ds.attrs["bridge_points"] == 5
    alone = fixed_points(machine, torch.zeros(2, dtype=torch.float64), starts, bridges=False)
    assert alone.sizes["point"] == 4 and bool(alone.stable.all())


class Still:
    """s' = s: every state is a fixed point (q = 0), so the points are the initial states."""

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 16, dtype=torch.float64)

    def step(self, x, state):
        return state, state * 1.0


def test_points_are_one_within_tol_unique_in_euclidean_distance():
    p = torch.linspace(-0.5, 0.5, 16, dtype=torch.float64)
    near = torch.zeros(16, dtype=torch.float64)
    near[:4] = 6e-4  # 1.2e-3 apart, though no unit differs by 1e-3 (FixedPointFinder: two)
    starts = torch.stack([p, p + 1e-9, p + near, p - 1e-3, p - 1e-3 + 1e-9])
    ds = fixed_points(Still(), torch.zeros(1, dtype=torch.float64), starts)
    assert ds.sizes["point"] == 3 and ds.attrs["iterations"] == 0
    at = _match(ds.state.values, np.stack([p, p + near, p - 1e-3]))
    assert sorted(at) == [0, 1, 2]
    assert ds["count"].values[at].tolist() == [2, 1, 2]
    assert ds.attrs["bridge_starts"] == 0  # |λ| = 1: no stable points to bridge
