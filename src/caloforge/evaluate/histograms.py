"""Binning of every feature, unit-area histograms and the separation power.

The binnings follow the CaloChallenge 2022 evaluation, all derived from the *reference* sample
so that both samples share them:

==================  =============================================================================
feature             bins
==================  =============================================================================
``response``        E_tot / E_inc: 100 bins on [0.5, 1.5] (if less than 90% of the reference falls
                    inside, as for hadrons, [0, max(1.5, reference max)])
``E_tot``           40 log bins from the reference minimum to its maximum (MeV)
``E_layer_k``       40 log bins from the voxel threshold to the reference maximum of that layer
                    (threshold 0: from the smallest positive reference value)
``sparsity_k``      20 bins on [0, 1]
``EC_eta/phi_k``    100 bins on +-30 mm (ds2, ds3), else on +-1.2 x the 99.9% quantile of the
                    reference |EC| (dataset 1 layers differ by orders of magnitude in size)
``width_*_k``       100 bins on [0, 30] mm (ds2, ds3), else on [0, 1.2 x the 99.9% quantile of
                    the reference]
``EC_r_k``          100 bins on [0, 1.2 x the 99.9% quantile of the reference]
voxel energy        50 log bins from the threshold (or the smallest positive reference voxel) to
                    the reference maximum, accumulated chunk by chunk (:class:`VoxelSpectrum`)
==================  =============================================================================

Histograms are normalised to unit area (a density); the separation power of two of them is

    S = 1/2 * sum_i (h1_i - h2_i)^2 / (h1_i + h2_i)

on the bin-width-weighted densities h_i = density_i * width_i, so S = 0 for identical and 1 for
disjoint histograms. Entries outside the bins are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caloforge.evaluate.features import ShowerFeatures
from caloforge.geometry import Geometry

_DS23 = ("ds2", "ds3")


@dataclass(frozen=True)
class Binning:
    """The bins of one feature.

    Attributes:
        edges: bin edges, shape (n_bins + 1,), in the feature's unit.
        log: whether the bins are logarithmic (plots use a log x axis).
        label: axis label with unit, e.g. ``"E_layer 12 [MeV]"``.
        group: the feature kind (``E_layer``, ``EC_eta`` ...) the report groups by.
        layer: the layer id, or ``None`` for per-shower features.
    """

    edges: np.ndarray
    log: bool
    label: str
    group: str
    layer: int | None = None

    @property
    def n_bins(self) -> int:
        return len(self.edges) - 1

    def to_dict(self) -> dict:
        return {
            "low": float(self.edges[0]),
            "high": float(self.edges[-1]),
            "n_bins": self.n_bins,
            "log": self.log,
        }


def _log_edges(low: float, high: float, n_bins: int) -> np.ndarray:
    if not (np.isfinite(high) and high > 0):
        high = 1.0
    if not (np.isfinite(low) and 0 < low < high):
        low = high * 1e-6
    return np.logspace(np.log10(low), np.log10(high), n_bins + 1)


def _data_limit(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    q = float(np.quantile(finite, 0.999)) if finite.size else 0.0
    return 1.2 * q if q > 0 else 1.0


_LABELS = {
    "E_layer": ("E_layer {} [MeV]", True),
    "sparsity": ("fraction of voxels at 0, layer {}", False),
    "EC_eta": ("centre of energy in eta, layer {} [mm]", False),
    "EC_phi": ("centre of energy in phi, layer {} [mm]", False),
    "width_eta": ("width in eta, layer {} [mm]", False),
    "width_phi": ("width in phi, layer {} [mm]", False),
    "EC_r": ("centre of energy in r, layer {} [mm]", False),
    "width_r": ("width in r, layer {} [mm]", False),
}


def split_name(name: str) -> tuple[str, int | None]:
    """``"EC_eta_12"`` -> (``"EC_eta"``, 12); ``"E_tot"`` -> (``"E_tot"``, None)."""
    head, _, tail = name.rpartition("_")
    if head in _LABELS and tail.lstrip("-").isdigit():
        return head, int(tail)
    return name, None


def feature_binnings(
    reference: ShowerFeatures, geometry: Geometry, threshold: float
) -> dict[str, Binning]:
    """The bins of every column of ``reference.columns()`` (see the module docstring)."""
    cols = reference.columns()
    out: dict[str, Binning] = {}
    resp = cols["response"]
    inside = np.mean((resp >= 0.5) & (resp <= 1.5)) if len(resp) else 1.0
    hi = 1.5 if inside >= 0.9 else max(1.5, float(np.max(resp)))
    lo = 0.5 if inside >= 0.9 else 0.0
    out["response"] = Binning(np.linspace(lo, hi, 101), False, "E_tot / E_inc", "response")
    e_tot = cols["E_tot"]
    positive = e_tot[e_tot > 0]
    out["E_tot"] = Binning(
        _log_edges(float(positive.min()) if positive.size else 0.0, float(e_tot.max()), 40),
        True,
        "E_tot [MeV]",
        "E_tot",
    )
    for name, values in cols.items():
        group, layer = split_name(name)
        if layer is None:
            continue
        fmt, log = _LABELS[group]
        if group == "E_layer":
            pos = values[values > 0]
            low = threshold if threshold > 0 else (float(pos.min()) if pos.size else 0.0)
            edges = _log_edges(low, float(values.max()), 40)
        elif group == "sparsity":
            edges = np.linspace(0.0, 1.0, 21)
        elif group in ("EC_eta", "EC_phi"):
            lim = 30.0 if geometry.name in _DS23 else _data_limit(values)
            edges = np.linspace(-lim, lim, 101)
        elif group == "EC_r":
            edges = np.linspace(0.0, _data_limit(values), 101)
        else:  # widths
            lim = 30.0 if geometry.name in _DS23 else _data_limit(values)
            edges = np.linspace(0.0, lim, 101)
        out[name] = Binning(edges, log, fmt.format(layer), group, layer)
    return out


def histogram_counts(values: np.ndarray, binning: Binning) -> np.ndarray:
    """Counts of ``values`` in the bins (entries outside are dropped), shape (n_bins,)."""
    values = np.asarray(values, dtype=np.float64)
    if binning.log:  # uniform bins in log10 use numpy's fast path
        positive = values[values > 0]
        counts, _ = np.histogram(np.log10(positive), np.log10(binning.edges))
        return counts
    counts, _ = np.histogram(values, binning.edges)
    return counts


def density(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts -> a unit-area density over the bins (all zeros when there are no counts)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return np.zeros_like(counts)
    return counts / (total * np.diff(edges))


def separation_power(density_1: np.ndarray, density_2: np.ndarray, edges: np.ndarray) -> float:
    """S = 1/2 sum (h1 - h2)^2 / (h1 + h2) on bin-width-weighted unit-area densities; in [0, 1]."""
    w = np.diff(edges)
    h1, h2 = np.asarray(density_1) * w, np.asarray(density_2) * w
    return float(0.5 * np.sum((h1 - h2) ** 2 / (h1 + h2 + 1e-16)))


def histogram_pairs(
    reference: ShowerFeatures, generated: ShowerFeatures, binnings: dict[str, Binning]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(reference counts, generated counts) of every binned feature, keyed by column name."""
    ref_cols, gen_cols = reference.columns(), generated.columns()
    return {
        name: (histogram_counts(ref_cols[name], b), histogram_counts(gen_cols[name], b))
        for name, b in binnings.items()
    }


def separation_powers(
    reference: ShowerFeatures,
    generated: ShowerFeatures,
    binnings: dict[str, Binning],
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, float]:
    """Separation power of every binned feature, keyed by column name (``pairs``: counts from
    :func:`histogram_pairs`, computed here when not given)."""
    pairs = histogram_pairs(reference, generated, binnings) if pairs is None else pairs
    out = {}
    for name, binning in binnings.items():
        ref_counts, gen_counts = pairs[name]
        out[name] = separation_power(
            density(ref_counts, binning.edges), density(gen_counts, binning.edges), binning.edges
        )
    return out


class VoxelSpectrum:
    """Running histogram of voxel energies above a threshold, filled chunk by chunk.

    Counts are kept in fine logarithmic bins (``per_decade`` per decade over ``n_decades``
    decades from the threshold, or from 1e-4 MeV when the threshold is 0); :meth:`edges_for`
    picks 50 coarse bins that are unions of fine bins, from the smallest to just above the
    largest reference voxel, so that both samples are rebinned exactly. Zero voxels are not
    counted.
    """

    def __init__(self, threshold: float, *, per_decade: int = 1000, n_decades: int = 14) -> None:
        self.low = float(threshold) if threshold > 0 else 1e-4
        self.per_decade = per_decade
        self.n_fine = per_decade * n_decades
        self.counts = np.zeros(self.n_fine, dtype=np.int64)
        self.underflow = 0
        self.overflow = 0
        self.min_value = np.inf
        self.max_value = 0.0

    @property
    def fine_edges(self) -> np.ndarray:
        return self.low * 10.0 ** (np.arange(self.n_fine + 1) / self.per_decade)

    def update(self, voxels: np.ndarray) -> None:
        """Add the positive entries of ``voxels`` (any shape, MeV)."""
        v = np.asarray(voxels).reshape(-1)
        v = v[v > 0]
        if v.size == 0:
            return
        self.min_value = min(self.min_value, float(v.min()))
        self.max_value = max(self.max_value, float(v.max()))
        pos = np.log10(v, dtype=np.float64)
        pos -= np.log10(self.low)
        pos *= self.per_decade
        idx = np.floor(pos, out=pos).astype(np.int64)
        n_under = int(np.count_nonzero(idx < 0))
        n_over = int(np.count_nonzero(idx >= self.n_fine))
        np.clip(idx, 0, self.n_fine - 1, out=idx)
        counts = np.bincount(idx, minlength=self.n_fine)
        counts[0] -= n_under  # the clipped entries are counted apart
        counts[-1] -= n_over
        self.counts += counts
        self.underflow += n_under
        self.overflow += n_over

    def edges_for(self, n_bins: int = 50) -> np.ndarray:
        """``n_bins`` log bins covering this (reference) spectrum, as unions of fine bins."""
        if self.max_value <= 0:
            return self.fine_edges[: n_bins + 1]
        start = max(
            0, int(np.floor(np.log10(max(self.min_value, self.low) / self.low) * self.per_decade))
        )
        stop = int(np.ceil(np.log10(self.max_value / self.low) * self.per_decade)) + 1
        stop = min(max(stop, start + n_bins), self.n_fine)
        step = max(1, int(np.ceil((stop - start) / n_bins)))
        stop = min(start + step * n_bins, self.n_fine)
        idx = np.arange(start, stop + 1, step)
        return self.fine_edges[idx]

    def rebinned(self, edges: np.ndarray) -> np.ndarray:
        """Counts in coarse ``edges`` taken from :meth:`edges_for` (shape (len(edges) - 1,))."""
        idx = np.rint(np.log10(edges / self.low) * self.per_decade).astype(np.int64)
        cum = np.concatenate([[0], np.cumsum(self.counts)])
        return cum[idx[1:]] - cum[idx[:-1]]
