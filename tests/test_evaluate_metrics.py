"""FPD, KPD, isotonic calibration, AUC, and the CaloChallenge sanity checks on refsim showers:
two independent samples look alike; a 5% energy-scale shift and radially smeared showers are
clearly flagged."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import sqrtm
from scipy.stats import mannwhitneyu

from caloforge.errors import ConfigError
from caloforge.evaluate import (
    classifier_test,
    feature_binnings,
    fpd,
    frechet_distance,
    get_protocol,
    isotonic_fit,
    kpd,
    mmd2_unbiased,
    roc_auc,
    separation_powers,
    stream_features,
)
from caloforge.geometry import Geometry, get_geometry
from caloforge.io import Showers
from caloforge.refsim import simulate

ENERGIES = "loguniform:1e3:1e5"


def smear_radially(showers: Showers, geometry: Geometry, fraction: float) -> Showers:
    """Move ``fraction`` of every voxel's energy one radial bin outwards (lost past the edge)."""
    x = showers.showers.astype(np.float64)
    out = x * (1.0 - fraction)
    for sl, layer in zip(geometry.layer_slices, geometry.layers, strict=True):
        block = x[:, sl].reshape(len(x), layer.n_alpha, layer.n_radial)
        moved = np.zeros_like(block)
        moved[:, :, 1:] = fraction * block[:, :, :-1]
        out[:, sl] += moved.reshape(len(x), -1)
    return Showers(showers.incident_energies, out.astype(np.float32), dict(showers.attrs))


# --------------------------------------------------------------------------- distances
def test_frechet_distance_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    m1, m2 = rng.normal(size=4), rng.normal(size=4)
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * np.real(sqrtm(s1 @ s2)))
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-9)


def test_fpd_recovers_the_frechet_distance_of_gaussians():
    # N(0, diag(1, 1, 1)) vs N((0.5, 0, 0), diag(4, 1, 1)): |dmu|^2 + (2 - 1)^2 = 1.25
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20_000, 3))
    y = rng.normal(size=(20_000, 3)) * [2.0, 1.0, 1.0] + [0.5, 0.0, 0.0]
    result = fpd(x, y, min_batch=2000, max_batch=10_000, n_sizes=5, n_batches=5, normalise=False)
    assert abs(result.value - 1.25) < max(4 * result.error, 0.03)
    same = fpd(
        x, rng.normal(size=(20_000, 3)), min_batch=2000, max_batch=10_000, n_sizes=5, n_batches=5
    )
    assert abs(same.value) < 0.01


def test_fpd_keeps_official_batch_sizes_for_small_samples():
    # the official code (JetNet) never scales its batches down: it draws them with replacement
    rng = np.random.default_rng(2)
    result = fpd(rng.normal(size=(500, 2)), rng.normal(size=(800, 2)), n_batches=2, n_sizes=3)
    # int32(1 / (1 / 50000)) is 49999 in floating point, as in the official code
    assert result.batch_sizes == [10_000, 16_666, 49_999]
    assert "with replacement" in result.note
    assert result.value >= 0.0  # the intercept is bounded at 0, as officially


def test_kpd_is_unbiased_for_identical_distributions():
    rng = np.random.default_rng(3)
    # the mean of many small unbiased MMD^2 estimates is 0 within its standard error
    vals = [mmd2_unbiased(rng.normal(size=(40, 3)), rng.normal(size=(40, 3))) for _ in range(300)]
    assert abs(np.mean(vals)) < 3 * np.std(vals) / np.sqrt(len(vals))
    same = kpd(rng.normal(size=(4000, 3)), rng.normal(size=(4000, 3)), batch=1000)
    shifted = kpd(rng.normal(size=(4000, 3)), rng.normal(size=(4000, 3)) + 0.3, batch=1000)
    assert abs(same.value) < 3 * same.error + 1e-4
    assert shifted.value > 10 * max(same.error, abs(same.value))


def test_distances_reject_bad_input():
    with pytest.raises(ConfigError, match="same d"):
        fpd(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ConfigError, match="NaN"):
        kpd(np.full((10, 2), np.nan), np.zeros((10, 2)))


# --------------------------------------------------------------------------- calibration, AUC
def test_isotonic_fit_pools_adjacent_violators():
    iso = isotonic_fit(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 0.0, 0.0, 1.0]))
    np.testing.assert_allclose(iso.values, [1 / 3, 1 / 3, 1 / 3, 1.0])
    np.testing.assert_allclose(iso(np.array([0.0, 3.5, 9.0])), [1 / 3, 2 / 3, 1.0])
    rng = np.random.default_rng(4)
    s = rng.random(500)
    y = (rng.random(500) < s).astype(float)
    fitted = isotonic_fit(s, y)
    assert np.all(np.diff(fitted.values) >= -1e-12)
    # the fit has the smallest squared error among monotone maps, e.g. below the identity's
    assert np.sum((fitted(s) - y) ** 2) <= np.sum((s - y) ** 2)


def test_roc_auc_matches_mann_whitney():
    rng = np.random.default_rng(5)
    labels = rng.random(300) < 0.4
    scores = np.round(rng.random(300) + 0.3 * labels, 1)  # with ties
    u = mannwhitneyu(scores[labels], scores[~labels]).statistic
    assert roc_auc(labels, scores) == pytest.approx(u / (labels.sum() * (~labels).sum()))
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0


def test_classifier_needs_equal_samples_and_known_protocol():
    with pytest.raises(ConfigError, match="equally many"):
        classifier_test(np.zeros((20, 3)), np.zeros((30, 3)))
    with pytest.raises(ConfigError, match="unknown protocol 'fastest'"):
        get_protocol("fastest")
    assert get_protocol("calochallenge").hidden_units == 2048


# --------------------------------------------------------------------------- sanity on refsim
# 8 500 showers per sample leave 1 700 per class in the 20% test part: the AUC of an
# uninformative classifier then has sigma = sqrt(1 / (6 * 1700)) = 0.0099, so 0.5 +- 0.03 is a
# 3-sigma band. The flagged cases need fewer showers (3 000).
N_NULL, N_FLAG = 8500, 3000


@pytest.fixture(scope="module")
def samples():
    geo = get_geometry("ds1-photons")
    ref = simulate("ds1-photons", "photon", ENERGIES, n=N_NULL, seed=11)
    other = simulate("ds1-photons", "photon", ENERGIES, n=N_NULL, seed=12)
    return geo, ref, other


def test_two_independent_reference_samples_agree(samples):
    geo, ref, other = samples
    f_ref, f_other = stream_features(ref, geo).features, stream_features(other, geo).features
    result = classifier_test(f_ref.high_level_vector(), f_other.high_level_vector(), seed=0)
    assert result.n_test == 2 * 1700
    assert abs(result.auc - 0.5) < 0.03
    assert result.jsd < 0.05
    seps = separation_powers(f_ref, f_other, feature_binnings(f_ref, geo, 1.0))
    assert seps["response"] < 0.01 and seps["E_tot"] < 0.01
    well_filled = [k for k, v in f_ref.columns().items() if np.mean(v > 0) > 0.5]
    assert np.median([seps[k] for k in well_filled]) < 0.01


def test_energy_scale_shift_is_flagged(samples):
    geo, ref, other = samples
    shifted = Showers(other.incident_energies[:N_FLAG], other.showers[:N_FLAG] * 1.05)
    f_ref, f_gen = (
        stream_features(ref[:N_FLAG], geo).features,
        stream_features(shifted, geo).features,
    )
    f_null = stream_features(other[:N_FLAG], geo).features
    binnings = feature_binnings(f_ref, geo, 1.0)
    seps = separation_powers(f_ref, f_gen, binnings)
    baseline = separation_powers(f_ref, f_null, binnings)
    assert seps["response"] > 0.1 and seps["response"] > 10 * baseline["response"]
    # The threshold comes from the injected shift, not from one machine's classifier: the
    # response alone, E_tot / E_inc, separates the two samples with AUC a_response (0.82 for
    # this 5 % shift, as the shift is 1.6 response widths); the classifier sees the response (as
    # log E_tot - log E_inc) and more, so it must reach a_response within 5 standard errors of
    # an AUC on its test part (auc_null_sigma, which bounds the error at AUC > 0.5), and be
    # 5 null standard deviations above 0.5. Measured: 0.86-0.87 over classifier seeds 0-3.
    labels = np.r_[np.zeros(N_FLAG), np.ones(N_FLAG)]
    a_response = roc_auc(labels, np.r_[f_ref.e_tot / f_ref.e_inc, f_gen.e_tot / f_gen.e_inc])
    assert a_response > 0.75  # the injected shift is large compared to the response spread
    for seed in (0, 1):
        result = classifier_test(f_ref.high_level_vector(), f_gen.high_level_vector(), seed=seed)
        assert result.auc > 0.5 + 5 * result.auc_null_sigma
        assert result.auc > a_response - 5 * result.auc_null_sigma


def test_radially_smeared_showers_are_flagged(samples):
    geo, ref, other = samples
    smeared = smear_radially(other[:N_FLAG], geo, 0.3)
    f_ref, f_gen = (
        stream_features(ref[:N_FLAG], geo).features,
        stream_features(smeared, geo).features,
    )
    f_null = stream_features(other[:N_FLAG], geo).features
    binnings = feature_binnings(f_ref, geo, 1.0)
    seps = separation_powers(f_ref, f_gen, binnings)
    baseline = separation_powers(f_ref, f_null, binnings)
    widths = [k for k in seps if k.startswith(("width_r", "EC_r"))]
    assert max(seps[k] for k in widths) > 0.1
    assert np.mean([seps[k] for k in widths]) > 5 * np.mean([baseline[k] for k in widths])
    result = classifier_test(f_ref.high_level_vector(), f_gen.high_level_vector(), seed=0)
    assert result.auc > 0.9
