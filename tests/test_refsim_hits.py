"""Hits as a point cloud: binning the hits of a shower gives exactly its voxel shower."""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest

from caloforge.cli import main
from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.refsim import REFSIM_VERSION, detector_names, get_detector, simulate
from caloforge.refsim.hits import bin_hits, read_hits, write_hits

CASES = [
    ("ds2", "electron", {}),
    ("ds2", "electron", {"theta": 0.3, "phi": 1.0, "offset_mm": (5.0, -3.0)}),
    ("ds1-photons", "photon", {}),
    ("ds1-pions", "pion", {"offset_mm": (20.0, 0.0)}),
    ("calogan", "electron", {}),
    ("ild-ecal", "photon", {"theta": 0.2, "phi": -0.5}),
    ("ild-ahcal", "pion", {}),
    ("pbwo4", "electron", {"offset_mm": (11.0, 11.0)}),
]


@pytest.mark.parametrize(("detector", "particle", "kw"), CASES)
def test_binning_the_hits_gives_the_voxel_shower(detector, particle, kw):
    showers, hits = simulate(
        detector, particle, "loguniform:1e3:1e5", n=6, seed=5, return_hits=True, **kw
    )
    geo = get_geometry(showers.attrs["geometry"])
    assert len(hits) == 6 and hits.offsets[0] == 0 and np.all(np.diff(hits.offsets) > 0)
    binned = bin_hits(geo, hits)
    assert np.array_equal(binned, showers.showers)  # every shower, bit for bit
    for i in (0, 5):  # one shower alone
        assert np.array_equal(bin_hits(geo, hits.shower(i))[0], showers.showers[i])
    assert hits.energy.dtype == np.float32 and np.all(hits.energy > 0)


def test_hits_sit_where_the_geometry_says():
    """Hits of an inclined shower follow its axis: mean (x, y) of each layer = axis point."""
    theta, phi = 0.2, 0.8
    showers, hits = simulate(
        "ild-ecal", "electron", "fixed:5e4", n=20, seed=2, return_hits=True, theta=theta, phi=phi
    )
    for layer in (3, 8, 14):
        sel = hits.layer == layer
        z = float(hits.z[sel][0])
        w = hits.energy[sel].astype(float)
        mx, my = np.average(hits.x[sel], weights=w), np.average(hits.y[sel], weights=w)
        ex, ey = np.tan(theta) * z * np.cos(phi), np.tan(theta) * z * np.sin(phi)
        # the energy-weighted centre of 20 showers scatters by ~R_M / sqrt(spots) ~ 0.1 mm;
        # the +-75 mm readout (axis < 10 mm off centre here) truncates < 1 % of the halo, which
        # moves the centre by < 0.3 mm: 1.5 mm is far outside both.
        assert np.hypot(mx - ex, my - ey) < 1.5


def test_hits_file_round_trip(tmp_path):
    showers, hits = simulate("ds2", "electron", "fixed:2e4", n=4, seed=1, return_hits=True)
    path = write_hits(tmp_path / "h.h5", showers.incident_energies, hits)
    e, back = read_hits(path)
    assert np.array_equal(e, showers.incident_energies)
    assert np.array_equal(back.offsets, hits.offsets) and np.array_equal(back.x, hits.x)
    assert back.attrs["refsim_version"] == REFSIM_VERSION
    assert np.array_equal(bin_hits(get_geometry("ds2"), back), showers.showers)


def test_hits_refuse_noise():
    with pytest.raises(ConfigError, match="noise"):
        simulate("ds2", "electron", "fixed:1e4", n=2, return_hits=True, noise_mev=0.1)


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run ``caloforge ARGS`` in-process; return (exit code, stdout + stderr)."""
    monkeypatch.setattr(sys, "argv", ["caloforge", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else int(code)), captured.out + captured.err


def test_cli_writes_hits_that_bin_to_the_shower_file(tmp_path, monkeypatch, capsys):
    out, hits_path = tmp_path / "s.h5", tmp_path / "hits.h5"
    args = ["simulate", "-n", "5", "--seed", "3", "-o", str(out)]
    code, text = run_cli(monkeypatch, capsys, *args, "--hits", str(hits_path), "--chunk-size", "2")
    assert code == 0, text
    e, hits = read_hits(hits_path)
    with h5py.File(out) as f:
        voxels = f["showers"][:]
        assert np.array_equal(f["incident_energies"][:, 0], e)  # both float64
    assert len(hits) == 5
    assert np.array_equal(bin_hits(get_geometry("ds2"), hits), voxels)
    out2, hits2 = tmp_path / "s2.h5", tmp_path / "h2.h5"
    code, text = run_cli(
        monkeypatch, capsys, *args[:-1], str(out2), "--hits", str(hits2), "--noise", "1"
    )
    assert code == 2 and "noise" in text and "Traceback" not in text
    assert not hits2.exists() and not out2.exists()


@pytest.mark.parametrize("detector", detector_names())
def test_every_preset_deposits_along_the_inclined_offset_axis(detector):
    """A shower at (theta, phi) entering at an offset is centred on its axis in every layer."""
    theta, phi, offset = 0.15, 0.7, (10.0, -6.0)
    det = get_detector(detector)
    showers, hits = simulate(
        det, "electron", "fixed:2e4", n=10, seed=4, return_hits=True, theta=theta, phi=phi,
        offset_mm=offset,
    )  # fmt: skip
    mid = 0.5 * (det.bounds_mm[0] + det.bounds_mm[1])
    e_layer = np.bincount(hits.layer, weights=hits.energy, minlength=det.n_layers)
    checked = 0
    for layer in np.flatnonzero(e_layer > 0.05 * e_layer.sum()):
        ax = offset[0] + np.tan(theta) * mid[layer] * np.cos(phi)
        ay = offset[1] + np.tan(theta) * mid[layer] * np.sin(phi)
        sel = hits.layer == layer
        assert np.allclose(hits.z[sel], mid[layer], atol=1e-3)  # z: the layer centre, mm
        dx, dy = hits.x[sel] - ax, hits.y[sel] - ay
        rm = det.moliere_mm[layer]
        near = np.hypot(dx, dy) < 2 * rm  # a window symmetric about the expected axis
        w = hits.energy[sel][near].astype(float)
        cx, cy = np.average(dx[near], weights=w), np.average(dy[near], weights=w)
        # the stretched (1/cos theta) profile stays symmetric about the axis, so the windowed
        # centroid of >= 10 showers x hundreds of spots scatters by ~R_M/sqrt(spots) < 0.05 R_M
        # (in the layers holding > 5 % of the energy the 2 R_M window stays inside the readout,
        # ds2 being the tightest at ~24 mm from the axis); 0.15 R_M is ~3 sigma of
        # one shower's scatter, and a wrong axis (e.g. ignoring the offset) moves it by 11.7 mm.
        assert np.hypot(cx, cy) < 0.15 * rm, (layer, cx, cy, rm)
        checked += 1
    assert checked >= 1
