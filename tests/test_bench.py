"""The timing table: rows, speed-up against an injected toy baseline, missing baselines, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from caloforge.bench import BaselineUnavailable, bench, median_time, refsim_baseline
from caloforge.cli import app
from caloforge.errors import ConfigError
from test_export import make_run  # registers the test-only "tiny-mlp" model

VARIANTS = (("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8"))


def toy_baseline(calls: list):
    """A stand-in simulator: slow on purpose (a few ms per shower), records its calls."""

    def simulate(geometry, energies, seed):
        calls.append((geometry.name, len(energies), seed))
        rng = np.random.default_rng(seed)
        for _ in energies:
            np.linalg.svd(rng.random((60, 60)))
        return None

    return simulate


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("bench"))


def test_table_has_baseline_and_speedup(run_dir, tmp_path):
    calls: list = []
    result = bench(
        [run_dir],
        batch_sizes=(1, 16),
        variants=VARIANTS,
        repeats=2,
        warmup=1,
        baseline=toy_baseline(calls),
        baseline_showers=4,
        threads=1,
    )
    base = result.rows[0]
    assert base.runtime == "refsim" and base.model == "refsim [calogan]"
    assert base.ms_per_shower > 0 and calls and calls[0][:2] == ("calogan", 4)
    models = result.rows[1:]
    assert [(r.runtime, r.precision, r.batch_size) for r in models] == [
        ("torch", "fp32", 1),
        ("torch", "fp32", 16),
        ("onnxruntime", "fp32", 1),
        ("onnxruntime", "fp32", 16),
        ("onnxruntime", "int8 dynamic", 1),
        ("onnxruntime", "int8 dynamic", 16),
    ]
    for r in models:
        assert r.ms_per_shower > 0 and r.network_ms_per_shower > 0  # no timing ratios: CI is noisy
        assert r.speedup == pytest.approx(base.ms_per_shower / r.ms_per_shower)
        assert r.note == ""
    json_path, md_path = result.write(tmp_path / "results")
    saved = json.loads(json_path.read_text())
    assert len(saved["rows"]) == 7 and saved["machine"]["threads"] == 1
    md = md_path.read_text()
    assert "| speed-up vs refsim |" in md and "1 (baseline)" in md
    assert f"{models[0].speedup:.3g}x" in md


def test_missing_baseline_is_reported_not_a_number(run_dir):
    def unavailable(geometry, energies, seed):
        raise BaselineUnavailable("caloforge.refsim cannot be imported (test)")

    for baseline, reason in [(unavailable, "cannot be imported"), (None, "no baseline")]:
        result = bench(
            [run_dir],
            batch_sizes=(4,),
            variants=VARIANTS[:1],
            repeats=1,
            warmup=0,
            baseline=baseline,
        )
        assert result.rows[0].ms_per_shower is None and reason in result.rows[0].note
        assert result.rows[1].speedup is None
        md = result.to_markdown()
        assert "missing" in md and reason in md


def test_grid_geometry_needs_a_baseline_detector(tmp_path):
    run = make_run(tmp_path, geometry="grid:4x5x5")
    result = bench(
        [run],
        batch_sizes=(2,),
        variants=VARIANTS[:1],
        repeats=1,
        warmup=0,
        baseline=refsim_baseline(),
    )
    assert "--baseline-detector" in result.rows[0].note
    assert result.rows[0].ms_per_shower is None


def test_bad_settings(run_dir):
    with pytest.raises(ConfigError, match="batch sizes must be >= 1"):
        bench([run_dir], batch_sizes=(0,))
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        bench([run_dir], device="tpu")
    with pytest.raises(ConfigError, match="at least one model directory"):
        bench([])


def test_median_time_ignores_warmup():
    calls = []
    median_time(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5


def test_cli_export_and_bench(run_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "export",
            str(run_dir),
            "--format",
            "onnx",
            "--precision",
            "int8",
            "-o",
            str(tmp_path / "art"),
            "--n-check",
            "16",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "within tolerance" in res.output and (tmp_path / "art" / "model.onnx").is_file()
    res = runner.invoke(
        app,
        [
            "bench",
            str(run_dir),
            "--batch-sizes",
            "2,4",
            "--variants",
            "torch:fp32,onnx:int8",
            "--repeats",
            "1",
            "--no-baseline",
            "--threads",
            "1",
            "-o",
            str(tmp_path / "res"),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "res" / "timing.json").read_text())["rows"]
    assert [r["batch_size"] for r in rows[1:]] == [2, 4, 2, 4]
    res = runner.invoke(app, ["bench", str(run_dir), "--variants", "onnx:int4"])
    assert isinstance(res.exception, ConfigError) and "onnx:int4" in str(res.exception)
