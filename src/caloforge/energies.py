"""Incident-energy spectra, written as short specs on the command line (energies in MeV).

=============================  ====================================================
spec                           meaning
=============================  ====================================================
``1000`` or ``fixed:1e3,5e4``  the listed energies, cycled to fill N
``uniform:A:B``                uniform in [A, B]
``loguniform:A:B``             log-uniform in [A, B] (datasets 2 and 3: 1e3:1e6)
``ds1``                        the 15 dataset-1 energies 2^8 ... 2^22 MeV, drawn with
                               the relative event counts of the official files
=============================  ====================================================
"""

from __future__ import annotations

import numpy as np

from caloforge.errors import ConfigError
from caloforge.validate import MAX_ENERGY_MEV

#: the 15 dataset-1 incident energies, MeV
DS1_ENERGIES = 2.0 ** np.arange(8, 23)
#: events per energy in the dataset-1 photon files: 10 000 for 2^8 ... 2^18 MeV, then 5 000,
#: 3 000, 2 000 and 1 000 at 2^19 ... 2^22 MeV (121 000 in all; the `num_events` table of the
#: CaloChallenge dataset-creation notebook). The pion files keep all available events.
DS1_COUNTS = np.array([10000] * 11 + [5000, 3000, 2000, 1000])


def parse_energies(spec: str | float | np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """Draw ``n`` incident energies (MeV, float64, shape (n,)) from a spectrum spec."""
    if n <= 0:
        raise ConfigError(f"the number of showers must be > 0, got {n}")
    rng = np.random.default_rng(seed)
    if isinstance(spec, np.ndarray | list | tuple):
        values = np.asarray(spec, dtype=float).reshape(-1)
        return _check(np.resize(values, n), str(spec))
    if isinstance(spec, int | float | np.integer | np.floating):
        return _check(np.full(n, float(spec)), str(spec))
    if not isinstance(spec, str):
        raise ConfigError(f"energy spectrum must be a spec string or numbers, got {spec!r}")
    text = spec.strip().lower()
    try:
        if text == "ds1":
            p = DS1_COUNTS / DS1_COUNTS.sum()
            return rng.choice(DS1_ENERGIES, size=n, p=p)
        kind, _, rest = text.partition(":")
        if not rest:
            kind, rest = "fixed", text
        if kind == "fixed":
            values = np.array([float(x) for x in rest.split(",")])
            return _check(np.resize(values, n), spec)
        lo, hi = (float(x) for x in rest.split(":"))
    except ConfigError:  # a ValueError too: keep _check's precise message
        raise
    except ValueError:
        raise ConfigError(
            f"cannot read energy spectrum {spec!r}; use e.g. 'loguniform:1e3:1e6', "
            "'uniform:1e3:1e5', 'fixed:1e4,5e4', '65536' or 'ds1' (MeV)"
        ) from None
    _check(np.array([lo, hi]), spec)
    if hi < lo:
        raise ConfigError(f"energy spectrum {spec!r}: the upper edge is below the lower one")
    if kind == "uniform":
        return rng.uniform(lo, hi, n)
    if kind == "loguniform":
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    raise ConfigError(
        f"unknown energy spectrum kind {kind!r} in {spec!r}; use fixed, uniform, loguniform or ds1"
    )


def _check(values: np.ndarray, spec: str) -> np.ndarray:
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ConfigError(f"energy spectrum {spec!r}: incident energies must be finite and > 0 MeV")
    if np.any(values > MAX_ENERGY_MEV):
        raise ConfigError(
            f"energy spectrum {spec!r}: incident energies must be <= {MAX_ENERGY_MEV:g} MeV "
            f"(100 TeV), got {values.max():g}"
        )
    return values.astype(float)
