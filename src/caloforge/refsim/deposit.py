"""Deposition of layer energies into any caloforge geometry, vectorised over showers.

The shower models hand over, for every shower and readout layer, a visible energy, a number of
spots and a two-component radial profile

    f(r) = p 2 r R1^2 / (r^2 + R1^2)^2 + (1 - p) 2 r R2^2 / (r^2 + R2^2)^2,

(cumulative F(r) = p r^2/(r^2 + R1^2) + (1 - p) r^2/(r^2 + R2^2)). The spots share their layer's
energy in proportion to independent Gamma(k) weights, k = ``spot_shape`` (refsim 4; default
:data:`SPOT_SHAPE`): a spot's visible energy fluctuates like a MIP's in the sensors, while the
layer energy stays exactly what the shower model gave (the weights are normalised over all of
the layer's spots, including those that leak out). ``spot_shape=None`` gives every spot the
same share (refsim 1-3), which makes the voxel energies multiples of one spot energy, a comb
that real showers do not have. Two exact ways bin the spots:

* spots: draw each spot (radius from the inverse CDF of the chosen component, a uniform
  azimuth), move it to the shower axis (offset, inclination) and bin it by (r, alpha) or (x, y);
* multinomial (cylindrical layers, shower on the z axis, normal incidence): the numbers of spots
  per radial bin are a multinomial draw with the bin integrals of F(r), and within a ring the
  spots are spread over the angular bins by a second, uniform multinomial draw; a voxel holding
  n spots gets the weight Gamma(n k), the law of a sum of n Gamma(k) weights. This has the
  same distribution as binning the spots one by one, at a cost that does not grow with the
  number of spots, so no spot is ever dropped on this path.

On the spot path (shifted or inclined showers, Cartesian grids) the number of spots per shower
and layer is capped at ``max_spots``; the energy is then shared by fewer, heavier spots, which
keeps every layer energy exact but makes the voxel-to-voxel fluctuations those of ``max_spots``
spots (larger than the parametrized ones). Spots outside the readout are lost (lateral leakage).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caloforge.errors import ConfigError
from caloforge.geometry import CartesianLayer, CylindricalLayer, Geometry
from caloforge.refsim.hits import HitSink, voxel_index

#: default cap on spots per shower and layer on the spot path
MAX_SPOTS = 2000
#: rings with more spots than this are spread over angles by one multinomial draw
ANGLE_MULTINOMIAL_MIN = 128
#: Gamma shape k of the spot weights (refsim 4): relative spread 1/sqrt(k) = 1/3, that of the
#: Moyal with xi = 0.15 of the mean that the primary track's sensor signal uses
#: (pi / sqrt(2) * 0.15 = 0.33; 2 x 0.3 mm Si has FWHM/MPV about 0.3 per sensor)
SPOT_SHAPE = 9.0


@dataclass
class LayerDeposits:
    """What a shower model leaves in each readout layer; every array has shape (N, L).

    Attributes:
        energy: visible energy divided by the sampling fraction, MeV.
        spots: number of spots that share it (0 where the energy is 0).
        p: weight of the first radial component.
        r1, r2: radial scales of the two components, mm (transverse to the shower axis).
    """

    energy: np.ndarray
    spots: np.ndarray
    p: np.ndarray
    r1: np.ndarray
    r2: np.ndarray


@dataclass(frozen=True)
class Incidence:
    """Where and how the particle enters: front-face point (mm) and direction (rad)."""

    theta: float = 0.0
    phi: float = 0.0
    x0: float = 0.0
    y0: float = 0.0

    @property
    def on_axis(self) -> bool:
        return self.theta == 0.0 and self.x0 == 0.0 and self.y0 == 0.0

    @property
    def cos_theta(self) -> float:
        return float(np.cos(self.theta))

    def axis_at(self, z_mm: float) -> tuple[float, float]:
        """(x, y) in mm where the shower axis crosses the plane at depth ``z_mm``."""
        t = np.tan(self.theta) * z_mm
        return self.x0 + t * np.cos(self.phi), self.y0 + t * np.sin(self.phi)


def radial_cdf(r: np.ndarray, p: np.ndarray, r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """F(r) of the two-component profile; ``r`` broadcasts against the (G, 1) parameters."""
    r_sq = r * r
    return p * r_sq / (r_sq + r1 * r1) + (1.0 - p) * r_sq / (r_sq + r2 * r2)


def deposit(
    geometry: Geometry,
    deposits: list[LayerDeposits],
    layer_mid_mm: np.ndarray,
    incidence: Incidence,
    rng: np.random.Generator,
    *,
    max_spots: int = MAX_SPOTS,
    sink: HitSink | None = None,
    spot_shape: float | None = SPOT_SHAPE,
) -> np.ndarray:
    """Bin the layer deposits of N showers into voxels.

    Args:
        geometry: readout geometry with L layers.
        deposits: one or more :class:`LayerDeposits` (e.g. shower and MIP track), each (N, L).
        layer_mid_mm: depth of every layer's centre along z, mm, shape (L,).
        incidence: shower axis.
        rng: random generator.
        max_spots: cap on spots per shower and layer on the spot path.
        sink: if given, every spot is drawn one by one (no multinomial shortcut) and recorded
            in it with its position rounded to float32, binned from that rounded position.
        spot_shape: Gamma shape k of the spots' energy weights; None = equal spots.

    Returns:
        voxel energies, MeV, shape (N, n_voxels), float64.
    """
    if spot_shape is not None and not spot_shape > 0:
        raise ConfigError(f"spot_shape must be a positive Gamma shape or None, got {spot_shape!r}")
    n_showers = deposits[0].energy.shape[0]
    out = np.zeros((n_showers, geometry.n_voxels))
    for pos, (layer, sl) in enumerate(zip(geometry.layers, geometry.layer_slices, strict=True)):
        block = out[:, sl]
        centre = incidence.axis_at(float(layer_mid_mm[pos]))
        for dep in deposits:
            k = dep.spots[:, pos]
            rows = np.flatnonzero((k > 0) & (dep.energy[:, pos] > 0))
            if rows.size == 0:
                continue
            args: _Rows = (
                rows,
                dep.energy[rows, pos],
                k[rows],
                dep.p[rows, pos],
                dep.r1[rows, pos],
                dep.r2[rows, pos],
            )
            if isinstance(layer, CylindricalLayer) and incidence.on_axis and sink is None:
                many = args[2] > layer.n_voxels // 4
                if np.any(many):
                    sub = _subset(args, many)
                    _multinomial_cylindrical(block, layer, *sub, rng, spot_shape)
                few = ~many
                if np.any(few):
                    sub = _subset(args, few)
                    _spots(block, layer, *sub, centre, incidence, rng, max_spots, spot_shape)
            else:
                where = (sink, pos, float(layer_mid_mm[pos])) if sink is not None else None
                _spots(block, layer, *args, centre, incidence, rng, max_spots, spot_shape, where)
        out[:, sl] = block
    return out


#: Per-group arrays handed to the depositors: rows, energy (MeV), spots, p, r1, r2 (mm).
_Rows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _subset(args: _Rows, mask: np.ndarray) -> _Rows:
    """The groups of ``args`` selected by the boolean ``mask``."""
    rows, energy, spots, p, r1, r2 = args
    return rows[mask], energy[mask], spots[mask], p[mask], r1[mask], r2[mask]


def _multinomial_cylindrical(
    block: np.ndarray,
    layer: CylindricalLayer,
    rows: np.ndarray,
    energy: np.ndarray,
    spots: np.ndarray,
    p: np.ndarray,
    r1: np.ndarray,
    r2: np.ndarray,
    rng: np.random.Generator,
    spot_shape: float | None,
) -> None:
    edges = np.asarray(layer.r_edges)
    cdf = radial_cdf(edges[None, :], p[:, None], r1[:, None], r2[:, None])  # (G, nr + 1)
    ring = np.clip(np.diff(cdf, axis=1), 0.0, None)
    total = ring.sum(axis=1, keepdims=True)
    ring = np.where(total > 1.0, ring / np.maximum(total, 1e-300), ring)
    pvals = np.concatenate([ring, np.clip(1.0 - ring.sum(axis=1, keepdims=True), 0, None)], 1)
    per_ring = rng.multinomial(spots, pvals)[:, :-1]  # (G, nr)
    per_voxel = _spread_over_angles(per_ring, layer.n_alpha, rng) if layer.n_alpha > 1 else per_ring
    if spot_shape is None:
        block[rows] += per_voxel * (energy / spots)[:, None]
        return
    # the summed weights of each voxel's spots, and of the spots that leaked out of the readout
    weight = _gamma_sums(per_voxel, spot_shape, rng)
    leaked = _gamma_sums(spots - per_voxel.sum(axis=1), spot_shape, rng)
    total = weight.sum(axis=1) + leaked
    block[rows] += weight * (energy / total)[:, None]


def _gamma_sums(counts: np.ndarray, shape: float, rng: np.random.Generator) -> np.ndarray:
    """Sums of ``counts`` independent Gamma(``shape``) weights, element-wise (0 where 0)."""
    out = np.zeros(counts.shape)
    lit = counts > 0
    out[lit] = rng.standard_gamma(shape * counts[lit])
    return out


def _spread_over_angles(per_ring: np.ndarray, n_alpha: int, rng: np.random.Generator) -> np.ndarray:
    """Spread the spots of every (group, ring) uniformly over ``n_alpha`` angular bins.

    Exact either way: rings with few spots draw one angular bin per spot (cost ~ spots),
    rings with many a uniform multinomial (cost ~ n_alpha).

    Args:
        per_ring: spots per (group, radial bin), shape (G, nr).

    Returns:
        spots per voxel, shape (G, n_alpha * nr), radial index fastest.
    """
    n_groups, n_radial = per_ring.shape
    big = per_ring > ANGLE_MULTINOMIAL_MIN
    small = np.where(big, 0, per_ring).ravel()
    ring = np.repeat(np.arange(small.size), small)
    group, radial = np.divmod(ring, n_radial)
    angle = rng.integers(0, n_alpha, ring.size)
    index = (group * n_alpha + angle) * n_radial + radial
    per_voxel = np.bincount(index, minlength=n_groups * n_alpha * n_radial)
    per_voxel = per_voxel.reshape(n_groups, n_alpha * n_radial)
    if np.any(big):
        g, r = np.nonzero(big)
        counts = rng.multinomial(per_ring[g, r], np.full(n_alpha, 1.0 / n_alpha))
        per_voxel[g[:, None], np.arange(n_alpha)[None, :] * n_radial + r[:, None]] += counts
    return per_voxel


def _spots(
    block: np.ndarray,
    layer: CylindricalLayer | CartesianLayer,
    rows: np.ndarray,
    energy: np.ndarray,
    spots: np.ndarray,
    p: np.ndarray,
    r1: np.ndarray,
    r2: np.ndarray,
    centre: tuple[float, float],
    incidence: Incidence,
    rng: np.random.Generator,
    max_spots: int,
    spot_shape: float | None,
    sink: tuple[HitSink, int, float] | None = None,
) -> None:
    spots = np.minimum(spots, max_spots)
    group = np.repeat(np.arange(len(rows)), spots)
    n = group.size
    u = rng.random(n)
    radius_scale = np.where(rng.random(n) < p[group], r1[group], r2[group])
    r = radius_scale * np.sqrt(u / (1.0 - u))
    turn = rng.random(n)
    if spot_shape is None:
        weight = (energy / spots)[group]
    else:  # the layer's energy in proportion to the spots' weights, all spots counted
        g = rng.standard_gamma(spot_shape, n)
        weight = g * (energy / np.bincount(group, weights=g, minlength=len(rows)))[group]
    n_local = block.shape[1]
    if isinstance(layer, CylindricalLayer) and incidence.on_axis and sink is None:
        r_bin = np.searchsorted(np.asarray(layer.r_edges), r, side="right") - 1
        a_bin = np.minimum((turn * layer.n_alpha).astype(np.int64), layer.n_alpha - 1)
        ok = (r_bin >= 0) & (r_bin < layer.n_radial)
        local = a_bin * layer.n_radial + r_bin
    else:
        psi = 2.0 * np.pi * turn
        along = r * np.cos(psi) / incidence.cos_theta  # stretched along the inclination
        across = r * np.sin(psi)
        cphi, sphi = np.cos(incidence.phi), np.sin(incidence.phi)
        x = centre[0] + along * cphi - across * sphi
        y = centre[1] + along * sphi + across * cphi
        if sink is not None:
            x, y = x.astype(np.float32), y.astype(np.float32)
            weight = weight.astype(np.float32)
        ok, local = voxel_index(layer, x, y)
        if sink is not None:
            collector, pos, z_mm = sink
            collector.add(rows[group[ok]], pos, x[ok], y[ok], z_mm, weight[ok])
    flat = rows[group[ok]] * n_local + local[ok]
    summed = np.bincount(flat, weights=weight[ok], minlength=block.size)
    block += summed.reshape(block.shape)
