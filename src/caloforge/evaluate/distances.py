"""Fréchet and kernel physics distances (FPD, KPD) between two feature samples.

Both follow the definitions of Kansal et al. (arXiv:2211.10295) used by the CaloChallenge 2022:

* **FPD**: the Fréchet distance between Gaussians fitted to the two samples,
  ``|mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1^1/2 S_2 S_1^1/2)^1/2)``, which is biased in the batch
  size N. It is measured for ``n_sizes`` batch sizes evenly spaced in 1/N between ``min_batch``
  and ``max_batch`` (``n_batches`` batches drawn with replacement at each size, averaged), and a
  straight line in 1/N is fitted; FPD is its intercept (N -> infinity) +- the fit error.
* **KPD**: the unbiased estimator of the squared maximum mean discrepancy with the polynomial
  kernel ``k(x, y) = (x.y / d + 1)^4``, over ``n_batches`` batches of ``batch`` showers; KPD is
  the median +- half the 16-84% range of the batch values. Its expectation is exactly 0 when
  both samples come from one distribution, so it can be negative.

Before either, every feature is divided by its maximum absolute value in the reference sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from caloforge.errors import ConfigError


@dataclass(frozen=True)
class DistanceResult:
    """A distance with its uncertainty and how it was measured."""

    value: float
    error: float
    batch_sizes: list[int]
    n_batches: int
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def normalise_by_reference(
    reference: np.ndarray, generated: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Divide every column of both (N, d) samples by its max |value| in ``reference``."""
    scale = np.max(np.abs(reference), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return reference / scale, generated / scale


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(
    mu_1: np.ndarray, cov_1: np.ndarray, mu_2: np.ndarray, cov_2: np.ndarray
) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu_1, cov_1) and N(mu_2, cov_2).

    ``tr((S_1 S_2)^1/2)`` is computed as ``tr((S_1^1/2 S_2 S_1^1/2)^1/2)`` from two symmetric
    eigendecompositions, which is stable for singular covariances.
    """
    mu_1, mu_2 = np.atleast_1d(mu_1), np.atleast_1d(mu_2)
    cov_1, cov_2 = np.atleast_2d(cov_1), np.atleast_2d(cov_2)
    root_1 = _sqrtm_psd(cov_1)
    middle = root_1 @ cov_2 @ root_1
    eig = np.linalg.eigvalsh(0.5 * (middle + middle.T))
    tr_sqrt = np.sum(np.sqrt(np.clip(eig, 0.0, None)))
    diff = mu_1 - mu_2
    return float(diff @ diff + np.trace(cov_1) + np.trace(cov_2) - 2.0 * tr_sqrt)


def _check_samples(reference: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(reference, dtype=np.float64), np.asarray(generated, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ConfigError(
            f"feature samples must be (N, d) arrays with the same d, got {x.shape} and {y.shape}"
        )
    if len(x) < 2 or len(y) < 2:
        raise ConfigError(f"need at least 2 showers per sample, got {len(x)} and {len(y)}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ConfigError("feature samples contain NaN or Inf")
    return x, y


def fpd(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    min_batch: int = 10_000,
    max_batch: int = 50_000,
    n_sizes: int = 10,
    n_batches: int = 20,
    normalise: bool = True,
    seed: int = 0,
) -> DistanceResult:
    """Fréchet physics distance extrapolated to infinite batch size.

    Args:
        reference, generated: feature samples, shapes (N1, d) and (N2, d).
        min_batch, max_batch: smallest and largest batch size. When the smaller sample has
            fewer than ``max_batch`` rows both are scaled down by the same factor (and the
            result's ``note`` says so).
        n_sizes: number of batch sizes, evenly spaced in 1/N.
        n_batches: batches (drawn with replacement) averaged at each size.
        normalise: divide features by their max |value| in the reference first.
        seed: seed of the batch draws.

    Returns:
        intercept of the straight-line fit of mean distance against 1/N, and its standard error.
    """
    x, y = _check_samples(reference, generated)
    if normalise:
        x, y = normalise_by_reference(x, y)
    n_avail = min(len(x), len(y))
    note = ""
    if n_avail < max_batch:
        factor = n_avail / max_batch
        min_batch, max_batch = max(2, int(min_batch * factor)), n_avail
        note = (
            f"only {n_avail} showers per sample, so FPD batch sizes were scaled down to "
            f"{min_batch}-{max_batch} (the protocol asks for up to {int(max_batch / factor)})"
        )
    sizes = (1.0 / np.linspace(1.0 / min_batch, 1.0 / max_batch, n_sizes)).astype(np.int64)
    rng = np.random.default_rng(seed)
    means = []
    for n in sizes:
        vals = []
        for _ in range(n_batches):
            a = x[rng.integers(0, len(x), n)]
            b = y[rng.integers(0, len(y), n)]
            vals.append(
                frechet_distance(
                    a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
                )
            )
        means.append(np.mean(vals))
    inv = 1.0 / sizes
    design = np.stack([inv, np.ones_like(inv)], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.asarray(means), rcond=None)
    resid = np.asarray(means) - design @ coef
    dof = max(len(sizes) - 2, 1)
    cov = np.linalg.pinv(design.T @ design) * (resid @ resid) / dof
    return DistanceResult(
        float(coef[1]), float(np.sqrt(max(cov[1, 1], 0.0))), sizes.tolist(), n_batches, note
    )


def _kernel_sum(a: np.ndarray, b: np.ndarray, degree: int, block: int, same: bool) -> float:
    """Sum of (a.b / d + 1)^degree over all pairs, leaving out the diagonal when ``same``."""
    d = a.shape[1]
    total = 0.0
    for start in range(0, len(a), block):
        k = (a[start : start + block] @ b.T / d + 1.0) ** degree
        total += float(k.sum())
        if same:
            rows = np.arange(start, min(start + block, len(a)))
            total -= float(k[rows - start, rows].sum())
    return total


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, *, degree: int = 4, block: int = 2048) -> float:
    """Unbiased MMD^2 of samples x (m, d) and y (n, d) with kernel (x.y/d + 1)^degree.

    ``sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (n (n-1))
    - 2 sum_{i, j} k(x_i, y_j) / (m n)``, computed in row blocks so memory stays
    ``block x max(m, n)``.
    """
    m, n = len(x), len(y)
    kxx = _kernel_sum(x, x, degree, block, True) / (m * (m - 1))
    kyy = _kernel_sum(y, y, degree, block, True) / (n * (n - 1))
    kxy = _kernel_sum(x, y, degree, block, False) / (m * n)
    return kxx + kyy - 2.0 * kxy


def kpd(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    batch: int = 10_000,
    n_batches: int = 10,
    degree: int = 4,
    normalise: bool = True,
    seed: int = 0,
) -> DistanceResult:
    """Kernel physics distance: median and half the 16-84% range of unbiased MMD^2 batches.

    Each batch draws ``batch`` rows *without* replacement from each sample, so every batch is
    an i.i.d. sample and the estimate is exactly unbiased (drawing with replacement, as the
    JetNet code does, adds a positive bias of order 1/N). When the smaller sample has fewer
    than ``2 * batch`` rows, batches hold half of it (and ``note`` says so).
    """
    x, y = _check_samples(reference, generated)
    if normalise:
        x, y = normalise_by_reference(x, y)
    n_avail = min(len(x), len(y))
    note = ""
    if n_avail < 2 * batch:
        note = (
            f"only {n_avail} showers per sample, so KPD batches hold {n_avail // 2} showers "
            f"(the protocol asks for {batch})"
        )
        batch = max(2, n_avail // 2)
    rng = np.random.default_rng(seed)
    vals = np.array(
        [
            mmd2_unbiased(
                x[rng.choice(len(x), batch, replace=False)],
                y[rng.choice(len(y), batch, replace=False)],
                degree=degree,
            )
            for _ in range(n_batches)
        ]
    )
    lo, hi = np.percentile(vals, [16.0, 84.0])
    return DistanceResult(float(np.median(vals)), float((hi - lo) / 2), [batch], n_batches, note)
