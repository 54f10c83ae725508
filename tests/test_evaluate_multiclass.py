"""The multi-class comparison sorts a clearly wrong sample apart from a good one."""

from __future__ import annotations

import numpy as np
import pytest

from caloforge.errors import ConfigError
from caloforge.evaluate import multiclass_test, stream_features
from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.refsim import simulate

N = 800


def test_multiclass_separates_a_scaled_sample_and_not_an_independent_one():
    geo = get_geometry("ds1-photons")
    ref = simulate("ds1-photons", "photon", "ds1", n=N, seed=41)
    same = simulate("ds1-photons", "photon", "ds1", n=N, seed=42)
    other = simulate("ds1-photons", "photon", "ds1", n=N, seed=43)
    scaled = Showers(other.incident_energies, other.showers * 1.3)
    vec = [stream_features(s, geo).features.high_level_vector() for s in (ref, same, scaled)]
    result = multiclass_test(vec[0], vec[1:], labels=["refsim", "x1.3"], seed=0, max_epochs=20)
    assert result.labels == ["reference", "refsim", "x1.3"]
    assert np.allclose(np.sum(result.confusion, axis=1), 1.0)
    # 160 test showers per class: sigma of a null AUC = sqrt(321 / (12 * 160^2)) = 0.032.
    # A 30 % energy-scale error moves the response by about 10 of its widths (ds1 photons,
    # resolution a few %), so it is separated almost perfectly; an independent refsim sample
    # must stay within 5 sigma of 0.5 (a 5-sigma band is crossed by chance with p < 1e-6).
    assert result.auc_vs_reference["x1.3"] > 0.95
    assert abs(result.auc_vs_reference["refsim"] - 0.5) < 5 * result.auc_null_sigma
    assert result.confusion[2][2] > 0.9


def test_multiclass_rejects_bad_input():
    with pytest.raises(ConfigError, match="at least two generated"):
        multiclass_test(np.zeros((20, 3)), [np.zeros((20, 3))])
    with pytest.raises(ConfigError, match="same D"):
        multiclass_test(np.zeros((20, 3)), [np.zeros((20, 3)), np.zeros((20, 4))])


def test_cli_multiclass_writes_the_table_and_json(tmp_path):
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from caloforge.cli import app

    fixtures = Path(__file__).parent / "fixtures" / "official"
    args = [str(fixtures / "ph_gen.h5"), str(fixtures / "ph_scaled.h5")]
    result = CliRunner().invoke(
        app,
        ["multiclass", *args, "-r", str(fixtures / "ph_ref.h5"), "-o", str(tmp_path / "m.json")]
        + ["--max-epochs", "3"],
    )
    assert result.exit_code == 0, result.output
    assert "AUC vs reference" in result.output
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["labels"] == ["reference", "ph_gen.h5", "ph_scaled.h5"]
    assert saved["n_per_class"] == 400
