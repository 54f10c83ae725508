"""Cross-check against the official CaloChallenge evaluation code.

tests/fixtures/official/ holds small caloforge-written shower files (refsim pairs and a 5 %
scaled copy) and ``official_numbers.json``: the numbers the official code (evaluate.py,
HighLevelFeatures.py, evaluate_plotting_helper.py; JetNet for FPD/KPD; scikit-learn for the
calibration) gave on them. The fixtures' README.md has the exact commands. Every number here is
deterministic, so caloforge must reproduce it to 1e-6 relative (in practice exactly, as the
arithmetic is the same); any change that moves one is caught.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from caloforge.evaluate import evaluate, fpd, kpd, official_scores, stream_features
from caloforge.geometry import get_geometry

FIXTURES = Path(__file__).parent / "fixtures" / "official"
OFFICIAL = json.loads((FIXTURES / "official_numbers.json").read_text())
GEOMETRY = {"1-photons": "ds1-photons", "1-pions": "ds1-pions", "2": "ds2", "3": "ds3"}
REL = 1e-6


def _close(ours, theirs, rel: float = REL) -> bool:
    if theirs is None:  # NaN in the official output (an empty histogram)
        return ours is None or (isinstance(ours, float) and math.isnan(ours))
    return ours is not None and abs(ours - theirs) <= rel * max(abs(theirs), 1e-300)


@pytest.mark.parametrize("pair", sorted(OFFICIAL["pairs"]))
def test_separation_powers_match_the_official_code(pair, tmp_path):
    spec = OFFICIAL["pairs"][pair]
    m = evaluate(
        FIXTURES / spec["generated"], FIXTURES / spec["reference"], out_dir=tmp_path,
        classifiers=(), distances=False, plots=False,
    )  # fmt: skip
    assert m["binning_scheme"] == "official"
    official = spec["separation_power"]
    # the same set of numbers: every official one, and no caloforge extra among them
    assert set(m["separation_power"]) == set(official)
    wrong = {
        k: (m["separation_power"][k], v)
        for k, v in official.items()
        if not _close(m["separation_power"][k], v)
    }
    assert not wrong, wrong


@pytest.mark.parametrize("pair", ["ds1-photons", "ds1-pions", "ds2"])
def test_high_level_vector_matches_the_official_code(pair):
    spec = OFFICIAL["pairs"][pair]
    geo = get_geometry(GEOMETRY[spec["dataset"]])
    vec = stream_features(FIXTURES / spec["reference"], geo).features.high_level_vector()
    assert list(vec.shape) == spec["high_level_shape"]
    np.testing.assert_allclose(vec[0], spec["high_level_reference_row0"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        vec.sum(axis=0), spec["high_level_reference_column_sums"], rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("pair", ["ds1-photons", "ds1-photons-scaled", "ds1-pions"])
def test_fpd_and_kpd_match_jetnet(pair):
    spec = OFFICIAL["pairs"][pair]
    geo = get_geometry(GEOMETRY[spec["dataset"]])
    ref = stream_features(FIXTURES / spec["reference"], geo).features.high_level_vector()
    gen = stream_features(FIXTURES / spec["generated"], geo).features.high_level_vector()
    fk, kk = OFFICIAL["fpd_kwargs"], OFFICIAL["kpd_kwargs"]
    f = fpd(
        ref, gen, min_batch=fk["min_samples"], max_batch=fk["max_samples"],
        n_batches=fk["num_batches"], n_sizes=fk["num_points"],
    )  # fmt: skip
    k = kpd(ref, gen, batch=kk["batch_size"], n_batches=kk["num_batches"])
    # the same draws (default_rng(42)) and the same algebra: FPD agrees to rounding; KPD sums
    # a few 10^5 kernel values in another order than JetNet's numba loop, hence 1e-6
    assert _close(f.value, spec["fpd"][0]) and _close(f.error, spec["fpd"][1])
    assert _close(k.value, spec["kpd"][0]) and _close(k.error, spec["kpd"][1])


@pytest.mark.parametrize("n", sorted(OFFICIAL["calibration"]))
def test_calibrated_auc_and_jsd_match_the_official_code(n):
    c = OFFICIAL["calibration"][n]
    ours = official_scores(c["test_scores"], c["test_labels"], c["val_scores"], c["val_labels"])
    assert _close(ours["auc"], c["auc"], 1e-12)
    assert _close(ours["jsd"], c["jsd"], 1e-9)
    assert _close(ours["auc_uncalibrated"], c["auc_uncalibrated"], 1e-12)


@pytest.mark.parametrize("pair", sorted(OFFICIAL["pairs"]))
def test_prdc_matches_the_official_code(pair, tmp_path):
    spec = OFFICIAL["pairs"][pair]
    m = evaluate(
        FIXTURES / spec["generated"], FIXTURES / spec["reference"], out_dir=tmp_path,
        classifiers=(), distances=False, plots=False, prdc_k=5,
    )  # fmt: skip
    # counts of neighbours inside float32 radii, as scikit-learn computes the distances: exact
    for key, value in spec["prdc"].items():
        assert _close(m["prdc"][key], value, 1e-12), key
