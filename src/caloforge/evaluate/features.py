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
denominator).

The arithmetic is that of the official CaloChallenge code (``HighLevelFeatures.py``), operation
for operation, so that the same file gives bit-identical features and therefore the same
histogram bins: energies are summed in the dtype the showers are stored in (float32 for the
challenge files), the centre and width sums are elementwise products with float64 bin-centre
coordinates summed per layer, and the bin centres are computed as the official code computes
them (``a + (b - a) / 2`` for eta and phi, ``(a + b) * 0.5`` for r).
:class:`FeatureExtractor` turns one block of showers into a
:class:`ShowerFeatures`; :func:`stream_features` runs it over a file of any size, keeping only the
(N, n_features) arrays, the running mean shower and the voxel-energy spectrum.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from caloforge.errors import ShowerFileError
from caloforge.evaluate.spectra import VoxelSpectrum
from caloforge.geometry import Geometry
from caloforge.io import Showers, check_values, iter_showers

#: voxel thresholds of the official CaloChallenge evaluation, MeV (other geometries default
#: to 0): 1 MeV for dataset 1, 0.5 keV / 0.033 (sampling fraction) = 15.15... keV for 2 and 3
DEFAULT_THRESHOLDS_MEV = {
    "ds1-photons": 1.0,
    "ds1-pions": 1.0,
    "ds2": 0.5e-3 / 0.033,
    "ds3": 0.5e-3 / 0.033,
}

_EPS = 1e-16


def default_threshold(geometry: Geometry) -> float:
    """The CaloChallenge voxel threshold for ``geometry`` in MeV: 1 MeV for dataset 1,
    0.5e-3 / 0.033 MeV (15.15 keV) for datasets 2 and 3, and 0 for any other geometry."""
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
        """The official high-level vector (cls-high, FPD, KPD input), shape (N, 2 + 4L + 4La).

        Columns, as the official ``prepare_high_data_for_classifier``: log10 E_inc,
        log10(E_layer + 1e-8) per layer, EC_eta/100, EC_phi/100, width_eta/100, width_phi/100
        per angular layer, log10(E_tot + 1e-8), sparsity per layer, EC_r/100 and width_r/100
        per layer (30 columns for ds1-photons, 46 for ds1-pions, 362 for ds2 and ds3). The
        log energies keep the showers' dtype before the float64 concatenation, as there.
        """
        return np.concatenate(
            [
                np.log10(self.e_inc)[:, None],
                np.log10(self.e_layer + 1e-8),
                self.ec_eta / 1e2,
                self.ec_phi / 1e2,
                self.width_eta / 1e2,
                self.width_phi / 1e2,
                np.log10(self.e_tot + 1e-8)[:, None],
                self.sparsity,
                self.ec_r / 1e2,
                self.width_r / 1e2,
            ],
            axis=1,
        ).astype(np.float64, copy=False)


def official_coordinates(geometry: Geometry) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per layer, the (eta, phi, r) bin-centre coordinates the official code uses, in mm.

    Each array has the layer's voxel count, in voxel order (radius fastest). For cylindrical
    layers eta = r_mid cos(alpha_mid) and phi = r_mid sin(alpha_mid) with the midpoints taken
    as ``a + (b - a) / 2`` of the r edges and of ``linspace(-pi, pi, n_alpha + 1)``, and the
    radial centre is ``(a + b) * 0.5``, as in the official ``XMLHandler`` and
    ``HighLevelFeatures`` (the two round differently in the last bit, so both are kept). For
    Cartesian layers eta, phi are the cell-centre x, y and r = hypot(x, y).
    """
    out = []
    offsets = geometry.layer_offsets
    centres = geometry.voxel_centres
    for pos, layer in enumerate(geometry.layers):
        if hasattr(layer, "r_edges") and hasattr(layer, "n_alpha"):
            edges = [float(e) for e in layer.r_edges]
            r_mid = [edges[i] + float(edges[i + 1] - edges[i]) / 2 for i in range(len(edges) - 1)]
            a_edges = np.linspace(-math.pi, math.pi, layer.n_alpha + 1)
            a_mid = [
                a_edges[i] + float(a_edges[i + 1] - a_edges[i]) / 2 for i in range(layer.n_alpha)
            ]
            r_list = np.array(r_mid * layer.n_alpha)
            a_list = np.array([a for a in a_mid for _ in r_mid])
            eta, phi = r_list * np.cos(a_list), r_list * np.sin(a_list)
            r_c = np.array(
                layer.n_alpha * [(edges[i] + edges[i + 1]) * 0.5 for i in range(len(edges) - 1)]
            )
        else:
            xy = centres[offsets[pos] : offsets[pos + 1]]
            eta, phi = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
            r_c = np.hypot(eta, phi)
        out.append((eta, phi, r_c))
    return out


def _centre_and_width(
    coord: np.ndarray, coord2: np.ndarray, energy: np.ndarray, denom: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Energy-weighted centre and width of one layer, the official way: (N,), (N,) float64."""
    centre = (coord * energy).sum(axis=-1) / denom
    second = (coord2 * energy).sum(axis=-1) / denom
    return centre, np.sqrt((second - centre**2).clip(min=0.0))


class FeatureExtractor:
    """Computes :class:`ShowerFeatures` of blocks of showers in one geometry.

    The arithmetic follows the official code operation for operation (see the module
    docstring), so features are bit-identical to it for the same voxel values and dtype.

    Args:
        geometry: the readout geometry.
        threshold: voxel threshold in MeV; voxels below it count as 0 (``None``: the default of
            :func:`default_threshold`).
    """

    def __init__(self, geometry: Geometry, threshold: float | None = None) -> None:
        self.geometry = geometry
        self.threshold = default_threshold(geometry) if threshold is None else float(threshold)
        self._coords = [
            (eta, eta * eta, phi, phi * phi, r, r * r)
            for eta, phi, r in official_coordinates(geometry)
        ]
        self._layer_sizes = np.asarray(geometry.layer_sizes, dtype=np.float64)
        self.angular = np.flatnonzero(geometry.has_angular_bins)
        self.layer_ids = np.asarray(geometry.layer_ids)

    def apply_threshold(self, showers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Threshold a block of showers (N, V).

        Returns:
            a C-ordered copy of ``showers`` (float32 stays float32, anything else becomes
            float64) with voxels below the threshold set to 0, and the (N, V) mask of the
            voxels kept.
        """
        s = np.asarray(showers)
        if s.dtype not in (np.float32, np.float64):
            s = s.astype(np.float64)
        kept = s >= s.dtype.type(self.threshold) if self.threshold > 0 else s > 0
        return np.ascontiguousarray(np.where(kept, s, s.dtype.type(0))), kept

    def __call__(self, incident_energies: np.ndarray, showers: np.ndarray) -> ShowerFeatures:
        """Features of one block: incident energies (N,) MeV, showers (N, V) MeV."""
        self.geometry.check_voxels(np.shape(showers)[-1], "showers")
        x, kept = self.apply_threshold(showers)
        return self.from_thresholded(np.asarray(incident_energies, dtype=np.float64), x, kept)

    def from_thresholded(
        self, e_inc: np.ndarray, x: np.ndarray, kept: np.ndarray | None = None
    ) -> ShowerFeatures:
        """Features of showers (N, V) the threshold was already applied to (``kept`` is
        accepted for compatibility; sparsity counts the voxels above 0, as officially)."""
        x = np.ascontiguousarray(x)
        n, n_layers, n_ang = len(x), self.geometry.n_layers, len(self.angular)
        e_layer = np.empty((n, n_layers), dtype=x.dtype)
        sparsity = np.empty((n, n_layers))
        ec_r, width_r = np.empty((n, n_layers)), np.empty((n, n_layers))
        ec_eta, ec_phi = np.empty((n, n_ang)), np.empty((n, n_ang))
        width_eta, width_phi = np.empty((n, n_ang)), np.empty((n, n_ang))
        ang_pos = {int(p): j for j, p in enumerate(self.angular)}
        for pos, sl in enumerate(self.geometry.layer_slices):
            layer = x[:, sl]
            e_layer[:, pos] = energy = layer.sum(axis=-1)
            sparsity[:, pos] = 1.0 - (layer > 0).mean(axis=-1)
            denom = energy + 1e-16
            eta, eta2, phi, phi2, r, r2 = self._coords[pos]
            ec_r[:, pos], width_r[:, pos] = _centre_and_width(r, r2, layer, denom)
            if pos in ang_pos:
                j = ang_pos[pos]
                ec_eta[:, j], width_eta[:, j] = _centre_and_width(eta, eta2, layer, denom)
                ec_phi[:, j], width_phi[:, j] = _centre_and_width(phi, phi2, layer, denom)
        return ShowerFeatures(
            layer_ids=self.layer_ids,
            angular=self.angular,
            e_inc=np.asarray(e_inc, dtype=np.float64).reshape(-1),
            e_tot=x.sum(axis=-1),
            e_layer=e_layer,
            sparsity=sparsity,
            ec_eta=ec_eta,
            ec_phi=ec_phi,
            width_eta=width_eta,
            width_phi=width_phi,
            ec_r=ec_r,
            width_r=width_r,
        )


@dataclass
class StreamedSample:
    """What one pass over a shower file keeps: the features and two running summaries.

    Attributes:
        features: per-shower features, N rows.
        voxel_spectrum: fine log-binned counts of the thresholded voxel energies
            (see :class:`caloforge.evaluate.spectra.VoxelSpectrum`).
        shower_sum: sum of the thresholded showers, shape (V,), MeV (divide by N for the mean).
        source: a label for messages (the file name).
        voxel_max: the largest thresholded voxel energy, a numpy scalar of the showers' dtype
            (the official voxel-spectrum binning takes its log10 in that dtype).
    """

    features: ShowerFeatures
    voxel_spectrum: VoxelSpectrum
    shower_sum: np.ndarray
    source: str = ""
    notes: list[str] = field(default_factory=list)
    voxel_max: object = 0.0

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
    voxel_histograms: Sequence = (),
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
        voxel_histograms: :class:`caloforge.evaluate.spectra.VoxelHistogram` objects to fill
            with every thresholded voxel (zeros included; they fall below the first edge).

    Raises:
        ShowerFileError: the source holds no showers, or has NaN/Inf or negative energies.
    """
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
    voxel_max = None
    for block in blocks:
        if len(block) == 0:
            continue
        geometry.check_voxels(block.n_voxels, label)
        if not isinstance(source, str | os.PathLike):
            check_values(block.incident_energies, block.showers, label)
        x, kept = extractor.apply_threshold(block.showers)
        parts.append(extractor.from_thresholded(block.incident_energies, x, kept))
        spectrum.update(x[kept])
        for hist in voxel_histograms:
            hist.update(x)
        block_max = x.max()
        voxel_max = block_max if voxel_max is None else max(voxel_max, block_max)
        shower_sum += x.sum(axis=0, dtype=np.float64)
        if on_chunk is not None:
            on_chunk(len(block))
    if not parts:
        raise ShowerFileError(f"{label}: the file holds no showers")
    return StreamedSample(
        ShowerFeatures.concatenate(parts), spectrum, shower_sum, label, voxel_max=voxel_max
    )
