"""Preprocessing transforms (forward/inverse round trips, fitted state) and ShowerDataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from safetensors.torch import load, save

from caloforge.data import (
    Compose,
    EnergyFraction,
    Log,
    Logit,
    ShowerDataset,
    Standardize,
)
from caloforge.errors import ConfigError
from caloforge.io import Showers
from conftest import synthetic_showers

# --------------------------------------------------------------------------- strategies


@st.composite
def showers_and_energies(draw, max_n: int = 6, max_v: int = 12):
    """(showers (N, V) >= 0 MeV, incident energies (N,) MeV), both float64 tensors.

    Voxel fractions x / E_inc lie in [0, 1] (some exactly 0, some exactly 1).
    """
    n = draw(st.integers(1, max_n))
    v = draw(st.integers(1, max_v))
    fractions = draw(
        arrays(
            np.float64,
            (n, v),
            elements=st.one_of(
                st.just(0.0), st.just(1.0), st.floats(0.0, 1.0, allow_subnormal=False)
            ),
        )
    )
    e_inc = draw(arrays(np.float64, (n,), elements=st.floats(1.0, 1e6)))
    x = torch.from_numpy(fractions * e_inc[:, None])
    return x, torch.from_numpy(e_inc)


SETTINGS = settings(max_examples=60, deadline=None)


# --------------------------------------------------------------------------- round trips


@SETTINGS
@given(data=showers_and_energies(), scale=st.sampled_from([1.0, 1.7]))
def test_energy_fraction_round_trip(data, scale):
    x, e_inc = data
    t = EnergyFraction(scale)
    y = t.forward(x, e_inc)
    assert y.shape == x.shape
    assert torch.all((y >= 0) & (y <= 1.0 / scale + 1e-12))
    torch.testing.assert_close(t.inverse(y, e_inc), x, rtol=1e-12, atol=1e-9)


@SETTINGS
@given(data=showers_and_energies())
def test_logit_round_trip_on_fractions(data):
    x, e_inc = data
    u = x / e_inc[:, None]  # fractions in [0, 1]
    t = Logit(eps=1e-6)
    y = t.forward(u, e_inc)
    assert torch.all(torch.isfinite(y))
    torch.testing.assert_close(t.inverse(y, e_inc), u, rtol=0, atol=1e-10)


@SETTINGS
@given(data=showers_and_energies())
def test_log_round_trip(data):
    x, e_inc = data
    t = Log(eps=1e-3)
    y = t.forward(x, e_inc)
    assert torch.all(torch.isfinite(y))
    torch.testing.assert_close(t.inverse(y, e_inc), x, rtol=1e-10, atol=1e-10)


@SETTINGS
@given(data=showers_and_energies())
def test_standardize_round_trip(data):
    x, e_inc = data
    t = Standardize().fit(x, e_inc)
    y = t.forward(x, e_inc)
    if len(x) > 1:  # every voxel with spread has mean 0 and std 1 after the transform
        spread = x.std(dim=0) > 1e-3
        # (a constant voxel is divided by the std floor, which magnifies the rounding of its
        # mean; only the round trip below is asked of it)
        torch.testing.assert_close(
            y.mean(dim=0)[spread], torch.zeros(int(spread.sum()), dtype=x.dtype), atol=1e-6, rtol=0
        )
        torch.testing.assert_close(
            y.std(dim=0)[spread],
            torch.ones(int(spread.sum()), dtype=x.dtype),
            atol=1e-6,
            rtol=0,
        )
    torch.testing.assert_close(t.inverse(y, e_inc), x, rtol=1e-9, atol=1e-6)


@SETTINGS
@given(data=showers_and_energies())
def test_compose_round_trip(data):
    x, e_inc = data
    t = Compose(EnergyFraction(), Logit(1e-6), Standardize()).fit(x, e_inc)
    y = t.forward(x, e_inc)
    assert y.shape == x.shape and torch.all(torch.isfinite(y))
    # the composed map equals applying the parts in order
    manual = x / e_inc[:, None]
    manual = t.transforms[1].forward(manual, e_inc)
    manual = t.transforms[2].forward(manual, e_inc)
    torch.testing.assert_close(y, manual)
    back = t.inverse(y, e_inc)
    # errors of the logit space are fractions of E_inc
    torch.testing.assert_close(back / e_inc[:, None], x / e_inc[:, None], rtol=0, atol=1e-8)


def test_float32_compose_round_trip_is_close():
    """Models run in float32: the round trip stays within 1e-5 of E_inc per voxel."""
    e_inc, showers = synthetic_showers(64, 368, seed=2)
    x = torch.from_numpy(showers)
    e = torch.from_numpy(e_inc.astype(np.float32))
    t = Compose(EnergyFraction(), Logit(1e-6), Standardize()).fit(x, e)
    back = t.inverse(t.forward(x, e), e)
    assert back.dtype == torch.float32
    assert torch.max(torch.abs(back - x) / e[:, None]) < 1e-5


def test_logit_clamps_out_of_range_inputs():
    t = Logit(eps=1e-6)
    e = torch.ones(1)
    y = t.forward(torch.tensor([[-0.5, 1.5]], dtype=torch.float64), e)
    torch.testing.assert_close(t.inverse(y, e), torch.tensor([[0.0, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(y[0, 1], -y[0, 0])  # logit(1 - eps) = -logit(eps)


# --------------------------------------------------------------------------- state


def test_standardize_state_round_trip_through_safetensors():
    e_inc, showers = synthetic_showers(20, 30, seed=3)
    x, e = torch.from_numpy(showers), torch.from_numpy(e_inc.astype(np.float32))
    fitted = Standardize().fit(x, e)
    restored = Standardize()
    restored.load_state(load(save(fitted.state())))
    torch.testing.assert_close(restored.forward(x, e), fitted.forward(x, e))
    torch.testing.assert_close(restored.inverse(x, e), fitted.inverse(x, e))


def test_compose_state_round_trip():
    e_inc, showers = synthetic_showers(20, 30, seed=4)
    x, e = torch.from_numpy(showers), torch.from_numpy(e_inc.astype(np.float32))
    nested = Compose(EnergyFraction(), Compose(Log(), Standardize()), Standardize())
    nested.fit(x, e)
    state = nested.state()
    assert sorted(state) == ["1.1.mean", "1.1.std", "2.mean", "2.std"]
    fresh = Compose(EnergyFraction(), Compose(Log(), Standardize()), Standardize())
    fresh.load_state(load(save(state)))
    torch.testing.assert_close(fresh.forward(x, e), nested.forward(x, e))
    torch.testing.assert_close(fresh.inverse(fresh.forward(x, e), e), x, rtol=1e-4, atol=1e-3)


def test_unfitted_and_invalid_transforms():
    x, e = torch.ones(2, 3), torch.ones(2)
    with pytest.raises(ConfigError, match="Standardize must be fitted"):
        Standardize().forward(x, e)
    with pytest.raises(ConfigError, match="Standardize must be fitted"):
        Standardize().state()
    with pytest.raises(ConfigError, match=r"EnergyFraction scale must be > 0, got 0"):
        EnergyFraction(0)
    with pytest.raises(ConfigError, match=r"Logit eps must be in \(0, 0.5\), got 0.5"):
        Logit(0.5)
    with pytest.raises(ConfigError, match=r"Log eps must be > 0, got -1"):
        Log(-1)


def test_standardize_floors_constant_voxels():
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    t = Standardize(min_std=1e-3).fit(x, torch.ones(2))
    assert t.std[1] == pytest.approx(1e-3)
    torch.testing.assert_close(t.inverse(t.forward(x, torch.ones(2)), torch.ones(2)), x)


def test_standardize_fits_a_single_shower():
    """One shower has no spread: the std is floored instead of becoming NaN."""
    x = torch.tensor([[1.0, 0.0, 7.0]])
    t = Standardize(min_std=1e-2).fit(x, torch.ones(1))
    torch.testing.assert_close(t.std, torch.full((3,), 1e-2))
    torch.testing.assert_close(t.forward(x, torch.ones(1)), torch.zeros(1, 3))
    torch.testing.assert_close(t.inverse(torch.ones(1, 3), torch.ones(1)), x + 1e-2)


# --------------------------------------------------------------------------- dataset


def test_shower_dataset_shapes_and_transform():
    e_inc, showers = synthetic_showers(9, 368, seed=5)
    block = Showers(e_inc, showers)
    plain = ShowerDataset(block)
    assert len(plain) == 9
    x0, e0 = plain[0]
    assert x0.shape == (368,) and e0.shape == (1,)
    assert x0.dtype == torch.float32 and e0.dtype == torch.float32
    torch.testing.assert_close(x0, torch.from_numpy(showers[0]))
    assert e0.item() == pytest.approx(e_inc[0], rel=1e-6)

    transform = Compose(EnergyFraction(), Logit())
    transformed = ShowerDataset(block, transform)
    x3, e3 = transformed[3]
    expected = transform.forward(torch.from_numpy(showers[3:4]), torch.tensor([e_inc[3]]))
    torch.testing.assert_close(x3, expected[0].float())
    loader = torch.utils.data.DataLoader(transformed, batch_size=4)
    xb, eb = next(iter(loader))
    assert xb.shape == (4, 368) and eb.shape == (4, 1)
