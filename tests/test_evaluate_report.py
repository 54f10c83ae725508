"""The report: metrics.json keys, a self-contained index.html, compare(), the CLI verbs, and one
clear sentence for each kind of bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys

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
    # 5 first-screen figures (response, two profiles, voxel spectrum, classifier scores), 14
    # other feature histograms, 2 average-shower images
    assert len(re.findall(r"<img ", page)) == len(saved["figures"]) == 21
    for fig in saved["figures"]:
        assert (out / fig["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    table = compare([out, out])
    assert table.rows[0][0] == "report" and table.rows[0][4] == saved["classifier"]["high"]["auc"]
    assert "| run |" in table.to_markdown()


def test_summary_draws_the_classifier_score_histograms(tmp_path):
    ref = _tiny_file(tmp_path / "ref.h5", 300, seed=1)
    gen = _tiny_file(tmp_path / "gen.h5", 300, seed=2, scale=1.1)
    m = evaluate(
        gen, ref, out_dir=tmp_path / "s", geometry=TINY, seed=3, classifiers=("high", "low"),
        protocol="fast", distances=False, summary=True,
    )  # fmt: skip
    key = [f for f in m["figures"] if f["group"] == "key"]
    assert len(m["figures"]) == len(key) == 5
    assert key[-1]["path"] == "figures/classifier_scores.png"
    assert (tmp_path / "s" / key[-1]["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "s" / "index.html").read_text()
    assert page.index("classifier score histograms") < page.index("<details")
    for mode in ("high", "low"):
        c = m["classifier"][mode]
        h = c["score_histogram"]
        # every held-out (test-part) shower once, in its own class
        assert sum(h["reference"]) + sum(h["generated"]) == c["n_test"] == 120
        assert len(h["edges"]) == len(h["reference"]) + 1 == 41
        assert h["label"].startswith("P(generated)")
    # a 10 % energy scale (S(response) > 0.3 above) is found by the high-level classifier: its
    # generated showers score higher on average than the reference ones
    h = m["classifier"]["high"]["score_histogram"]
    centres = np.convolve(h["edges"], [0.5, 0.5], "valid")
    assert np.average(centres, weights=h["generated"]) > np.average(centres, weights=h["reference"])


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


@pytest.fixture(scope="module")
def photons(tmp_path_factory):
    """A small ds1-photons refsim pair (200 showers each), the generated one 5 % scaled up."""
    root = tmp_path_factory.mktemp("photons")
    for name, seed, scale in (("ref", 1, 1.0), ("gen", 2, 1.05)):
        s = simulate("ds1-photons", "photon", "loguniform:1e3:1e5", n=200, seed=seed)
        write_showers(root / f"{name}.h5", s.incident_energies, scale * s.showers, attrs=s.attrs)
    return root / "gen.h5", root / "ref.h5"


def _sections(page: str) -> tuple[int, int, int]:
    return page.index("id='verdict'"), page.index("<h2>Metrics</h2>"), page.index("<details")


def test_summary_mode_draws_only_the_first_screen(photons, tmp_path):
    gen, ref = photons
    m = evaluate(
        gen, ref, out_dir=tmp_path / "s", classifiers=(), distances=False, summary=True,
        thresholds=["sep.response<0.1", "sep.mean<0.5", "cls-high.auc<0.6"],
        seconds_per_shower=2e-3,
    )  # fmt: skip
    assert [f["group"] for f in m["figures"]] == ["key"] * 4
    assert [f["path"] for f in m["figures"]] == [
        "figures/response_vs_e_inc.png", "figures/profile_longitudinal.png",
        "figures/profile_radial.png", "figures/voxel_energy.png",
    ]  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "s" / "figures").iterdir()) == sorted(
        f["path"][8:] for f in m["figures"]
    )
    assert m["summary_only"] is True and m["timing"]["seconds_per_shower"] == 2e-3
    # the 5 % scale shift moves the response histogram far beyond 0.1 (0.45 for 400 showers
    # per sample in tests/fixtures/official); the classifier was not run
    assert [c["passed"] for c in m["verdict"]["checks"]] == [False, True, None]
    assert m["verdict"]["status"] == "fail"
    prof = m["profiles"]
    assert prof["longitudinal"]["layers"] == [0, 1, 2, 3, 12]
    ratio = np.sum(prof["longitudinal"]["generated"]) / np.sum(prof["longitudinal"]["reference"])
    assert 1.0 < ratio < 1.1  # independent samples, 5 % scale: well inside (1, 1.1)
    page = (tmp_path / "s" / "index.html").read_text()
    verdict_at, metrics_at, details_at = _sections(page)
    assert verdict_at < metrics_at < page.index("Key physics plots") < details_at
    assert ">FAIL<" in page and "Summary mode" in page
    assert len(re.findall(r"<img ", page)) == 4
    assert "<code>sep.response &lt; 0.1</code>" in page


def test_report_without_plots_has_no_figures_and_no_matplotlib(photons, tmp_path):
    gen, ref = photons
    code = (
        "import sys\n"
        "from caloforge.evaluate import evaluate\n"
        f"m = evaluate({str(gen)!r}, {str(ref)!r}, out_dir={str(tmp_path / 'r')!r},"
        " classifiers=(), distances=False, plots=False)\n"
        "print(m['figures'], sorted(k for k in sys.modules if k.startswith('matplotlib')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[] []"
    page = (tmp_path / "r" / "index.html").read_text()
    assert "<img" not in page and "No figures were drawn" in page
    assert ">NO THRESHOLDS SET<" in page and "Published CaloChallenge values are not" in page
    assert "<details id='separation-power'>" in page
    assert not (tmp_path / "r" / "figures").exists()


def test_cli_summary_pass_and_pareto(photons, tmp_path):
    gen, ref = photons
    runner = CliRunner()
    base = ["evaluate", str(gen), "-r", str(ref), "--no-classifier", "--no-distances", "--summary"]
    (tmp_path / "limits.json").write_text(json.dumps({"sep.mean": "<0.9"}))
    for name, secs in (("fast", "0.001"), ("slow", "0.1")):
        result = runner.invoke(app, [
            *base, "-o", str(tmp_path / name), "--pass", "sep.response<0.9",
            "--pass-file", str(tmp_path / "limits.json"), "--seconds-per-shower", secs,
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "verdict: PASS" in result.output
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "untimed")])
    assert result.exit_code == 0, result.output
    runs = [str(tmp_path / n) for n in ("fast", "slow", "untimed")]
    png = tmp_path / "pareto.png"
    result = runner.invoke(app, ["compare", *runs, "--pareto", str(png), "--metric", "sep.mean"])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "untimed has no timing" in " ".join(result.output.split())
    result = runner.invoke(app, ["compare", *runs, "--json", "--metric", "sep.mean"])
    data = json.loads(result.output)
    assert [(p["run"], p["seconds_per_shower"]) for p in data["pareto"]] == [
        ("fast", 0.001), ("slow", 0.1)
    ]  # fmt: skip
    # same data, so the same mean separation power: only the faster run is on the front
    assert [p["pareto"] for p in data["pareto"]] == [True, False]
    assert data["rows"][2][-1] is None

    bad = runner.invoke(app, [*base, "-o", str(tmp_path / "bad"), "--pass", "auc<0.6"])
    assert isinstance(bad.exception, ConfigError) and "unknown metric 'auc'" in str(bad.exception)
    assert not (tmp_path / "bad").exists()
    bad = runner.invoke(app, ["compare", runs[2], "--pareto", str(tmp_path / "p.png")])
    assert isinstance(bad.exception, ConfigError) and "no run has timing" in str(bad.exception)
    assert not (tmp_path / "p.png").exists()


def test_cli_cls_epochs_sets_the_official_training_length(photons, tmp_path):
    gen, ref = photons
    runner = CliRunner()
    base = ["evaluate", str(gen), "-r", str(ref), "-c", "high", "--no-distances", "--no-plots"]
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "r"), "--cls-epochs", "1"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["protocol"]["name"] == "calochallenge" and saved["protocol"]["max_epochs"] == 1
    assert saved["classifier"]["high"]["epochs_run"] == 1
    assert saved["classifier"]["high"]["split"].startswith("official fractional split")
    bad = runner.invoke(app, [*base, "-o", str(tmp_path / "bad"), "--cls-epochs", "0"])
    assert isinstance(bad.exception, ConfigError) and "--cls-epochs must be >= 1" in str(
        bad.exception
    )
    assert not (tmp_path / "bad").exists()
