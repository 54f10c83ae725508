"""docs/adding-a-metric.md: its example metric, saved as one file of the package, is a pure,
seeded function with exact answers, and the report computes it with no edit of its own."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

import caloforge.evaluate
from caloforge.discovery import declared_names
from caloforge.errors import ConfigError
from caloforge.evaluate import evaluate, registry
from caloforge.evaluate.verdict import parse_threshold
from caloforge.geometry import CylindricalLayer, Geometry

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "adding-a-metric.md"
MODULE = "caloforge.evaluate.w1_response"
TINY = Geometry(
    "tiny", (CylindricalLayer(0, (0.0, 5.0, 20.0), 1), CylindricalLayer(1, (0.0, 4.0, 12.0), 4))
)


@pytest.fixture
def example(tmp_path, monkeypatch):
    """The guide's code block saved as ``w1_response.py`` in a folder of the caloforge.evaluate
    package (its ``__path__`` extended for this test), as a new built-in metric file; nothing
    imports it here. Unregistered and forgotten afterwards, so no other report computes it."""
    code = re.search(r"```python\n(.*?)```", GUIDE.read_text(), re.S).group(1)
    folder = tmp_path / "package"
    folder.mkdir()
    (folder / "w1_response.py").write_text(code)
    path = [*caloforge.evaluate.__path__, str(folder)]
    monkeypatch.setattr(caloforge.evaluate, "__path__", path)
    declared_names.cache_clear()
    try:
        yield
    finally:
        registry.METRICS.entries.pop("w1-response", None)
        sys.modules.pop(MODULE, None)
        declared_names.cache_clear()


@pytest.fixture
def metric(example):
    registry.get_metric("w1-response")  # imports the file
    return sys.modules[MODULE].wasserstein_1d


def test_a_shift_is_measured_exactly(metric):
    x = np.random.default_rng(0).normal(size=500)
    # W1 between a sample and the same sample shifted by d is d exactly
    assert metric(x, x + 0.25).value == pytest.approx(0.25, abs=1e-12)
    assert metric(x, x).value == 0.0


def test_seeded_and_with_an_error(metric):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=300), rng.normal(0.5, 1.0, size=400)
    first, again = metric(a, b, seed=3), metric(a, b, seed=3)
    assert first == again
    assert first.error > 0 and first.batch_sizes == [300, 400]


@pytest.mark.parametrize("bad", [np.array([1.0]), np.array([1.0, np.nan])])
def test_bad_input_is_one_sentence(metric, bad):
    with pytest.raises(ConfigError):
        metric(bad, np.arange(5.0))


def _showers(n: int, seed: int, scale: float):
    from caloforge.io import Showers

    rng = np.random.default_rng(seed)
    e_inc = rng.uniform(1e3, 1e4, n)
    x = rng.exponential(1.0, (n, TINY.n_voxels))
    x *= (e_inc * scale * rng.normal(1.0, 0.05, n) / x.sum(1))[:, None]
    return Showers(e_inc, x.astype(np.float32))


def test_the_report_computes_the_new_file_with_no_edit(example, tmp_path):
    assert "w1-response" in registry.metric_names() and MODULE not in sys.modules
    ref, gen = _showers(200, 1, 1.0), _showers(150, 2, 1.1)
    out = tmp_path / "report"
    m = evaluate(
        gen, ref, out_dir=out, geometry=TINY, classifiers=(), distances=False, plots=False,
        thresholds=["metric.w1-response<1"],
    )  # fmt: skip
    saved = json.loads((out / "metrics.json").read_text())
    w1 = saved["metrics"]["w1-response"]
    # the report's value is the metric of the two responses (threshold 0 on this geometry)
    expected = wasserstein_distance(
        ref.showers.sum(1) / ref.incident_energies, gen.showers.sum(1) / gen.incident_energies
    )
    assert w1["value"] == pytest.approx(expected, rel=1e-6) and w1["note"] == "bootstrap"
    assert m["metrics"] == saved["metrics"]
    assert saved["verdict"]["checks"][0]["metric"] == "metric.w1-response"
    assert "w1-response" in (out / "index.html").read_text()


def test_an_unknown_metric_in_a_threshold_is_one_sentence():
    threshold = parse_threshold("metric.no-such-metric<1")
    with pytest.raises(ConfigError, match="unknown metric 'no-such-metric'"):
        evaluate("gen.h5", "ref.h5", out_dir="never", classifiers=(), thresholds=[threshold])
