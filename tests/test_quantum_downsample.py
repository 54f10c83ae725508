"""Downsampling showers of any geometry to 8-pixel profiles and 8 x 8 images, and back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.quantum.downsample import (
    Downsampler,
    inverse_log_scale,
    log_scale,
    stack,
    unstack,
)
from caloforge.refsim import get_detector, simulate


@pytest.fixture(scope="module")
def ds2_showers():
    return simulate("ds2", "electron", "loguniform:1e3:1e6", n=40, seed=4)


@pytest.mark.parametrize(
    ("detector", "image", "axes"),
    [
        ("ds2", "1d", "depth-radius"),
        ("ds2", "2d", "depth-radius"),
        ("ds1-photons", "2d", "depth-radius"),
        ("pbwo4", "2d", "x-y"),  # Cartesian 25 x 25 x 25
        ("pbwo4", "2d", "depth-radius"),
    ],
)
def test_round_trip_conserves_energy(detector, image, axes):
    geo = get_detector(detector).geo
    showers = simulate(detector, "electron", "loguniform:1e3:1e5", n=30, seed=1).showers
    showers = showers.astype(np.float64)
    ds = Downsampler(geo, image, axes).fit(showers)
    pixels = ds.forward(showers)
    assert pixels.shape == (30, 8 if image == "1d" else 64)
    np.testing.assert_allclose(pixels.sum(1), showers.sum(1), rtol=1e-10)
    back = ds.inverse(pixels)
    assert back.shape == showers.shape and np.all(back >= 0)
    np.testing.assert_allclose(back.sum(1), showers.sum(1), rtol=1e-10)
    np.testing.assert_allclose(ds.forward(back), pixels, rtol=1e-10, atol=1e-9)
    # fractions of every pixel sum to one
    per_pixel = np.bincount(ds.pixel_of_voxel, weights=ds.fractions, minlength=ds.n_pixels)
    assert np.allclose(per_pixel[np.bincount(ds.pixel_of_voxel, minlength=ds.n_pixels) > 0], 1.0)


def test_ds2_pixel_groups_follow_depth_and_radius():
    geo = get_geometry("ds2")
    ds = Downsampler(geo, "2d")
    layer, _, radial = geo.unravel(np.arange(geo.n_voxels))
    depth_px, radius_px = np.divmod(ds.pixel_of_voxel, 8)
    assert np.all(np.diff(depth_px[np.argsort(layer, kind="stable")]) >= 0)
    assert depth_px[layer == 0].max() == 0 and depth_px[layer == geo.n_layers - 1].min() == 7
    assert set(radius_px[radial == 0]) == {0} and set(radius_px[radial == 8]) == {7}
    assert len(np.unique(ds.pixel_of_voxel)) == 64


def test_fitted_fractions_reproduce_mean_voxel_shares(ds2_showers):
    ds = Downsampler(get_geometry("ds2"), "1d").fit(ds2_showers.showers)
    x = ds2_showers.showers.astype(np.float64)
    pix = ds.forward(x)
    with np.errstate(invalid="ignore"):  # 0 / 0 where a pixel is empty in a shower
        share = x / pix[:, ds.pixel_of_voxel]
    # mean over the showers whose pixel holds energy (refsim's last depth pixel is sometimes empty)
    expected = np.nanmean(share, axis=0)
    expected /= np.bincount(ds.pixel_of_voxel, weights=expected)[ds.pixel_of_voxel]
    np.testing.assert_allclose(ds.fractions, expected, rtol=1e-9)
    restored = Downsampler(get_geometry("ds2"), "1d")
    restored.load_state(ds.state())
    np.testing.assert_allclose(restored.fractions, ds.fractions, rtol=1e-6)


def test_profiles_and_stacking():
    rng = np.random.default_rng(0)
    images = rng.random((5, 8, 8))
    vectors = stack(images)
    assert vectors.shape == (5, 64) and np.array_equal(vectors[:, 8:16], images[:, 1, :])
    assert np.array_equal(unstack(vectors), images)
    ds = Downsampler(get_geometry("ds2"), "2d")
    profiles = ds.profiles(vectors)
    np.testing.assert_allclose(profiles["depth"], images.sum(2))
    np.testing.assert_allclose(profiles["radius"], images.sum(1))


def test_log_scale_inverts_for_numpy_and_torch():
    e = np.array([1e3, 1e5])
    pixels = np.array([[0.0, 1.0, 10.0], [5.0, 500.0, 2e4]])
    np.testing.assert_allclose(inverse_log_scale(log_scale(pixels, e), e), pixels, atol=1e-9)
    t = torch.as_tensor(pixels)
    back = inverse_log_scale(log_scale(t, torch.as_tensor(e)), torch.as_tensor(e))
    np.testing.assert_allclose(back.numpy(), pixels, atol=1e-9)


def test_bad_requests():
    with pytest.raises(ConfigError, match="need a Cartesian geometry"):
        Downsampler(get_geometry("ds2"), "2d", "x-y")
    with pytest.raises(ConfigError, match="unknown image kind"):
        Downsampler(get_geometry("ds2"), "3d")
    ds = Downsampler(get_geometry("ds2"), "1d")
    with pytest.raises(ConfigError, match=r"shape \(N, 8\)"):
        ds.inverse(np.zeros((2, 64)))
    with pytest.raises(Exception, match="6480"):
        ds.forward(np.zeros((2, 100)))
