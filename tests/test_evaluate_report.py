"""The report: metrics.json keys, a self-contained index.html, compare(), the CLI verbs, and one
clear sentence for each kind of bad input."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from caloforge.cli import app
from caloforge.errors import ConfigError, GeometryError, ShowerFileError
from caloforge.evaluate import compare, evaluate
from caloforge.geometry import CylindricalLayer, Geometry, get_geometry
from caloforge.io import write_showers
from caloforge.refsim import simulate

# a tiny geometry keeps the number of figures (and the test time) small
TINY = Geometry(
    "tiny", (CylindricalLayer(0, (0.0, 5.0, 20.0), 1), CylindricalLayer(1, (0.0, 4.0, 12.0), 4))
)


def _tiny_file(path, n: int, seed: int, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    e_inc = rng.uniform(1e3, 1e4, n)
    x = rng.exponential(1.0, (n, TINY.n_voxels)) * (rng.random((n, TINY.n_voxels)) < 0.7)
    x *= (e_inc * scale * rng.normal(1.0, 0.05, n) / np.maximum(x.sum(1), 1e-9))[:, None]
    return write_showers(path, e_inc, x, attrs={"geometry": "tiny"})


def test_report_is_self_contained_and_complete(tmp_path):
    ref = _tiny_file(tmp_path / "ref.h5", 400, seed=1)
    gen = _tiny_file(tmp_path / "gen.h5", 300, seed=2, scale=1.1)
    out = tmp_path / "report"
    m = evaluate(
        gen, ref, out_dir=out, geometry=TINY, seed=3, classifiers=("high", "low-normed"),
        protocol="fast",
    )  # fmt: skip
    saved = json.loads((out / "metrics.json").read_text())
    for key in (
        "geometry", "threshold_mev", "protocol", "seed", "n_reference", "n_generated",
        "separation_power", "separation_power_summary", "binning", "response",
        "response_per_energy", "classifier", "fpd", "kpd", "figures", "notes",
    ):  # fmt: skip
        assert key in saved, key
    assert saved["protocol"]["name"] == "fast" and saved["threshold_mev"] == 0.0
    assert set(saved["classifier"]) == {"high", "low-normed"}
    assert saved["classifier"]["high"]["n_test"] == 120  # 300 of each, 20% held out
    assert any("random 300 of the reference" in n for n in saved["notes"])
    assert any("no CaloChallenge voxel threshold" in n for n in saved["notes"])
    assert saved["separation_power"]["response"] > 0.3  # the 10% scale shift
    assert m["separation_power"] == saved["separation_power"]

    page = (out / "index.html").read_text()
    assert page.index("<h2>Metrics</h2>") < page.index("<img")
    sources = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]*)""", page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in page and "<script" not in page
    # 4 first-screen figures (response, two profiles, voxel spectrum), 14 other feature
    # histograms, 2 average-shower images
    assert len(re.findall(r"<img ", page)) == len(saved["figures"]) == 20
    for fig in saved["figures"]:
        assert (out / fig["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    table = compare([out, out])
    assert table.rows[0][0] == "report" and table.rows[0][4] == saved["classifier"]["high"]["auc"]
    assert "| run |" in table.to_markdown()


def test_cli_evaluate_and_compare(tmp_path):
    for name, seed in (("ref", 1), ("gen", 2)):
        s = simulate("ds1-photons", "photon", "loguniform:1e3:1e4", n=300, seed=seed)
        write_showers(tmp_path / f"{name}.h5", s.incident_energies, s.showers, attrs=s.attrs)
    runner = CliRunner()
    args = ["evaluate", str(tmp_path / "gen.h5"), "--reference", str(tmp_path / "ref.h5")]
    result = runner.invoke(
        app,
        [*args, "-o", str(tmp_path / "run"), "--no-plots", "-c", "high", "--seed", "1"]
        + ["--protocol", "fast"],
    )
    assert result.exit_code == 0, result.output
    assert "AUC (high)" in result.output
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["geometry"] == "ds1-photons" and saved["threshold_mev"] == 1.0
    assert saved["binning_scheme"] == "official" and saved["protocol"]["name"] == "fast"
    # energies 1-10 GeV: the official per-energy responses below 512 MeV have no showers (NaN)
    assert saved["separation_power"]["response_E256"] is None
    assert saved["separation_power"]["response_E2048"] >= 0.0
    assert len([k for k in saved["separation_power"] if k.startswith("response_E")]) == 15
    result = runner.invoke(app, ["compare", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"][0][1] == "ds1-photons"
    result = runner.invoke(app, ["compare", str(tmp_path / "nothing")])
    assert isinstance(result.exception, ConfigError)
    assert "has no metrics.json" in str(result.exception)


def test_bad_inputs_give_one_clear_sentence(tmp_path):
    ref = _tiny_file(tmp_path / "ref.h5", 50, seed=1)
    gen = _tiny_file(tmp_path / "gen.h5", 40, seed=2)
    out = tmp_path / "out"
    quick = {"out_dir": out, "classifiers": (), "distances": False, "plots": False}

    photons = get_geometry("ds1-photons")
    other = write_showers(
        tmp_path / "ph.h5", [1e3], np.ones((1, photons.n_voxels)), geometry=photons
    )
    with pytest.raises(
        GeometryError, match=r"has 368 voxels per shower but the reference .* has 10"
    ):
        evaluate(other, ref, **quick)

    renamed = _tiny_file(tmp_path / "renamed.h5", 40, seed=2)
    with h5py.File(renamed, "a") as f:
        f.attrs["geometry"] = "tiny-v2"
    with pytest.raises(GeometryError, match="says its geometry is 'tiny-v2' but the reference"):
        evaluate(renamed, ref, **quick)

    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_dataset("incident_energies", (0, 1), dtype="f4")
        f.create_dataset("showers", (0, TINY.n_voxels), dtype="f4")
    with pytest.raises(ShowerFileError, match="empty.h5: the file holds no showers"):
        evaluate(empty, ref, geometry=TINY, **quick)

    nan = _tiny_file(tmp_path / "nan.h5", 40, seed=3)
    with h5py.File(nan, "a") as f:
        f["showers"][3, 2] = np.nan
    with pytest.raises(ShowerFileError, match="'showers' contains NaN or Inf"):
        evaluate(nan, ref, geometry=TINY, **quick)

    with pytest.raises(ConfigError, match="needs equally many showers, but .*gen.h5 holds 40"):
        evaluate(
            gen, ref, geometry=TINY, out_dir=out, classifiers=("high",), on_size_mismatch="raise",
            distances=False, plots=False,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="unknown classifier input 'pixels'"):
        evaluate(gen, ref, geometry=TINY, out_dir=out, classifiers=("pixels",))
    with pytest.raises(ConfigError, match="needs a threshold above 0 MeV"):
        evaluate(other, other, threshold=0.0, **quick)
    assert not out.exists()  # nothing was written by the failed calls
