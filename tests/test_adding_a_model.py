"""docs/adding-a-model.md: its example model, saved as one file of the package, is found by name
and runs through the engine as the guide says."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import caloforge.models
from caloforge.discovery import declared_names
from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.models import base, builtin_models, load_generator, model_class
from caloforge.testing import toy_showers

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "adding-a-model.md"
MODULE = "caloforge.models.mean_shape"


@pytest.fixture
def example(tmp_path, monkeypatch):
    """The guide's code block saved as ``mean_shape.py`` in a folder of the caloforge.models
    package (its ``__path__`` extended for this test), exactly as a new built-in model file;
    nothing imports it here. Unregistered and forgotten afterwards."""
    code = re.search(r"```python\n(.*?)```", GUIDE.read_text(), re.S).group(1)
    (tmp_path / "mean_shape.py").write_text(code)
    monkeypatch.setattr(caloforge.models, "__path__", [*caloforge.models.__path__, str(tmp_path)])
    declared_names.cache_clear()
    try:
        yield
    finally:
        base.MODELS.entries.pop("mean-shape", None)
        sys.modules.pop(MODULE, None)
        declared_names.cache_clear()


def test_the_new_file_is_found_without_importing_it(example):
    assert "mean-shape" in builtin_models()  # what the parametrised tests iterate over
    assert MODULE not in sys.modules
    cls = model_class("mean-shape")
    assert MODULE in sys.modules and cls.model_name == "mean-shape"
    assert cls.smoke_config  # the parametrised engine/config/capability tests train with it


def test_the_guide_model_trains_resumes_and_reloads(example, tmp_path):
    geo = get_geometry("grid:4x2x2")
    train = toy_showers(geo, np.geomspace(1e3, 1e5, 32), seed=0)
    cls = model_class("mean-shape")
    straight = cls(geo)
    history = straight.fit(train, out_dir=tmp_path / "a", epochs=3, seed=2, progress=False)
    assert history["epoch"] == [1.0, 2.0, 3.0]
    assert history["loss"][-1] < history["loss"][0]  # cross-entropy falls from a random start
    cut = cls(geo)
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
    assert [s.name for s in a.latent_spec()] == ["noise", "incident_energy"]
    with pytest.raises(ConfigError, match="'hidden' of model 'mean-shape' must be >= 1"):
        cls(geo, {"hidden": 0})


def test_the_parametrised_suites_cover_the_new_file(example, tmp_path):
    """What tests/test_training_engine.py, test_model_configs.py and test_model_capabilities.py
    check for every built-in model, run on the guide's model, found by name: a new model file
    passes them with no edit of those files."""
    import test_model_capabilities as capabilities
    import test_model_configs as configs
    import test_training_engine as engine

    name = "mean-shape"
    engine.test_every_model_declares_a_smoke_config(name)
    engine.test_initialisation_is_drawn_from_the_seed(name)
    geo = get_geometry(engine.GEOMETRY)
    data = (
        toy_showers(geo, np.geomspace(1e3, 1e5, 16), seed=1),
        toy_showers(geo, np.geomspace(2e3, 5e4, 6), seed=2),
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    engine.test_seeded_and_resumed_runs_are_bit_identical(name, data, tmp_path / "a")
    engine.test_budget_stops_after_the_step_that_passes_it(name, data, tmp_path / "b")
    configs.test_every_option_of_every_model_refuses_bad_values_in_one_sentence(name)
    configs.test_defaults_round_trip_and_are_stored_typed(name)
    model = capabilities.smoke_model(name)
    capabilities.test_every_model_refuses_conditions_it_does_not_support(model)
    capabilities.test_latent_spec_describes_latent_inputs(model)
    capabilities.test_capabilities_replace_duck_typing(model)
