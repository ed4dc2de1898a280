"""The K-bit flip-flop (Sussillo & Barak 2013, §3.1): a memory of the last pulse per channel.

Each of K input channels is 0 except for brief pulses of +1 or −1; the target on channel
k is the sign of the last pulse it received, held until the next one. A network that
solves it must keep 2^K states apart — the corners of the output cube {−1, +1}^K — and
trained networks do so with 2^K stable fixed points, saddles between them
(:func:`trajprobe.fixed_points`). As in FixedPointFinder's ``FlipFlopData`` (Golub &
Sussillo 2018), every channel pulses at t = 1, so every target is ±1 from the start.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from trajprobe.randomness import Seed, make_generator
from trajprobe.task_protocol import Episodes
from trajprobe.validation import check_positive_int

__all__ = ["FlipFlop"]


@dataclass(frozen=True)
class FlipFlop:
    """K-bit flip-flop episodes: inputs ``[E, T, K]`` pulses, targets ``[E, T, K]`` ±1.

    x_t[k] ∈ {−1, 0, +1}: a pulse with probability ``pulse_probability`` per step and
    channel (always at t = 1), of random sign. y_t[k] = x_s[k] for the last s ≤ t with
    x_s[k] ≠ 0 (Sussillo & Barak 2013, §3.1).

    Attributes:
        bits: K, the number of channels (3 in the paper).
        pulse_probability: chance of a pulse per step and channel after t = 1.
    """

    bits: int = 3
    pulse_probability: float = 0.2

    def __post_init__(self) -> None:
        check_positive_int(self.bits, "bits")
        if not 0.0 <= self.pulse_probability <= 1.0:
            raise ValueError(f"pulse_probability: expected a probability in [0, 1], got "
                             f"{self.pulse_probability!r}")

    @property
    def input_size(self) -> int:
        """K: one input per channel."""
        return self.bits

    @property
    def output_size(self) -> int:
        """K: one output per channel."""
        return self.bits

    def corners(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The 2^K memories, the corners of the output cube ``[2^K, K]`` in {−1, +1}."""
        return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=self.bits)), dtype=dtype)

    def sample(
        self,
        n_episodes: int,
        n_steps: int,
        *,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Episodes:
        """Draw episodes; same seed, same episodes (pulses, then signs, from one generator).

        Returns:
            inputs ``[E, T, K]``, targets ``[E, T, K]``; no latent parameters.
        """
        e = check_positive_int(n_episodes, "n_episodes")
        t = check_positive_int(n_steps, "n_steps")
        gen = make_generator(seed, device)
        shape = (e, t, self.bits)
        pulses = torch.rand(shape, generator=gen, device=gen.device) < self.pulse_probability
        pulses[:, 0] = True
        signs = torch.randint(0, 2, shape, generator=gen, device=gen.device) * 2 - 1
        inputs = (pulses * signs).to(dtype)
        # the last pulse's index at every step, carried forward by a running maximum
        steps = torch.arange(t, device=gen.device).view(1, t, 1).expand(shape)
        last = torch.where(pulses, steps, torch.zeros_like(steps)).cummax(dim=1).values
        targets = torch.gather(inputs, 1, last)
        return Episodes(inputs.to(device), targets.to(device), {})
