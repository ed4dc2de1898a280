"""Thresholds, time ratios, asymptotes, context ordering and closed-loop rollouts."""

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from trajprobe import interact, rollout
from trajprobe.adapters import wrap
from trajprobe.dynamics import (
    asymptote,
    context_confusion,
    mean_sem,
    most_confused_pair,
    normalise_to_asymptote,
    order_contexts,
    steps_to_threshold,
    summarise,
    time_ratio,
)
from trajprobe.tasks import ContextualBandit, LinearRegression


def curves():
    """Three modes over t = 1..5: fast, slow, and one that never passes 0.5."""
    q = np.array([
        [0.0, 0.6, 0.9, 0.95, 1.0],
        [0.0, 0.1, 0.3, 0.6, 0.95],
        [0.0, 0.1, 0.2, 0.3, 0.4],
    ]).T
    return xr.DataArray(q, dims=("t", "mode"), coords={"t": np.arange(1, 6), "mode": [1, 2, 3]})


def test_steps_to_threshold_first_crossing_and_never():
    q = curves()
    np.testing.assert_array_equal(steps_to_threshold(q, 0.5).values, [2.0, 4.0, np.inf])
    assert np.isnan(steps_to_threshold(q, 0.5, never=np.nan).values[2])
    many = steps_to_threshold(q, [0.5, 0.9])
    assert many.dims == ("mode", "threshold")
    np.testing.assert_array_equal(many.sel(threshold=0.9).values, [4.0, 5.0, np.inf])
    # strict inequality: q = 0.9 exactly is not > 0.9
    np.testing.assert_array_equal(steps_to_threshold(q, 0.95).values, [5.0, np.inf, np.inf])
    # NaNs never count as crossings
    assert steps_to_threshold(q.where(q.t != 2), 0.5).values[0] == 3.0
    with pytest.raises(ValueError, match="expected a dimension 'time'"):
        steps_to_threshold(q, 0.5, dim="time")


def test_interpolated_crossing_of_a_planted_linear_ramp():
    """q(t) = 0.1 t on t = 1..10 crosses c = 0.45 at t = 4.5 exactly; the integer rule says 5."""
    t = np.arange(1, 11)
    ramp = xr.DataArray(0.1 * t, dims="t", coords={"t": t})
    assert float(steps_to_threshold(ramp, 0.45)) == 5.0
    assert float(steps_to_threshold(ramp, 0.45, interpolate=True)) == pytest.approx(4.5)
    # on the integer rule's curve: q(4) = 0.4 <= 0.45 < q(5) = 0.5, the same step pair
    many = steps_to_threshold(ramp, [0.05, 0.45, 0.72, 2.0], interpolate=True)
    np.testing.assert_allclose(many.values, [1.0, 4.5, 7.2, np.inf])
    # a log-spaced schedule: linear in the coordinate values, 10 + (0.5 - 0.2) / 0.6 · 90
    sparse = xr.DataArray([0.0, 0.2, 0.8], dims="t", coords={"t": [1, 10, 100]})
    assert float(steps_to_threshold(sparse, 0.5, interpolate=True)) == pytest.approx(55.0)
    # ratios of interpolated times: modes crossing within one step are not 1 or 4/3
    two = xr.DataArray(np.stack([0.3 * t, 0.25 * t], -1), dims=("t", "mode"),
                       coords={"t": t, "mode": [1, 2]})
    assert float(steps_to_threshold(two, 0.8).pipe(time_ratio).isel(mode=1)) == 4 / 3
    assert float(steps_to_threshold(two, 0.8, interpolate=True).pipe(time_ratio).isel(mode=1)
                 ) == pytest.approx((0.8 / 0.25) / (0.8 / 0.3))


def test_interpolated_crossing_edges_keep_their_meanings():
    t = np.arange(1, 6)
    q = xr.DataArray([[0.6, 0.7, 0.8, 0.9, 1.0],     # above already at t = 1: 1
                      [0.0, 0.1, 0.2, 0.3, 0.4],     # never: inf (or ``never``)
                      [0.0, np.nan, np.nan, 0.9, 1.0],  # NaNs skipped: 1 + 0.5 / 0.9 · 3
                      [np.nan, 0.7, 0.8, 0.9, 1.0],  # first known sample above: 2
                      [-np.inf, 0.0, 0.0, 0.9, 1.0],  # 0 -> 0.9 between t = 3 and 4
                      [0.0, -np.inf, 0.9, 1.0, 1.0],  # -inf before the crossing: integer 3
                      [0.5, 0.5, 0.5, 0.5, 0.5]],    # q = c exactly never exceeds it
                     dims=("mode", "t"), coords={"t": t})
    steps = steps_to_threshold(q, 0.5, interpolate=True)
    np.testing.assert_allclose(steps.values,
                               [1.0, np.inf, 1 + 0.5 / 0.9 * 3, 2.0, 3 + 0.5 / 0.9, 3.0, np.inf])
    assert np.isnan(steps_to_threshold(q, 0.5, never=np.nan, interpolate=True).values[[1, 6]]
                    ).all()
    # the integer rule is unchanged and interpolation never moves a crossing later
    integer = steps_to_threshold(q, 0.5)
    np.testing.assert_array_equal(integer.values, [1, np.inf, 4, 2, 4, 3, np.inf])
    assert (steps.values[np.isfinite(integer.values)]
            <= integer.values[np.isfinite(integer.values)]).all()
    assert "interpolated" in steps.attrs["long_name"]


def test_time_ratio_handles_curves_that_never_cross():
    steps = steps_to_threshold(curves(), 0.5)
    ratio = time_ratio(steps)
    np.testing.assert_array_equal(ratio.values, [1.0, 2.0, np.inf])
    undetermined = time_ratio(steps, reference=2)
    assert np.isnan(undetermined.values).all()
    with pytest.raises(ValueError, match="reference"):
        time_ratio(steps, reference=3)


def test_asymptote_normalised_thresholds():
    q = curves()
    np.testing.assert_allclose(asymptote(q).values, [1.0, 0.95, 0.4])
    np.testing.assert_allclose(asymptote(q, window=2).values, [0.975, 0.775, 0.35])
    norm = normalise_to_asymptote(q)
    np.testing.assert_allclose(norm.isel(t=-1).values, 1.0)
    # the third mode reaches half its own asymptote (0.2) at t = 4 (0.3 > 0.2)
    np.testing.assert_array_equal(steps_to_threshold(norm, 0.5).values, [2.0, 4.0, 4.0])


def test_order_contexts_by_time_averaged_return_with_stable_ties():
    q = np.zeros((2, 3, 4))
    q[0] = [[0.1, 0.5, 0.2, 0.2]] * 3  # episode 0: context 1, then 2 and 3 (tie), then 0
    q[1] = [[0.9, 0.1, 0.3, 0.6]] * 3
    da = xr.DataArray(q, dims=("episode", "t", "context"),
                      coords={"t": [1, 2, 3], "context": [0, 1, 2, 3]})
    ordered, order = order_contexts(da)
    np.testing.assert_array_equal(order.values, [[1, 2, 3, 0], [0, 3, 2, 1]])
    assert ordered.dims == ("episode", "t", "rank")
    np.testing.assert_allclose(ordered.isel(episode=1, t=0).values, [0.9, 0.6, 0.3, 0.1])
    assert list(ordered["rank"].values) == [1, 2, 3, 4]


def test_context_confusion_averages_over_the_episodes_where_the_correct_actions_differ():
    policy = np.array([
        [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]],  # episode 0, a* = 0 1 2
        [[0.5, 0.4, 0.1], [0.5, 0.4, 0.1], [0.3, 0.2, 0.5]],  # episode 1, a* = 0 0 1
    ])
    correct = xr.DataArray([[0, 1, 2], [0, 0, 1]], dims=("episode", "context"))
    over_t = xr.DataArray(np.stack([policy, policy[:, :, ::-1]], 1),
                          dims=("episode", "t", "context", "action"))
    m = context_confusion(over_t, correct)
    assert m.dims == ("t", "context", "other_context")
    # e.g. M[0, 2] = mean(π_0(a=2 | 0), π_1(a=1 | 0)) = (0.1 + 0.4) / 2; M[0, 1] and M[1, 0]
    # from episode 0 alone (a*(0) = a*(1) in episode 1)
    expected = [[np.nan, 0.3, 0.25], [0.2, np.nan, 0.25], [0.2, 0.2, np.nan]]
    np.testing.assert_allclose(m.isel(t=0).values, expected)
    np.testing.assert_allclose(m.isel(t=1, context=0).values, [np.nan, 0.3, 0.5])
    with pytest.raises(ValueError, match="correct: expected dims"):
        context_confusion(over_t, correct.expand_dims(t=2))
    with pytest.raises(ValueError, match="policy: expected a dimension 'action'"):
        context_confusion(over_t.rename(action="a"), correct)


def test_most_confused_pair_of_a_planted_merge():
    """Contexts 1 and 4 share one memory (M[1, 4] = 0.4, M[4, 1] = 0.6): ½(0.4 + 0.6)."""
    m = np.full((5, 5), 0.1)
    np.fill_diagonal(m, np.nan)
    m[1, 4], m[4, 1], m[0, 2] = 0.4, 0.6, 0.45
    da = xr.DataArray(m, dims=("context", "other_context"))
    assert most_confused_pair(da) == (1, 4, 0.5)
    with pytest.raises(ValueError, match="m: expected dims"):
        most_confused_pair(da.expand_dims(seed=2))


def test_summarise_mean_and_standard_error():
    data = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
    da = xr.DataArray(data, dims=("episode", "t"))
    s = summarise(da)
    np.testing.assert_allclose(s["mean"].values, [3.0, 6.0])
    np.testing.assert_allclose(s["sem"].values, data.std(0, ddof=1) / np.sqrt(3))
    np.testing.assert_array_equal(s["n"].values, [3, 3])


def test_summarise_is_mean_sem_with_its_rules_for_nan_and_inf():
    """Column 0 has a NaN, column 1 an inf, column 2 one finite value, column 3 none."""
    data = np.array([[1.0, 1.0, np.nan, np.nan],
                     [3.0, np.inf, 4.0, np.inf],
                     [np.nan, 5.0, np.nan, -np.inf]])
    da = xr.DataArray(data, dims=("episode", "mode"))
    s = summarise(da)  # non-finite values dropped, n counts what is left
    np.testing.assert_array_equal(s["n"].values, [2, 2, 1, 0])
    np.testing.assert_allclose(s["mean"].values, [2.0, 3.0, 4.0, np.nan])
    np.testing.assert_allclose(s["sem"].values, [1.0, 2.0, np.nan, np.nan])
    kept = summarise(da, skipna=False)  # they propagate: NaN stays NaN, inf gives mean inf
    np.testing.assert_array_equal(kept["n"].values, [3, 3, 3, 3])
    np.testing.assert_array_equal(kept["mean"].values, [np.nan, np.inf, np.nan, np.nan])
    assert np.isnan(kept["sem"].values).all()
    for skipna in (True, False):  # the same numbers as mean_sem, by construction
        mean, sem = mean_sem(da, "episode", skipna=skipna)
        ours = summarise(da, skipna=skipna)
        np.testing.assert_allclose(ours["mean"].values, mean.values)
        np.testing.assert_allclose(ours["sem"].values, sem.values)


# --- closed loop ---------------------------------------------------------------------------


def bandit_lstm(seed=0):
    torch.manual_seed(seed)
    return wrap(nn.LSTM(11, 16), readout=nn.Linear(16, 5))


def test_interact_records_a_stream_that_replays_to_the_same_states():
    task = ContextualBandit()
    machine = bandit_lstm()
    trace = interact(machine, task, 6, 12, seed=3)
    assert trace.inputs.shape == (6, 12, 11) and trace.outputs.shape == (6, 12, 5)
    assert trace.actions.shape == trace.rewards.shape == trace.contexts.shape == (6, 12)
    # inputs encode the stream: context c_t, previous action and reward
    for t in range(1, 12):
        expected = task.encode(trace.contexts[:, t], trace.actions[:, t - 1],
                               trace.rewards[:, t - 1])
        assert torch.equal(trace.inputs[:, t], expected)
    assert torch.equal(trace.inputs[:, 0], task.encode(trace.contexts[:, 0], None, None))
    replay = rollout(machine, trace.inputs)
    for a, b in zip(replay.states, trace.states, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(replay.outputs, trace.outputs)


def test_interact_same_seed_same_stream_and_other_machines_see_the_same_history():
    task = ContextualBandit(3, 4)
    a = interact(bandit_lstm_sized(3, 4, 0), task, 5, 10, seed=1)
    b = interact(bandit_lstm_sized(3, 4, 0), task, 5, 10, seed=1)
    c = interact(bandit_lstm_sized(3, 4, 0), task, 5, 10, seed=2)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.actions, b.actions)
    assert not torch.equal(a.inputs, c.inputs)
    other = bandit_lstm_sized(3, 4, 9)
    replay = rollout(other, a.inputs)
    assert torch.equal(replay.inputs, a.inputs)


def bandit_lstm_sized(n_contexts, n_actions, seed):
    torch.manual_seed(seed)
    return wrap(nn.LSTM(n_contexts + n_actions + 1, 8), readout=nn.Linear(8, n_actions))


def test_interact_samples_actions_from_the_policy():
    # a machine that always puts all mass on action 2 only ever takes action 2
    task = ContextualBandit(2, 3, p_correct=1.0, p_incorrect=0.0)

    class Always2:
        def initial_state(self, b):
            return torch.zeros(b, 1)

        def step(self, x, s):
            return torch.tensor([-1e9, -1e9, 0.0]).expand(x.shape[0], 3), s + 1

    trace = interact(Always2(), task, 40, 6, seed=0)
    assert bool((trace.actions == 2).all())
    # deterministic rewards: 1 exactly when action 2 is the shown context's correct action
    hits = trace.params["correct"].gather(1, trace.contexts) == 2
    assert torch.equal(trace.rewards, hits.to(trace.rewards.dtype))
    assert bool(hits.any()) and not bool(hits.all())


def test_interact_errors():
    with pytest.raises(TypeError, match="task: expected an Environment"):
        interact(bandit_lstm(), LinearRegression(2), 2, 2, seed=0)
    with pytest.raises(ValueError, match="steps: expected a positive int, got 0"):
        interact(bandit_lstm(), ContextualBandit(), 2, 0, seed=0)
    with pytest.raises(ValueError, match=r"policy: expected a categorical distribution"):
        interact(bandit_lstm_sized(5, 4, 0), ContextualBandit(5, 4), 2, 2, seed=0,
                    policy=lambda y: torch.distributions.Categorical(logits=y[:, :2]))
