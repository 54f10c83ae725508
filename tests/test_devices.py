"""Device selection (caloforge.devices, Generator.to_device, train/generate --device).

This machine has no GPU, so what is tested here is the choice and its refusals, and that an
explicit ``device="cpu"`` changes nothing; the CUDA path of the device-aware models
(``compute_devices``) has not been run in this test suite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloforge.devices import resolve_device
from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.models import builtin_models, model_class
from caloforge.testing import toy_showers
from test_reliability_cli import assert_one_error, cli


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_cpu_and_auto_without_a_gpu(no_gpu):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpu", "unknown device 'gpu': use one of auto, cpu, cuda, mps or cuda:N"),
        ("cuda:x", "unknown device 'cuda:x'"),
        ("cuda", "device 'cuda' is not available: this torch build or machine has no CUDA GPU"),
        ("cuda:0", "device 'cuda:0' is not available"),
        ("mps", "device 'mps' is not available on this machine"),
    ],
)
def test_unusable_devices_are_one_sentence(no_gpu, spec, message):
    with pytest.raises(ConfigError, match=message):
        resolve_device(spec)


def test_a_gpu_index_beyond_the_machine_is_refused(one_gpu):
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(ConfigError, match=r"'cuda:1' is not available: this machine has 1 CUDA"):
        resolve_device("cuda:1")


@pytest.mark.parametrize("name", builtin_models())
def test_every_model_declares_its_devices_and_refuses_the_others(one_gpu, name):
    cls = model_class(name)
    assert "cpu" in cls.compute_devices
    model = cls(get_geometry("grid:8x4x4"), dict(cls.smoke_config or {}))
    assert model.device == torch.device("cpu")
    if "cuda" not in cls.compute_devices:
        with pytest.raises(ConfigError, match=f"model {name!r} runs on cpu only, not cuda"):
            model.to_device("cuda")
        # auto: the best device the model supports
        assert model.to_device("auto").device == torch.device("cpu")


def test_device_aware_models_are_the_torch_ones():
    aware = {n for n in builtin_models() if "cuda" in model_class(n).compute_devices}
    assert {"gan3d", "wgan", "qvae", "vae"} <= aware
    assert not aware & {"qgan", "qgan-dist"}  # PennyLane circuits on the CPU


@pytest.mark.parametrize("name", ["gan3d", "wgan", "qvae", "vae"])
def test_an_explicit_cpu_device_changes_nothing(name):
    cls = model_class(name)
    geo = get_geometry("grid:8x4x4")
    train = toy_showers(geo, np.geomspace(1e3, 1e5, 16), seed=1)
    runs = []
    for device in (None, "cpu"):
        model = cls(geo, dict(cls.smoke_config or {}))
        model.fit(train, epochs=1, seed=3, progress=False, device=device)
        runs.append((model.weight_tensors(), model.sample(np.array([2e3, 4e4]), seed=1)))
    (w0, s0), (w1, s1) = runs
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    np.testing.assert_array_equal(s0, s1)


def test_cli_refuses_a_device_this_machine_lacks_before_writing(tmp_path):
    # cuda:99 does not exist on this machine nor on a cluster node: refused either way
    from caloforge.io import write_showers

    geo = get_geometry("grid:8x4x4")
    data = tmp_path / "train.h5"
    s = toy_showers(geo, np.geomspace(1e3, 1e5, 8), seed=1)
    write_showers(data, s.incident_energies, s.showers, geometry=geo.name)
    out = tmp_path / "run"
    rc, _, err = cli("train", "gan3d", "--data", str(data), "-o", str(out), "--device", "cuda:99")
    assert_one_error(rc, err, "device 'cuda:99' is not available")
    assert not out.exists()
    rc, _, err = cli("train", "gan3d", "--data", str(data), "-o", str(out), "--device", "tpu")
    assert_one_error(rc, err, "unknown device 'tpu'")
    assert not out.exists()
