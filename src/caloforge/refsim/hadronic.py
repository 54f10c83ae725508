"""Charged-pion showers: start depth, MIP track, two-component profile, EM fraction.

* The first inelastic interaction happens after an exponential depth of mean 1 lambda_I (along
  the shower axis); before it the pion leaves a minimum-ionising track on the axis. A pion that
  does not interact inside the detector punches through and leaves only the track.
* From the start, dE/dx = w (x/X0)^(a-1) e^(-b x/X0) + (1-w) (x/lambda)^(a-1) e^(-d x/lambda)
  (Bock et al.), a = 0.786 + 0.427 ln E, b = 0.29, d = 0.978, w = 1.032 - 0.159 ln E; X0 and
  lambda_I those of the layer where the shower starts. The first (X0-scale) term is the
  electromagnetic part; its share c1 follows from w and the integrals of both terms.
* The EM fraction f_em of every shower is a Beta draw with mean 1 - (E / 1 GeV)^(k-1), k = 0.82,
  and concentration KAPPA (std ~0.15 at f_em = 0.5). A shower with more EM energy is more
  compact (c1 scales with f_em / <f_em>) and gives a larger signal: the visible energy is
  E (f_em + (1 - f_em) / (e/h)), the hadronic part being seen with the lower response h/e.
* Laterally, the EM part spreads with R = R_EM R_M and the hadronic part with R = R_HAD lambda_I
  (f(r) = 2 r R^2 / (r^2 + R^2)^2, 95 % of it within 4.4 R), much wider than an EM shower.
* Layer energies get the same sampling smearing (c_S) as EM showers.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammainc

from caloforge.refsim.deposit import Incidence, LayerDeposits
from caloforge.refsim.detectors import Detector
from caloforge.refsim.em import TRACK_RADIUS_MM, n_spots, sampling_smear, stochastic_round

B_EM, D_HAD = 0.29, 0.978
F_EM_K = 0.82
KAPPA = 10.0
#: lateral scales: EM part in Molière radii, hadronic part in interaction lengths
R_EM, R_HAD = 0.35, 0.2


def mean_em_fraction(energy_gev: np.ndarray) -> np.ndarray:
    """<f_em> = 1 - (E / 1 GeV)^(k - 1), clipped to [0.05, 0.95]."""
    return np.clip(1.0 - np.asarray(energy_gev) ** (F_EM_K - 1.0), 0.05, 0.95)


def pion_deposits(
    detector: Detector,
    energy_mev: np.ndarray,
    incidence: Incidence,
    rng: np.random.Generator,
) -> list[LayerDeposits]:
    """Layer deposits of N charged-pion showers: [shower, MIP track], each (N, L)."""
    e_mev = np.asarray(energy_mev, dtype=float)
    n, n_layers = len(e_mev), detector.n_layers
    cos_t = incidence.cos_theta
    lo_mm, hi_mm = (b / cos_t for b in detector.bounds_mm)  # path length along the axis
    lo_x0, hi_x0 = (b / cos_t for b in detector.bounds_x0)
    lo_lam, hi_lam = (b / cos_t for b in detector.bounds_lambda)

    # depth conversions through dead material and layers: knots 0, lo_0, hi_0, lo_1, hi_1 ...
    def knots(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.stack([lo, hi], axis=1).ravel()])

    start_lam = rng.exponential(detector.tune.pion_start_lambda, n)
    interacts = start_lam < hi_lam[-1]
    start_mm = np.interp(start_lam, knots(lo_lam, hi_lam), knots(lo_mm, hi_mm))
    start_x0 = np.interp(start_lam, knots(lo_lam, hi_lam), knots(lo_x0, hi_x0))
    knots_lam = np.concatenate([[0.0], hi_lam])

    # minimum-ionising track up to the interaction point (also through the dead material)
    path = np.clip(np.minimum(hi_mm[None, :], start_mm[:, None]) - lo_mm[None, :], 0.0, None)
    true_mip = path * np.array([s.mip_mev_per_mm for s in detector.stacks])[None, :]
    dead_path = np.clip(
        np.minimum(lo_lam[None, :], start_lam[:, None]) - (knots_lam[:-1])[None, :], 0.0, None
    )
    dead_frac = np.divide(
        dead_path, lo_lam - knots_lam[:-1], out=np.zeros_like(dead_path),
        where=(lo_lam - knots_lam[:-1]) > 0,
    )  # fmt: skip
    true_mip = true_mip + dead_frac * detector.dead_mip_mev[None, :] / cos_t
    track = path * detector.mip_visible_per_mm[None, :]

    e_shower = np.where(interacts, np.clip(e_mev - true_mip.sum(axis=1), 0.0, None), 0.0)
    e_gev = np.maximum(e_shower, 1.0) / 1000.0
    ln_e = np.log(e_gev)
    a = np.maximum(0.786 + 0.427 * ln_e, 0.3)
    w = np.clip(1.032 - 0.159 * ln_e, 0.0, 1.0)
    layer_of_start = np.clip(np.searchsorted(hi_lam, start_lam, side="right"), 0, n_layers - 1)
    x0_mm = np.array([s.x0_mm for s in detector.stacks])[layer_of_start]
    lam_mm = detector.lambda_mm[layer_of_start]
    em_integral = w * x0_mm / B_EM**a
    d_had = D_HAD / detector.tune.hadron_length_scale
    c1_mean = em_integral / (em_integral + (1.0 - w) * lam_mm / d_had**a)

    f_mean = mean_em_fraction(e_gev)
    f_em = rng.beta(KAPPA * f_mean, KAPPA * (1.0 - f_mean))
    c1 = np.clip(c1_mean * f_em / f_mean, 0.0, 1.0)
    response = f_em + (1.0 - f_em) / detector.e_over_h

    def cdf_diff(scale: float, lo: np.ndarray, hi: np.ndarray, start: np.ndarray) -> np.ndarray:
        d_lo = np.clip(lo[None, :] - start[:, None], 0.0, None)
        d_hi = np.clip(hi[None, :] - start[:, None], 0.0, None)
        return gammainc(a[:, None], scale * d_hi) - gammainc(a[:, None], scale * d_lo)

    em_part = c1[:, None] * cdf_diff(B_EM, lo_x0, hi_x0, start_x0)
    had_part = (1.0 - c1[:, None]) * cdf_diff(d_had, lo_lam, hi_lam, start_lam)
    frac = em_part + had_part
    true = (e_shower * response)[:, None] * frac
    visible = sampling_smear(true, detector.c_s, rng) * detector.em_scale[None, :]

    spots = stochastic_round(n_spots(e_gev, detector.em_stack)[:, None] * frac, rng)
    spots = np.where(visible > 0, np.maximum(spots, 1), 0)
    p_em = np.divide(em_part, frac, out=np.zeros_like(frac), where=frac > 0)
    # the EM part spreads like an EM shower: its scale follows the calibrated EM core width
    r_em = np.broadcast_to(R_EM * detector.tune.core_scale * detector.moliere_mm, (n, n_layers))
    r_had = np.broadcast_to(R_HAD * detector.lambda_mm, (n, n_layers))
    shower = LayerDeposits(visible, spots, p_em, r_em, r_had)

    tiny = np.full((n, n_layers), TRACK_RADIUS_MM)
    mip = LayerDeposits(track, (track > 0).astype(np.int64), np.ones((n, n_layers)), tiny, tiny)
    return [shower, mip]
