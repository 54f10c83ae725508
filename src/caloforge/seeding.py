"""One rule for every seed derived from a user's seed.

A run takes one integer seed from the user; every random source inside it (weight
initialisation, the shuffling and noise of epoch k, a pre-training phase, chunk k of a file)
gets its own seed derived from it by :func:`derive_seed` through
:class:`numpy.random.SeedSequence`, keyed by a short path of names and integers::

    derive_seed(7, "epoch", 3)      # the seed of epoch 3 of a run seeded 7
    torch_generator(7, "init")      # a torch.Generator for the initial weights

Different keys give statistically independent streams; the same keys always give the same
seed, on every machine, so a resumed run re-derives exactly the seeds an uninterrupted run used.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from caloforge.errors import ConfigError

#: the largest seed :func:`derive_seed` returns (torch.manual_seed takes up to 2**64 - 1)
MAX_SEED = 2**63 - 1


def check_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` as a Python int >= 0; :class:`ConfigError` for bools, floats, negatives, None."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        if isinstance(seed, float) and math.isfinite(seed) and seed.is_integer():
            seed = int(seed)
        else:
            raise ConfigError(f"{what} must be a non-negative integer, got {seed!r}")
    if int(seed) < 0:
        raise ConfigError(f"{what} must be a non-negative integer, got {seed}")
    return int(seed)


def _key(part: str | int) -> int:
    if isinstance(part, bool) or not isinstance(part, str | int | np.integer):
        raise TypeError(f"seed keys are str or int, got {type(part).__name__}")
    if isinstance(part, str):  # a stable 32-bit number for a name (not Python's salted hash)
        return int.from_bytes(hashlib.blake2b(part.encode(), digest_size=4).digest(), "little")
    if int(part) < 0:
        raise ValueError(f"integer seed keys must be >= 0, got {part}")
    return int(part)


def seed_sequence(seed: int, *keys: str | int) -> np.random.SeedSequence:
    """The :class:`numpy.random.SeedSequence` of ``keys`` under the user's ``seed``."""
    return np.random.SeedSequence(check_seed(seed), spawn_key=tuple(_key(k) for k in keys))


def derive_seed(seed: int, *keys: str | int) -> int:
    """An integer seed in [0, 2**63 - 1] for the random source named by ``keys``."""
    state = seed_sequence(seed, *keys).generate_state(2, dtype=np.uint32)
    return (int(state[0]) | (int(state[1]) << 32)) & MAX_SEED


def torch_generator(seed: int, *keys: str | int):
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` (seed, *keys)."""
    import torch

    return torch.Generator().manual_seed(derive_seed(seed, *keys))


def numpy_generator(seed: int, *keys: str | int) -> np.random.Generator:
    """A ``numpy.random.Generator`` on the :func:`seed_sequence` (seed, *keys)."""
    return np.random.default_rng(seed_sequence(seed, *keys))
