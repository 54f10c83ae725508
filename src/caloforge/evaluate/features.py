"""High-level features of showers, computed chunk by chunk (the CaloChallenge 2022 definitions).

For every shower, after the voxel threshold (voxels below it are set to 0 before anything else):

* ``E_tot``: the sum of all voxel energies (MeV), and the response ``E_tot / E_inc``;
* ``E_layer``: the energy of each layer (MeV);
* ``sparsity``: per layer, the fraction of voxels at zero;
* for layers with angular bins, the centre of energy and the width in eta = r cos(alpha) and
  phi = r sin(alpha), with r and alpha at the bin centres (alpha centres from -pi to pi):
  ``EC = sum(E x) / sum(E)`` and ``width = sqrt(max(sum(E x^2) / sum(E) - EC^2, 0))`` (mm);
  for Cartesian layers eta and phi are the cell-centre x and y;
* for every layer, the same centre of energy and width in r (mm).

A layer with no energy has centre and width 0 (the CaloChallenge adds 1e-16 to the
denominator). :class:`FeatureExtractor` turns one block of showers into a
:class:`ShowerFeatures`; :func:`stream_features` runs it over a file of any size, keeping only the
(N, n_features) arrays, the running mean shower and the voxel-energy spectrum.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from caloforge.errors import ShowerFileError
from caloforge.geometry import Geometry
from caloforge.io import Showers, check_values, iter_showers

#: voxel thresholds of the CaloChallenge evaluation, MeV (other geometries default to 0)
DEFAULT_THRESHOLDS_MEV = {
    "ds1-photons": 1.0,
    "ds1-pions": 1.0,
    "ds2": 0.01515,
    "ds3": 0.01515,
}

#: the seven per-layer moments, in the column order of the moment matrices
_MOMENTS = ("E", "Ex", "Ex2", "Ey", "Ey2", "Er", "Er2")
_EPS = 1e-16


def default_threshold(geometry: Geometry) -> float:
    """The CaloChallenge voxel threshold for ``geometry`` in MeV: 1 MeV for dataset 1,
    0.01515 MeV (15.15 keV) for datasets 2 and 3, and 0 for any other geometry."""
    return DEFAULT_THRESHOLDS_MEV.get(geometry.name, 0.0)


@dataclass
class ShowerFeatures:
    """High-level features of N showers (energies in MeV, positions in mm).

    Attributes:
        layer_ids: official id of every layer, shape (L,).
        angular: positions (0..L-1) of the layers with angular bins, shape (La,).
        e_inc: incident energies, shape (N,).
        e_tot: total deposited energy, shape (N,).
        e_layer: energy per layer, shape (N, L).
        sparsity: fraction of voxels at zero per layer, shape (N, L).
        ec_eta, ec_phi, width_eta, width_phi: centre of energy and width in eta = r cos(alpha)
            and phi = r sin(alpha) for the angular layers, shape (N, La).
        ec_r, width_r: centre of energy and width in r for every layer, shape (N, L).
    """

    layer_ids: np.ndarray
    angular: np.ndarray
    e_inc: np.ndarray
    e_tot: np.ndarray
    e_layer: np.ndarray
    sparsity: np.ndarray
    ec_eta: np.ndarray
    ec_phi: np.ndarray
    width_eta: np.ndarray
    width_phi: np.ndarray
    ec_r: np.ndarray
    width_r: np.ndarray

    _PER_SHOWER = ("e_inc", "e_tot")
    _ARRAYS = (
        "e_inc", "e_tot", "e_layer", "sparsity", "ec_eta", "ec_phi", "width_eta", "width_phi",
        "ec_r", "width_r",
    )  # fmt: skip

    def __len__(self) -> int:
        return len(self.e_inc)

    @property
    def response(self) -> np.ndarray:
        """E_tot / E_inc, shape (N,)."""
        return self.e_tot / self.e_inc

    @property
    def n_features(self) -> int:
        return len(self.columns())

    def __getitem__(self, index) -> ShowerFeatures:
        """Select showers by slice, index array or mask."""
        return ShowerFeatures(
            self.layer_ids, self.angular, **{k: getattr(self, k)[index] for k in self._ARRAYS}
        )

    @classmethod
    def concatenate(cls, parts: Sequence[ShowerFeatures]) -> ShowerFeatures:
        """Join feature blocks of the same geometry along the shower axis."""
        if not parts:
            raise ShowerFileError("no showers to compute features of")
        first = parts[0]
        return cls(
            first.layer_ids,
            first.angular,
            **{k: np.concatenate([getattr(p, k) for p in parts]) for k in cls._ARRAYS},
        )

    def columns(self) -> dict[str, np.ndarray]:
        """Every feature as a named column of shape (N,), in a fixed order.

        Names: ``E_tot``, ``response`` (E_tot/E_inc), then per layer id ``k``: ``E_layer_k``,
        ``sparsity_k``, ``EC_r_k``, ``width_r_k`` and, for angular layers, ``EC_eta_k``,
        ``EC_phi_k``, ``width_eta_k``, ``width_phi_k``.
        """
        cols: dict[str, np.ndarray] = {"E_tot": self.e_tot, "response": self.response}
        ang_pos = {int(p): j for j, p in enumerate(self.angular)}
        for pos, lid in enumerate(self.layer_ids):
            cols[f"E_layer_{lid}"] = self.e_layer[:, pos]
            cols[f"sparsity_{lid}"] = self.sparsity[:, pos]
            if pos in ang_pos:
                j = ang_pos[pos]
                cols[f"EC_eta_{lid}"] = self.ec_eta[:, j]
                cols[f"EC_phi_{lid}"] = self.ec_phi[:, j]
                cols[f"width_eta_{lid}"] = self.width_eta[:, j]
                cols[f"width_phi_{lid}"] = self.width_phi[:, j]
            cols[f"EC_r_{lid}"] = self.ec_r[:, pos]
            cols[f"width_r_{lid}"] = self.width_r[:, pos]
        return cols

    def high_level_vector(self) -> np.ndarray:
        """The classifier / FPD / KPD input, shape (N, 2 + 2L + 4La), float64.

        Columns: log10 E_inc, log10(E_layer + 1e-8) per layer, EC_eta/100, EC_phi/100,
        width_eta/100, width_phi/100 per angular layer, log10(E_tot + 1e-8), sparsity per layer.
        The first six blocks are the CaloChallenge high-level classifier input; E_tot and
        sparsity are added as the caloforge issue specifies.
        """
        return np.concatenate(
            [
                np.log10(self.e_inc)[:, None],
                np.log10(self.e_layer + 1e-8),
                self.ec_eta / 100.0,
                self.ec_phi / 100.0,
                self.width_eta / 100.0,
                self.width_phi / 100.0,
                np.log10(self.e_tot + 1e-8)[:, None],
                self.sparsity,
            ],
            axis=1,
        )


class FeatureExtractor:
    """Computes :class:`ShowerFeatures` of blocks of showers in one geometry.

    Each layer's seven moments (sum E, E x, E x^2, E y, E y^2, E r, E r^2) are one matrix product
    of the layer's voxels with a (n_voxels_in_layer, 7) matrix of bin-centre coordinates; for
    geometries whose layers all share one binning (ds2, ds3, grids) the whole block is a single
    (N L, P) x (P, 7) product.

    Args:
        geometry: the readout geometry.
        threshold: voxel threshold in MeV; voxels below it count as 0 (``None``: the default of
            :func:`default_threshold`).
    """

    def __init__(self, geometry: Geometry, threshold: float | None = None) -> None:
        self.geometry = geometry
        self.threshold = default_threshold(geometry) if threshold is None else float(threshold)
        xy = geometry.voxel_centres
        r = np.hypot(xy[:, 0], xy[:, 1])
        coords = np.stack(
            [np.ones_like(r), xy[:, 0], xy[:, 0] ** 2, xy[:, 1], xy[:, 1] ** 2, r, r**2], axis=1
        )
        self._layer_mats = [np.ascontiguousarray(coords[sl]) for sl in geometry.layer_slices]
        self._shared = geometry.is_regular and all(
            np.array_equal(m, self._layer_mats[0]) for m in self._layer_mats
        )
        self._layer_sizes = np.asarray(geometry.layer_sizes, dtype=np.float64)
        self.angular = np.flatnonzero(geometry.has_angular_bins)
        self.layer_ids = np.asarray(geometry.layer_ids)

    def apply_threshold(self, showers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Threshold a block of showers (N, V).

        Returns:
            a copy of ``showers`` (float32 stays float32, anything else becomes float64) with
            voxels below the threshold set to 0, and the (N, V) mask of the voxels above 0.
        """
        s = np.asarray(showers)
        if s.dtype not in (np.float32, np.float64):
            s = s.astype(np.float64)
        kept = s >= s.dtype.type(self.threshold) if self.threshold > 0 else s > 0
        return np.where(kept, s, s.dtype.type(0)), kept

    def moments(self, x: np.ndarray) -> np.ndarray:
        """Per-layer moments of thresholded showers, in float64: (N, V) -> (N, L, 7)."""
        n, n_layers = len(x), self.geometry.n_layers
        if self._shared:
            p = self._layer_mats[0].shape[0]
            flat = x.reshape(n * n_layers, p).astype(np.float64, copy=False)
            return (flat @ self._layer_mats[0]).reshape(n, n_layers, 7)
        out = np.empty((n, n_layers, 7))
        layers = zip(self.geometry.layer_slices, self._layer_mats, strict=True)
        for pos, (sl, mat) in enumerate(layers):
            out[:, pos, :] = x[:, sl].astype(np.float64, copy=False) @ mat
        return out

    def count_nonzero(self, kept: np.ndarray) -> np.ndarray:
        """Voxels above zero per layer: (N, V) mask -> (N, L) counts."""
        n = len(kept)
        if self.geometry.is_regular:
            return np.count_nonzero(kept.reshape(n, self.geometry.n_layers, -1), axis=2)
        return np.stack(
            [np.count_nonzero(kept[:, sl], axis=1) for sl in self.geometry.layer_slices], axis=1
        )

    def __call__(self, incident_energies: np.ndarray, showers: np.ndarray) -> ShowerFeatures:
        """Features of one block: incident energies (N,) MeV, showers (N, V) MeV."""
        self.geometry.check_voxels(np.shape(showers)[-1], "showers")
        x, kept = self.apply_threshold(showers)
        return self.from_thresholded(np.asarray(incident_energies, dtype=np.float64), x, kept)

    def from_thresholded(
        self, e_inc: np.ndarray, x: np.ndarray, kept: np.ndarray | None = None
    ) -> ShowerFeatures:
        """Features of showers (N, V) the threshold was already applied to; ``kept`` is the
        mask of voxels above 0 (computed when not given)."""
        m = self.moments(x)
        e_layer = m[..., 0]
        denom = e_layer + _EPS
        centre = m[..., [1, 3, 5]] / denom[..., None]
        second = m[..., [2, 4, 6]] / denom[..., None]
        width = np.sqrt(np.clip(second - centre**2, 0.0, None))
        nonzero = self.count_nonzero(x > 0 if kept is None else kept)
        ang = self.angular
        return ShowerFeatures(
            layer_ids=self.layer_ids,
            angular=ang,
            e_inc=np.asarray(e_inc, dtype=np.float64).reshape(-1),
            e_tot=e_layer.sum(axis=1),
            e_layer=e_layer,
            sparsity=1.0 - nonzero / self._layer_sizes,
            ec_eta=centre[:, ang, 0],
            ec_phi=centre[:, ang, 1],
            width_eta=width[:, ang, 0],
            width_phi=width[:, ang, 1],
            ec_r=centre[..., 2],
            width_r=width[..., 2],
        )


@dataclass
class StreamedSample:
    """What one pass over a shower file keeps: the features and two running summaries.

    Attributes:
        features: per-shower features, N rows.
        voxel_spectrum: fine log-binned counts of the thresholded voxel energies
            (see :class:`caloforge.evaluate.histograms.VoxelSpectrum`).
        shower_sum: sum of the thresholded showers, shape (V,), MeV (divide by N for the mean).
        source: a label for messages (the file name).
    """

    features: ShowerFeatures
    voxel_spectrum: object
    shower_sum: np.ndarray
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def mean_shower(self) -> np.ndarray:
        """Average thresholded shower, shape (V,), MeV."""
        return self.shower_sum / max(len(self), 1)


def stream_features(
    source: str | os.PathLike | Showers | Iterable[Showers],
    geometry: Geometry,
    *,
    threshold: float | None = None,
    chunk_size: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> StreamedSample:
    """Compute features of every shower in a file (or in-memory blocks), one chunk at a time.

    Memory stays about one chunk plus the (N, n_features) feature arrays, so files larger than
    memory (dataset 3) work.

    Args:
        source: a shower file path, a :class:`Showers` block, or an iterable of blocks.
        geometry: the geometry the showers are binned in.
        threshold: voxel threshold in MeV (``None``: :func:`default_threshold`).
        chunk_size: showers per chunk when reading a file (default: about 128 MB per chunk).
        on_chunk: called with the number of showers in each processed chunk (progress bars).

    Raises:
        ShowerFileError: the source holds no showers, or has NaN/Inf or negative energies.
    """
    from caloforge.evaluate.histograms import VoxelSpectrum

    extractor = FeatureExtractor(geometry, threshold)
    if isinstance(source, Showers):
        blocks: Iterable[Showers] = [source]
        label = "showers"
    elif isinstance(source, str | os.PathLike):
        blocks = iter_showers(source, geometry=geometry, chunk_size=chunk_size)
        label = str(source)
    else:
        blocks = source
        label = "showers"
    spectrum = VoxelSpectrum(extractor.threshold)
    shower_sum = np.zeros(geometry.n_voxels)
    parts = []
    for block in blocks:
        if len(block) == 0:
            continue
        geometry.check_voxels(block.n_voxels, label)
        if not isinstance(source, str | os.PathLike):
            check_values(block.incident_energies, block.showers, label)
        x, kept = extractor.apply_threshold(block.showers)
        parts.append(extractor.from_thresholded(block.incident_energies, x, kept))
        spectrum.update(x[kept])
        shower_sum += x.sum(axis=0, dtype=np.float64)
        if on_chunk is not None:
            on_chunk(len(block))
    if not parts:
        raise ShowerFileError(f"{label}: the file holds no showers")
    return StreamedSample(ShowerFeatures.concatenate(parts), spectrum, shower_sum, label)
