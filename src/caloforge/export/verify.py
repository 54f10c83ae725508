"""Does an exported model reproduce the original? Error measures and tolerances.

Exported and original run on the same latent inputs; three measures compare their showers:

* ``peak error``: for each shower, max over voxels |exported - original| divided by the
  original's largest voxel energy; the worst shower counts. Dividing by each shower's own peak
  keeps a 1 GeV shower as visible as a 1 TeV one.
* ``total-energy error``: for each shower, |sum exported - sum original| / sum original; the
  worst shower counts.
* ``profile error``: the mean shower's energy profile along the layer axis and along the
  radial (cylindrical) or x (Cartesian) axis; sum |exported - original| / sum original over
  the bins, the worse of the two axes.

Default tolerances (:data:`TOLERANCES`), per precision:

=========  ==========  ==================  =============
precision  peak error  total-energy error  profile error
=========  ==========  ==================  =============
fp32       1e-4        1e-4                1e-4
fp16       2e-2        1e-2                1e-2
int8       (reported)  5e-2                5e-2
=========  ==========  ==================  =============

int8 is lossy by design, and decoders that compare probabilities with uniform draws (the
QVAE) flip single voxels on or off under any perturbation, so for int8 the single-voxel peak
error is reported but does not decide; the shower-level quantities do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from caloforge.errors import ConfigError
from caloforge.geometry import Geometry


@dataclass(frozen=True)
class Tolerance:
    """Largest accepted errors, as fractions (see the module docstring); None: not checked."""

    peak: float | None
    total_energy: float
    profile: float


#: default tolerance per precision
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(peak=1e-4, total_energy=1e-4, profile=1e-4),
    "fp16": Tolerance(peak=2e-2, total_energy=1e-2, profile=1e-2),
    "int8": Tolerance(peak=None, total_energy=5e-2, profile=5e-2),
}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of comparing exported and original showers on the same inputs.

    Attributes:
        n_showers: how many showers were compared.
        peak_error: worst per-shower max |difference| / peak voxel energy.
        peak_error_median: median over showers of the same.
        total_energy_error: worst per-shower relative difference of the summed energy.
        profile_error: worse of the layer and radial/x profile differences (None without a
            geometry).
        max_abs_error_mev: largest absolute voxel difference, MeV.
        tolerance: what was required.
        passed: every checked error within tolerance and no NaN/Inf in the exported output.
    """

    n_showers: int
    peak_error: float
    peak_error_median: float
    total_energy_error: float
    profile_error: float | None
    max_abs_error_mev: float
    tolerance: Tolerance
    passed: bool

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CheckResult:
        return cls(
            int(d["n_showers"]),
            float(d["peak_error"]),
            float(d["peak_error_median"]),
            float(d["total_energy_error"]),
            None if d.get("profile_error") is None else float(d["profile_error"]),
            float(d["max_abs_error_mev"]),
            Tolerance(**d["tolerance"]),
            bool(d["passed"]),
        )

    def summary(self) -> str:
        """One line: the errors against the tolerance and the verdict."""
        tol = self.tolerance
        peak_tol = "reported only" if tol.peak is None else f"tol {tol.peak:.0e}"
        parts = [
            f"peak error {self.peak_error:.2e} ({peak_tol})",
            f"total-energy error {self.total_energy_error:.2e} (tol {tol.total_energy:.0e})",
        ]
        if self.profile_error is not None:
            parts.append(f"profile error {self.profile_error:.2e} (tol {tol.profile:.0e})")
        verdict = "within" if self.passed else "OUTSIDE"
        return f"{verdict} tolerance on {self.n_showers} showers: " + ", ".join(parts)


def tolerance_for(precision: str, value: float | None = None) -> Tolerance:
    """The default tolerance of ``precision``; ``value`` replaces every checked fraction."""
    if precision not in TOLERANCES:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(TOLERANCES)}")
    default = TOLERANCES[precision]
    if value is None:
        return default
    if not value > 0:
        raise ConfigError(f"the tolerance must be > 0, got {value}")
    return Tolerance(
        peak=None if default.peak is None else value, total_energy=value, profile=value
    )


def profile_axes(geometry: Geometry) -> dict[str, np.ndarray]:
    """Bin index of every voxel along ``layer`` and ``radial`` (cylindrical) or ``x`` axes."""
    layer, a, b = geometry.unravel(np.arange(geometry.n_voxels))
    second = ("radial", b) if geometry.kind == "cylindrical" else ("x", a)
    return {"layer": np.asarray(layer), second[0]: np.asarray(second[1])}


def mean_profiles(showers: np.ndarray, geometry: Geometry) -> dict[str, np.ndarray]:
    """The mean shower's energy (MeV) per bin along each axis of :func:`profile_axes`."""
    mean = np.asarray(showers, dtype=np.float64).mean(axis=0)
    return {
        axis: np.bincount(index, weights=mean, minlength=int(index.max()) + 1)
        for axis, index in profile_axes(geometry).items()
    }


def compare_showers(
    original: np.ndarray,
    exported: np.ndarray,
    tolerance: Tolerance,
    geometry: Geometry | None = None,
) -> CheckResult:
    """Compare two (N, V) arrays of voxel energies (MeV) produced from the same inputs."""
    original = np.asarray(original, dtype=np.float64)
    exported = np.asarray(exported, dtype=np.float64)
    if original.shape != exported.shape:
        raise ConfigError(
            f"exported model returns showers of shape {exported.shape}, the original "
            f"{original.shape}"
        )
    inf = float("inf")
    finite = bool(np.all(np.isfinite(exported)))
    diff = np.abs(exported - original)
    tiny = np.finfo(np.float64).tiny
    peak = np.maximum(np.abs(original).max(axis=1), tiny)
    per_shower_peak = diff.max(axis=1) / peak
    total = np.maximum(np.abs(original.sum(axis=1)), tiny)
    per_shower_total = np.abs(exported.sum(axis=1) - original.sum(axis=1)) / total
    profile_error = None
    if geometry is not None:
        profile_error = inf
        if finite:
            ref, new = mean_profiles(original, geometry), mean_profiles(exported, geometry)
            profile_error = max(
                float(np.abs(new[k] - ref[k]).sum() / max(np.abs(ref[k]).sum(), tiny)) for k in ref
            )
    peak_error = float(per_shower_peak.max()) if finite else inf
    total_error = float(per_shower_total.max()) if finite else inf
    passed = (
        finite
        and (tolerance.peak is None or peak_error <= tolerance.peak)
        and total_error <= tolerance.total_energy
        and (profile_error is None or profile_error <= tolerance.profile)
    )
    return CheckResult(
        n_showers=len(original),
        peak_error=peak_error,
        peak_error_median=float(np.median(per_shower_peak)) if finite else inf,
        total_energy_error=total_error,
        profile_error=profile_error,
        max_abs_error_mev=float(diff.max()) if finite else inf,
        tolerance=tolerance,
        passed=passed,
    )
