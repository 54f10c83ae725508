"""Real Geant4 and published numbers that the shared statistics do not hold, and refsim's values.

The calibration (:mod:`caloforge.refsim.validation`) matches means and standard deviations of
transformed quantities over all ds2 energies together. This module holds *other* numbers about
the same calorimeters, each with its source, and the observables to compute refsim's value of
each from a ds2 sample (docs/refsim.md, "Checked against other Geant4 numbers";
``benchmarks/refsim_physics_checks.py`` prints them side by side).

Sources (only numbers found written down; nothing read off a figure):

* ``pinnde``: measurements on the real CaloChallenge ``dataset_2_1.hdf5`` (Zenodo 6366271) in the
  public repository ``aenorhabditis6/gsoc-2026-ml4sci-pinnde`` (GSoC 2026, ML4SCI), files
  ``pinnde_eval/DEVLOG.md`` (sections 11 and 14, commit 70133b8a), ``HANDOFF.md`` (section 6)
  and ``FINAL_REPORT.md`` (section 3).
* ``pdg``: Particle Data Group, review "Passage of particles through matter", section
  "Electromagnetic cascades": t_max = ln(E/E_c) + C with C = -0.5 for electrons; on average
  only 10 % of the energy lies outside a cylinder of radius R_M, about 99 % inside 3.5 R_M
  (homogeneous media; a rule of thumb, not a fit).
* ``gp``: Grindhammer & Peters, hep-ex/0001020: mean depth of maximum of the average profile
  T = ln y - 0.858 (homogeneous), minus 0.59/F_S + 0.53 (1 - e_hat) in a sampling calorimeter.
* ``calice``: CALICE Si-W physics prototype (0.525 mm Si; 1.4/2.8/4.2 mm W), measured with
  electrons: sigma/E = 16.6 %/sqrt(E/GeV) (+) 1.1 % (arXiv:0811.2354). A different stack from
  ds2 (1.4 mm W only, 0.3 mm Si): an order of magnitude, not a target.

All voxel arrays are ``(N, 45, 16, 9)`` = (shower, layer, angle, ring) in MeV, the ds2 order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ds2 ring edges in mm (Geant4 example Par04: 9 rings of 4.65 mm; CaloChallenge binning file)
DS2_R_EDGES_MM = np.arange(10) * 4.65


@dataclass(frozen=True)
class Reference:
    """One external number: ``value`` (or ``values``), what it is and where it was found."""

    key: str
    value: float | tuple[float, ...]
    what: str
    source: str
    sample: str


_PINNDE = "aenorhabditis6/gsoc-2026-ml4sci-pinnde"
#: real ds2 (Geant4 FTFP_BERT, Par04 Si-W, dataset_2_1.hdf5) numbers not in the shared statistics
DS2_REAL = {
    r.key: r
    for r in (
        Reference(
            "zero_voxel_fraction",
            0.7633,
            "fraction of voxels exactly 0 (threshold 15.15 keV applied)",
            f"{_PINNDE} pinnde_eval/DEVLOG.md s.11",
            "first 2000 showers of dataset_2_1, 1-992 GeV",
        ),
        Reference(
            "lit_low_quartile",
            (6.0, 166.0, 395.0),
            "lit voxels per shower, lowest E_inc quartile: min / median / max",
            f"{_PINNDE} pinnde_eval/DEVLOG.md s.14 B",
            "5026 showers of dataset_2_1 in the lowest quartile (about 1-5.6 GeV)",
        ),
        Reference(
            "lit_high_quartile",
            (2224.0, 3874.0, 5496.0),
            "lit voxels per shower, highest E_inc quartile: min / median / max",
            f"{_PINNDE} pinnde_eval/DEVLOG.md s.14 B",
            "4990 showers of dataset_2_1 in the highest quartile (about 178-1000 GeV)",
        ),
        Reference(
            "corr_logE_sparsity",
            -0.94,
            "correlation of ln E_inc and the shower's zero-voxel fraction",
            f"{_PINNDE} pinnde_eval/DEVLOG.md s.11",
            "dataset_2_1, 1-1000 GeV",
        ),
        Reference(
            "corr_logE_zmean",
            0.87,
            "correlation of ln E_inc and the energy-weighted mean layer",
            f"{_PINNDE} pinnde_eval/DEVLOG.md s.11",
            "dataset_2_1, 1-1000 GeV",
        ),
        Reference(
            "corr_etot_sparsity_low",
            -0.951,
            "correlation of E_tot and zero-voxel fraction, lowest E_inc quartile",
            f"{_PINNDE} pinnde_eval/DEVLOG.md s.14 C",
            "dataset_2_1, lowest quartile",
        ),
        Reference(
            "empty_layer_fraction",
            0.178,
            "fraction of (shower, layer) pairs with no energy",
            f"{_PINNDE} FINAL_REPORT.md s.3",
            "real ds2 showers, 1-1000 GeV (which of the two files is not stated)",
        ),
        Reference(
            "empty_last_layer_fraction",
            0.51,
            "fraction of showers whose last layer (44) has no energy",
            f"{_PINNDE} FINAL_REPORT.md s.3",
            "real ds2 showers, 1-1000 GeV (which of the two files is not stated)",
        ),
        Reference(
            "response_above_one",
            0.034,
            "fraction of showers with E_tot > E_inc",
            f"{_PINNDE} HANDOFF.md s.6",
            "real ds2 showers, 1-1000 GeV (sample size not stated)",
        ),
        Reference(
            "ring_profile",
            (1.00, 0.28, 0.13, 0.08, 0.06, 0.04, 0.03, 0.03, 0.02),
            "mean voxel energy per ring (MeV-weighted: all showers, layers, angles), / ring 0",
            f"{_PINNDE} pinnde_eval/DEVLOG.md s.11",
            "first 2000 showers of dataset_2_1",
        ),
        Reference(
            "peak_layer",
            11.0,
            "layer with the largest mean energy (MeV-weighted mean profile)",
            f"{_PINNDE} pinnde_eval/DEVLOG.md s.11",
            "first 2000 showers of dataset_2_1",
        ),
        Reference(
            "median_response",
            0.78,
            "median E_tot / E_inc in every E_inc quartile",
            "shared geant4-stats README (public evaluation log of the real ds2 files)",
            "dataset_2 real files",
        ),
    )
}

#: PDG rules of thumb for the lateral containment of an EM shower (homogeneous medium)
PDG_CONTAINMENT = {1.0: 0.90, 3.5: 0.99}
#: CALICE Si-W ECAL electron resolution: stochastic and constant term
CALICE_RESOLUTION = (0.166, 0.011)


def as_voxels(showers: np.ndarray) -> np.ndarray:
    """(N, 6480) ds2 voxels (MeV) -> (N, 45, 16, 9) float64."""
    return np.asarray(showers, dtype=np.float64).reshape(-1, 45, 16, 9)


def lit_voxels(x: np.ndarray) -> np.ndarray:
    """Number of voxels > 0 per shower: shape (N,)."""
    return (x > 0).reshape(len(x), -1).sum(axis=1)


def lit_voxels_per_layer(x: np.ndarray) -> np.ndarray:
    """Number of voxels > 0 per shower and layer: shape (N, 45)."""
    return (x > 0).sum(axis=(2, 3))


def repeated_voxel_energy_fraction(x: np.ndarray) -> float:
    """Share of lit voxels whose energy equals that of another lit voxel of the same shower.

    ``x`` is (N, ...) voxel energies of any geometry. Equal spot energies (refsim 1-3) make every
    single-spot voxel of a layer hold the same energy; a continuous spectrum, as Geant4's,
    repeats essentially none (only coincidences of float rounding).
    """
    lit = repeated = 0
    for shower in np.asarray(x).reshape(len(x), -1):
        v = shower[shower > 0]
        lit += v.size
        repeated += v.size - np.unique(v).size
    return repeated / max(lit, 1)


def layer_energies(x: np.ndarray) -> np.ndarray:
    """Energy per shower and layer (MeV): shape (N, 45)."""
    return x.sum(axis=(2, 3))


def empty_layer_fractions(x: np.ndarray) -> np.ndarray:
    """Fraction of showers in which each layer has no energy: shape (45,)."""
    return (layer_energies(x) == 0).mean(axis=0)


def energy_weighted_ring_profile(x: np.ndarray) -> np.ndarray:
    """Mean voxel energy per ring over showers, layers and angles, divided by ring 0: (9,)."""
    prof = x.mean(axis=(0, 1, 2))
    return prof / prof[0]


def shares_from_ring_profile(profile: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """Ring shares of the summed energy from a mean-voxel-energy-per-ring profile: shape (9,).

    Every ds2 ring has the same number of voxels (45 layers x 16 angles), so the mean voxel
    energy of a ring is proportional to the ring's energy.
    """
    p = np.asarray(profile, dtype=float)
    return p / p.sum()


def ring_fractions(x: np.ndarray) -> np.ndarray:
    """Mean over showers of each ring's share of the shower energy: shape (9,)."""
    rings = x.sum(axis=(1, 2))
    tot = rings.sum(axis=1, keepdims=True)
    return (rings / np.where(tot > 0, tot, 1.0)).mean(axis=0)


def containment(fractions: np.ndarray, radius_mm: float, edges_mm: np.ndarray) -> float:
    """Share of the read-out energy within ``radius_mm`` of the axis.

    Cumulative ring shares at the edges, interpolated linearly in r inside a ring (the density
    falls inside a ring, so this slightly underestimates the share within radius).
    """
    cum = np.concatenate([[0.0], np.cumsum(fractions)])
    return float(np.interp(radius_mm, edges_mm, cum))


def mean_layer(x: np.ndarray) -> np.ndarray:
    """Energy-weighted mean layer index per shower: shape (N,)."""
    e = layer_energies(x)
    tot = e.sum(axis=1)
    return (e * np.arange(e.shape[1])).sum(axis=1) / np.where(tot > 0, tot, 1.0)


def peak_depth_x0(profile: np.ndarray, centres_x0: np.ndarray) -> float:
    """Depth (X0) of the maximum of a mean longitudinal profile, parabola through 3 layers."""
    k = int(np.clip(np.argmax(profile), 1, len(profile) - 2))
    y0, y1, y2 = profile[k - 1 : k + 2]
    den = y0 - 2 * y1 + y2
    shift = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    step = centres_x0[k + 1] - centres_x0[k]
    return float(centres_x0[k] + np.clip(shift, -1, 1) * step)


def pdg_tmax(e_mev: float, ec_mev: float, electron: bool = True) -> float:
    """PDG (Rossi approximation B) depth of maximum: ln(E/E_c) - 0.5 (electrons), + 0.5 (photons)."""
    return float(np.log(e_mev / ec_mev) + (-0.5 if electron else 0.5))


def gp_tmax_sampling(e_mev: float, ec_mev: float, f_s: float, e_hat: float) -> float:
    """Grindhammer-Peters depth of maximum of the average profile in a sampling calorimeter."""
    return float(np.log(e_mev / ec_mev) - 0.858 - 0.59 / f_s - 0.53 * (1.0 - e_hat))


def calice_resolution(e_gev: float | np.ndarray) -> np.ndarray:
    """CALICE Si-W sigma/E at ``e_gev``: 16.6 %/sqrt(E) (+) 1.1 %."""
    a, c = CALICE_RESOLUTION
    return np.sqrt(a**2 / np.asarray(e_gev, dtype=float) + c**2)
