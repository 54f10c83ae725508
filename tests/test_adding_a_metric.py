"""docs/adding-a-metric.md: its example metric is a pure, seeded function with exact answers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from caloforge.errors import ConfigError

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "adding-a-metric.md"


@pytest.fixture
def metric():
    code = re.search(r"```python\n(.*?)```", GUIDE.read_text(), re.S).group(1)
    namespace: dict = {"__name__": "caloforge_metric_guide_example"}
    exec(compile(code, str(GUIDE), "exec"), namespace)
    return namespace["wasserstein_1d"]


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
