"""The quantum-assisted VAE: training runs, shapes, checkpoints, conditioning, bad config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloforge.errors import CaloforgeError
from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.models.base import load_generator
from caloforge.models.qvae import QVAE, GaussianVAE, thermometer_code
from caloforge.refsim import simulate

TINY = {
    "units_per_partition": 8,
    "hidden": 32,
    "batch_size": 32,
    "lr": 3e-3,
    "gibbs_sweeps_sample": 8,
    "diagnose_chains": 16,  # a small end-of-training prior measurement
    "diagnose_sweeps": 32,
}


@pytest.fixture(scope="module")
def photons() -> Showers:
    return simulate("ds1-photons", "photon", "loguniform:1e3:1e5", n=256, seed=3)


@pytest.fixture(scope="module")
def trained(photons, tmp_path_factory) -> tuple[QVAE, object]:
    out = tmp_path_factory.mktemp("qvae")
    model = QVAE(get_geometry("ds1-photons"), TINY)
    model.fit(photons, photons[:64], out_dir=out, epochs=2, seed=0, progress=False)
    return model, out


def test_training_records_finite_losses_and_checkpoints(trained):
    model, out = trained
    hist = model.state["history"]
    assert hist["epoch"] == [1, 2]
    assert all(np.isfinite(hist[k]).all() for k in ("loss", "bce", "nll", "kl", "val_loss"))
    assert (out / "model.safetensors").exists() and (out / "model.json").exists()


def test_reconstruction_loss_falls_with_training(photons):
    model = QVAE(get_geometry("ds1-photons"), TINY)
    model.fit(photons, epochs=4, seed=1, progress=False)
    hist = model.state["history"]
    # the decoder starts at chance (BCE ~ V ln 2 = 255 nats); 4 epochs must cut it clearly
    assert hist["bce"][-1] < 0.8 * hist["bce"][0]


def test_samples_have_the_geometry_shape_and_are_physical(trained):
    model, _ = trained
    e = np.array([1e3, 1e4, 5e4])
    x = model.sample(e, seed=5)
    assert x.shape == (3, 368) and x.dtype == np.float32
    assert np.all(np.isfinite(x)) and np.all(x >= 0)
    # the codec maps every voxel into [0, s * E_inc], s the fitted fraction scale
    assert np.all(x <= float(model.codec.scale) * e[:, None] * 1.0001)


def test_same_seed_same_showers_after_save_and_load(trained):
    model, out = trained
    loaded = load_generator(out)
    e = np.full(8, 2e4)
    np.testing.assert_array_equal(model.sample(e, seed=11), loaded.sample(e, seed=11))
    assert not np.array_equal(model.sample(e, seed=11), model.sample(e, seed=12))


def test_conditioned_prior_clamps_the_energy_partition(trained):
    model, _ = trained
    e = np.array([1e3, 1e6])
    z, uniform, normal, e_t = model.latent_inputs(e, seed=0)
    assert uniform.shape == normal.shape == (2, 368)
    part = model.prior.partitions[model.latents.cond_partition]
    expected = thermometer_code(e_t, len(part))
    torch.testing.assert_close(z[:, part], expected)
    assert expected[1].sum() > expected[0].sum()  # higher energy, more units on


def test_resume_continues_from_the_stored_epoch(photons, tmp_path):
    model = QVAE(get_geometry("ds1-photons"), TINY)
    model.fit(photons, out_dir=tmp_path, epochs=1, seed=0, progress=False)
    again = load_generator(tmp_path)
    again.fit(photons, out_dir=tmp_path, epochs=2, seed=0, resume=True, progress=False)
    assert again.state["history"]["epoch"] == [1, 2]
    assert (tmp_path / "optimizer.safetensors").exists()


def test_gaussian_baseline_trains_and_samples(photons):
    model = GaussianVAE(get_geometry("ds1-photons"), TINY)
    model.fit(photons, epochs=1, seed=0, progress=False)
    assert model.sample(np.array([1e4, 2e4]), seed=0).shape == (2, 368)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"prior": "cauchy"}, "'prior' of model 'qvae' must be one of 'boltzmann', 'gaussian'"),
        ({"topology": "hypercube"}, "hypercube"),
        ({"not_an_option": 1}, "unknown option"),
    ],
)
def test_bad_config_is_one_clear_sentence(config, match):
    with pytest.raises(CaloforgeError, match=match):
        QVAE(get_geometry("ds1-photons"), {**TINY, **config})


def test_wrong_voxel_count_is_refused(photons):
    model = QVAE(get_geometry("ds2"), TINY)
    with pytest.raises(CaloforgeError, match="368 voxels"):
        model.fit(photons, epochs=1, progress=False)
