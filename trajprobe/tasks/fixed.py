"""One task drawn once and held fixed: the single-task control of Rabinowitz Figs. A4/A6."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from trajprobe.task_protocol import Episodes, Seed

if TYPE_CHECKING:
    import xarray as xr

    from trajprobe.task_protocol import Probed

__all__ = ["FixedTask"]


@dataclass(frozen=True)
class FixedTask:
    """Every episode uses the same task parameters, drawn once from ``task``'s prior.

    An LSTM trained on a ``FixedTask`` is a *Learner* with the Meta-Learner's
    parameterisation ("solving a single regression problem only, i.e. one where the
    target matrix is always the same across episodes", Rabinowitz §3.2.5, Figs. A4, A6).
    Inputs are still drawn afresh every episode, by the task's own sampler; the
    measurement is the task's own.

    Args:
        task: any task with ``sample_params(n_episodes, *, seed, dtype)`` and
            ``sample(..., params=)`` (e.g. :class:`~trajprobe.tasks.LinearRegression`,
            :class:`~trajprobe.tasks.FourierRegression`).
        seed: seed of the one draw of the task parameters.
    """

    task: Any
    seed: int = 0
    _params: dict[str, torch.Tensor] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not callable(getattr(self.task, "sample_params", None)):
            raise TypeError(
                "task: FixedTask needs a task with sample_params(n_episodes, *, seed, dtype) "
                f"and sample(..., params=), got {type(self.task).__name__}"
            )
        params = self.task.sample_params(1, seed=self.seed, dtype=torch.float64)
        object.__setattr__(self, "_params", params)

    @property
    def input_size(self) -> int:
        """As the wrapped task's."""
        return self.task.input_size

    @property
    def output_size(self) -> int:
        """As the wrapped task's."""
        return self.task.output_size

    def params(self, n_episodes: int = 1, *, device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """The fixed parameters repeated for ``n_episodes`` (``E`` leading)."""
        return {k: v.to(device=device, dtype=dtype).expand(n_episodes, *v.shape[1:]).clone()
                for k, v in self._params.items()}

    def sample(
        self,
        n_episodes: int,
        n_steps: int,
        *,
        seed: Seed = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Episodes:
        """Episodes of the fixed task: fresh inputs and noise, the same parameters."""
        return self.task.sample(n_episodes, n_steps, seed=seed, device=device, dtype=dtype,
                                params=self.params(n_episodes, device=device, dtype=dtype))

    def probe_inputs(self, episodes: Episodes, n_probes: int | None = None, *,
                     seed: Seed = None) -> torch.Tensor | None:
        """The wrapped task's probe inputs."""
        return self.task.probe_inputs(episodes, n_probes, seed=seed)

    def summarise(self, probed: Probed) -> xr.Dataset:
        """The wrapped task's measurement."""
        return self.task.summarise(probed)
