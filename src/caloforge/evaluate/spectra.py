"""Running histograms of voxel energies, filled chunk by chunk while features are extracted.

:class:`VoxelHistogram` counts in fixed edges; :class:`VoxelSpectrum` keeps fine log bins and
rebins them exactly once the reference's range is known. Both are filled by
:func:`caloforge.evaluate.features.stream_features` and read by
:mod:`caloforge.evaluate.histograms` (which re-exports them); this module imports neither.
"""

from __future__ import annotations

import numpy as np


class VoxelHistogram:
    """Counts of voxel energies in fixed edges, filled chunk by chunk (``numpy.histogram``
    semantics, so the sum over chunks equals one histogram of all voxels)."""

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.counts = np.zeros(len(self.edges) - 1, dtype=np.int64)

    def update(self, voxels: np.ndarray) -> None:
        """Add every entry of ``voxels`` (any shape, MeV; zeros fall below the first edge)."""
        with np.errstate(invalid="ignore"):
            counts, _ = np.histogram(np.asarray(voxels).reshape(-1), self.edges)
        self.counts += counts


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
