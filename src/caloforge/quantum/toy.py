"""Toy electromagnetic showers for development and tests (not physics; see caloforge.refsim).

Longitudinal profile: a gamma distribution in depth with shower maximum at
``t_max = 2 (ln(E / 20 MeV) - 0.5)`` layers and slope b = 0.25 per layer, its shape parameter
smeared by 10 % per shower. Lateral profile: exponential in radius with a scale of
``5 mm * (1 + t / 20)`` at depth t layers. Deposited energy: 0.9 E with a resolution of
``3 % + 30 % / sqrt(E / GeV)``. Every voxel is smeared by a gamma factor (mean 1, 50 % spread).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from caloforge.energies import parse_energies
from caloforge.geometry import Geometry, get_geometry
from caloforge.io import Showers


def toy_showers(
    geometry: Geometry | str = "ds2",
    energies: str | float | np.ndarray = "loguniform:1e3:1e6",
    *,
    n: int = 1000,
    seed: int = 0,
) -> Showers:
    """``n`` toy showers in ``geometry`` (any kind); energies as in :func:`parse_energies`."""
    geo = get_geometry(geometry) if isinstance(geometry, str) else geometry
    rng = np.random.default_rng(seed)
    e = parse_energies(energies, n, seed=seed)
    layer, _, _ = geo.unravel(np.arange(geo.n_voxels))
    r = geo.voxel_polar[0]
    depth_edges = np.arange(geo.n_layers + 1, dtype=float)
    t_max = np.clip(2.0 * (np.log(e / 20.0) - 0.5), 1.0, None)
    b = 0.25
    a = (1.0 + b * t_max) * rng.lognormal(0.0, 0.1, n)
    cdf = stats.gamma.cdf(depth_edges[None, :], a[:, None], scale=1.0 / b)
    longitudinal = np.diff(cdf, axis=1)  # (n, L)
    rho = 5.0 * (1.0 + (layer + 0.5) / 20.0)
    lateral = np.exp(-r / rho) * geo.voxel_areas
    lateral /= np.bincount(layer, weights=lateral)[layer]  # each layer sums to 1
    resolution = 0.03 + 0.3 / np.sqrt(e / 1e3)
    deposited = 0.9 * e * np.exp(rng.normal(0.0, resolution))
    showers = longitudinal[:, layer] * lateral[None, :] * deposited[:, None]
    showers *= rng.gamma(4.0, 0.25, size=showers.shape)
    return Showers(e, showers.astype(np.float32), {"geometry": geo.name, "producer": "toy"})
