"""The hybrid quantum GAN models: learning, seeds, checkpoints, bad configurations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.models.base import available_models, load_generator
from caloforge.models.qgan import QGAN, DistributionQGAN, batch_moment_distance, demo_config
from caloforge.refsim import simulate

TARGET = np.array([0.02, 0.08, 0.2, 0.3, 0.2, 0.12, 0.05, 0.03])
TINY = {"n_layers": 2, "batch_size": 16, "steps_per_epoch": 3, "epochs": 1}
TINY_QGAN = {**TINY, "pretrain_steps": 2}


def refsim_ds2(n: int, seed: int):
    return simulate("ds2", "electron", "loguniform:1e3:1e6", n=n, seed=seed)


@pytest.fixture(scope="module")
def ds2_small():
    return refsim_ds2(48, seed=5)


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
        model = QGAN(geo, {**TINY_QGAN, "epochs": 2})
        model.fit(ds2_small, progress=False, seed=seed)
        runs.append(model.generator.weights.detach().clone())
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2])
    # one epoch, checkpoint, then resume for the second: the same weights as two epochs at once
    first = QGAN(geo, {**TINY_QGAN, "epochs": 2})
    first.fit(ds2_small, progress=False, seed=7, out_dir=tmp_path, epochs=1)
    assert (tmp_path / "optimizer.safetensors").exists()  # Adam states, beside the weights
    resumed = QGAN(geo, {**TINY_QGAN, "epochs": 2})
    history = resumed.fit(ds2_small, progress=False, seed=7, out_dir=tmp_path, resume=True)
    assert len(history["loss_d"]) == 2 and resumed.state["epoch"] == 2
    torch.testing.assert_close(resumed.generator.weights.detach(), runs[0])


@pytest.mark.parametrize("name", ["qgan", "qgan-dist"])
def test_save_load_gives_identical_samples(name, ds2_small, tmp_path):
    assert name in available_models()
    cls = QGAN if name == "qgan" else DistributionQGAN
    # finite-shot training runs parameter-shift circuit by circuit: cheap only without inputs
    shots = {"shots": 64, "diff_method": "parameter-shift"} if name == "qgan-dist" else {}
    model = cls(get_geometry("ds2"), {**(TINY_QGAN if name == "qgan" else TINY), **shots})
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
    cfg = {**TINY_QGAN, "discriminator": "quantum", "depolarizing": 0.02, "amplitude_damping": 0.02}
    model = QGAN(get_geometry("ds2"), cfg)
    history = model.fit(ds2_small, ds2_small[:16], progress=False, seed=0)
    assert np.isfinite(history["loss_g"][0]) and np.isfinite(history["val_shape_mse"][0])
    assert "DepolarizingChannel" in model.describe()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ansatz": "spiral"}, "'ansatz' of model 'qgan' must be one of 'ry', 'ryrz', 'rot'"),
        ({"n_qubits": 4}, "n_qubits=4 does not match the 1d image of 8 pixels"),
        ({"image": "2d", "n_qubits": 3}, "which needs n_qubits=6"),
        ({"readout": "expval", "n_qubits": 3}, "which needs n_qubits=8"),
        ({"discriminator": "svm"}, "'discriminator' of model 'qgan' must be one of 'mlp'"),
        ({"shots": 10}, "needs exact simulation"),
        ({"qubits": 3}, "unknown option"),
    ],
)
def test_bad_config(config, message):
    with pytest.raises(ConfigError, match=message):
        QGAN(get_geometry("ds2"), config)


def test_bad_training_data():
    model = QGAN(get_geometry("ds2"), TINY_QGAN)
    bad = refsim_ds2(4, seed=0)
    bad.showers[0, 0] = np.nan
    with pytest.raises(ConfigError, match="finite, non-negative"):
        model.fit(bad, progress=False)
    with pytest.raises(ConfigError, match="finite and > 0 MeV"):
        model.sample(np.array([1e3, -1.0]))


def _target_energy_showers(n: int = 256) -> Showers:
    """As :func:`_target_showers`, at incident energies 5-50 GeV: E_pixel = 0.9 TARGET E_inc."""
    rng = np.random.default_rng(1)
    e = rng.uniform(5e3, 5e4, n)
    x = 0.9 * TARGET * e[:, None] * rng.lognormal(0, 0.05, (n, 8))
    return Showers(e, x.astype(np.float32))


def test_energy_pixels_learn_pixel_energies_including_the_total():
    """pixels='energy': one qubit per pixel, P(1) is the pixel's scaled energy, so the circuit
    makes the total energy too; training moves the mean pixel energies onto the target's."""
    data = _target_energy_showers()
    cfg = demo_config("1d", pixels="energy", n_layers=2, batch_size=32, epochs=1)
    cfg.update(steps_per_epoch=5, pretrain_steps=150, pretrain_lr=0.05)
    model = QGAN(get_geometry("grid:8x1x1"), cfg)
    assert model.spec.n_qubits == 8 and model.n_noise() == 8  # no response noise column
    e = data.incident_energies[:128]
    real = data.showers[:128] / e[:, None]

    def error() -> float:  # mean |log(generated / real)| of the mean pixel fractions E_k / E_inc
        gen = model.sample_pixels(e, seed=3) / e[:, None]
        return float(np.abs(np.log(gen.mean(0) / real.mean(0))).mean())

    model.generator.reset_parameters(0)
    model._prepare(data)
    before = error()
    model.fit(data, progress=False, seed=0)
    after = error()
    assert before > 0.2, before
    assert after < 0.3 * before, (before, after)
    # the deposited energy is the circuit's: response within 0.1 of the target's 0.9
    response = model.sample_pixels(e, seed=4).sum(1) / e
    assert abs(response.mean() - 0.9) < 0.1, response.mean()


def test_energy_pixels_save_load_and_describe(ds2_small, tmp_path):
    model = QGAN(get_geometry("ds2"), demo_config("1d", pixels="energy", **TINY_QGAN))
    model.fit(ds2_small, progress=False, seed=2, out_dir=tmp_path)
    energies = np.array([2e3, 5e4])
    loaded = load_generator(tmp_path)
    np.testing.assert_array_equal(model.sample(energies, seed=1), loaded.sample(energies, seed=1))
    pixels = model.sample_pixels(energies, seed=1)
    np.testing.assert_allclose(model.sample(energies, seed=1).sum(1), pixels.sum(1), rtol=1e-5)
    assert "pixel energies from the circuit" in model.describe()


def test_with_hardware_runs_the_same_weights_on_a_noisier_device(ds2_small):
    model = QGAN(get_geometry("ds2"), {**TINY_QGAN, "n_layers": 3})
    model.fit(ds2_small, progress=False, seed=0)
    energies = np.geomspace(2e3, 5e5, 64)
    exact = model.sample_pixels(energies, seed=5)
    same = model.with_hardware(depolarizing=0.0).sample_pixels(energies, seed=5)
    np.testing.assert_allclose(same, exact, rtol=1e-5)

    def distance_to_uniform(m) -> float:
        noise, e = m.latent_inputs(energies, seed=5)
        with torch.no_grad():
            shapes = m.inference_module().shapes(noise, e).numpy()
        return float(np.abs(shapes - 1 / shapes.shape[1]).sum(1).mean())

    # depolarising noise drives the state towards the maximally mixed one: uniform pixels
    d = [distance_to_uniform(model.with_hardware(depolarizing=p)) for p in (0.0, 0.1, 0.4)]
    assert d[0] > d[1] > d[2], d
    assert model.with_hardware(depolarizing=0.1).spec.device_name == "default.mixed"
    with pytest.raises(ConfigError, match="with_hardware takes"):
        model.with_hardware(n_layers=2)


def test_batch_moment_distance():
    a = torch.tensor([[0.5, 0.5, 0.0], [0.7, 0.3, 0.0]])
    b = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert batch_moment_distance(a, a).item() == 0.0
    # means (0.6, 0.4, 0) vs (0, 0, 1): 0.6 + 0.4 + 1; stds (0.1414, 0.1414, 0) vs 0: 2 * 0.1414
    assert batch_moment_distance(a, b).item() == pytest.approx(2.0 + 2 * 0.02**0.5, rel=1e-5)
    assert batch_moment_distance(a, b).item() == pytest.approx(batch_moment_distance(b, a).item())


@pytest.mark.parametrize(
    ("cls", "config", "message"),
    [
        (QGAN, {"pixels": "counts"}, "'pixels' of model 'qgan' must be one of 'shape', 'energy'"),
        (QGAN, {"pixels": "energy"}, "needs readout 'expval' with n_qubits=8"),
        (
            QGAN,
            {"pixels": "energy", "readout": "expval", "n_qubits": 8, "discriminator": "quantum"},
            "use discriminator 'mlp'",
        ),
        (DistributionQGAN, {"pixels": "energy"}, "needs model 'qgan'"),
        (QGAN, {"disc_log_floor": 0.0}, "'disc_log_floor' of model 'qgan' must be > 0"),
    ],
)
def test_bad_pixel_config(cls, config, message):
    with pytest.raises(ConfigError, match=message):
        cls(get_geometry("ds2"), config)


def test_cli_generate_on_a_noisy_device(ds2_small, tmp_path, monkeypatch, capsys):
    """`caloforge generate RUN --hardware JSON` runs the trained circuit with noise and shots;
    an unknown setting gets one sentence and leaves no output file."""
    from caloforge.io import read_showers
    from test_cli_data import run_cli

    run = tmp_path / "run"
    QGAN(get_geometry("ds2"), TINY_QGAN).fit(ds2_small, progress=False, seed=0, out_dir=run)
    out = tmp_path / "g.h5"
    args = ["generate", str(run), "-o", str(out), "--n", "4", "--energies", "loguniform:1e3:1e6"]
    code, _, err = run_cli(monkeypatch, capsys, *args, "--hardware", '{"qubits": 2}')
    assert code == 2 and "with_hardware takes" in err and not out.exists()
    noisy = '{"depolarizing": 0.05, "shots": 32}'
    code, _, err = run_cli(monkeypatch, capsys, *args, "--hardware", noisy)
    assert code == 0, err
    generated = read_showers(out)
    assert generated.showers.shape == (4, 6480) and np.all(generated.showers >= 0)
    assert '"shots": 32' in generated.attrs["hardware"]


@pytest.mark.parametrize("pixels", ["shape", "energy"])
def test_sample_draws_per_batch_and_sample_pixels_matches_it(pixels):
    """qgan samples through Generator.sample: batch i of ``batch_size`` showers is drawn with
    seed + 7919 i, so the first batch does not depend on N, and sample_pixels returns the
    pixels behind the same call (its pixel sums are the showers' totals)."""
    model = QGAN(get_geometry("grid:8x1x1"), demo_config("1d", pixels=pixels, n_layers=1))
    model._prepare(_target_energy_showers(32))
    energies = np.tile([2e3, 1e4, 5e4, 2e4], 3)[:10]  # batches 0 and 1 at the same energies
    x = model.sample(energies, seed=5, batch_size=4)
    np.testing.assert_array_equal(x[:4], model.sample(energies[:4], seed=5, batch_size=4))
    np.testing.assert_array_equal(x[4:8], model.sample(energies[4:8], seed=5 + 7919))
    pixels_ = model.sample_pixels(energies, seed=5, batch_size=4)
    np.testing.assert_allclose(x.sum(1), pixels_.sum(1), rtol=1e-5)
    assert not np.allclose(x[:4], x[4:8], rtol=1e-3)  # fresh draws per batch
