"""How refsim's spots share their layer's energy (refsim 4, ``caloforge.refsim.deposit``).

Every spot of a layer gets an independent Gamma(k) weight and the layer's energy is shared in
proportion to the weights, all spots counted (also those that leak out of the readout). So the
layer energy stays exact, and for n spots of which each lands in a region with probability q,
the region's share F of the layer energy has mean q and variance

    Var F = q (1 - q) (1 + k) / (n k + 1)

(the spots' shares are Dirichlet(k, ..., k); k -> infinity is the binomial q (1 - q) / n of equal
spots). Both binning paths (the multinomial one for on-axis cylindrical layers, the spot-by-spot
one otherwise) must give that law.
"""

from __future__ import annotations

import numpy as np
import pytest

from caloforge.geometry import CylindricalLayer, Geometry
from caloforge.refsim import simulate
from caloforge.refsim.deposit import Incidence, LayerDeposits, deposit
from caloforge.refsim.external import repeated_voxel_energy_fraction

#: the inner ring holds the spots with r < R, where F(R) = 1/2 for a single component R1 = R
RADIUS_MM = 10.0


def _two_rings() -> Geometry:
    """One layer, two rings (r < R and R <= r < 1e9 mm, so nothing leaks), one angular bin."""
    return Geometry("two-rings", (CylindricalLayer(0, (0.0, RADIUS_MM, 1e9), 1),))


def _deposits(n_showers: int, n_spots: int) -> LayerDeposits:
    shape = (n_showers, 1)
    return LayerDeposits(
        energy=np.full(shape, 100.0),
        spots=np.full(shape, n_spots, dtype=np.int64),
        p=np.ones(shape),
        r1=np.full(shape, RADIUS_MM),
        r2=np.full(shape, RADIUS_MM),
    )


# on-axis: the multinomial path (2 voxels, so every group with a spot takes it); a 1 nm offset
# changes no ring membership measurably but sends the showers down the spot-by-spot path
PATHS = {"multinomial": Incidence(), "spots": Incidence(x0=1e-6)}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize(("n_spots", "shape"), [(4, 1.0), (3, 9.0), (6, None)])
def test_inner_share_has_the_dirichlet_variance(path, n_spots, shape):
    n = 80_000
    rng = np.random.default_rng(11)
    geo = _two_rings()
    x = deposit(geo, [_deposits(n, n_spots)], np.zeros(1), PATHS[path], rng, spot_shape=shape)
    # the layer energy is exact whatever the weights
    np.testing.assert_allclose(x.sum(axis=1), 100.0, rtol=1e-12)
    share = x[:, 0] / 100.0
    q = 0.5
    k = np.inf if shape is None else shape
    expected = q * (1 - q) / n_spots if shape is None else q * (1 - q) * (1 + k) / (n_spots * k + 1)
    # standard errors of the sample mean and variance from the sample's own moments;
    # 5 of them: a false failure has probability < 1e-6 per check
    d = share - share.mean()
    se_mean = share.std() / np.sqrt(n)
    se_var = np.sqrt((np.mean(d**4) - np.mean(d**2) ** 2) / n)
    assert abs(share.mean() - q) < 5 * se_mean
    assert abs(share.var() - expected) < 5 * se_var
    # and the band is narrow enough to reject the other law (equal spots against Gamma(9)
    # ones): the two variances differ by more than 10 standard errors
    other = q * (1 - q) / n_spots if shape is not None else q * (1 - q) * 10 / (n_spots * 9 + 1)
    assert abs(other - expected) > 10 * se_var


def test_equal_spots_make_a_comb_and_gamma_spots_do_not():
    """With equal spots every share is a multiple of 1/n; with Gamma weights (almost) none is."""
    n, n_spots = 2_000, 5
    geo = _two_rings()
    for shape, comb in ((None, True), (9.0, False)):
        rng = np.random.default_rng(3)
        x = deposit(geo, [_deposits(n, n_spots)], np.zeros(1), Incidence(), rng, spot_shape=shape)
        on_grid = np.isclose(x[:, 0] / 100.0 * n_spots % 1.0, 0.0, atol=1e-9) | np.isclose(
            x[:, 0] / 100.0 * n_spots % 1.0, 1.0, atol=1e-9
        )
        # only the shares 0 and 1 (all spots in one ring: probability 2 * 2^-5 = 0.0625, binomial
        # spread 0.0054 over 2 000 showers) stay on the grid: 0.1 is 6.9 spreads above
        assert on_grid.all() if comb else on_grid.mean() < 0.1


def test_default_simulation_has_no_repeated_voxel_energies():
    """refsim 1-3 gave every single-spot voxel of a layer the same energy; refsim 4 none."""
    s = simulate("ds1-photons", "photon", 65536.0, n=50, seed=5)
    x = np.asarray(s.showers)
    assert (x > 0).sum() > 5_000
    # refsim 3 repeats most single-spot energies (64 % of ds2's lit voxels); refsim 4 only by
    # float32 rounding coincidences (1e-4 on ds2, refsim_physics_checks.py): 1e-3 is 10x that
    assert repeated_voxel_energy_fraction(x) < 1e-3


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_a_non_positive_spot_shape_is_one_clear_error(bad):
    from caloforge.errors import ConfigError

    with pytest.raises(ConfigError, match="spot_shape must be a positive"):
        deposit(_two_rings(), [_deposits(2, 3)], np.zeros(1), Incidence(),
                np.random.default_rng(0), spot_shape=bad)  # fmt: skip
