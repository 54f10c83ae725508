"""Tools for testing code that uses caloforge (public, stable): cheap toy showers.

Example:
    >>> import numpy as np
    >>> from caloforge.geometry import get_geometry
    >>> s = toy_showers(get_geometry("grid:4x3x3"), np.array([1e3, 1e4]), seed=0)
    >>> s.showers.shape
    (2, 36)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caloforge.geometry import Geometry
from caloforge.io import Showers
from caloforge.models._gan_common import check_incident_energies, regular_image_shape


def toy_showers(geometry: Geometry, incident_energies: Any, *, seed: int = 0) -> Showers:
    """Cheap analytic showers on a regular geometry (a stand-in for :mod:`caloforge.refsim`).

    A Gamma-function longitudinal profile whose maximum moves deeper with log(E), a Gaussian
    core plus exponential halo across the layer (in cell units, centred on the image), 90 % of
    the incident energy deposited, per-voxel Gamma fluctuations and a 0.1 % threshold.
    Returns :class:`~caloforge.io.Showers` in MeV.
    """
    L, a, b = regular_image_shape(geometry, "toy")
    e = check_incident_energies(incident_energies)
    rng = np.random.default_rng(seed)
    n = len(e)
    t = (np.arange(L) + 0.5) / L * 10.0  # depth in arbitrary "X0"
    t_max = 1.5 + 0.6 * np.log(e / 1000.0).clip(0) + rng.normal(0, 0.2, n)
    alpha = 3.0
    beta = (alpha - 1) / t_max.clip(0.5)
    long = (beta[:, None] * t) ** (alpha - 1) * np.exp(-beta[:, None] * t)
    long /= long.sum(axis=1, keepdims=True)
    if geometry.kind == "cylindrical":
        r = np.broadcast_to(np.arange(b) + 0.5, (a, b))
        trans = np.exp(-r / 1.5) / r
    else:
        xi = np.arange(a) - (a - 1) / 2
        yi = np.arange(b) - (b - 1) / 2
        r2 = xi[:, None] ** 2 + yi[None, :] ** 2
        trans = np.exp(-r2 / 2.0) + 0.05 * np.exp(-np.sqrt(r2) / 3.0)
    trans = trans / trans.sum()
    mean = 0.9 * e[:, None, None, None] * long[:, :, None, None] * trans[None, None]
    k = 4.0
    x = rng.gamma(k, mean / k + 1e-12)
    x[x < 1e-3 * mean.max(axis=(1, 2, 3), keepdims=True)] = 0.0
    return Showers(e, x.reshape(n, -1).astype(np.float32), {"producer": "toy_showers"})


__all__ = ["toy_showers"]
