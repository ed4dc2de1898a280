"""One device policy and one home for randomness (issue 24): trajprobe.devices and
trajprobe.randomness."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trajprobe.task_protocol
import trajprobe.tasks
from trajprobe.devices import available_devices, one_thread, parameter_dtype, resolve_device
from trajprobe.randomness import Seed, make_generator, step_seed

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
NO_MPS = pytest.mark.skipif(torch.backends.mps.is_available(), reason="needs a machine without MPS")


@pytest.mark.parametrize("device", [None, "cpu", torch.device("cpu")])
def test_cpu_and_none_resolve_to_the_cpu(device):
    assert resolve_device(device) == torch.device("cpu")


@NO_CUDA
@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("cuda:0")])
def test_cuda_without_cuda_is_an_error_naming_it_and_what_is_available(device):
    with pytest.raises(ValueError, match=rf"device: '{torch.device(device)}' was asked for but "
                       r"CUDA is not available .*; available here: cpu"):
        resolve_device(device)


@NO_MPS
def test_mps_without_mps_is_an_error():
    with pytest.raises(ValueError, match=r"device: 'mps' was asked for but MPS is not available"):
        resolve_device("mps")


def test_unknown_devices_are_errors():
    with pytest.raises(ValueError, match="expected cpu, cuda, cuda:N or mps, got 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="expected cpu, cuda, cuda:N or mps, got 'meta'"):
        resolve_device("meta")
    with pytest.raises(TypeError, match=r"device: expected None, a string or a torch\.device"):
        resolve_device(0)  # type: ignore[arg-type]


def test_available_devices_starts_with_the_cpu():
    assert available_devices()[0] == "cpu"


def test_parameter_dtype():
    assert parameter_dtype(nn.Linear(2, 3)) == torch.float32
    assert parameter_dtype(nn.Linear(2, 3).double()) == torch.float64
    assert parameter_dtype(nn.ReLU()) is None


def test_make_generator_same_seed_same_numbers():
    a = torch.rand(4, generator=make_generator(5))
    b = torch.rand(4, generator=make_generator(5))
    assert torch.equal(a, b)
    gen = make_generator(5)
    assert make_generator(gen) is gen
    assert not torch.equal(torch.rand(4, generator=make_generator(6)), a)
    with pytest.raises(TypeError, match="seed: expected an int"):
        make_generator(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"seed: expected an int in \[-2\*\*63, 2\*\*64\)"):
        make_generator(2**64)


@NO_CUDA
def test_make_generator_on_an_unavailable_device_is_an_error():
    with pytest.raises(ValueError, match="device: 'cuda' was asked for but CUDA"):
        make_generator(0, "cuda")


class _SplitMix64:
    """Vigna's SplitMix64 generator (prng.di.unimi.it/splitmix64.c), written from the C
    reference: the state advances by the golden gamma, each output mixes the state."""

    def __init__(self, state: int) -> None:
        self.state = state % 2**64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) % 2**64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        return z ^ (z >> 31)


def test_the_reference_splitmix64_gives_the_published_outputs():
    gen = _SplitMix64(0)  # the C reference's first outputs from seed 0
    assert [gen.next() for _ in range(3)] == [
        0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


@pytest.mark.parametrize("seed, step", [(0, 0), (7, 3), (-1, 5), (2**64 - 1, 10**9)])
def test_step_seed_is_splitmix64_of_the_seed_then_the_step(seed, step):
    """step_seed's docstring: the first output of SplitMix64 from the seed, xor the step,
    is the state of a second SplitMix64 whose first output, shifted to 63 bits, is the
    seed of that step. Derived here by the reference generator, not by the library."""
    first = _SplitMix64(seed).next()
    expected = _SplitMix64(first ^ step).next() >> 1
    assert step_seed(seed, step) == expected
    assert 0 <= expected < 2**63


def test_step_seed_known_values():
    # the two values the training data of every run depends on, from the reference above
    assert step_seed(0, 0) == _SplitMix64(_SplitMix64(0).next()).next() >> 1
    assert step_seed(7, 3) == _SplitMix64(_SplitMix64(7).next() ^ 3).next() >> 1
    assert len({step_seed(0, k) for k in range(100)}) == 100
    with pytest.raises(ValueError, match="step: expected a non-negative step"):
        step_seed(0, -1)


def test_tasks_still_export_the_seed_helpers():
    assert trajprobe.tasks.make_generator is make_generator
    assert trajprobe.task_protocol.make_generator is make_generator
    assert trajprobe.tasks.Seed is Seed


def test_one_thread_restores_the_callers_count_also_after_an_error():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), one_thread():
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
