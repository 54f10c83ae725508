"""Declared capabilities and conditions: what each model says it takes, and one sentence for
what it does not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from caloforge.conditions import Conditions
from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.models import builtin_models, load_generator, model_class
from caloforge.testing import toy_showers
from caloforge.workflows import configure_model

LEGACY = Path(__file__).parent / "fixtures" / "legacy_v1"
E = np.array([2e3, 4e4])


def smoke_model(name: str):
    """Model ``name`` with its declared smoke config, after one training step (which fits
    what a model fits once on its data), so that it generates."""
    geo = get_geometry("grid:8x4x4")
    m = model_class(name)(geo, model_class(name).smoke_config)
    m.fit(toy_showers(geo, np.geomspace(1e3, 1e5, 16), seed=1), max_minutes=0.0, progress=False)
    return m


@pytest.fixture(scope="module", params=builtin_models())
def model(request):
    """Every built-in model (a new model file included), ready to generate."""
    return smoke_model(request.param)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"energy": []}, "no incident energies given"),
        ({"energy": [1e3, 0.0]}, "incident energies must be finite and > 0 MeV, got values from 0"),
        ({"energy": [1e3, np.nan]}, "incident energies must be finite and > 0 MeV"),
        ({"energy": ["a"]}, "incident energies must be numbers (MeV)"),
        ({"energy": E, "theta": [0.1]}, "condition 'theta' has 1 values but there are 2"),
        ({"energy": E, "theta": [0.1, 4.0]}, "'theta' (polar angle) must lie in [0, pi]"),
        ({"energy": E, "phi": [0.1, np.inf]}, "condition 'phi' must hold finite values"),
        ({"energy": E, "entry": [[0, 0, 0]]}, "condition 'entry' has 1 values but there are 2"),
    ],
)
def test_bad_conditions_are_one_sentence(kwargs, message):
    with pytest.raises(ConfigError) as info:
        Conditions(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_conditions_slice_and_name_what_they_hold():
    c = Conditions(energy=E, theta=[0.1, 0.2], entry=[[0, 0, 0], [1, 2, 3]])
    assert c.names == {"energy", "theta", "entry"} and len(c) == 2
    assert c[1:].entry.tolist() == [[1.0, 2.0, 3.0]] and c[1:].phi is None


def test_every_model_refuses_conditions_it_does_not_support(model):
    assert model.supported_conditions == {"energy"}
    np.testing.assert_array_equal(
        model.sample(Conditions(energy=E), seed=3), model.sample(E, seed=3)
    )
    with pytest.raises(ConfigError, match="is conditioned on energy only and cannot take phi"):
        model.sample(Conditions(energy=E, theta=[0.1, 0.0], phi=[0.0, 1.0]), seed=3)
    # head-on and centred (theta 0, entry at the origin; phi then means nothing): what every
    # model makes, so accepted by every model
    head_on = Conditions(energy=E, theta=[0.0, 0.0], phi=[0.0, 1.0], entry=[[0, 0, 0]] * 2)
    np.testing.assert_array_equal(model.sample(head_on, seed=3), model.sample(E, seed=3))


def test_latent_spec_describes_latent_inputs(model):
    spec = model.latent_spec()
    inputs = model.latent_inputs(E, seed=1)
    assert len(spec) == len(inputs)
    assert [tuple(t.shape[1:]) for t in inputs] == [s.shape for s in spec]
    assert len(set(model.latent_input_names)) == len(spec)
    assert spec[-1].name == "incident_energy" and spec[-1].sampler == "given"


def test_capabilities_replace_duck_typing(model):
    name = model.model_name
    if name in ("qvae", "vae", "gan3d", "wgan", "qgan", "qgan-dist"):  # what they declared so far
        assert model.takes_prior_sampler == (name == "qvae")
        assert model.takes_device == (name in ("qgan", "qgan-dist"))
        assert model.exportable == (name not in ("qgan", "qgan-dist"))
    if model.exportable:  # the deterministic part traces to TorchScript, for any batch size
        import warnings

        import torch

        module = model.inference_module().eval()
        other = model.latent_inputs(np.array([1e3, 5e3, 7e4]), seed=2)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation and tracer notes of torch.jit
            traced = torch.jit.trace(module, model.latent_inputs(E, seed=1), check_trace=False)
            torch.testing.assert_close(traced(*other), module(*other))
    if model.takes_prior_sampler:
        configure_model(model, sampler="gibbs")
    else:
        with pytest.raises(ConfigError, match="prior"):
            configure_model(model, sampler="sa")
    if not model.takes_device:
        with pytest.raises(ConfigError, match="runs no quantum circuit"):
            configure_model(model, hardware={"shots": 10})


def test_qvae_prior_description_records_the_sampler():
    model = load_generator(LEGACY / "qvae")
    assert model.prior_description["sampler"]["name"] == "gibbs"
    configure_model(model, sampler="sa", sampler_options={"num_sweeps": 50})
    described = model.prior_description
    assert described["kind"] == "boltzmann" and described["topology"] == "pegasus"
    assert described["sampler"] == {"name": "sa", "num_sweeps": 50}
    assert model.latent_spec()[0].sampler == "sa"
    json.dumps(described)  # goes into exported artifacts as is


def test_cli_sampler_options_reach_the_sampler_and_the_file(tmp_path, monkeypatch, capsys):
    import sys

    import h5py

    from caloforge.cli import main

    out = tmp_path / "gen.h5"
    args = ["generate", str(LEGACY / "qvae"), "-o", str(out), "--n", "4"]
    args += ["--energies", "fixed:5e3", "--sampler", "sa"]
    monkeypatch.setattr(sys, "argv", ["caloforge", *args, "--sampler-options", '{"num_sweeps": 7}'])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code in (0, None), capsys.readouterr().err
    with h5py.File(out) as f:
        assert f.attrs["sampler"] == "sa"
        assert json.loads(f.attrs["sampler_options"]) == {"num_sweeps": 7}
    monkeypatch.setattr(sys, "argv", ["caloforge", *args, "--sampler-options", '{"sweeps": 7}'])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and "bad option for sampler 'sa'" in err
