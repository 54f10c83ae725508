"""The ResNet classifier (official ``cls-resnet``): the same network and initial weights as the
official code, and clear errors where it does not apply.

tests/fixtures/official/official_resnet.json holds the official network's parameter count and
its logits on fixed inputs right after ``torch.manual_seed(seed)`` (README.md there has the
command). A full official ``cls-resnet`` run was reproduced to the last bit as well (docs/
evaluation.md section 7); it takes minutes on a CPU, so it is not a test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from caloforge.errors import ConfigError
from caloforge.evaluate import evaluate
from caloforge.evaluate.resnet import build_resnet, image_shape
from caloforge.geometry import get_geometry

FIXTURES = Path(__file__).parent / "fixtures" / "official"
OFFICIAL = json.loads((FIXTURES / "official_resnet.json").read_text())


def _inputs(n_rows: int, n_vox: int) -> np.ndarray:
    # the fixed rows of the fixture script (no RNG): [log10 E_inc, a sparse voxel pattern]
    i = np.arange(n_rows).reshape(-1, 1)
    k = np.arange(n_vox).reshape(1, -1)
    vox = 1e-3 * np.sin(0.37 * (k + 1) * (i + 1)) ** 2 * ((k * (i + 3)) % 7 < 2)
    return np.concatenate([3.0 + 0.5 * i, vox], axis=1)


@pytest.mark.parametrize("case", OFFICIAL["cases"], ids=lambda c: f"depth{c['depth']}")
def test_network_and_initial_weights_match_the_official_resnet(case):
    import torch

    shape = tuple(case["image_shape"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(case["seed"])
        net = build_resnet(shape, case["depth"], dtype=torch.float64)
    assert sum(p.numel() for p in net.parameters()) == case["n_parameters"]
    x = torch.from_numpy(_inputs(case["n_rows"], int(np.prod(shape))))
    net.train()  # batch statistics
    with torch.no_grad():
        train_logits = net(x).numpy().reshape(-1)
    net.eval()
    with torch.no_grad():
        eval_logits = net(x).numpy().reshape(-1)
    # the same weights and the same arithmetic; 1e-9 only leaves room for another CPU's
    # convolution kernels to round differently (observed: identical)
    np.testing.assert_allclose(train_logits, case["logits_train_mode"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(eval_logits, case["logits_eval_mode"], rtol=1e-9, atol=1e-12)


def test_image_shape_of_the_geometries():
    assert image_shape(get_geometry("ds2")) == (45, 16, 9)
    assert image_shape(get_geometry("ds3")) == (45, 50, 18)
    with pytest.raises(ConfigError, match="layers binned alike"):
        image_shape(get_geometry("ds1-photons"))
    with pytest.raises(ConfigError, match="depth"):
        build_resnet((45, 16, 9), depth=50)


def test_resnet_classifier_is_refused_where_it_does_not_apply(tmp_path):
    ph = FIXTURES / "ph_gen.h5"
    with pytest.raises(ConfigError, match="layers binned alike"):
        evaluate(ph, ph, out_dir=tmp_path / "a", classifiers=("resnet",), plots=False)
    d2 = FIXTURES / "d2_gen.h5"
    with pytest.raises(ConfigError, match="official procedure only"):
        evaluate(d2, d2, out_dir=tmp_path / "b", classifiers=("resnet",), protocol="fast")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
