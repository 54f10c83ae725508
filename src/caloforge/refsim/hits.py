"""Showers as point clouds: the energy spots refsim draws, before they are binned into voxels.

``simulate(..., return_hits=True)`` returns, beside the voxel showers, a :class:`Hits` with one
entry per spot: position (x, y, z) in mm and visible energy (divided by the file's
normalisation, like the voxels) in MeV. z is the depth of the centre of the spot's readout layer
(refsim draws no depth within a layer); ``layer`` is that layer's index. Binning the hits of a
shower with :func:`bin_hits` gives exactly its voxel shower (hits in voxels removed by the
readout threshold are dropped).

HDF5 layout (:func:`write_hits`, :class:`HitsWriter`, :func:`read_hits`), ragged as flat arrays:

==================  ==========  =========================================================
dataset             shape       meaning
==================  ==========  =========================================================
``incident_energies``  (N,)     float64, MeV
``offsets``         (N + 1,)    int64; the hits of shower i are rows offsets[i]:offsets[i+1]
``x``, ``y``, ``z`` (H,)        float32, mm (z: depth of the layer centre from the front face)
``energy``          (H,)        float32, MeV
``layer``           (H,)        int16, readout-layer index
==================  ==========  =========================================================

File attributes: ``layout = "caloforge-hits-1"``, ``geometry``, ``detector``, ``particle``,
``refsim_version`` and the simulation settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from caloforge.errors import ShowerFileError
from caloforge.geometry import CartesianLayer, CylindricalLayer, Geometry
from caloforge.io import AtomicH5

LAYOUT = "caloforge-hits-1"
_FIELDS = ("x", "y", "z", "energy", "layer")
_DTYPES = {"x": "f4", "y": "f4", "z": "f4", "energy": "f4", "layer": "i2"}  # per field


@dataclass
class Hits:
    """Point clouds of N showers in flat arrays; shower i is rows ``offsets[i]:offsets[i+1]``.

    Attributes:
        offsets: shape (N + 1,), int64, starting at 0.
        x, y, z: positions, mm, shape (H,), float32.
        energy: MeV, shape (H,), float32.
        layer: readout-layer index, shape (H,), int16.
        attrs: metadata (geometry name ...).
    """

    offsets: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    energy: np.ndarray
    layer: np.ndarray
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def from_fields(cls, offsets: np.ndarray, fields: Iterable[np.ndarray], attrs: dict) -> Hits:
        """Hits from ``offsets`` and the per-hit arrays in the order x, y, z, energy, layer."""
        x, y, z, energy, layer = fields
        return cls(offsets, x, y, z, energy, layer, attrs=attrs)

    def shower(self, i: int) -> Hits:
        """The hits of shower ``i`` alone."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return Hits.from_fields(
            np.array([0, b - a], dtype=np.int64),
            (getattr(self, f)[a:b] for f in _FIELDS),
            attrs=dict(self.attrs),
        )

    @staticmethod
    def concatenate(parts: list[Hits]) -> Hits:
        """One :class:`Hits` from consecutive blocks of showers."""
        counts = np.concatenate([np.diff(p.offsets) for p in parts])
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        arrays = [np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS]
        return Hits.from_fields(offsets, arrays, attrs=dict(parts[0].attrs) if parts else {})


def voxel_index(
    layer: CylindricalLayer | CartesianLayer, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(inside, local voxel index within the layer) of points (x, y) in mm, each (P,)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if isinstance(layer, CylindricalLayer):
        r_bin = np.searchsorted(np.asarray(layer.r_edges), np.hypot(x, y), side="right") - 1
        alpha = np.arctan2(y, x)
        a_bin = np.floor((alpha + np.pi) / (2 * np.pi) * layer.n_alpha).astype(np.int64)
        a_bin = np.clip(a_bin, 0, layer.n_alpha - 1)
        ok = (r_bin >= 0) & (r_bin < layer.n_radial)
        return ok, a_bin * layer.n_radial + r_bin
    ix = np.floor((x - layer.x_edges[0]) / layer.dx).astype(np.int64)
    iy = np.floor((y - layer.y_edges[0]) / layer.dy).astype(np.int64)
    ok = (ix >= 0) & (ix < layer.nx) & (iy >= 0) & (iy < layer.ny)
    return ok, ix * layer.ny + iy


def flat_voxels(geometry: Geometry, hits: Hits) -> np.ndarray:
    """Global voxel index of every hit, shape (H,); -1 outside the readout."""
    out = np.full(len(hits.x), -1, dtype=np.int64)
    for pos, (layer, sl) in enumerate(zip(geometry.layers, geometry.layer_slices, strict=True)):
        sel = np.flatnonzero(hits.layer == pos)
        if sel.size == 0:
            continue
        ok, local = voxel_index(layer, hits.x[sel], hits.y[sel])
        out[sel[ok]] = sl.start + local[ok]
    return out


def bin_hits(geometry: Geometry, hits: Hits) -> np.ndarray:
    """Voxel showers of the hits, MeV, shape (N, V), float32 (energies summed in float64)."""
    n, n_vox = len(hits), geometry.n_voxels
    vox = flat_voxels(geometry, hits)
    row = np.repeat(np.arange(n), np.diff(hits.offsets))
    ok = vox >= 0
    flat = row[ok] * n_vox + vox[ok]
    summed = np.bincount(flat, weights=hits.energy[ok].astype(np.float64), minlength=n * n_vox)
    return summed.reshape(n, n_vox).astype(np.float32)


class HitSink:
    """Collects spots (shower row, layer, x, y, z, energy) while a batch is deposited."""

    def __init__(self, n_showers: int) -> None:
        self.n_showers = n_showers
        self._parts: list[tuple[np.ndarray, ...]] = []

    def add(self, rows, layer: int, x, y, z: float, energy) -> None:
        m = len(rows)
        self._parts.append(
            (
                np.asarray(rows, dtype=np.int64),
                np.full(m, layer, dtype=np.int16),
                np.asarray(x, dtype=np.float32),
                np.asarray(y, dtype=np.float32),
                np.full(m, z, dtype=np.float32),
                np.asarray(energy, dtype=np.float32),
            )
        )

    def hits(self) -> Hits:
        """The collected spots grouped by shower (order within a shower: as deposited)."""
        if self._parts:
            rows, layer, x, y, z, e = (np.concatenate(a) for a in zip(*self._parts, strict=True))
        else:
            rows = np.zeros(0, np.int64)
            layer = np.zeros(0, np.int16)
            x = y = z = e = np.zeros(0, np.float32)
        order = np.argsort(rows, kind="stable")
        counts = np.bincount(rows, minlength=self.n_showers)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return Hits(offsets, x[order], y[order], z[order], e[order], layer[order])


def keep_lit(geometry: Geometry, hits: Hits, showers: np.ndarray) -> Hits:
    """Drop the hits that lie outside the readout or in voxels that are 0 in ``showers``."""
    vox = flat_voxels(geometry, hits)
    row = np.repeat(np.arange(len(hits)), np.diff(hits.offsets))
    keep = vox >= 0
    keep[keep] = showers[row[keep], vox[keep]] > 0
    counts = np.bincount(row[keep], minlength=len(hits))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Hits.from_fields(
        offsets, (getattr(hits, f)[keep] for f in _FIELDS), attrs=dict(hits.attrs)
    )


# --------------------------------------------------------------------------- files
class HitsWriter:
    """Append hits chunk by chunk to a ragged HDF5 file, atomically (see module docstring)."""

    def __init__(self, path: str | os.PathLike, attrs: dict | None = None) -> None:
        self.path = Path(path)
        self.attrs = {"layout": LAYOUT, **(attrs or {})}
        self.n_showers = 0
        self.n_hits = 0
        self._h5: AtomicH5 | None = None
        self._file: h5py.File | None = None

    def __enter__(self) -> HitsWriter:
        h5 = self._h5 = AtomicH5(self.path)
        self._file = f = h5.__enter__()
        try:
            gz = {"compression": "gzip", "compression_opts": 4}
            f.create_dataset(
                "incident_energies", (0,), maxshape=(None,), dtype="f8", chunks=(4096,)
            )
            f.create_dataset("offsets", (1,), maxshape=(None,), dtype="i8", chunks=(4096,))
            for name, dt in _DTYPES.items():
                f.create_dataset(name, (0,), maxshape=(None,), dtype=dt, chunks=(65536,), **gz)
            for k, v in self.attrs.items():
                f.attrs[k] = v
            h5.raise_write_error()
        except BaseException as exc:  # e.g. a full disk already: remove the temporary file
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def append(self, incident_energies: np.ndarray, hits: Hits) -> None:
        """Append the hits of len(hits) showers with their incident energies (MeV)."""
        if self._file is None or self._h5 is None:
            raise RuntimeError("HitsWriter.append called outside its `with` block")
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        if len(e) != len(hits):
            raise ShowerFileError(
                f"{self.path}: {len(e)} incident energies for {len(hits)} showers"
            )
        f = self._file
        n0, n1 = self.n_showers, self.n_showers + len(hits)
        h0, h1 = self.n_hits, self.n_hits + int(hits.offsets[-1])
        f["incident_energies"].resize(n1, axis=0)
        f["incident_energies"][n0:n1] = e
        f["offsets"].resize(n1 + 1, axis=0)
        f["offsets"][n0 + 1 : n1 + 1] = h0 + hits.offsets[1:]
        for name in _FIELDS:
            f[name].resize(h1, axis=0)
            f[name][h0:h1] = getattr(hits, name)
        self._h5.raise_write_error()
        self.n_showers, self.n_hits = n1, h1

    def __exit__(self, exc_type, exc, tb) -> None:
        """Publish the file, or remove it on an exception or a failing disk."""
        h5, self._h5 = self._h5, None
        self._file = None
        if h5 is not None:
            h5.close(exc)


def write_hits(path: str | os.PathLike, incident_energies: np.ndarray, hits: Hits) -> Path:
    """Write one :class:`Hits` (and the incident energies, MeV) atomically; returns ``path``."""
    with HitsWriter(path, attrs=_clean(hits.attrs)) as w:
        w.append(incident_energies, hits)
    return Path(path)


def read_hits(path: str | os.PathLike) -> tuple[np.ndarray, Hits]:
    """(incident energies (N,) MeV, :class:`Hits`) of a file written by :class:`HitsWriter`."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("layout") != LAYOUT:
                raise ShowerFileError(f"{path}: not a caloforge hits file (layout {LAYOUT!r})")
            e = f["incident_energies"][:]
            hits = Hits.from_fields(
                f["offsets"][:], (f[name][:] for name in _FIELDS), attrs=dict(f.attrs)
            )
    except OSError as err:
        raise ShowerFileError(f"{path}: cannot read hits file ({err})") from None
    return e, hits


def _clean(attrs: dict) -> dict:
    return {
        k: v
        for k, v in attrs.items()
        if isinstance(v, int | float | str | bool | np.generic) and k != "layout"
    }
