"""Precision, recall, density and coverage (PRDC) of generated showers, as the official
CaloChallenge ``prdc`` mode computes them.

The official code (``evaluate.py -m prdc``) sets zero voxels of the *thresholded* showers to
0.1 MeV, takes log10 of every voxel, and calls ``prdc.compute_prdc(real, fake, nearest_k=5)``
(Naeem et al. 2020, arXiv:2002.09797): with r_i the distance of reference shower i to its k-th
nearest reference neighbour (itself excluded), s_j the same within the generated sample and
d_ij the reference-generated distances,

* precision = fraction of generated showers with d_ij < r_i for some i;
* recall = fraction of reference showers with d_ij < s_j for some j;
* density = mean over generated showers of #{i: d_ij < r_i} / k;
* coverage = fraction of reference showers whose nearest generated shower has d_ij < r_i.

Distances follow scikit-learn's Euclidean distances for float32 inputs (squared distance
expanded as |x|^2 + |y|^2 - 2 x.y in float64, rounded to float32, clipped at 0, the diagonal of
a self-distance matrix set to 0, square root in float32), computed in row blocks so memory
stays ``block x N``.
"""

from __future__ import annotations

import numpy as np

from caloforge.errors import ConfigError


def prdc_features(thresholded_showers: np.ndarray) -> np.ndarray:
    """log10 of the voxels with zeros set to 0.1 MeV: (N, V) -> (N, V), the input's dtype."""
    x = np.asarray(thresholded_showers)
    return np.log10(np.where(x == 0.0, 0.1 * np.ones_like(x), x))


def _distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray, same_offset: int | None):
    """Float32 Euclidean distances of rows ``a`` to all rows ``b`` (scikit-learn's float32
    path); ``same_offset``: ``a`` is rows ``same_offset...`` of ``b`` (diagonal set to 0)."""
    a64 = a.astype(np.float64)
    d = -2 * (a64 @ b.T)
    d += np.einsum("ij,ij->i", a64, a64)[:, None]
    d += b_sq[None, :]
    d = d.astype(np.float32)
    np.maximum(d, 0, out=d)
    if same_offset is not None:
        rows = np.arange(len(a))
        d[rows, same_offset + rows] = 0
    return np.sqrt(d)


def _kth_neighbour_radii(x: np.ndarray, k: int, block: int) -> np.ndarray:
    """Distance of every row to its k-th nearest other row (k + 1 counting itself)."""
    x64 = x.astype(np.float64)
    sq = np.einsum("ij,ij->i", x64, x64)
    out = np.empty(len(x), dtype=np.float32)
    for start in range(0, len(x), block):
        d = _distances(x[start : start + block], x64, sq, start)
        part = np.partition(d, k, axis=1)[:, : k + 1]
        out[start : start + block] = part.max(axis=1)
    return out


def prdc(
    reference: np.ndarray, generated: np.ndarray, *, nearest_k: int = 5, block: int = 1024
) -> dict[str, float]:
    """PRDC of ``generated`` (M, D) against ``reference`` (N, D) features from
    :func:`prdc_features` (official: nearest_k = 5).

    Returns:
        ``precision``, ``recall``, ``density``, ``coverage``.
    """
    x, y = np.asarray(reference), np.asarray(generated)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ConfigError(
            f"PRDC features must be (N, D) with the same D, got {x.shape} and {y.shape}"
        )
    if min(len(x), len(y)) <= nearest_k:
        raise ConfigError(
            f"PRDC with nearest_k={nearest_k} needs more than {nearest_k} showers per sample"
        )
    r_real = _kth_neighbour_radii(x, nearest_k, block)
    r_fake = _kth_neighbour_radii(y, nearest_k, block)
    y64 = y.astype(np.float64)
    y_sq = np.einsum("ij,ij->i", y64, y64)
    inside_real = np.zeros(len(y), dtype=np.int64)  # per generated: # reference balls holding it
    recalled = np.zeros(len(x), dtype=bool)
    covered = np.zeros(len(x), dtype=bool)
    for start in range(0, len(x), block):
        d = _distances(x[start : start + block], y64, y_sq, None)
        radii = r_real[start : start + block, None]
        inside_real += (d < radii).sum(axis=0)
        recalled[start : start + block] = (d < r_fake[None, :]).any(axis=1)
        covered[start : start + block] = d.min(axis=1) < r_real[start : start + block]
    return {
        "precision": float((inside_real > 0).mean()),
        "recall": float(recalled.mean()),
        "density": float((1.0 / float(nearest_k)) * inside_real.mean()),
        "coverage": float(covered.mean()),
    }
