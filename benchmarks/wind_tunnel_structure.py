"""Structure of small wind-tunnel learners against the exact Bayes machine (issue 35).

Run:  python benchmarks/wind_tunnel_structure.py --task hmm          (≈ 2 min on one thread)
      python benchmarks/wind_tunnel_structure.py --task recall --updates 600 --out figs/

Trains the five architectures of ``wind-tunnel/<task>/<arch>`` at the quick preset's widths
(capacity-matched, :func:`trajprobe.apps.recipes.wind_tunnel.matched_model`) for a few
hundred Adam updates each — far fewer than the quick recipes' 2,000, so this is a
development check of :mod:`trajprobe.apps.reproduce.wind_tunnel_structure`, not the
target's numbers — then prints the rows of ``structure_against_bayes`` at ``--preset``
(and of ``filter_fixed_points`` for ``hmm``) with the exact Bayes machine as a sixth
"learner" (its rows: score 1, D_s 0). ``--out`` saves the figures there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from trajprobe.apps.recipes.wind_tunnel import (
    WIND_TUNNEL_ARCHITECTURES,
    WIND_TUNNEL_TASKS,
    matched_model,
    wind_tunnel_task,
)
from trajprobe.apps.reproduce.wind_tunnel_structure import (
    filter_fixed_points,
    structure_against_bayes,
)


def train(arch: str, task, steps: int, updates: int, seed: int) -> torch.nn.Module:
    """One learner, teacher-forced log-loss on fresh episodes (Adam 2e-3, clipped at 1)."""
    head = "categorical" if task.output_size > 1 else "bernoulli"
    model = matched_model(arch, "quick", task.input_size, task.output_size, steps).build(
        task.input_size, task.output_size, seed=seed, distribution=head)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(updates):
        episodes = task.sample(64, steps, seed=gen)
        outputs, _ = model.unroll(episodes.inputs)
        loss = -task.distribution(outputs).log_prob(episodes.targets).mean()
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
    print(f"{arch}: final loss {float(loss.detach()) / 0.6931471805599453:.3f} bits",
          flush=True)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=WIND_TUNNEL_TASKS, default="hmm")
    parser.add_argument("--updates", type=int, default=600)
    parser.add_argument("--preset", default="quick", help="of the structure analysis")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="folder for the figures")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task, steps = wind_tunnel_task(args.task, "quick")
    learners = {arch: train(arch, task, steps, args.updates, args.seed)
                for arch in WIND_TUNNEL_ARCHITECTURES}
    learners["Bayes"] = task.bayes_machine()
    outputs = [structure_against_bayes(learners, task, task.bayes_machine(),
                                       preset=args.preset, seed=args.seed)]
    if args.task == "hmm":
        outputs.append(filter_fixed_points(learners, task, preset=args.preset, seed=args.seed))
    for _, rows, figures, notes in outputs:
        for row in rows:
            print(" | ".join(row.formatted()[:3]))
        for note in notes:
            print("-", note)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            for stem, figure in figures.items():
                figure.savefig(args.out / f"{stem}.png", dpi=110)


if __name__ == "__main__":
    main()
