"""Fréchet and kernel physics distances (FPD, KPD) between two feature samples.

Both follow Kansal et al. (arXiv:2211.10295) as the official CaloChallenge evaluation computes
them, through JetNet's ``jetnet.evaluation.fpd(reference, generated, min_samples=10000)`` and
``kpd(reference, generated, batch_size=10000)``; caloforge reimplements that procedure step by
step, so the same features and seed give the same batches and (up to summation order) the same
numbers:

* every feature is divided by its maximum absolute value in the *reference* sample (a feature
  that is 0 there is left as it is);
* **FPD**: ``n_sizes`` batch sizes ``int32(1 / linspace(1/min_batch, 1/max_batch, n_sizes))``;
  for each, ``n_batches`` batches drawn *with replacement* by ``numpy.random.default_rng(seed)``
  (``choice`` of reference rows, then of generated rows); the Fréchet distance
  ``|mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 sqrtm(S_1 S_2))`` of each pair, averaged per size; a
  straight line in 1/N fitted by ``scipy.optimize.curve_fit`` with intercept and slope bounded
  to be >= 0; FPD is the intercept +- its fit error. Batch sizes are never scaled down for small
  samples (the batches then repeat showers), as in the official code.
* **KPD**: ``n_batches`` batches of ``batch`` rows drawn with replacement, batch ``i`` by
  ``default_rng(seed + 1000 i)``; the unbiased MMD^2 estimate with the polynomial kernel
  ``(x.y / d + 1)^4`` of each; KPD is the median +- half the (16.275, 83.725) percentile range.

The official code uses seed 42 for both.
"""

from __future__ import annotations

import warnings
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


def frechet_distance(
    mu_1: np.ndarray, cov_1: np.ndarray, mu_2: np.ndarray, cov_2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu_1, cov_1) and N(mu_2, cov_2).

    ``tr sqrtm(cov_1 cov_2)`` is taken from ``scipy.linalg.sqrtm`` of the product; if that is
    not finite, ``eps`` is added to both diagonals first; an imaginary part from rounding is
    dropped (as in the reference implementation).
    """
    from scipy import linalg

    mu_1, mu_2 = np.atleast_1d(mu_1), np.atleast_1d(mu_2)
    cov_1, cov_2 = np.atleast_2d(cov_1), np.atleast_2d(cov_2)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # a singular product (constant features) is handled below, as in the reference code
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov_1.dot(cov_2))
        if not np.isfinite(covmean).all():
            offset = np.eye(cov_1.shape[0]) * eps
            covmean = linalg.sqrtm((cov_1 + offset).dot(cov_2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu_1 - mu_2
    return float(diff.dot(diff) + np.trace(cov_1) + np.trace(cov_2) - 2 * np.trace(covmean))


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
    seed: int = 42,
) -> DistanceResult:
    """Fréchet physics distance extrapolated to infinite batch size (see the module docstring).

    Args:
        reference, generated: feature samples, shapes (N1, d) and (N2, d).
        min_batch, max_batch: smallest and largest batch size (official: 10 000 and 50 000).
        n_sizes: number of batch sizes, evenly spaced in 1/N (official: 10).
        n_batches: batches (drawn with replacement) averaged at each size (official: 20).
        normalise: divide features by their max |value| in the reference first.
        seed: seed of the batch draws (official: 42).

    Returns:
        intercept (>= 0) of the straight-line fit of mean distance against 1/N, and its error.
    """
    from scipy.optimize import curve_fit

    x, y = _check_samples(reference, generated)
    if normalise:
        x, y = normalise_by_reference(x, y)
    note = ""
    if min(len(x), len(y)) < max_batch:
        note = (
            f"FPD batches of up to {max_batch} showers were drawn with replacement from "
            f"samples of {len(x)} and {len(y)} showers (50 000 are recommended)"
        )
    sizes = (1 / np.linspace(1.0 / min_batch, 1.0 / max_batch, n_sizes)).astype("int32")
    rng = np.random.default_rng(seed)
    means = []
    for n in sizes:
        vals = []
        for _ in range(n_batches):
            a = x[rng.choice(len(x), size=n)]
            b = y[rng.choice(len(y), size=n)]
            vals.append(
                frechet_distance(
                    np.mean(a, axis=0), np.cov(a, rowvar=False),
                    np.mean(b, axis=0), np.cov(b, rowvar=False),
                )
            )  # fmt: skip
        means.append(np.mean(vals))

    def line(inv_n, intercept, slope):
        return intercept + slope * inv_n

    params, covs = curve_fit(line, 1 / sizes, means, bounds=([0, 0], [np.inf, np.inf]))
    return DistanceResult(
        float(params[0]), float(np.sqrt(np.diag(covs)[0])), sizes.tolist(), n_batches, note
    )


def _kernel_sum(a: np.ndarray, b: np.ndarray, degree: int, block: int) -> tuple[float, float]:
    """(sum, trace) of the matrix (a b^T / d + 1)^degree, computed in row blocks (the trace is
    meaningful when a is b)."""
    gamma = 1.0 / a.shape[-1]
    total, trace = 0.0, 0.0
    for start in range(0, len(a), block):
        k = (a[start : start + block] @ b.T * gamma + 1.0) ** degree
        total += float(k.sum())
        rows = np.arange(start, min(start + block, len(a)))
        if rows[-1] < k.shape[1]:
            trace += float(k[rows - start, rows].sum())
    return total, trace


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, *, degree: int = 4, block: int = 2048) -> float:
    """Unbiased MMD^2 of samples x (m, d) and y (n, d) with kernel (x.y/d + 1)^degree.

    ``(sum K_xx - tr K_xx) / (m (m-1)) + (sum K_yy - tr K_yy) / (n (n-1)) - 2 mean K_xy``,
    computed in row blocks so memory stays ``block x max(m, n)``.
    """
    m, n = len(x), len(y)
    sxx, txx = _kernel_sum(x, x, degree, block)
    syy, tyy = _kernel_sum(y, y, degree, block)
    sxy, _ = _kernel_sum(x, y, degree, block)
    return (sxx - txx) / (m * (m - 1)) + (syy - tyy) / (n * (n - 1)) - 2 * (sxy / (m * n))


def kpd(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    batch: int = 10_000,
    n_batches: int = 10,
    degree: int = 4,
    normalise: bool = True,
    seed: int = 42,
) -> DistanceResult:
    """Kernel physics distance: median and half the 16.275-83.725 percentile range of the
    unbiased MMD^2 of ``n_batches`` batches of ``batch`` rows drawn with replacement, batch
    ``i`` by ``default_rng(seed + 1000 i)`` (official: 10 batches of 10 000, seed 42)."""
    x, y = _check_samples(reference, generated)
    if normalise:
        x, y = normalise_by_reference(x, y)
    note = ""
    if min(len(x), len(y)) < batch:
        note = (
            f"KPD batches of {batch} showers were drawn with replacement from samples of "
            f"{len(x)} and {len(y)} showers"
        )
    vals = []
    for i in range(n_batches):
        rng = np.random.default_rng(seed + i * 1000)
        a = x[rng.choice(len(x), size=batch)]
        b = y[rng.choice(len(y), size=batch)]
        vals.append(mmd2_unbiased(a, b, degree=degree))
    lo, hi = np.percentile(vals, [16.275, 83.725])
    return DistanceResult(float(np.median(vals)), float((hi - lo) / 2), [batch], n_batches, note)
