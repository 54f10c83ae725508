"""One-pass summary of a shower file: what `caloforge info` prints."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from caloforge.errors import ShowerFileError
from caloforge.geometry import Geometry, match_geometry, resolve_geometry
from caloforge.io import inspect_file, iter_showers


@dataclass(frozen=True)
class FileSummary:
    """Summary statistics of a shower file (energies in MeV)."""

    path: str
    layout: str
    n_showers: int
    n_voxels: int
    geometry: str | None
    matching_geometries: list[str]
    e_inc_min: float
    e_inc_max: float
    response_mean: float  # mean of E_tot / E_inc
    response_std: float
    sparsity_mean: float  # mean fraction of voxels at zero
    attrs: dict

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(path: str | os.PathLike, geometry: str | Geometry | None = None) -> FileSummary:
    """Stream through a file once and summarise it; ``geometry`` is checked if given."""
    info = inspect_file(path, geometry)
    if info.n_showers == 0:
        raise ShowerFileError(f"{path}: the file holds no showers (its datasets have 0 rows)")
    geo = resolve_geometry(geometry) if geometry is not None else None
    matches = match_geometry(info.n_voxels)
    e_min, e_max = np.inf, -np.inf
    s1 = s2 = zero_frac = 0.0
    for block in iter_showers(path, geometry=geo):
        e = block.incident_energies
        ratio = block.showers.sum(axis=1, dtype=np.float64) / e
        e_min, e_max = min(e_min, e.min()), max(e_max, e.max())
        s1 += ratio.sum()
        s2 += (ratio**2).sum()
        zero_frac += (block.showers == 0).mean(axis=1).sum()
    n = info.n_showers
    mean = s1 / n
    name = (
        geo.name
        if geo is not None
        else (str(info.attrs.get("geometry")) if info.attrs.get("geometry") else None)
    )
    if name is None and len(matches) == 1:
        name = matches[0]
    return FileSummary(
        path=str(path),
        layout=info.layout,
        n_showers=n,
        n_voxels=info.n_voxels,
        geometry=name,
        matching_geometries=matches,
        e_inc_min=float(e_min),
        e_inc_max=float(e_max),
        response_mean=float(mean),
        response_std=float(np.sqrt(max(s2 / n - mean**2, 0.0))),
        sparsity_mean=float(zero_frac / n),
        attrs=info.attrs,
    )
