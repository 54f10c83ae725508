"""The hybrid quantum GAN models: learning, seeds, checkpoints, bad configurations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.models.base import available_models, load_generator
from caloforge.models.qgan import QGAN, DistributionQGAN, demo_config
from caloforge.quantum.toy import toy_showers

TARGET = np.array([0.02, 0.08, 0.2, 0.3, 0.2, 0.12, 0.05, 0.03])
TINY = {"n_layers": 2, "batch_size": 16, "steps_per_epoch": 3, "epochs": 1}


@pytest.fixture(scope="module")
def ds2_small():
    return toy_showers("ds2", n=48, seed=5)


def _target_showers(n: int = 256) -> Showers:
    """Showers in an 8-layer, 1-voxel-per-layer grid whose depth profile is TARGET (2 % noise)."""
    rng = np.random.default_rng(0)
    e = np.full(n, 1e4)
    return Showers(e, (TARGET * e[:, None] * rng.lognormal(0, 0.02, (n, 8))).astype(np.float32))


def test_distribution_qgan_learns_a_known_distribution():
    cfg = {"n_layers": 3, "epochs": 6, "steps_per_epoch": 10, "disc_hidden": [16]}
    model = DistributionQGAN(get_geometry("grid:8x1x1"), cfg)
    model.generator.reset_parameters(0)
    before = 0.5 * np.abs(model.learned_distribution() - TARGET).sum()
    model.fit(_target_showers(), progress=False, seed=0)
    after = 0.5 * np.abs(model.learned_distribution() - TARGET).sum()
    assert before > 0.3
    assert after < 0.3 * before, (before, after)


def test_same_seed_same_generator_and_resume_matches(ds2_small, tmp_path):
    geo = get_geometry("ds2")
    runs = []
    for seed in (7, 7, 8):
        model = QGAN(geo, {**TINY, "epochs": 2})
        model.fit(ds2_small, progress=False, seed=seed)
        runs.append(model.generator.weights.detach().clone())
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2])
    # one epoch, checkpoint, then resume for the second: the same weights as two epochs at once
    first = QGAN(geo, {**TINY, "epochs": 2})
    first.fit(ds2_small, progress=False, seed=7, out_dir=tmp_path, epochs=1)
    resumed = QGAN(geo, {**TINY, "epochs": 2})
    history = resumed.fit(ds2_small, progress=False, seed=7, out_dir=tmp_path, resume=True)
    assert len(history["loss_d"]) == 2 and resumed.state["epoch"] == 2
    torch.testing.assert_close(resumed.generator.weights.detach(), runs[0])


@pytest.mark.parametrize("name", ["qgan", "qgan-dist"])
def test_save_load_gives_identical_samples(name, ds2_small, tmp_path):
    assert name in available_models()
    cls = QGAN if name == "qgan" else DistributionQGAN
    # finite-shot training runs parameter-shift circuit by circuit: cheap only without inputs
    shots = {"shots": 64, "diff_method": "parameter-shift"} if name == "qgan-dist" else {}
    model = cls(get_geometry("ds2"), {**TINY, **shots})
    model.fit(ds2_small, ds2_small[:16], progress=False, seed=1, out_dir=tmp_path)
    energies = np.array([2e3, 5e4, 8e5])
    a = model.sample(energies, seed=11)
    b = load_generator(tmp_path).sample(energies, seed=11)
    assert a.shape == (3, 6480) and np.all(a >= 0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.sample(energies, seed=12))
    # sample == inference_module()(*latent_inputs(...)), with (N, 1) float32 energies
    noise, e = model.latent_inputs(energies, seed=11)
    assert e.shape == (3, 1) and e.dtype == torch.float32
    with torch.no_grad():
        np.testing.assert_allclose(model.inference_module()(noise, e).numpy(), a, rtol=1e-6)


@pytest.mark.parametrize("name", ["qgan", "qgan-dist"])
def test_finite_shot_generation_gives_frequency_images(name):
    cls = QGAN if name == "qgan" else DistributionQGAN
    model = cls(get_geometry("ds2"), {"shots": 64, "diff_method": "parameter-shift"})
    energies = np.array([2e3, 5e4, 8e5])
    noise, _ = model.latent_inputs(energies, seed=0)
    assert noise.shape == (3, model.n_latent() + 1 + 64)
    # with 64 shots every generated pixel fraction is a multiple of 1/64
    pixels = model.sample_pixels(energies, seed=11)
    frac = pixels / pixels.sum(1, keepdims=True) * 64
    np.testing.assert_allclose(frac, np.round(frac), atol=1e-3)


def test_describe_draws_the_circuits(ds2_small):
    text = QGAN(get_geometry("ds2"), demo_config("2d", discriminator="quantum")).describe()
    assert "6 qubits" in text and "Probs" in text and "discriminator circuit" in text


def test_noisy_quantum_discriminator_training_runs(ds2_small):
    cfg = {**TINY, "discriminator": "quantum", "depolarizing": 0.02, "amplitude_damping": 0.02}
    model = QGAN(get_geometry("ds2"), cfg)
    history = model.fit(ds2_small, ds2_small[:16], progress=False, seed=0)
    assert np.isfinite(history["loss_g"][0]) and np.isfinite(history["val_shape_mse"][0])
    assert "DepolarizingChannel" in model.describe()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ansatz": "spiral"}, "unknown ansatz 'spiral'"),
        ({"n_qubits": 4}, "n_qubits=4 does not match the 1d image of 8 pixels"),
        ({"image": "2d", "n_qubits": 3}, "which needs n_qubits=6"),
        ({"readout": "expval", "n_qubits": 3}, "which needs n_qubits=8"),
        ({"discriminator": "svm"}, "unknown discriminator 'svm'"),
        ({"shots": 10}, "needs exact simulation"),
        ({"qubits": 3}, "unknown option"),
    ],
)
def test_bad_config(config, message):
    with pytest.raises(ConfigError, match=message):
        QGAN(get_geometry("ds2"), config)


def test_bad_training_data():
    model = QGAN(get_geometry("ds2"), TINY)
    bad = toy_showers("ds2", n=4, seed=0)
    bad.showers[0, 0] = np.nan
    with pytest.raises(ConfigError, match="finite, non-negative"):
        model.fit(bad, progress=False)
    with pytest.raises(ConfigError, match="finite and > 0 MeV"):
        model.sample(np.array([1e3, -1.0]))
