"""The data verbs of the ``caloforge`` command: geometries, info, convert, and bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

from caloforge.cli import main
from caloforge.io import read_showers, write_showers
from conftest import synthetic_showers


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run ``caloforge ARGS`` in-process through :func:`main`; return (exit code, out, err)."""
    monkeypatch.setattr(sys, "argv", ["caloforge", *args])
    monkeypatch.setenv("COLUMNS", "200")  # rich: keep table rows on one line
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else int(code)), captured.out, captured.err


def test_geometries_lists_builtins_with_voxel_counts(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "geometries")
    assert code == 0
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    expected = {
        "ds1-photons": "368",
        "ds1-pions": "533",
        "ds2": "6480",
        "ds3": "40500",
        "calogan": "504",
        "grid:25x25x25": "15625",
    }
    assert set(expected) <= set(rows)
    for name, voxels in expected.items():
        cells = [c.strip() for c in rows[name].split("│")]
        assert voxels in cells, rows[name]
    assert "grid:LxXxY" in out


def test_info_on_official_ds2_sample(monkeypatch, capsys, sample_ds2):
    code, out, err = run_cli(monkeypatch, capsys, "info", str(sample_ds2))
    assert code == 0, err
    lines = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in out.splitlines() if line.count("│") == 3}  # fmt: skip
    assert lines["showers"] == "10"
    assert lines["voxels per shower"] == "6480"
    assert lines["geometry"] == "ds2"
    assert lines["built-ins with this voxel count"] == "ds2"
    with h5py.File(sample_ds2, "r") as f:
        e = f["incident_energies"][:, 0]
    assert lines["incident energy"] == f"{e.min():.4g} - {e.max():.4g} MeV"


def test_info_json_with_geometry(monkeypatch, capsys, sample_ds1_photons):
    code, out, _ = run_cli(
        monkeypatch, capsys, "info", str(sample_ds1_photons), "--geometry", "ds1-photons", "--json"
    )
    assert code == 0
    summary = json.loads(out)
    assert summary["n_showers"] == 10
    assert summary["n_voxels"] == 368
    assert summary["geometry"] == "ds1-photons"
    assert summary["layout"] == "calochallenge"
    assert summary["attrs"]["particle"] == "photon"


def test_info_unknown_geometry_without_attrs(monkeypatch, capsys, tmp_path):
    path = write_showers(tmp_path / "odd.h5", *synthetic_showers(3, 77))
    code, out, _ = run_cli(monkeypatch, capsys, "info", str(path), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["geometry"] is None and summary["matching_geometries"] == []


def test_convert_calogan_command(monkeypatch, capsys, calogan_file, tmp_path):
    src, arrays = calogan_file
    dst = tmp_path / "out" / "converted.h5"
    code, out, err = run_cli(monkeypatch, capsys, "convert", str(src), "--output", str(dst))
    assert code == 0, err
    assert "wrote" in out
    block = read_showers(dst, geometry="calogan")
    assert block.showers.shape == (7, 504)
    np.testing.assert_allclose(block.incident_energies, arrays["energy"][:, 0] * 1000, rtol=1e-6)
    assert block.attrs["geometry"] == "calogan"


BAD_INPUTS = {
    "not_hdf5": (["info", "{tmp}/notes.h5"], r"notes\.h5: not an HDF5 file"),
    "missing": (["info", "{tmp}/absent.h5"], r"absent\.h5: no such file"),
    "wrong_geometry": (
        ["info", "{ds2}", "--geometry", "ds3"],
        r"has 6480 voxels per shower but geometry 'ds3' expects 40500",
    ),
    "unknown_geometry": (["info", "{ds2}", "-g", "ds7"], r"unknown geometry 'ds7'"),
    "convert_non_calogan": (["convert", "{ds2}", "-o", "{tmp}/x.h5"], r"not a CaloGAN file"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line(case, monkeypatch, capsys, tmp_path, sample_ds2):
    (tmp_path / "notes.h5").write_text("plain text\n")
    args, pattern = BAD_INPUTS[case]
    args = [a.format(tmp=tmp_path, ds2=sample_ds2) for a in args]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err and out == ""
    assert re.search(pattern, lines[0])
    assert not (tmp_path / "x.h5").exists()


def test_python_m_caloforge_bad_input(tmp_path):
    """The real process: exit status 2, one line on stderr, no traceback."""
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x00" * 64)
    proc = subprocess.run(
        [sys.executable, "-m", "caloforge", "info", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0
    assert "bad.h5: not an HDF5 file" in proc.stderr
    assert "Traceback" not in proc.stderr
