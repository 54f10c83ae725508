"""The report's verdict and the Pareto data: pure functions on hand-made metrics dictionaries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from caloforge.errors import ConfigError
from caloforge.evaluate.pareto import load_timings, pareto_front, pareto_points
from caloforge.evaluate.profiles import radial_profile
from caloforge.evaluate.verdict import (
    Threshold,
    check,
    load_thresholds,
    metric_value,
    null_deviation,
    overall,
    parse_threshold,
    parse_thresholds,
    verdict,
)
from caloforge.geometry import CylindricalLayer, Geometry

METRICS = {
    "classifier": {
        "high": {"auc": 0.55, "jsd": 0.02, "auc_null_sigma": 0.01, "accuracy": 0.52},
        "low": {"auc": 0.71, "jsd": 0.2, "auc_null_sigma": 0.01},
    },
    "fpd": {"value": 0.03, "error": 0.001},
    "kpd": {"value": -1e-5, "error": 1e-5},
    "separation_power": {"response": 0.12, "E_layer_0": None},
    "separation_power_extra": {"sparsity_1": 0.4},
    "separation_power_summary": {"all": {"mean": 0.05, "max": 0.3, "n": 20}},
    "prdc": {"precision": 0.9, "recall": 0.8, "density": 1.0, "coverage": 0.95},
}


def test_parse_thresholds():
    assert parse_threshold("cls-high.auc<0.6") == Threshold("cls-high.auc", "<", 0.6)
    assert parse_threshold(" fpd <= 5e-2 ") == Threshold("fpd", "<=", 0.05)
    assert parse_thresholds("cls-high.auc<0.6, prdc.recall>=0.7,") == [
        Threshold("cls-high.auc", "<", 0.6),
        Threshold("prdc.recall", ">=", 0.7),
    ]
    assert parse_thresholds("") == []
    with pytest.raises(ConfigError, match="not of the form METRIC<NUMBER"):
        parse_threshold("cls-high.auc=0.6")
    with pytest.raises(ConfigError, match="the limit 'abc' is not a number"):
        parse_threshold("fpd<abc")
    with pytest.raises(ConfigError, match="finite number"):
        parse_threshold("fpd<inf")


def test_load_thresholds_both_shapes(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(["cls-high.auc<0.6", "fpd<0.05"]))
    (tmp_path / "b.json").write_text(json.dumps({"cls-high.auc": "<0.6", "fpd": "<0.05"}))
    assert load_thresholds(tmp_path / "a.json") == load_thresholds(tmp_path / "b.json")
    (tmp_path / "c.json").write_text(json.dumps({"fpd": 0.05}))
    with pytest.raises(ConfigError, match="must hold a list"):
        load_thresholds(tmp_path / "c.json")
    (tmp_path / "d.json").write_text("{")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_thresholds(tmp_path / "d.json")
    with pytest.raises(ConfigError, match="does not exist"):
        load_thresholds(tmp_path / "missing.json")


def test_metric_values():
    assert metric_value(METRICS, "cls-high.auc") == 0.55
    assert metric_value(METRICS, "cls-low.jsd") == 0.2
    assert metric_value(METRICS, "cls-low-normed.auc") is None  # not run
    assert metric_value(METRICS, "fpd") == 0.03 and metric_value(METRICS, "kpd") == -1e-5
    assert metric_value(METRICS, "sep.mean") == 0.05 and metric_value(METRICS, "sep.max") == 0.3
    assert metric_value(METRICS, "sep.response") == 0.12
    assert metric_value(METRICS, "sep.sparsity_1") == 0.4  # an extra
    assert metric_value(METRICS, "sep.E_layer_0") is None  # NaN in the run
    assert metric_value(METRICS, "prdc.coverage") == 0.95
    assert metric_value({}, "fpd") is None
    for bad in ("auc", "cls-high.loss", "sep.", "prdc.f1"):
        with pytest.raises(ConfigError, match="unknown metric"):
            metric_value(METRICS, bad)


def test_verdict_logic():
    passing = parse_thresholds("cls-high.auc<0.6,fpd<=0.03,prdc.recall>0.7")
    assert [c.passed for c in check(METRICS, passing)] == [True, True, True]
    assert verdict(METRICS, passing)["status"] == "pass"
    # the boundary: < excludes, <= includes the limit
    assert check(METRICS, parse_thresholds("fpd<0.03"))[0].passed is False
    failing = parse_thresholds("cls-high.auc<0.6,cls-low.auc<0.6")
    assert overall(check(METRICS, failing)) == "fail"
    missing = parse_thresholds("cls-high.auc<0.6,cls-low-normed.auc<0.6")
    result = verdict(METRICS, missing)
    assert result["status"] == "incomplete"
    assert result["checks"][1] == {
        "metric": "cls-low-normed.auc", "op": "<", "limit": 0.6, "value": None, "passed": None
    }  # fmt: skip
    # a failure outranks a missing metric
    assert overall(check(METRICS, missing + failing)) == "fail"
    assert verdict(METRICS, [])["status"] == "none"
    assert null_deviation(METRICS) == pytest.approx({"high": 5.0, "low": 21.0})


def test_pareto_front_and_points(tmp_path):
    pts = [
        {"seconds_per_shower": 1e-3, "value": 0.9},
        {"seconds_per_shower": 1e-1, "value": 0.6},
        {"seconds_per_shower": 1e-2, "value": 0.95},  # slower and worse than the first
        {"seconds_per_shower": 1.0, "value": 0.55},
    ]
    assert pareto_front(pts) == [True, True, False, True]
    # higher is better: the fastest point stays, the 0.95 one beats both slower ones
    assert pareto_front(pts, higher_is_better=True) == [True, False, True, False]

    runs = [
        ("fast", {"classifier": {"high": {"auc": 0.9}}, "timing": {"seconds_per_shower": 1e-3}}),
        ("slow", {"classifier": {"high": {"auc": 0.6}}}),
        ("untimed", {"classifier": {"high": {"auc": 0.7}}}),
        ("no-cls", {"classifier": {}, "timing": {"seconds_per_shower": 1e-2}}),
    ]
    points, notes = pareto_points(runs, "cls-high.auc", timings={"slow": 0.5})
    assert [(p["run"], p["seconds_per_shower"], p["timing_source"]) for p in points] == [
        ("fast", 1e-3, "metrics"),
        ("slow", 0.5, "timing file"),
    ]
    assert all(p["pareto"] for p in points)
    assert notes == [
        "untimed has no timing (no timing.seconds_per_shower in its metrics.json and no entry "
        "in --timing), so it is left off the Pareto plane.",
        "no-cls has no cls-high.auc, so it is left off the Pareto plane.",
    ]
    with pytest.raises(ConfigError, match="unknown metric"):
        pareto_points(runs, "auc")

    (tmp_path / "plain.json").write_text(json.dumps({"a": 0.01, "b": "x", "c": -1}))
    assert load_timings(tmp_path / "plain.json") == {"a": 0.01}
    rows = {
        "rows": [{"model": "qvae", "ms_per_shower": 2.0}, {"run": "gan", "seconds_per_shower": 0.1}]
    }
    (tmp_path / "bench.json").write_text(json.dumps(rows))
    assert load_timings(tmp_path / "bench.json") == {"qvae": 2e-3, "gan": 0.1}
    (tmp_path / "none.json").write_text(json.dumps({"rows": [{"model": "x"}]}))
    with pytest.raises(ConfigError, match="holds no timing"):
        load_timings(tmp_path / "none.json")


def test_radial_profile_spreads_coarse_bins_evenly():
    # layer 0: one radial bin 0-10 mm; layer 1: bins 0-4, 4-10 mm, 2 alpha bins each
    geo = Geometry(
        "t", (CylindricalLayer(0, (0.0, 10.0), 1), CylindricalLayer(1, (0.0, 4.0, 10.0), 2))
    )
    mean = np.array([20.0, 8.0, 6.0, 0.0, 3.0])  # layer 0: 20 MeV; layer 1: (8+0)/4, (6+3)/6
    prof = radial_profile(mean, 2 * mean, geo)
    assert prof["edges"] == [0.0, 4.0, 10.0]
    assert prof["reference"] == pytest.approx([20 / 10 + 8 / 4, 20 / 10 + 9 / 6])
    assert prof["generated"] == pytest.approx([2 * v for v in prof["reference"]])
    # energy is conserved: density x width sums to the total
    assert np.dot(prof["reference"], np.diff(prof["edges"])) == pytest.approx(mean.sum())
