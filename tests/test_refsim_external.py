"""refsim against Geant4 numbers that the shared statistics do not hold (docs/refsim.md).

Only quantities where the external number is solid *and* refsim agrees are pinned here. refsim 3
adds the low-energy lit-voxel count, the empty (shower, layer) pairs, the empty last
layer and the correlation of E_tot with the lit count at low energy, which refsim 2 missed (each
test says by how much refsim 2 failed it). The radial tail beyond 18.6 mm is still off and
listed in docs/refsim.md and printed by benchmarks/refsim_physics_checks.py, not tested.

Tolerance rule: a physics allowance (stated per test) plus 4 combined standard errors, the
standard errors computed from the simulated sample itself and, for the real numbers, for the
real sample size the source states. A seeded run is bit-identical, so the margin only has to
cover the difference between the seeded sample and refsim's infinite-sample value: 4 sigma is
exceeded with probability < 1e-4 for any seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from caloforge.refsim import external as ext
from caloforge.refsim import get_detector, simulate

N = 2000  # log-uniform ds2 showers, as many as the real zero-fraction sample (first 2000)


@pytest.fixture(scope="module")
def ds2_loguniform():
    s = simulate("ds2", "electron", "loguniform:1e3:1e6", n=N, seed=101)
    return ext.as_voxels(s.showers), np.asarray(s.incident_energies, dtype=float).ravel()


def test_zero_voxel_fraction_matches_real_ds2(ds2_loguniform):
    x, _ = ds2_loguniform
    sparsity = 1.0 - ext.lit_voxels(x) / 6480.0
    real = ext.DS2_REAL["zero_voxel_fraction"].value  # 0.7633 on 2000 real showers
    # Both samples have 2000 log-uniform showers; the per-shower spread (~0.2, set by the energy
    # spectrum) is taken from the simulated sample for both. Physics allowance 0.02 (= 130 of
    # 6480 voxels per shower); refsim 2 is at -0.006.
    se = sparsity.std() / np.sqrt(N)
    assert abs(sparsity.mean() - real) < 0.02 + 4 * np.sqrt(2) * se


def test_sparsity_falls_with_energy_like_real_ds2(ds2_loguniform):
    x, e = ds2_loguniform
    sparsity = 1.0 - ext.lit_voxels(x) / 6480.0
    r = np.corrcoef(np.log(e), sparsity)[0, 1]
    real = ext.DS2_REAL["corr_logE_sparsity"].value  # -0.94
    # Standard error of a correlation coefficient ~ (1 - r^2)/sqrt(n) (~0.003 at n = 2000), for
    # both samples; allowance 0.02 (the real value is quoted to two digits: +-0.005).
    se = (1 - r**2) / np.sqrt(N)
    assert abs(r - real) < 0.02 + 4 * np.sqrt(2) * se


def test_lit_voxels_of_energetic_showers_match_real_ds2(ds2_loguniform):
    x, e = ds2_loguniform
    lit = ext.lit_voxels(x)
    top = lit[e >= np.quantile(e, 0.75)]
    real = ext.DS2_REAL["lit_high_quartile"].value[1]  # median 3874 over 4990 real showers
    # Standard error of a median ~ 1.2533 sigma / sqrt(n): ~40 for the ~500 simulated showers,
    # ~12 for the real 4990 (same spread assumed). Allowance 5 % of the real median (194
    # voxels); refsim 2 is 2 % low.
    s = top.std()
    se = 1.2533 * s * np.sqrt(1 / len(top) + 1 / 4990)
    assert abs(np.median(top) - real) < 0.05 * real + 4 * se


@pytest.fixture(scope="module")
def ds2_fixed():
    det = get_detector("ds2")
    out = {}
    for i, e_gev in enumerate((10, 100)):
        s = simulate("ds2", "electron", np.full(800, e_gev * 1e3), seed=300 + i)
        out[e_gev] = ext.as_voxels(s.showers)
    return det, out


def test_lateral_containment_within_3p5_moliere_radii(ds2_fixed):
    det, samples = ds2_fixed
    rm = det.em_stack.moliere_radius_mm  # 10.9 mm, PDG mixture rule for 1.4 mm W + 0.3 mm Si
    for x in samples.values():
        share = ext.containment(ext.ring_fractions(x), 3.5 * rm, ext.DS2_R_EDGES_MM)
        # PDG: about 99 % of an EM shower lies within 3.5 R_M; the real ds2 ring profile gives
        # 0.990 +- 0.003 (rounding) of the read-out energy. Allowance 0.01; the statistical error
        # of a mean share over 800 showers is < 0.001.
        assert abs(share - 0.99) < 0.01


def test_depth_of_maximum_follows_pdg(ds2_fixed):
    det, samples = ds2_fixed
    stack = det.em_stack
    centres = 0.5 * (det.edges_x0[1:] + det.edges_x0[:-1])
    for e_gev, x in samples.items():
        tmax = ext.peak_depth_x0(ext.layer_energies(x).mean(axis=0), centres)
        pdg = ext.pdg_tmax(e_gev * 1e3, stack.critical_energy_mev)
        # PDG's ln(E/E_c) - 0.5 is a rule of thumb: Grindhammer-Peters' sampling average differs
        # from it by 0.75 X0 here, so the allowance is 1 X0. The peak of a mean profile scatters
        # from seed to seed: measured 0.26 X0 (10 GeV) and 0.15 X0 (100 GeV) for 400 showers
        # (5 seeds), so <= 0.2 X0 for 800; plus 4 x 0.2. refsim 2: about -0.25 and +0.1 X0.
        assert abs(tmax - pdg) < 1.0 + 4 * 0.2, (e_gev, tmax, pdg)


def test_ds3_is_ds2_with_finer_rings():
    # Par04 (the Geant4 example that made both files): ds3 has 18 rings of 2.325 mm, ds2 9 rings
    # of 4.65 mm, same stack. Merging ds3 ring pairs must give ds2's ring shares.
    n = 200
    e = np.full(n, 50e3)
    x2 = ext.as_voxels(simulate("ds2", "electron", e, seed=401).showers)
    x3 = np.asarray(simulate("ds3", "electron", e, seed=402).showers, float).reshape(n, 45, 50, 18)
    r2 = x2.sum(axis=(1, 2))
    r2 = r2 / r2.sum(axis=1, keepdims=True)
    r3 = x3.sum(axis=(1, 2)).reshape(n, 9, 2).sum(axis=2)
    r3 = r3 / r3.sum(axis=1, keepdims=True)
    se = np.sqrt(r2.var(axis=0) / n + r3.var(axis=0) / n)
    # allowance 0.005 for the threshold acting on smaller ds3 voxels (lost in the outer rings)
    assert np.all(np.abs(r2.mean(axis=0) - r3.mean(axis=0)) < 0.005 + 4 * se)


def test_lit_voxels_of_low_energy_showers_match_real_ds2(ds2_loguniform):
    x, e = ds2_loguniform
    lit = ext.lit_voxels(x)
    low = lit[e <= np.quantile(e, 0.25)]
    real = ext.DS2_REAL["lit_low_quartile"].value[1]  # median 166 over 5026 real showers
    # Standard error of a median ~ 1.2533 sigma / sqrt(n): sigma ~ 70 voxels, so ~3.9 for the
    # ~500 simulated showers and ~1.2 for the real 5026 (same spread assumed). Allowance 5 % of
    # the real median (8 voxels), as for the energetic quartile: tolerance ~25. refsim 2 was
    # 17 % low (137, off by 29) and fails; refsim 3 is within 4 %.
    se = 1.2533 * low.std() * np.sqrt(1 / len(low) + 1 / 5026)
    assert abs(np.median(low) - real) < 0.05 * real + 4 * se


def test_lit_count_follows_deposited_energy_at_low_energy(ds2_loguniform):
    x, e = ds2_loguniform
    low = e <= np.quantile(e, 0.25)
    sparsity = 1.0 - ext.lit_voxels(x[low]) / 6480.0
    r = np.corrcoef(x[low].sum(axis=(1, 2, 3)), sparsity)[0, 1]
    real = ext.DS2_REAL["corr_etot_sparsity_low"].value  # -0.951 over 5026 real showers
    # se of a correlation ~ (1 - r^2)/sqrt(n): 0.004 for ~500 simulated showers, 0.001 for the
    # real ones; allowance 0.01 (quoted to three digits, and the real quartile edges differ a
    # little from the simulated ones). refsim 2 gave -0.88 (spot numbers did not follow the
    # sampled signal) and fails.
    se = np.sqrt(((1 - r**2) / np.sqrt(low.sum())) ** 2 + ((1 - real**2) / np.sqrt(5026)) ** 2)
    assert abs(r - real) < 0.01 + 4 * se


def test_empty_layers_match_real_ds2(ds2_loguniform):
    x, _ = ds2_loguniform
    empty = ext.layer_energies(x) == 0  # (N, 45)
    real_pairs = ext.DS2_REAL["empty_layer_fraction"].value  # 0.178
    real_last = ext.DS2_REAL["empty_last_layer_fraction"].value  # 0.51
    # The real sample size is not stated; its error is taken equal to that of our 2000 showers
    # (hence sqrt(2)). Empty pairs: the per-shower empty fraction has a spread of ~0.2 (it falls
    # with energy), so se ~0.005; allowance 0.01 (the real value is quoted to 3 digits, and
    # "which of the two files" is not stated). refsim 2: 0.222 (fails by 0.044).
    se_pairs = empty.mean(axis=1).std() / np.sqrt(N)
    assert abs(empty.mean() - real_pairs) < 0.01 + 4 * np.sqrt(2) * se_pairs
    # Last layer: a binomial share, se = sqrt(p (1 - p) / N) ~ 0.011; allowance 0.03 (quoted to
    # two digits). refsim 2: 0.68 (fails by 0.17).
    p = empty[:, -1].mean()
    se_last = np.sqrt(p * (1 - p) / N)
    assert abs(p - real_last) < 0.03 + 4 * np.sqrt(2) * se_last
