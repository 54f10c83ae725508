"""High-level features on hand-made showers whose features are known exactly, streaming, and
the histogram / separation-power building blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from caloforge.errors import GeometryError, ShowerFileError
from caloforge.evaluate import (
    FeatureExtractor,
    VoxelSpectrum,
    default_threshold,
    feature_binnings,
    feature_columns,
    separation_power,
    stream_features,
)
from caloforge.evaluate.histograms import density, histogram_counts, split_name
from caloforge.geometry import CylindricalLayer, Geometry, get_geometry
from caloforge.io import Showers, write_showers

# Layer 0: one angular bin, r edges 0|1|3 (centres 0.5, 2).
# Layer 1: four angular bins (centres -3pi/4, -pi/4, pi/4, 3pi/4), r edges 0|2|4 (centres 1, 3);
# voxel index inside the layer = angle index * 2 + radial index.
TWO_LAYERS = Geometry(
    "two-layers",
    (CylindricalLayer(0, (0.0, 1.0, 3.0), 1), CylindricalLayer(5, (0.0, 2.0, 4.0), 4)),
)


def _hand_made() -> Showers:
    """Two showers; the first has known features, the second leaves layer 1 empty."""
    x = np.zeros((2, TWO_LAYERS.n_voxels))
    x[0, 0], x[0, 1] = 2.0, 2.0  # layer 0: 2 MeV at r=0.5 and at r=2
    x[0, 2 + 2 * 2 + 0] = 3.0  # layer 1: 3 MeV at alpha=pi/4, r=1
    x[0, 2 + 0 * 2 + 1] = 1.0  # layer 1: 1 MeV at alpha=-3pi/4, r=3
    x[0, 2 + 3 * 2 + 1] = 0.5  # below a 1 MeV threshold
    x[1, 1] = 7.0
    return Showers(np.array([10.0, 20.0]), x)


def test_features_of_hand_made_showers_are_exact():
    f = FeatureExtractor(TWO_LAYERS, threshold=1.0)(*_astuple(_hand_made()))
    assert list(f.layer_ids) == [0, 5] and list(f.angular) == [1]
    np.testing.assert_allclose(f.e_tot, [8.0, 7.0])
    np.testing.assert_allclose(f.response, [0.8, 0.35])
    np.testing.assert_allclose(f.e_layer, [[4.0, 4.0], [7.0, 0.0]])
    np.testing.assert_allclose(f.sparsity, [[0.0, 6 / 8], [0.5, 1.0]])
    # layer 0 radial moments: EC_r = (2*0.5 + 2*2)/4, width^2 = (2*0.25 + 2*4)/4 - EC^2
    np.testing.assert_allclose(f.ec_r[:, 0], [1.25, 2.0])
    np.testing.assert_allclose(f.width_r[:, 0], [0.75, 0.0], atol=1e-12)
    # layer 1: eta = r cos(alpha), phi = r sin(alpha); the two deposits balance exactly
    c = math.cos(math.pi / 4)
    eta = np.array([1 * c, -3 * c])
    e = np.array([3.0, 1.0])
    np.testing.assert_allclose(f.ec_eta[0], [np.sum(e * eta) / 4], atol=1e-12)
    np.testing.assert_allclose(f.ec_phi[0], [np.sum(e * eta) / 4], atol=1e-12)
    np.testing.assert_allclose(f.width_eta[0], [math.sqrt(1.5)])
    np.testing.assert_allclose(f.width_phi[0], [math.sqrt(1.5)])
    np.testing.assert_allclose(f.ec_r[0, 1], 1.5)
    np.testing.assert_allclose(f.width_r[0, 1], math.sqrt(0.75))
    # an empty layer has centre and width 0
    assert f.ec_eta[1, 0] == 0 and f.width_eta[1, 0] == 0 and f.ec_r[1, 1] == 0


def _astuple(s: Showers):
    return s.incident_energies, s.showers


def test_alpha_bins_start_at_minus_pi():
    x = np.zeros((1, TWO_LAYERS.n_voxels))
    x[0, 2] = 5.0  # layer 1, angle bin 0 (centre -3pi/4), r bin 0 (centre 1)
    f = FeatureExtractor(TWO_LAYERS, threshold=0.0)(np.array([5.0]), x)
    np.testing.assert_allclose(f.ec_eta[0, 0], math.cos(-3 * math.pi / 4))
    np.testing.assert_allclose(f.ec_phi[0, 0], math.sin(-3 * math.pi / 4))


def test_ds2_single_voxel_shower():
    geo = get_geometry("ds2")
    x = np.zeros((1, geo.n_voxels), dtype=np.float32)
    voxel = geo.ravel(3, 5, 2)  # layer 3, angle bin 5 of 16, radial bin 2 (4.65 mm each)
    x[0, voxel] = 100.0
    f = FeatureExtractor(geo)(np.array([1000.0]), x)
    r, alpha = 2.5 * 4.65, -math.pi + (5 + 0.5) * 2 * math.pi / 16
    assert f.e_layer[0, 3] == pytest.approx(100.0)
    assert f.ec_eta[0, 3] == pytest.approx(r * math.cos(alpha))
    assert f.ec_phi[0, 3] == pytest.approx(r * math.sin(alpha))
    assert f.ec_r[0, 3] == pytest.approx(r)
    assert f.width_eta[0, 3] == pytest.approx(0.0, abs=1e-6)
    assert f.sparsity[0, 3] == pytest.approx(143 / 144) and f.sparsity[0, 0] == 1.0
    # the official vector: E_inc, E_tot, and per layer E, sparsity, EC_r, width_r, and the
    # four eta/phi features (362 columns for ds2)
    assert f.high_level_vector().shape == (1, 2 + 4 * 45 + 4 * 45) == (1, 362)


def test_default_thresholds():
    assert default_threshold(get_geometry("ds1-photons")) == 1.0
    assert default_threshold(get_geometry("ds1-pions")) == 1.0
    # the official value: 0.5 keV readout threshold / 0.033 sampling fraction, not rounded
    assert default_threshold(get_geometry("ds2")) == 0.5e-3 / 0.033
    assert default_threshold(get_geometry("ds3")) == 0.5e-3 / 0.033
    assert default_threshold(get_geometry("calogan")) == 0.0


def test_streaming_matches_one_block(tmp_path):
    geo = get_geometry("ds1-photons")
    rng = np.random.default_rng(3)
    showers = rng.exponential(5.0, (53, geo.n_voxels)) * (rng.random((53, geo.n_voxels)) < 0.3)
    e_inc = rng.uniform(1e3, 1e4, 53)
    path = write_showers(tmp_path / "s.h5", e_inc, showers, geometry=geo)
    streamed = stream_features(path, geo, chunk_size=7)
    whole = FeatureExtractor(geo)(e_inc, showers.astype(np.float32))
    for name, col in whole.columns().items():
        np.testing.assert_allclose(streamed.features.columns()[name], col, rtol=1e-6, err_msg=name)
    thresholded = np.where(showers.astype(np.float32) >= 1.0, showers.astype(np.float32), 0)
    np.testing.assert_allclose(streamed.mean_shower, thresholded.mean(0), rtol=1e-5)
    assert streamed.voxel_spectrum.counts.sum() == np.count_nonzero(thresholded)


def test_stream_rejects_empty_and_nan_and_wrong_geometry(tmp_path):
    import h5py

    geo = get_geometry("ds1-photons")
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_dataset("incident_energies", (0, 1), dtype="f4")
        f.create_dataset("showers", (0, geo.n_voxels), dtype="f4")
    with pytest.raises(ShowerFileError, match="holds no showers"):
        stream_features(empty, geo)
    bad = Showers(np.array([1.0]), np.full((1, geo.n_voxels), np.nan))
    with pytest.raises(ShowerFileError, match="NaN"):
        stream_features(bad, geo)
    with pytest.raises(GeometryError, match="533 voxels per shower but geometry 'ds1-photons'"):
        stream_features(Showers(np.array([1.0]), np.zeros((1, 533))), geo)


def test_separation_power_limits_and_hand_value():
    edges = np.array([0.0, 1.0, 3.0])
    a, b = density([2, 2], edges), density([2, 2], edges)
    assert separation_power(a, b, edges) == 0.0
    assert separation_power(density([4, 0], edges), density([0, 4], edges), edges) == pytest.approx(
        1.0
    )
    # fractions (0.75, 0.25) vs (0.25, 0.75): 1/2 * 2 * 0.25 / 1 = 0.25
    s = separation_power(density([3, 1], edges), density([1, 3], edges), edges)
    assert s == pytest.approx(0.25)


def test_binnings_follow_the_official_code():
    geo = get_geometry("ds2")
    thr = default_threshold(geo)
    rng = np.random.default_rng(0)
    e_inc = rng.uniform(1e3, 1e4, 20)
    x = rng.exponential(1.0, (20, geo.n_voxels)).astype(np.float32)
    x *= (e_inc * rng.uniform(0.9, 1.1, 20) / x.sum(1))[:, None].astype(np.float32)
    f = FeatureExtractor(geo)(e_inc, x)
    b = feature_binnings(f, geo, thr)
    assert b["response"].n_bins == 100 and b["response"].edges[[0, -1]].tolist() == [0.5, 1.5]
    # 40 log edges (39 bins) from the threshold to the float32 layer maximum, whose log10 the
    # official code takes in float32
    assert b["E_layer_0"].n_bins == 39 and b["E_layer_0"].log
    top = f.e_layer[:, 0].max()
    assert top.dtype == np.float32
    expected = np.logspace(np.log10(thr), np.log10(top), 40)
    np.testing.assert_array_equal(b["E_layer_0"].edges, expected)
    assert b["E_layer_0"].edges[-1] != np.logspace(np.log10(thr), np.log10(float(top)), 40)[-1]
    assert b["EC_eta_4"].edges[[0, -1]].tolist() == [-30.0, 30.0] and b["EC_eta_4"].n_bins == 100
    assert b["width_phi_4"].edges[[0, -1]].tolist() == [0.0, 30.0]
    # the official code defines but does not use sparsity / EC_r / width_r binnings: extras
    assert not b["sparsity_4"].official and b["sparsity_4"].n_bins == 20
    assert b["EC_r_4"].edges[[0, -1]].tolist() == [0.0, 42.0] and not b["EC_r_4"].official
    assert b["width_r_4"].edges[[0, -1]].tolist() == [0.0, 20.0]
    assert not b["E_tot"].official and b["E_layer_0"].official
    assert split_name("width_phi_4") == ("width_phi", 4) and split_name("E_tot") == ("E_tot", None)
    counts = histogram_counts(f.e_layer[:, 0], b["E_layer_0"])
    np.testing.assert_array_equal(counts, np.histogram(f.e_layer[:, 0], b["E_layer_0"].edges)[0])
    # caloforge's own scheme: a hadron-like response (mostly below 0.5) widens the range
    low = FeatureExtractor(geo)(e_inc, x * 0.3)
    edges = feature_binnings(low, geo, thr, "caloforge")["response"].edges
    assert edges[[0, -1]].tolist() == [0.0, 1.5]


def test_ds1_binnings_and_per_energy_response():
    geo = get_geometry("ds1-photons")
    e_inc = np.repeat(2.0 ** np.arange(8, 23), 2)
    x = np.full((len(e_inc), geo.n_voxels), 2.0, dtype=np.float32)
    f = FeatureExtractor(geo)(e_inc, x)
    b = feature_binnings(f, geo, 1.0)
    assert b["EC_eta_1"].edges[[0, -1]].tolist() == [-100.0, 100.0]
    assert b["width_phi_2"].edges[[0, -1]].tolist() == [0.0, 100.0]
    per_e = [k for k in b if k.startswith("response_E")]
    assert len(per_e) == 15 and per_e[0] == "response_E256" and per_e[-1] == "response_E4194304"
    # photons: 0.4-1.4 for the four lowest energies, then 0.9-1.1, 20 bins each
    assert b["response_E2048"].edges[[0, -1]].tolist() == [0.4, 1.4]
    assert b["response_E4096"].edges[[0, -1]].tolist() == [0.9, 1.1]
    assert all(b[k].n_bins == 20 for k in per_e)
    pions = get_geometry("ds1-pions")
    fp = FeatureExtractor(pions)(e_inc, np.full((len(e_inc), pions.n_voxels), 2.0))
    bp = feature_binnings(fp, pions, 1.0)
    assert bp["response_E4096"].edges[[0, -1]].tolist() == [0.4, 1.4]
    assert bp["EC_eta_12"].edges[[0, -1]].tolist() == [-500.0, 500.0]
    assert bp["width_eta_13"].edges[[0, -1]].tolist() == [0.0, 400.0]
    assert bp["EC_r_14"].edges[-1] == 1500.0 and bp["EC_r_2"].edges[-1] == 500.0
    cols = feature_columns(f, geo)
    assert len(cols["response_E256"]) == 2


def test_voxel_spectrum_rebins_exactly():
    rng = np.random.default_rng(1)
    values = rng.lognormal(0.0, 2.0, 5000) + 0.02
    spectrum = VoxelSpectrum(0.01515)
    spectrum.update(values[:2000])
    spectrum.update(values[2000:])
    edges = spectrum.edges_for(50)
    assert len(edges) == 51 and edges[0] <= values.min() and edges[-1] >= values.max()
    assert edges[-1] <= values.max() * 10 ** (50 / 1000)
    expected, _ = np.histogram(values, edges)
    np.testing.assert_array_equal(spectrum.rebinned(edges), expected)
