"""Pieces every training loop shares: seeding, progress, and resumable optimizer state.

Resumability works by epoch: each epoch shuffles and draws its noise from a generator seeded by
(seed, epoch), and every model stores its optimizer state beside the weights in
``optimizer.safetensors`` (tensors only, no pickle) with :func:`save_optimizers`. Resuming from
the checkpoint written after epoch k therefore reproduces the rest of an uninterrupted run, while
``model.safetensors`` holds only what generation needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from caloforge.errors import CheckpointError
from caloforge.ioutil import atomic_path

OPTIMIZER_FILE = "optimizer.safetensors"


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A torch generator for one epoch, seeded from (seed, epoch)."""
    return torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))


def batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index batches over ``n`` items (the last partial batch is dropped if n > batch)."""
    perm = torch.randperm(n, generator=generator)
    stop = n - n % batch_size if n > batch_size else n
    for start in range(0, stop, batch_size):
        yield perm[start : start + batch_size]


def progress_bar(enabled: bool = True) -> Progress:
    """A rich progress bar with a free-text field ``info`` for losses."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        disable=not enabled,
        transient=False,
    )


def save_optimizers(
    directory: str | os.PathLike, optimizers: dict[str, torch.optim.Optimizer]
) -> None:
    """Store the tensors and step counts of Adam-like optimizers in ``optimizer.safetensors``."""
    tensors: dict[str, torch.Tensor] = {}
    for name, opt in optimizers.items():
        for idx, state in opt.state_dict()["state"].items():
            for key, value in state.items():
                t = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"{name}.{idx}.{key}"] = t.detach().cpu().contiguous()
    if tensors:
        with atomic_path(Path(directory) / OPTIMIZER_FILE) as tmp:
            save_file(tensors, str(tmp))


def load_optimizers(
    directory: str | os.PathLike, optimizers: dict[str, torch.optim.Optimizer]
) -> bool:
    """Restore what :func:`save_optimizers` stored; False when there is nothing to restore."""
    path = Path(directory) / OPTIMIZER_FILE
    if not path.exists():
        return False
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt optimizer state ({exc})") from None
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, t in tensors.items():
            owner, idx, field = key.split(".", 2)
            if owner == name:
                state.setdefault(int(idx), {})[field] = t
        sd["state"] = state
        try:
            opt.load_state_dict(sd)
        except (ValueError, KeyError) as exc:
            raise CheckpointError(
                f"{path}: optimizer state of {name!r} does not fit ({exc})"
            ) from None
    return True
