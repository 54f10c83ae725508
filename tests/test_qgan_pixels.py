"""The two pixel modes of the hybrid QGANs (caloforge.models.qgan_pixels): what the critic sees
and what the sampler decodes are the same representation, and each mode owns its noise columns
and critic inputs. No training: fitted tensors and readouts are built by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.models.qgan import QGAN, demo_config
from caloforge.models.qgan_pixels import PIXEL_MODES, EnergyPixels, Readout, ShapePixels

MODES = sorted(PIXEL_MODES)
#: a response a0, a1, b0, b1 with mean log(E_dep / E_inc) = log 0.9 and sigma 0.05 at all u
RESPONSE = torch.tensor([math.log(0.9), 0.0, math.log(0.05), 0.0])


def _training_pixels(n: int = 40, p: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positive pixel energies (n, p) MeV with ~0.9 E_inc in total, at E_inc in 1-100 GeV."""
    rng = np.random.default_rng(seed)
    e = np.geomspace(1e3, 1e5, n)
    shape = rng.dirichlet(np.full(p, 2.0), n)
    return 0.9 * e[:, None] * shape * rng.lognormal(0, 0.05, (n, 1)), e


def _readout(values: torch.Tensor, e: np.ndarray, mode, pixel_scale, z=None) -> Readout:
    n = len(values)
    z = torch.zeros(n, mode.n_response) if z is None else z
    e_inc = torch.as_tensor(e, dtype=torch.float32).reshape(-1, 1)
    return Readout(values, e_inc, torch.linspace(0, 1, n), z, RESPONSE, pixel_scale)


@pytest.mark.parametrize("name", MODES)
def test_decoding_the_fitted_real_images_gives_the_training_pixels_back(name):
    """What fit() hands the discriminator, read as a circuit readout, decodes to the training
    showers' pixels: shapes in both modes, and in energy mode the pixel energies themselves
    (shape mode takes the total from the response instead). float32 rounding: rtol 1e-4."""
    mode = PIXEL_MODES[name]
    pixels, e = _training_pixels()
    images, scale = mode.fit(pixels, e)
    assert images.shape == pixels.shape and np.all((images >= 0) & (images <= 1))
    pixel_scale = torch.ones(2, 8) if scale is None else torch.as_tensor(scale).float()
    r = _readout(torch.as_tensor(images, dtype=torch.float32), e, mode, pixel_scale)
    shapes = pixels / pixels.sum(1, keepdims=True)
    np.testing.assert_allclose(mode.shapes(r).numpy(), shapes, rtol=1e-4)
    energies = mode.energies(r).numpy()
    np.testing.assert_allclose(energies.sum(1), mode.totals(r).numpy(), rtol=1e-4)
    if isinstance(mode, EnergyPixels):
        np.testing.assert_allclose(energies, pixels, rtol=1e-4)
    else:  # z = 0: the total is the response's median, E_inc exp(a0 + a1 u)
        np.testing.assert_allclose(energies.sum(1), 0.9 * e, rtol=1e-4)


def test_shape_mode_total_follows_the_response_noise_and_leaves_the_shape():
    mode = ShapePixels()
    values = torch.tensor([[0.5, 0.25, 0.25, 0.0]]).repeat(3, 1)
    e = np.full(3, 1e4)
    z = torch.tensor([[-1.0], [0.0], [2.0]])
    r = _readout(values, e, mode, torch.ones(2, 4), z)
    # log(E_dep / E_inc) = log 0.9 + 0.05 z
    np.testing.assert_allclose(mode.totals(r).numpy(), 1e4 * 0.9 * np.exp(0.05 * z[:, 0].numpy()))
    np.testing.assert_allclose(mode.shapes(r).numpy(), values.numpy())


def test_energy_mode_reads_each_qubit_as_one_pixel_energy():
    """P(1) = 0 is an empty pixel, P(1) = 1 is x_max E_inc, and the critic's extra column is
    0.5 for a shower exactly on the fitted median response (z = 0: sigmoid(asinh 0))."""
    mode = EnergyPixels()
    eps, x_max = torch.tensor([1e-3, 1e-3]), torch.tensor([0.6, 0.3])
    scale = torch.stack([eps, x_max])
    r = _readout(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), np.array([1e3, 2e3]), mode, scale)
    np.testing.assert_allclose(mode.energies(r).numpy(), [[0.0, 300.0], [1200.0, 0.0]], rtol=1e-5)
    on_median = torch.tensor([[0.45, 0.45]])  # fractions summing to the median response 0.9
    images = (torch.log1p(on_median / eps) / torch.log1p(x_max / eps)).float()
    features = mode.critic_inputs(images, torch.tensor([0.3]), RESPONSE, scale)
    assert features.shape == (1, 3)
    torch.testing.assert_close(features[:, :2], images)
    assert features[0, 2].item() == pytest.approx(0.5, abs=1e-4)
    assert ShapePixels().critic_inputs(images, torch.tensor([0.3]), RESPONSE, scale) is images


@pytest.mark.parametrize("name", MODES)
def test_the_model_runs_its_mode(name):
    """A qgan in each mode: noise columns, discriminator width and critic inputs come from the
    mode, and the sampler's pixels sum to its totals."""
    model = QGAN(get_geometry("grid:8x1x1"), demo_config("1d", pixels=name, n_layers=1))
    mode = PIXEL_MODES[name]
    assert model.pixels is mode
    pixels, e = _training_pixels()
    real, u = model._prepare(Showers(e, pixels.astype(np.float32)))
    assert model.n_noise() == model.n_latent() + mode.n_response
    width = model._critic_inputs(real[:4], u[:4]).shape[1]
    assert width == 8 + mode.n_critic_features
    with torch.no_grad():
        assert model._disc(model._critic_inputs(real[:4], u[:4]), u[:4]).shape[0] == 4
        noise, e_in = model.latent_inputs(e[:5], seed=1)
        sampler = model.inference_module()
        np.testing.assert_allclose(
            sampler.images(noise, e_in).sum(1).numpy(),
            sampler.totals(noise, e_in).numpy(),
            rtol=1e-5,
        )
