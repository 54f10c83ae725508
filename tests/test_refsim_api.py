"""The reference simulator's API: presets, reproducibility, files, incidence, bad input, CLI."""

from __future__ import annotations

import importlib

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.io import read_showers
from caloforge.refsim import (
    chunk_seed,
    detector_names,
    get_detector,
    simulate,
    simulate_to_file,
)

PRESETS = ["ds1-photons", "ds1-pions", "ds2", "ds3", "calogan", "ild-ecal", "ild-ahcal", "pbwo4"]


def test_presets_and_their_geometries():
    assert detector_names() == PRESETS
    grids = {"ild-ecal": "grid:30x30x30:5", "ild-ahcal": "grid:48x25x25:30"}
    for name, geo in grids.items():
        assert get_detector(name).geo == get_geometry(geo)
    assert get_detector("pbwo4").geo == get_geometry("grid:25x25x25:22")


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("particle", ["electron", "positron", "photon", "pi-"])
def test_every_preset_and_particle_gives_valid_showers(preset, particle):
    s = simulate(preset, particle, [2e3, 3e4], seed=1)
    geo = get_detector(preset).geo
    assert s.showers.shape == (2, geo.n_voxels) and s.showers.dtype == np.float32
    assert np.all(np.isfinite(s.showers)) and np.all(s.showers >= 0)
    assert s.attrs["geometry"] == geo.name and s.attrs["producer"] == "caloforge refsim"
    assert s.attrs["seed"] == 1
    # no energy is created: the visible sum stays below E_inc by more than 5 sampling sigmas
    assert np.all(s.showers.sum(axis=1) < s.incident_energies * 1.5)


def test_same_seed_identical_different_seed_different():
    a = simulate("ds2", "electron", "loguniform:1e3:1e6", n=20, seed=11)
    b = simulate("ds2", "electron", "loguniform:1e3:1e6", n=20, seed=11)
    c = simulate("ds2", "electron", "loguniform:1e3:1e6", n=20, seed=12)
    np.testing.assert_array_equal(a.showers, b.showers)
    np.testing.assert_array_equal(a.incident_energies, b.incident_energies)
    assert not np.array_equal(a.showers, c.showers)
    assert not np.array_equal(a.incident_energies, c.incident_energies)


def test_energy_array_sets_n_and_spec_needs_n():
    s = simulate("calogan", "photon", np.array([1e3, 2e3, 4e3]))
    np.testing.assert_array_equal(s.incident_energies, [1e3, 2e3, 4e3])
    assert len(simulate("calogan", "photon", "ds1", n=7)) == 7
    with pytest.raises(ConfigError, match="give the number of showers n"):
        simulate("calogan", "photon", "loguniform:1e3:1e6")


def test_files_same_seed_identical_and_chunks_reproducible(tmp_path):
    args = ("ds2", "electron", "loguniform:1e3:1e5")
    p1 = simulate_to_file(tmp_path / "a.h5", *args, n=25, seed=3, chunk_size=10, progress=False)
    p2 = simulate_to_file(tmp_path / "b.h5", *args, n=25, seed=3, chunk_size=10, progress=False)
    p3 = simulate_to_file(tmp_path / "c.h5", *args, n=25, seed=4, chunk_size=10, progress=False)
    a, b, c = (read_showers(p, geometry="ds2") for p in (p1, p2, p3))
    np.testing.assert_array_equal(a.showers, b.showers)
    assert not np.array_equal(a.showers, c.showers)
    assert a.attrs["producer"] == "caloforge refsim" and a.attrs["geometry"] == "ds2"
    # chunk k of the file is simulate(..., seed=chunk_seed(seed, k)): resumable chunk by chunk
    last = simulate(*args, n=5, seed=chunk_seed(3, 2))
    np.testing.assert_array_equal(a.showers[20:], last.showers)
    np.testing.assert_allclose(a.incident_energies[20:], last.incident_energies, rtol=1e-6)


def test_interrupted_file_leaves_nothing(tmp_path, monkeypatch):
    # the module that writes the files (it calls refsim.simulate.simulate chunk by chunk)
    sim = importlib.import_module("caloforge.refsim.files")

    calls = {"n": 0}
    real = sim.simulate

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sim, "simulate", failing)
    target = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        sim.simulate_to_file(target, "ds2", "electron", [1e4] * 6, chunk_size=3, progress=False)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_energy_array_file_keeps_the_order(tmp_path):
    energies = np.array([1e3, 5e3, 2e4, 8e4, 3e5])
    path = simulate_to_file(
        tmp_path / "e.h5", "calogan", "e-", energies, chunk_size=2, progress=False
    )
    with h5py.File(path) as f:
        np.testing.assert_allclose(f["incident_energies"][:, 0], energies)
        assert f["showers"].shape == (5, 504)


def test_offset_moves_the_shower_centroid():
    # a Cartesian grid: the energy-weighted (x, y) centre follows the entry point
    geo = get_detector("ild-ecal").geo
    xy = geo.voxel_centres
    s = simulate("ild-ecal", "electron", np.full(20, 2e4), seed=2, offset_mm=(20.0, -10.0))
    e = s.showers.astype(float)
    centre = (e @ xy) / e.sum(axis=1, keepdims=True)
    # 5 mm cells: the centroid of a shower is known to ~1 mm
    np.testing.assert_allclose(centre.mean(axis=0), [20.0, -10.0], atol=1.5)


def test_inclined_shower_drifts_along_phi():
    geo = get_detector("ds2").geo
    theta, phi = 0.2, np.pi / 2
    s = simulate("ds2", "electron", np.full(30, 5e4), seed=3, theta=theta, phi=phi)
    x = s.showers.reshape(30, 45, -1).astype(float)
    xy = geo.voxel_centres.reshape(45, -1, 2)
    y = (x * xy[None, :, :, 1]).sum(axis=2) / np.maximum(x.sum(axis=2), 1e-12)
    z_mid = (np.arange(45) + 0.5) * 3.4
    # the axis at layer 20 is at y = z tan(theta) = 14 mm; with 4.65 mm rings and 16 angular
    # bins, bin centres bias the centroid by up to ~1.5 mm
    assert y[:, 20].mean() == pytest.approx(z_mid[20] * np.tan(theta), abs=2.0)
    # near the front as well, and the x centroid stays on the axis (phi = pi/2)
    assert y[:, 5].mean() == pytest.approx(z_mid[5] * np.tan(theta), abs=2.0)
    x_c = (x * xy[None, :, :, 0]).sum(axis=2) / np.maximum(x.sum(axis=2), 1e-12)
    assert abs(x_c[:, 20].mean()) < 1.0


def test_noise_and_threshold():
    s = simulate("ds2", "electron", [1e4] * 3, seed=1)
    nonzero = s.showers[s.showers > 0]
    assert nonzero.min() >= 0.01515  # 15.15 keV readout threshold
    noisy = simulate("ds2", "electron", [1e4] * 3, seed=1, noise_mev=0.5)
    assert (noisy.showers > 0).mean() > (s.showers > 0).mean()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"energies": [1e3, -5.0]}, "finite and > 0 MeV"),
        ({"energies": [0.0]}, "finite and > 0 MeV"),
        ({"energies": "loguniform:0:1e3", "n": 3}, "finite and > 0 MeV"),
        ({"particle": "muon"}, "unknown particle 'muon'"),
        ({"detector": "cms-hgcal"}, "unknown detector 'cms-hgcal'"),
        ({"n": 0}, "number of showers n must be a positive integer"),
        ({"n": -3}, "number of showers n must be a positive integer"),
        ({"theta": 1.2}, "outside detector 'ds2'"),
        ({"theta": 2.0}, r"outside \[0, pi/2\)"),
        ({"theta": float("nan")}, "must be finite"),
        ({"offset_mm": (50.0, 0.0)}, "outside detector 'ds2' at the front face"),
        ({"noise_mev": -1.0}, "noise_mev must be"),
    ],
)
def test_bad_input_one_clear_sentence(kwargs, message):
    call = {"detector": "ds2", "particle": "electron", "energies": [1e4], **kwargs}
    with pytest.raises(ConfigError, match=message):
        simulate(call.pop("detector"), call.pop("particle"), call.pop("energies"), **call)


def test_cli_simulate_and_detectors(tmp_path):
    from caloforge.cli import app

    runner = CliRunner()
    out = tmp_path / "ref.h5"
    args = ["simulate", "--detector", "ds2", "--particle", "electron", "--n", "12"]
    args += ["--energies", "loguniform:1e3:1e6", "--seed", "1", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert read_showers(out, geometry="ds2").showers.shape == (12, 6480)
    result = runner.invoke(app, ["detectors"])
    assert result.exit_code == 0 and "ild-ahcal" in result.output
    bad = runner.invoke(app, ["simulate", "-d", "nope", "-o", str(tmp_path / "x.h5")])
    assert isinstance(bad.exception, ConfigError)
    assert not (tmp_path / "x.h5").exists()
