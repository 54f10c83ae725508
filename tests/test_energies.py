"""Incident-energy spectrum specs (``parse_energies``)."""

from __future__ import annotations

import numpy as np
import pytest

from caloforge.energies import DS1_COUNTS, DS1_ENERGIES, parse_energies
from caloforge.errors import ConfigError


@pytest.mark.parametrize("spec", ["1000", "1e3", " 1000 ", "fixed:1000", 1000, 1000.0])
def test_single_energy(spec):
    e = parse_energies(spec, 4)
    assert e.dtype == np.float64 and e.shape == (4,)
    np.testing.assert_array_equal(e, [1000.0] * 4)


def test_numpy_scalars_and_arrays():
    np.testing.assert_array_equal(parse_energies(np.int64(500), 2), [500.0, 500.0])
    np.testing.assert_array_equal(parse_energies(np.float32(2.5), 1), [2.5])
    np.testing.assert_array_equal(parse_energies(np.array([1.0, 2.0]), 5), [1, 2, 1, 2, 1])
    np.testing.assert_array_equal(parse_energies([3.0, 4.0, 5.0], 2), [3.0, 4.0])


def test_fixed_list_is_cycled():
    e = parse_energies("fixed:1e3,5e4,2e5", 7)
    np.testing.assert_array_equal(e, [1e3, 5e4, 2e5, 1e3, 5e4, 2e5, 1e3])
    np.testing.assert_array_equal(parse_energies("1e3,5e4", 3), [1e3, 5e4, 1e3])


def test_uniform():
    e = parse_energies("uniform:1e3:1e5", 2000, seed=1)
    assert e.min() >= 1e3 and e.max() <= 1e5
    assert e.mean() == pytest.approx(0.5 * (1e3 + 1e5), rel=0.05)
    np.testing.assert_array_equal(e, parse_energies("uniform:1e3:1e5", 2000, seed=1))
    assert not np.array_equal(e, parse_energies("uniform:1e3:1e5", 2000, seed=2))


def test_loguniform():
    e = parse_energies("LogUniform:1e3:1e6", 4000, seed=3)
    assert e.min() >= 1e3 and e.max() <= 1e6
    log_e = np.log10(e)
    # flat in log10(E): a quarter of the draws in each quarter of [3, 6]
    counts, _ = np.histogram(log_e, bins=4, range=(3, 6))
    np.testing.assert_allclose(counts / len(e), 0.25, atol=0.03)
    np.testing.assert_array_equal(e, parse_energies("loguniform:1e3:1e6", 4000, seed=3))


def test_ds1_spectrum():
    e = parse_energies("ds1", 20000, seed=4)
    assert set(np.unique(e)) <= set(DS1_ENERGIES)
    assert DS1_ENERGIES[0] == 256.0 and DS1_ENERGIES[-1] == 2.0**22
    fractions = np.array([(e == x).mean() for x in DS1_ENERGIES])
    np.testing.assert_allclose(fractions, DS1_COUNTS / DS1_COUNTS.sum(), atol=0.01)
    np.testing.assert_array_equal(e, parse_energies(" DS1 ", 20000, seed=4))


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("abc", r"cannot read energy spectrum 'abc'; use e\.g\. 'loguniform:1e3:1e6'"),
        ("uniform:1e3", r"cannot read energy spectrum 'uniform:1e3'"),
        ("uniform:a:b", r"cannot read energy spectrum 'uniform:a:b'"),
        ("uniform:1:2:3", r"cannot read energy spectrum 'uniform:1:2:3'"),
        ("fixed:", r"cannot read energy spectrum 'fixed:'"),
        ("", r"cannot read energy spectrum ''"),
        ("gauss:1:2", r"unknown energy spectrum kind 'gauss' in 'gauss:1:2'; use fixed, uniform"),
        ("uniform:1e5:1e3", r"'uniform:1e5:1e3': the upper edge is below the lower one"),
        ("loguniform:0:1e3", r"incident energies must be finite and > 0 MeV"),
        ("fixed:1e3,-5", r"'fixed:1e3,-5': incident energies must be finite and > 0 MeV"),
        ("0", r"incident energies must be finite and > 0 MeV"),
        ("nan", r"incident energies must be finite and > 0 MeV"),
        ("inf", r"incident energies must be finite and > 0 MeV"),
        (-3.0, r"'-3\.0': incident energies must be finite and > 0 MeV"),
        ([1.0, np.nan], r"incident energies must be finite and > 0 MeV"),
        (None, r"energy spectrum must be a spec string or numbers, got None"),
    ],
)
def test_bad_specs(spec, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        parse_energies(spec, 3)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("n", [0, -1])
def test_bad_count(n):
    with pytest.raises(ConfigError, match=rf"the number of showers must be > 0, got {n}"):
        parse_energies("1000", n)
