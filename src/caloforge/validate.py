"""Checks of numeric command-line options, run before any work or heavy import.

Each raises :class:`~caloforge.errors.ConfigError` with one sentence naming the option, the
value and the accepted range. The upper bounds keep a typo (``--n 1000000000000``) from
building a plan or an allocation that cannot fit; they are far above any real run.
"""

from __future__ import annotations

import math
from typing import Any

from caloforge.errors import ConfigError

#: most showers one command may simulate or generate (a ds2 file of this size is ~2.6 TB raw)
MAX_SHOWERS = 100_000_000
#: largest batch or chunk of showers held in memory at once
MAX_BATCH = 1_000_000
#: most Dask workers / threads
MAX_WORKERS = 4096
#: most chunks one file is split into (the plan holds one small record per chunk)
MAX_CHUNKS = 1_000_000
#: highest accepted incident energy, MeV (100 TeV; the CaloChallenge tops out at 4.2 TeV)
MAX_ENERGY_MEV = 1e8


def integer(
    value: Any, option: str, *, minimum: int = 1, maximum: int | None = None, unit: str = ""
) -> int | None:
    """``value`` as an int in [minimum, maximum]; None passes through (option not given)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{option} must be an integer, got {value!r}")
    if value < minimum:
        if minimum == 1:
            raise ConfigError(f"{option} must be a positive integer, got {value}")
        raise ConfigError(f"{option} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        what = f" {unit}" if unit else ""
        raise ConfigError(f"{option} {value} is above the limit of {maximum}{what}")
    return int(value)


def number(
    value: Any,
    option: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    unit: str = "",
) -> float | None:
    """``value`` as a finite float (> 0 with ``positive``, within [minimum, maximum]); None
    passes through."""
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option} must be a number, got {value!r}") from None
    u = f" {unit}" if unit else ""
    if not math.isfinite(x):
        raise ConfigError(f"{option} must be a finite number, got {value!r}")
    if positive and x <= 0:
        raise ConfigError(f"{option} must be > 0{u}, got {x:g}")
    if minimum is not None and x < minimum:
        raise ConfigError(f"{option} must be >= {minimum:g}{u}, got {x:g}")
    if maximum is not None and x > maximum:
        raise ConfigError(f"{option} must be <= {maximum:g}{u}, got {x:g}")
    return x


def showers(value: Any, option: str = "--n") -> int | None:
    """A number of showers: 1 ... :data:`MAX_SHOWERS`."""
    return integer(value, option, maximum=MAX_SHOWERS, unit="showers per run")


def batch(value: Any, option: str) -> int | None:
    """A batch or chunk size: 1 ... :data:`MAX_BATCH`."""
    return integer(value, option, maximum=MAX_BATCH, unit="showers per batch")


def workers(value: Any, option: str = "the number of workers") -> int | None:
    """A number of workers or threads: 1 ... :data:`MAX_WORKERS`."""
    return integer(value, option, maximum=MAX_WORKERS)


def chunks(n: int | None, chunk_size: int | None, option: str = "--chunk-size") -> None:
    """The number of chunks ``ceil(n / chunk_size)`` stays within :data:`MAX_CHUNKS`."""
    if n is None or chunk_size is None:
        return
    count = -(-int(n) // int(chunk_size))
    if count > MAX_CHUNKS:
        raise ConfigError(
            f"{option} {chunk_size} splits {n} showers into {count} chunks, above the limit of "
            f"{MAX_CHUNKS}; use a chunk size of at least {-(-int(n) // MAX_CHUNKS)}"
        )
