"""WGAN-GP with the energy constrainer: penalty, regressor pre-training, n_critic, checkpoints."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.models import load_generator, model_class
from caloforge.models.wgan import WGAN, EnergyFeature, gradient_penalty
from caloforge.refsim import simulate
from caloforge.seeding import derive_seed
from caloforge.testing import toy_showers

TINY = {
    "latent_dim": 8,
    "gen_channels": [8, 4],
    "critic_channels": [4, 4],
    "regressor_channels": [4, 8],
    "hidden": 16,
    "batch_size": 8,
    "n_critic": 2,
    "regressor_epochs": 2,
    "epochs": 1,
}


def sample_showers(geometry_name: str, n: int, seed: int = 0) -> Showers:
    """Showers from the reference simulator's ild-ahcal preset (pions) if it matches, else from
    the analytic toy."""
    geo = get_geometry(geometry_name)
    e = np.exp(np.random.default_rng(seed).uniform(np.log(1e4), np.log(1e5), n))
    if geometry_name == "grid:48x25x25:30":
        return simulate("ild-ahcal", "pion", e, seed=seed)
    return toy_showers(geo, e, seed=seed)  # no refsim preset for the small test grids


@pytest.fixture(scope="module")
def small():
    return sample_showers("grid:6x8x7", 24, seed=1)


def test_registered():
    assert model_class("wgan") is WGAN


def test_trains_and_generates_on_the_48x25x25_grid():
    geo = get_geometry("grid:48x25x25:30")
    showers = sample_showers("grid:48x25x25:30", 6, seed=2)
    model = WGAN(geo, {"batch_size": 3, "n_critic": 1, "regressor_epochs": 1})
    history = model.fit(showers, epochs=1, progress=False)
    assert all(np.isfinite(history[k][0]) for k in ("loss_c", "gp", "loss_g"))
    out = model.sample(np.array([1e4, 8e4]), seed=0)
    assert out.shape == (2, 30000)
    assert np.all(np.isfinite(out)) and np.all(out >= 0)


def test_gradient_penalty_of_a_linear_critic():
    # critic(x) = w . x has gradient w everywhere: the penalty is (|w| - 1)^2 for any x_hat
    w = torch.tensor([3.0, 4.0])

    def critic(x, c):
        return x @ w

    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    gp = gradient_penalty(critic, real, fake, torch.zeros(5, 1), torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2)


def test_regressor_is_pretrained_on_real_showers_and_then_frozen(small):
    model = WGAN(get_geometry("grid:6x8x7"), {**TINY, "regressor_epochs": 15, "epochs": 1})
    model.fit(small, progress=False)
    mse = model.state["regressor_mse"]
    assert len(mse) == 16
    assert mse[-1] < 0.5 * mse[0]
    assert not any(p.requires_grad for p in model.regressor.parameters())


def test_generator_is_updated_every_n_critic_steps(small):
    geo = get_geometry("grid:6x8x7")
    config = {**TINY, "n_critic": 4}  # 24 showers in batches of 8: three critic steps per epoch
    initial = WGAN(geo, config)
    initial.initialize(derive_seed(0, "init"))  # the initial weights of fit(seed=0)
    model = WGAN(geo, config)
    history = model.fit(small, epochs=1, seed=0, progress=False)
    assert np.isnan(history["loss_g"][0]) and np.isfinite(history["loss_c"][0])
    for (name, p0), p1 in zip(
        initial.generator.named_parameters(), model.generator.parameters(), strict=True
    ):
        assert torch.equal(p0, p1), name
    assert not torch.equal(initial.critic.head[0].weight, model.critic.head[0].weight)
    history = model.fit(small, epochs=2, seed=0, progress=False)  # the 4th step updates G
    assert np.isnan(history["loss_g"][0]) and np.isfinite(history["loss_g"][1])
    assert not torch.equal(initial.generator.fc.weight, model.generator.fc.weight)


def test_energy_constraint_enters_the_generator_loss(small):
    geo = get_geometry("grid:6x8x7")
    config = {**TINY, "n_critic": 1}
    with_c = WGAN(geo, config)
    without = WGAN(geo, {**config, "constraint_weight": 0.0})
    h1 = with_c.fit(small, epochs=1, seed=0, progress=False)
    h0 = without.fit(small, epochs=1, seed=0, progress=False)
    assert h1["energy_constraint"][0] > 0
    assert h1["loss_g"][0] != pytest.approx(h0["loss_g"][0])


def test_energy_feature_spans_one_gev_to_one_tev():
    f = EnergyFeature(1000.0, 1000.0)
    out = f(torch.tensor([[1e3], [1e6]]))
    torch.testing.assert_close(out, torch.tensor([[0.0], [1.0]]))


def test_ds2_geometry_works():
    geo = get_geometry("ds2")
    model = WGAN(geo, TINY)
    model.fit(sample_showers("ds2", 4, seed=3), epochs=1, progress=False)
    out = model.sample([2e3, 5e5], seed=1)
    assert out.shape == (2, 6480) and np.all(out >= 0) and np.all(np.isfinite(out))


def test_save_load_round_trip_and_resume(small, tmp_path):
    geo = get_geometry("grid:6x8x7")
    straight = WGAN(geo, TINY)
    straight.fit(small, epochs=2, seed=5, progress=False)

    first = WGAN(geo, TINY)
    first.fit(small, epochs=1, seed=5, progress=False, out_dir=tmp_path)
    loaded = load_generator(tmp_path)
    e = np.array([1e4, 3e4, 9e4])
    np.testing.assert_array_equal(first.sample(e, seed=3), loaded.sample(e, seed=3))

    history = loaded.fit(small, epochs=2, progress=False, out_dir=tmp_path, resume=True)
    assert history["epoch"] == [1.0, 2.0] and loaded.state["epoch"] == 2
    assert loaded.state["regressor_mse"] == straight.state["regressor_mse"]
    np.testing.assert_array_equal(straight.sample(e, seed=3), loaded.sample(e, seed=3))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript-based exporter
def test_inference_module_exports_to_onnx():
    import onnxruntime as ort

    model = WGAN(get_geometry("grid:6x8x7"), TINY)
    noise, e = model.latent_inputs([1e4, 2e5], seed=4)
    module = model.inference_module()
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
    noise5, e5 = model.latent_inputs(np.geomspace(1e3, 1e6, 5), seed=9)  # another batch size
    (onnx_out,) = session.run(None, {"noise": noise5.numpy(), "e_inc": e5.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(onnx_out, module(noise5, e5).numpy(), rtol=1e-4, atol=1e-4)


def test_irregular_geometry_is_refused():
    with pytest.raises(ConfigError, match="model 'wgan' needs a regular geometry"):
        WGAN(get_geometry("calogan"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"n_critic": 0}, "'n_critic' of model 'wgan' must be >= 1"),
        ({"critic_channels": []}, "'critic_channels' of model 'wgan' must be a non-empty list"),
        ({"energy_span": 1.0}, "'energy_span' of model 'wgan' must be > 1"),
        ({"power": 0}, "'power' of model 'wgan' must be > 0"),
    ],
)
def test_bad_config_is_one_clear_error(config, message):
    with pytest.raises(ConfigError, match=message):
        WGAN(get_geometry("grid:6x8x7"), config)
