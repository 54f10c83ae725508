"""docs/adding-a-model.md: its example model runs through the engine as the guide says."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.models import base, load_generator
from caloforge.models._gan_common import toy_showers

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "adding-a-model.md"


@pytest.fixture
def example():
    """The guide's code block, run as a module; the model is unregistered afterwards."""
    code = re.search(r"```python\n(.*?)```", GUIDE.read_text(), re.S).group(1)
    module = types.ModuleType("caloforge_guide_example")
    sys.modules[module.__name__] = module
    try:
        exec(compile(code, str(GUIDE), "exec"), module.__dict__)
        yield module
    finally:
        base._REGISTRY.pop("mean-shape", None)
        sys.modules.pop(module.__name__, None)


def test_the_guide_model_trains_resumes_and_reloads(example, tmp_path):
    geo = get_geometry("grid:4x2x2")
    train = toy_showers(geo, np.geomspace(1e3, 1e5, 32), seed=0)
    straight = example.MeanShape(geo)
    history = straight.fit(train, out_dir=tmp_path / "a", epochs=3, seed=2, progress=False)
    assert history["epoch"] == [1.0, 2.0, 3.0]
    assert history["loss"][-1] < history["loss"][0]  # cross-entropy falls from a random start
    cut = example.MeanShape(geo)
    cut.fit(train, out_dir=tmp_path / "b", epochs=1, seed=2, progress=False)
    load_generator(tmp_path / "b").fit(
        train, out_dir=tmp_path / "b", epochs=3, resume=True, progress=False
    )
    a, b = load_generator(tmp_path / "a"), load_generator(tmp_path / "b")
    assert all(
        torch.equal(x, y) for x, y in zip(a.net.parameters(), b.net.parameters(), strict=True)
    )
    x = a.sample(np.array([1e3, 1e4]), seed=1)
    assert x.shape == (2, 16) and np.all(np.isfinite(x)) and np.all(x >= 0)
    with pytest.raises(ConfigError, match="'hidden' of model 'mean-shape' must be >= 1"):
        example.MeanShape(geo, {"hidden": 0})
