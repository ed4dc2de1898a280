"""What a user's task or environment returns is checked where it enters (issue 27).

Each protocol method (``sample``, ``probe_inputs``, ``summarise``, ``sample_params``,
``contexts``, ``reward``, ``encode``) is made to misbehave in a subclass of a built-in task,
as a user's own task would, and the library must answer with a ``ValueError`` or
``TypeError`` that names the method, never a silent ``inf`` in a result or a torch or
xarray message. A property-based part (hypothesis) feeds random malformed outputs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import trajprobe
from trajprobe import task_checks as checks
from trajprobe.adapters import wrap
from trajprobe.tasks import BernoulliBandit, ContextualBandit, LinearRegression

TASK = LinearRegression(dim=2)
ENV = BernoulliBandit()
CONTEXTUAL = ContextualBandit(n_contexts=3, n_actions=3)


def _machine(input_size: int, output_size: int) -> nn.Module:
    torch.manual_seed(0)
    return wrap(nn.GRU(input_size, 6, batch_first=True), readout=nn.Linear(6, output_size))


def _measure(task, **kwargs):
    machine = _machine(task.input_size, checks_output_size(task))
    return trajprobe.measure(machine, task, episodes=3, steps=4, **kwargs)


def _interact(task):
    machine = _machine(task.input_size, task.n_actions)
    return trajprobe.interact(machine, task, 3, 4, seed=0)


def checks_output_size(task) -> int:
    return getattr(task, "output_size", None) or task.n_actions


def _subclass(base, method: str, fn):
    """A frozen-dataclass subclass of ``base`` whose ``method`` is ``fn(self, result, *args)``."""
    original = getattr(type(base), method)

    def replaced(self, *args, **kwargs):
        return fn(original(self, *args, **kwargs), *args)

    cls = dataclasses.make_dataclass(f"My{type(base).__name__}", [], bases=(type(base),),
                                     frozen=True, namespace={method: replaced})
    return cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init})


# ------------------------------------------------------------------- one case per fault

def _inf_reward(r, *args):
    return r.masked_fill(torch.arange(r.numel()) == 0, float("inf"))


FAULTS = {
    # environments: the closed loop
    "reward inf": (ENV, "reward", _inf_reward, ValueError,
                   r"MyBernoulliBandit\.reward returned non-finite rewards \(inf in 1 of"),
    "reward NaN": (ENV, "reward", lambda r, *a: r * float("nan"), ValueError,
                   r"reward returned non-finite rewards \(NaN"),
    "reward per arm": (ENV, "reward", lambda r, *a: r[:, None].repeat(1, 2), ValueError,
                       r"reward returned shape \[3, 2\], expected \[3\] .*one reward per row"),
    "reward as list": (ENV, "reward", lambda r, *a: r.tolist(), TypeError,
                       r"reward returned a list, expected a torch.Tensor \[3\]"),
    "reward [E, 1]": (ENV, "reward", lambda r, *a: r[:, None], ValueError,
                      r"reward returned shape \[3, 1\].*reward.reshape\(-1\)"),
    "encode too wide": (ENV, "encode", lambda x, *a: torch.cat([x, x], -1), ValueError,
                        r"encode returned shape \[3, 6\], expected \[3, 3\]"),
    "encode inf": (ENV, "encode", lambda x, *a: x + float("inf"), ValueError,
                   r"encode returned non-finite inputs"),
    "encode long": (ENV, "encode", lambda x, *a: x.long(), TypeError,
                    r"encode returned dtype torch.int64, expected a floating dtype"),
    "params without batch": (ENV, "sample_params", lambda p, *a: {k: v[0] for k, v in p.items()},
                             ValueError, r"sample_params returned params\['means'\] of shape "
                                         r"\[2\], expected \[3, \.\.\.\]"),
    "params a tensor": (ENV, "sample_params", lambda p, *a: p["means"], TypeError,
                        r"sample_params returned parameters as a tensor"),
    "contexts float": (CONTEXTUAL, "contexts", lambda c, *a: c.float(), TypeError,
                       r"contexts returned dtype torch.float32, expected integer"),
    "contexts out of range": (CONTEXTUAL, "contexts", lambda c, *a: c + 3, ValueError,
                              r"contexts returned indices from 3 to 5, expected 0..2"),
    "contexts transposed": (CONTEXTUAL, "contexts", lambda c, *a: c.t(), ValueError,
                            r"contexts returned shape \[4, 3\], expected \[3, 4\]"),
}


@pytest.mark.parametrize("case", list(FAULTS))
def test_a_faulty_environment_method_is_named(case):
    base, method, fn, kind, match = FAULTS[case]
    with pytest.raises(kind, match=match):
        _interact(_subclass(base, method, fn))


def test_measure_of_an_inf_reward_fails_instead_of_reporting_inf():
    task = _subclass(ENV, "reward", _inf_reward)
    with pytest.raises(ValueError, match=r"reward returned non-finite rewards"):
        _measure(task)


TASK_FAULTS = {
    "sample not Episodes": (TASK, "sample", lambda e, *a: e.inputs, TypeError,
                            r"sample returned a tensor .*, expected trajprobe.tasks.Episodes"),
    "sample too few steps": (TASK, "sample",
                             lambda e, *a: dataclasses.replace(e, inputs=e.inputs[:, :2]),
                             ValueError, r"sample returned shape \[3, 2, 4\], expected inputs "
                                         r"\[3, 4, 4\]"),
    "sample NaN": (TASK, "sample", lambda e, *a: dataclasses.replace(e, inputs=e.inputs * np.nan),
                   ValueError, r"sample returned non-finite inputs \(NaN"),
    "probe_inputs missing N": (TASK, "probe_inputs", lambda p, *a: p[:, :, 0], ValueError,
                               r"probe_inputs returned shape \[3, 4, 4\], expected "
                               r"\[3, 4, 7, 4\]"),
    "probe_inputs inf": (TASK, "probe_inputs", lambda p, *a: p / 0, ValueError,
                         r"probe_inputs returned non-finite probe inputs"),
    "probe_inputs wrong N": (TASK, "probe_inputs", lambda p, *a: p[:, :, :5], ValueError,
                             r"probe_inputs returned shape \[3, 4, 5, 4\], "
                             r"expected \[3, 4, 7, 4\]"),
    "summarise a DataArray": (TASK, "summarise", lambda ds, *a: ds[next(iter(ds.data_vars))],
                              TypeError, r"summarise returned an xarray.DataArray.*to_dataset"),
    "summarise a dict": (TASK, "summarise", lambda ds, *a: dict(ds.data_vars), TypeError,
                         r"summarise returned a dict, expected an xarray.Dataset"),
    "summarise too short": (TASK, "summarise", lambda ds, *a: ds.isel(t=slice(0, 2)),
                            ValueError, r"summarise must return dims episode and t "
                                        r"\(episode = 3, t = 4\).*t: 2"),
}


@pytest.mark.parametrize("case", list(TASK_FAULTS))
def test_a_faulty_task_method_is_named(case):
    base, method, fn, kind, match = TASK_FAULTS[case]
    with pytest.raises(kind, match=match):
        _measure(_subclass(base, method, fn), probes=7)


def test_a_missing_method_is_named_not_an_attribute_error():
    class NoSummary:
        input_size, output_size = 3, 2

        def sample(self, *a, **k):
            raise AssertionError("not reached")

        def probe_inputs(self, *a, **k):
            raise AssertionError("not reached")

    with pytest.raises(TypeError, match=r"NoSummary lacks summarise: define summarise\(\.\.\.\)"):
        _measure(NoSummary())

    class NoReward:
        input_size, n_actions = 3, 2

        def sample_params(self, *a, **k):
            raise AssertionError("not reached")

        contexts = encode = sample_params

    with pytest.raises(TypeError, match=r"NoReward lacks reward: define reward\(\.\.\.\)"):
        _interact(NoReward())


def test_the_built_in_tasks_pass_their_own_checks():
    ds = _measure(TASK)
    assert ds.sizes["episode"] == 3 and ds.sizes["t"] == 4
    trace = _interact(CONTEXTUAL)
    assert trace.rewards.shape == (3, 4) and bool(torch.isfinite(trace.rewards).all())


def test_the_training_player_checks_the_environment_too():
    from trajprobe.apps.training.closed_loop import play

    task = _subclass(ENV, "reward", _inf_reward)
    model = _machine(task.input_size, task.n_actions)
    with pytest.raises(ValueError, match=r"MyBernoulliBandit\.reward returned non-finite"):
        play(model, task, 2, 3, generator=torch.Generator().manual_seed(0))


# --------------------------------------------------------- the validators, one by one

def test_validators_return_what_they_accept():
    rewards = torch.tensor([0.0, 1.0, 0.5])
    assert checks.rewards(ENV, rewards, 3) is rewards
    x = torch.zeros(3, ENV.input_size)
    assert checks.encoded(ENV, x, 3) is x
    assert checks.contexts(ENV, None, 3, 4) is None
    assert checks.probe_inputs(TASK, None, 3, 4, None) is None
    ds = xr.Dataset({"q": (("episode", "t"), np.zeros((3, 4)))})
    assert checks.summary(TASK, ds, 3, 4) is ds


# ----------------------------------------------------------------- property-based

_MALFORMED = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.floats(-1, 1), max_size=4),
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)).map(
        lambda s: torch.zeros(s)),
    st.sampled_from([torch.float32, torch.int64, torch.bool]).map(
        lambda d: torch.ones(3, 2, dtype=d)),
    st.sampled_from([float("inf"), float("nan"), -float("inf")]).map(
        lambda v: torch.full((3,), v)),
    st.sampled_from([float("inf"), float("nan")]).map(lambda v: torch.full((3, 3), v)),
    st.just(xr.DataArray(np.zeros((3, 4)), dims=("episode", "t"))),
    st.just(xr.Dataset({"q": (("episode",), np.zeros(3))})),
)


def _returns(value):
    return lambda result, *args: value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["reward", "encode", "sample_params", "contexts"]),
       value=_MALFORMED)
def test_random_malformed_environment_outputs_name_the_method(method, value):
    base = CONTEXTUAL if method == "contexts" else ENV
    if method == "contexts" and value is None:
        value = torch.zeros(3)  # None is a valid "no contexts"; use a malformed one
    with pytest.raises((ValueError, TypeError), match=rf"\.{method}"):
        _interact(_subclass(base, method, _returns(value)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["sample", "probe_inputs", "summarise"]), value=_MALFORMED)
def test_random_malformed_task_outputs_name_the_method(method, value):
    if method == "probe_inputs" and value is None:
        value = torch.zeros(1)  # None is a valid "no probes"; use a malformed one
    with pytest.raises((ValueError, TypeError), match=rf"\.{method}"):
        _measure(_subclass(TASK, method, _returns(value)))
