"""3DGAN (conv3d and conv2d generators): training, sampling, checkpoints, resume, export."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from caloforge.errors import CaloforgeError, CheckpointError, ConfigError
from caloforge.evaluate.shapes import shower_shape_mse, shower_shapes
from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.models import available_models, load_generator, model_class
from caloforge.models.gan3d import GAN3D
from caloforge.refsim import simulate
from caloforge.testing import toy_showers

TINY = {"latent_dim": 8, "disc_channels": [4, 4], "batch_size": 8, "epochs": 1}
TINY_CHANNELS = {"conv3d": [8, 4], "conv2d": [16, 8]}


def tiny(variant: str, **extra) -> dict:
    return {**TINY, "generator": variant, "gen_channels": TINY_CHANNELS[variant], **extra}


def sample_showers(geometry_name: str, n: int, seed: int = 0) -> Showers:
    """Showers from the reference simulator's pbwo4 preset if it matches, else from
    the analytic toy."""
    geo = get_geometry(geometry_name)
    e = np.exp(np.random.default_rng(seed).uniform(np.log(1e4), np.log(2e5), n))
    if geometry_name == "grid:25x25x25:22":
        return simulate("pbwo4", "photon", e, seed=seed)
    return toy_showers(geo, e, seed=seed)  # no refsim preset for the small test grids


@pytest.fixture(scope="module")
def small():
    return sample_showers("grid:6x8x7", 16, seed=1)


def test_registered():
    assert "gan3d" in available_models()
    assert model_class("gan3d") is GAN3D


@pytest.mark.parametrize("variant", ["conv3d", "conv2d"])
def test_trains_and_generates_on_the_3dgan_grid(variant):
    showers = sample_showers("grid:25x25x25:22", 8, seed=2)
    geo = get_geometry("grid:25x25x25:22")
    model = GAN3D(geo, {"generator": variant, "batch_size": 4})
    history = model.fit(showers, epochs=1, progress=False)
    assert history["epoch"] == [1.0]
    assert all(np.isfinite(history[k][0]) for k in ("loss_d", "loss_g", "ecal_mape"))
    out = model.sample(np.array([1e4, 5e4, 1e5]), seed=0)
    assert out.shape == (3, 15625)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out)) and np.all(out >= 0)


@pytest.mark.parametrize("variant", ["conv3d", "conv2d"])
def test_generator_variants_use_only_their_convolutions(variant):
    model = GAN3D(get_geometry("grid:6x8x7"), tiny(variant))
    kinds = {type(m) for m in model.generator.modules()}
    assert (torch.nn.Conv3d in kinds) == (variant == "conv3d")
    assert (torch.nn.Conv2d in kinds) == (variant == "conv2d")


@pytest.mark.parametrize("variant", ["conv3d", "conv2d"])
def test_training_changes_weights_and_is_deterministic(small, variant):
    geo = get_geometry("grid:6x8x7")
    a, b = GAN3D(geo, tiny(variant)), GAN3D(geo, tiny(variant))
    a.fit(small, epochs=2, seed=3, progress=False)
    b.fit(small, epochs=2, seed=3, progress=False)
    np.testing.assert_array_equal(a.sample([2e4, 3e4], seed=1), b.sample([2e4, 3e4], seed=1))
    c = GAN3D(geo, tiny(variant))
    c.fit(small, epochs=2, seed=4, progress=False)
    assert not np.array_equal(a.sample([2e4], seed=1), c.sample([2e4], seed=1))


def test_discriminator_outputs_and_exact_ecal_sum(small):
    model = GAN3D(get_geometry("grid:6x8x7"), tiny("conv3d"))
    x = model.scaling(torch.as_tensor(small.showers[:5])).reshape(-1, 6, 8, 7)
    logit, energy, ecal = model.discriminator.eval()(x)
    assert logit.shape == energy.shape == ecal.shape == (5,)
    np.testing.assert_allclose(ecal.numpy(), small.showers[:5].sum(axis=1) / 1000.0, rtol=1e-4)


def test_cylindrical_regular_geometry_ds2_works():
    geo = get_geometry("ds2")  # 45 layers x 16 angles x 9 radii: the seed is grown and cropped
    showers = sample_showers("ds2", 4, seed=5)
    model = GAN3D(geo, tiny("conv2d"))
    model.fit(showers, epochs=1, progress=False)
    out = model.sample([1e5, 2e3], seed=0)
    assert out.shape == (2, 6480)
    assert np.all(np.isfinite(out)) and np.all(out >= 0)


def test_save_load_round_trip_gives_identical_samples(small, tmp_path):
    model = GAN3D(get_geometry("grid:6x8x7"), tiny("conv2d"))
    model.fit(small, epochs=1, progress=False, out_dir=tmp_path / "run")
    loaded = load_generator(tmp_path / "run")
    assert isinstance(loaded, GAN3D) and loaded.config == model.config
    e = np.array([1e4, 7e4, 2e5])
    np.testing.assert_array_equal(model.sample(e, seed=11), loaded.sample(e, seed=11))
    assert loaded.state["epoch"] == 1
    assert float(loaded.response) == pytest.approx(float(model.response))


@pytest.mark.parametrize("variant", ["conv3d", "conv2d"])
def test_resume_continues_and_equals_an_uninterrupted_run(small, tmp_path, variant):
    geo = get_geometry("grid:6x8x7")
    straight = GAN3D(geo, tiny(variant))
    straight.fit(small, epochs=2, seed=7, progress=False, out_dir=tmp_path / "a")

    first = GAN3D(geo, tiny(variant))
    first.fit(small, epochs=1, seed=7, progress=False, out_dir=tmp_path / "b")
    resumed = GAN3D(geo, tiny(variant))
    history = resumed.fit(small, epochs=2, progress=False, out_dir=tmp_path / "b", resume=True)
    assert history["epoch"] == [1.0, 2.0]
    assert resumed.state["epoch"] == 2
    assert load_generator(tmp_path / "b").state["epoch"] == 2
    for name, module in straight.modules().items():
        for key, t in module.state_dict().items():
            torch.testing.assert_close(resumed.modules()[name].state_dict()[key], t, msg=key)


def test_max_minutes_stops_after_an_epoch_and_resume_finishes(small, tmp_path):
    model = GAN3D(get_geometry("grid:6x8x7"), tiny("conv2d"))
    history = model.fit(small, epochs=3, progress=False, out_dir=tmp_path, max_minutes=0.0)
    assert history["epoch"] == [1.0] and load_generator(tmp_path).state["epoch"] == 1
    history = model.fit(small, epochs=3, progress=False, out_dir=tmp_path, resume=True)
    assert history["epoch"] == [1.0, 2.0, 3.0]


def test_resume_refuses_a_checkpoint_of_another_config(small, tmp_path):
    geo = get_geometry("grid:6x8x7")
    GAN3D(geo, tiny("conv3d")).fit(small, epochs=1, progress=False, out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="different options"):
        GAN3D(geo, tiny("conv2d")).fit(
            small, epochs=2, progress=False, out_dir=tmp_path, resume=True
        )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript-based exporter
@pytest.mark.parametrize("variant", ["conv3d", "conv2d"])
def test_inference_module_exports_to_onnx(variant):
    import onnxruntime as ort

    model = GAN3D(get_geometry("grid:6x8x7"), tiny(variant))
    module = model.inference_module()
    noise, e = model.latent_inputs(np.array([1e4, 5e4, 9e4]), seed=2)
    buf = io.BytesIO()
    torch.onnx.export(
        module,
        (noise, e),
        buf,
        dynamo=False,
        input_names=["noise", "e_inc"],
        output_names=["showers"],
        dynamic_axes={"noise": {0: "n"}, "e_inc": {0: "n"}, "showers": {0: "n"}},
    )
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"noise": noise.numpy(), "e_inc": e.numpy()})
    with torch.no_grad():
        torch_out = module(noise, e).numpy()
    assert onnx_out.shape == (3, 336)
    np.testing.assert_allclose(onnx_out, torch_out, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(torch_out, model.sample([1e4, 5e4, 9e4], seed=2))


def test_latent_inputs_are_seeded():
    model = GAN3D(get_geometry("grid:6x8x7"), tiny("conv3d"))
    n1, e1 = model.latent_inputs([1e3, 2e3], seed=5)
    n2, _ = model.latent_inputs([1e3, 2e3], seed=5)
    n3, _ = model.latent_inputs([1e3, 2e3], seed=6)
    assert n1.shape == (2, 8) and e1.shape == (2, 1) and n1.dtype == e1.dtype == torch.float32
    assert torch.equal(n1, n2) and not torch.equal(n1, n3)
    assert e1[:, 0].tolist() == [1e3, 2e3]


def test_irregular_geometry_is_refused():
    with pytest.raises(ConfigError, match="needs a regular geometry .*'ds1-photons'"):
        GAN3D(get_geometry("ds1-photons"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"generator": "conv1d"}, "must be one of 'conv3d', 'conv2d'"),
        ({"gen_channels": [8, 0]}, "'gen_channels' of model 'gan3d' must be a list of values >= 1"),
        ({"kernel": 4}, "'kernel' of model 'gan3d' must be an odd integer"),
        ({"latent_dim": 0}, "'latent_dim' of model 'gan3d' must be >= 1"),
        ({"depth": 3}, "unknown option"),
    ],
)
def test_bad_config_is_one_clear_error(config, message):
    with pytest.raises(ConfigError, match=message):
        GAN3D(get_geometry("grid:6x8x7"), config)


def test_bad_inputs_are_clear_errors(small):
    model = GAN3D(get_geometry("grid:6x8x7"), tiny("conv3d"))
    with pytest.raises(ConfigError, match="incident energies must be .*> 0 MeV"):
        model.sample(np.array([1e4, -1.0]))
    with pytest.raises(CaloforgeError, match="336"):
        model.fit(Showers(np.ones(3), np.ones((3, 10))), progress=False)
    bad = Showers(small.incident_energies, small.showers.copy())
    bad.showers[0, 0] = np.nan
    with pytest.raises(CaloforgeError, match="NaN"):
        model.fit(bad, progress=False)


def test_shower_shape_mse_is_zero_for_identical_and_grows_with_shift():
    geo = get_geometry("grid:6x8x7")
    s = toy_showers(geo, np.full(20, 5e4), seed=0).showers
    shapes = shower_shapes(s, (6, 8, 7))
    assert {k: v.shape for k, v in shapes.items()} == {"layer": (6,), "x": (8,), "y": (7,)}
    np.testing.assert_allclose(shapes["layer"].mean(), 1.0)
    assert shower_shape_mse(s, s, (6, 8, 7))["mean"] == 0.0
    shifted = np.roll(s.reshape(-1, 6, 8, 7), 2, axis=2).reshape(20, -1)
    mse = shower_shape_mse(s, shifted, (6, 8, 7))
    assert mse["x"] > 0.01 and mse["layer"] < 1e-12 and mse["y"] < 1e-12
