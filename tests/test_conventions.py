"""One of each (issue 24): one mean ± s.e., one driver for histories, one calling convention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

import trajprobe
from trajprobe import histories, interact, rollout
from trajprobe.dynamics import mean_sem
from trajprobe.task_protocol import is_environment, output_size
from trajprobe.tasks import ContextualBandit, Episodes, FourierRegression, LinearRegression
from trajprobe.traces import Interaction

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


# --- histories: one driver, the same trace as rollout / interact ------------------------------


def _lstm(input_size: int, output_size: int):
    from trajprobe.adapters import wrap

    torch.manual_seed(0)
    return wrap(torch.nn.LSTM(input_size, 8, batch_first=True), torch.nn.Linear(8, output_size))


def test_histories_of_an_open_loop_task_is_sample_then_rollout():
    task = LinearRegression(2)
    machine = _lstm(task.input_size, task.output_size)
    episodes, trace = histories(machine, task, episodes=3, steps=5, seed=7)
    direct = task.sample(3, 5, seed=7)
    by_hand = rollout(machine, direct.inputs)
    assert torch.equal(episodes.inputs, direct.inputs)
    assert torch.equal(episodes.targets, direct.targets)
    assert torch.equal(trace.outputs, by_hand.outputs)
    assert torch.equal(trace.states.hidden, by_hand.states.hidden)
    # given episodes are rolled out as they are
    again, trace2 = histories(machine, task, episodes=direct)
    assert again.params.keys() == direct.params.keys() and torch.equal(trace2.outputs,
                                                                       by_hand.outputs)


def test_histories_of_an_environment_is_interact_and_a_trace_replays():
    task = ContextualBandit(n_contexts=2, n_actions=3)
    machine = _lstm(task.input_size, task.n_actions)
    episodes, trace = histories(machine, task, episodes=4, steps=6, seed=3)
    direct = interact(machine, task, 4, 6, seed=3)
    assert episodes.targets is None
    for got, want in ((trace.inputs, direct.inputs), (trace.outputs, direct.outputs),
                      (trace.actions, direct.actions), (trace.rewards, direct.rewards),
                      (trace.contexts, direct.contexts), (episodes.inputs, direct.inputs)):
        assert torch.equal(got, want)
    assert torch.equal(episodes.params["correct"], direct.params["correct"])
    other = _lstm(task.input_size, task.n_actions)
    _, replayed = histories(other, task, episodes=direct)
    assert torch.equal(replayed.outputs, rollout(other, direct.inputs).outputs)
    assert torch.equal(replayed.actions, direct.actions)


def test_histories_refuses_what_is_not_a_task():
    class Half:
        input_size = 2

        def sample(self, *args, **kwargs):
            raise AssertionError("not called")

    with pytest.raises(TypeError, match="closest to an open-loop task but lacks output_size"):
        histories(_lstm(2, 1), Half(), episodes=2, steps=3)
    with pytest.raises(ValueError, match=r"expected inputs \[E, T, 4\], got \(2, 3, 5\)"):
        histories(_lstm(2, 1), LinearRegression(2), episodes=Episodes(torch.zeros(2, 3, 5), None))


def test_is_environment_and_output_size():
    assert not is_environment(LinearRegression(2)) and is_environment(ContextualBandit())
    assert output_size(ContextualBandit(n_actions=4)) == 4
    assert output_size(LinearRegression(2, 3)) == LinearRegression(2, 3).output_size


# --- one calling convention: the old names warn and give identical results -------------------


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    xr.testing.assert_identical(a, b)


def _messages(caught) -> set[str]:
    return {str(w.message) for w in caught}


def test_effective_spectra_old_names_warn_and_agree():
    task = LinearRegression(2)
    machine = _lstm(task.input_size, task.output_size)
    new = trajprobe.effective_spectra(machine, task, episodes=4, steps=3, probes=8, seed=2)
    with pytest.warns(DeprecationWarning) as caught:
        old = trajprobe.effective_spectra(machine, task, n_episodes=4, n_steps=3, n_probes=8,
                                          seed=2)
    _same(new, old)
    assert _messages(caught) == {f"effective_spectra: n_{n}= is deprecated and will be removed "
                                 f"in the next release; use {n}= instead"
                                 for n in ("episodes", "steps", "probes")}
    with pytest.raises(TypeError, match=r"got both n_steps= \(deprecated\) and steps="):
        trajprobe.effective_spectra(machine, task, steps=3, n_steps=3)


def test_fourier_spectra_old_names_warn_and_agree():
    task = FourierRegression()
    machine = _lstm(task.input_size, task.output_size)
    new = trajprobe.fourier_spectra(machine, task, episodes=3, steps=4, seed=1)
    with pytest.warns(DeprecationWarning) as caught:
        old = trajprobe.fourier_spectra(machine, task, n_episodes=3, n_steps=4, seed=1)
    _same(new, old)
    assert {m.split(" is")[0] for m in _messages(caught)} == {
        "fourier_spectra: n_episodes=", "fourier_spectra: n_steps="}


def test_interact_and_context_dynamics_old_names_warn_and_agree():
    task = ContextualBandit(n_contexts=2, n_actions=3)
    machine = _lstm(task.input_size, task.n_actions)
    new = interact(machine, task, episodes=3, steps=5)  # seed defaults to 0
    with pytest.warns(DeprecationWarning) as caught:
        old = interact(machine, task, n_episodes=3, n_steps=5, seed=0)
    assert {m.split(" is")[0] for m in _messages(caught)} == {"interact: n_episodes=",
                                                              "interact: n_steps="}
    assert torch.equal(new.actions, old.actions) and torch.equal(new.outputs, old.outputs)
    with pytest.warns(DeprecationWarning, match="Interaction: n_steps= is deprecated"):
        Interaction(machine, task, 3, n_steps=5)
    replayed = trajprobe.context_dynamics(machine, task, episodes=new)
    with pytest.warns(DeprecationWarning, match="context_dynamics: trace= is deprecated.*"
                      "use episodes= instead"):
        _same(replayed, trajprobe.context_dynamics(machine, task, trace=new))
    assert replayed.attrs["replayed"] == 1


def test_mean_sem_skipna_drops_non_finite_values_position_by_position():
    da = xr.DataArray([[1.0, 3.0, np.nan], [np.inf, 2.0, 2.0], [np.nan, np.nan, np.nan]],
                      dims=("t", "episode"))
    mean, sem = mean_sem(da, "episode", skipna=True)
    np.testing.assert_allclose(mean.values, [2.0, 2.0, np.nan])
    np.testing.assert_allclose(sem.values, [1.0, 0.0, np.nan])  # s.d. / sqrt(2); n = 2; n = 0
    assert mean_sem([np.nan, 4.0, np.inf, 2.0], skipna=True) == (3.0, 1.0)
    assert all(np.isnan(v) for v in mean_sem([np.nan, np.inf], skipna=True))
