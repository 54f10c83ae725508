"""Electromagnetic showers (e+-, gamma): the Grindhammer-Peters (GFlash) parametrization.

Per shower: a correlated draw of (ln T, ln alpha) of the gamma longitudinal profile
dE/dt = E f(t), f(t) = (beta t)^(alpha-1) beta e^(-beta t) / Gamma(alpha), T = (alpha-1)/beta,
t in X0 along the shower axis. The energy of every readout layer is the profile integrated over
the layer, then smeared by the sampling fluctuations (a Gamma draw with mean Delta E and
variance c_S^2 Delta E, GeV). The layer energy is shared by spots whose number follows the
parametrized N_spots and the spot longitudinal profile; spots spread laterally with the
core/tail radial profile, which depends on the depth tau = t/T, the energy and the material.
Photons first convert after an exponential depth of mean 9/7 X0. Energy beyond the last layer
is longitudinal leakage. Since refsim 3 a soft-photon component (on in the ds2/ds3 presets)
carries a share of the profile forward by exponentially attenuated soft photons, deposited in
many small, wide spots. Formulas and constants: docs/refsim.md.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammainc

from caloforge.refsim.deposit import Incidence, LayerDeposits
from caloforge.refsim.detectors import Detector
from caloforge.refsim.materials import Stack

#: mean photon conversion depth, X0
CONVERSION_DEPTH_X0 = 9.0 / 7.0
#: radius given to the single spot of a hadron's MIP track, mm (it sits on the axis)
TRACK_RADIUS_MM = 1e-3
#: spots per layer of an electron's primary track (delta rays, multiple scattering)
TRACK_SPOTS = 2
#: Landau-like (Moyal) width of the track energy per layer, relative to its mean: thin
#: silicon (2 x 0.3 mm per ds2 layer) has FWHM / MPV ~ 0.3 per sensor
TRACK_LANDAU_XI = 0.15
_MOYAL_MEAN = float(np.euler_gamma + np.log(2.0))


def _ln_y(energy_gev: np.ndarray, stack: Stack) -> np.ndarray:
    return np.log(np.asarray(energy_gev) * 1000.0 / stack.critical_energy_mev)


def mean_log_params(energy_gev: np.ndarray, stack: Stack) -> tuple[np.ndarray, ...]:
    """<ln T>, <ln alpha>, sigma(ln T), sigma(ln alpha), rho for each energy (GeV), each (N,).

    Homogeneous formulas, plus the sampling corrections (F_S, e-hat) for sampling stacks;
    clamps T >= 1, alpha >= 1.1, 0 < sigma <= 0.5 keep low energies (small ln y) sensible.
    """
    lny = _ln_y(energy_gev, stack)
    z = stack.z
    t_hom = np.maximum(lny - 0.812, 1.0)
    a_hom = np.maximum(0.81 + (0.458 + 2.26 / z) * lny, 1.1)
    if stack.is_homogeneous:
        t_mean, a_mean = t_hom, a_hom
        s_t, s_a = -1.4 + 1.26 * lny, -0.58 + 0.86 * lny
        rho = 0.705 - 0.023 * lny
    else:
        f_s, e_hat = stack.sampling_frequency, stack.e_hat
        t_mean = np.maximum(t_hom - 0.55 / f_s - 0.69 * (1.0 - e_hat), 1.0)
        a_mean = np.maximum(a_hom - 0.476 / f_s, 1.1)
        s_t, s_a = -2.5 + 1.25 * lny, -0.82 + 0.79 * lny
        rho = 0.784 - 0.023 * lny
    sigma_t = np.where(s_t > 2.0, 1.0 / np.maximum(s_t, 2.0), 0.5)
    sigma_a = np.where(s_a > 2.0, 1.0 / np.maximum(s_a, 2.0), 0.5)
    return np.log(t_mean), np.log(a_mean), sigma_t, sigma_a, np.clip(rho, -1.0, 1.0)


def average_profile(energy_gev: np.ndarray, stack: Stack) -> tuple[np.ndarray, np.ndarray]:
    """(T, alpha) of the average longitudinal profile (not of the average shower's draw)."""
    lny = _ln_y(energy_gev, stack)
    z = stack.z
    t = lny - 0.858
    alpha = 0.21 + (0.492 + 2.38 / z) * lny
    if not stack.is_homogeneous:
        t = t - 0.59 / stack.sampling_frequency - 0.53 * (1.0 - stack.e_hat)
        alpha = alpha - 0.444 / stack.sampling_frequency
    return np.maximum(t, 1.0), np.maximum(alpha, 1.1)


def sample_profiles(
    energy_gev: np.ndarray, stack: Stack, rng: np.random.Generator, sigma_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the per-shower (T in X0, alpha), each shape (N,), with their correlation.

    ``sigma_scale`` multiplies the GFlash widths sigma(ln T) and sigma(ln alpha).
    """
    mu_t, mu_a, s_t, s_a, rho = mean_log_params(energy_gev, stack)
    s_t, s_a = s_t * sigma_scale, s_a * sigma_scale
    z1, z2 = rng.standard_normal((2, len(mu_t)))
    plus, minus = np.sqrt((1.0 + rho) / 2.0), np.sqrt((1.0 - rho) / 2.0)
    ln_t = mu_t + s_t * (plus * z1 + minus * z2)
    ln_a = mu_a + s_a * (plus * z1 - minus * z2)
    return np.maximum(np.exp(ln_t), 1.0), np.maximum(np.exp(ln_a), 1.1)


def radial_params(
    tau: np.ndarray, energy_gev: np.ndarray, stack: Stack
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core radius R_C, tail radius R_T (Molière radii) and core weight p at depth tau = t/T.

    ``energy_gev`` broadcasts against ``tau``.
    """
    ln_e = np.log(energy_gev)
    z = stack.z
    r_core = (0.0251 + 0.00319 * ln_e) + (0.1162 - 0.000381 * z) * tau
    k1, k2, k3, k4 = 0.659 - 0.00309 * z, 0.645, -2.59, 0.3585 + 0.0421 * ln_e
    r_tail = k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2)))
    p1, p2, p3 = 2.632 - 0.00094 * z, 0.401 + 0.00187 * z, 1.313 - 0.0686 * ln_e
    x = (p2 - tau) / p3
    p = p1 * np.exp(x - np.exp(x))
    if not stack.is_homogeneous:
        f_s, miss = stack.sampling_frequency, 1.0 - stack.e_hat
        r_core = r_core - 0.0203 * miss + 0.0397 * np.exp(-tau) / f_s
        r_tail = r_tail - 0.14 * miss - 0.495 * np.exp(-tau) / f_s
        p = p + miss * (0.348 - 0.642 * np.exp(-((tau - 1.0) ** 2)) / f_s)
    r_core = np.maximum(r_core, 0.005)
    r_tail = np.maximum(r_tail, r_core)
    return r_core, r_tail, np.clip(p, 0.0, 1.0)


def n_spots(energy_gev: np.ndarray, stack: Stack) -> np.ndarray:
    """Parametrized number of spots per shower (float), shape (N,)."""
    if stack.is_homogeneous:
        return 93.0 * np.log(stack.z) * energy_gev**0.876
    return 10.3 / stack.c_s_amaldi * energy_gev**0.959


def spot_profile(t: np.ndarray, alpha: np.ndarray, stack: Stack) -> tuple[np.ndarray, np.ndarray]:
    """(T_s, alpha_s) of the spot longitudinal profile."""
    z = stack.z
    if stack.is_homogeneous:
        return t * (0.698 + 0.00212 * z), np.maximum(alpha * (0.639 + 0.00334 * z), 1.1)
    return t * (0.813 + 0.0019 * z), np.maximum(alpha * (0.844 + 0.0026 * z), 1.1)


def gamma_layer_fractions(alpha: np.ndarray, t_max: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Fraction of a gamma profile (alpha, T) in each layer; ``edges`` (N, L + 1) from start."""
    beta = (alpha - 1.0) / t_max
    cdf = gammainc(alpha[:, None], beta[:, None] * edges)
    return np.diff(cdf, axis=1)


def sampling_smear(true_mev: np.ndarray, c_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Visible energy (divided by the sampling fraction) of slices of true energy ``true_mev``.

    A Gamma draw with mean Delta E and variance c_S^2 Delta E, energies in GeV:
    shape Delta E / c_S^2, scale c_S^2. ``c_s`` broadcasts against ``true_mev`` (N, L).
    """
    c2 = np.broadcast_to(c_s, true_mev.shape) ** 2
    shape = np.clip(true_mev, 0.0, None) / 1000.0 / c2
    return rng.gamma(shape, c2) * 1000.0


def stochastic_round(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Round to an integer up or down with the probabilities that keep the mean."""
    return np.floor(x + rng.random(x.shape)).astype(np.int64)


def layer_fractions(
    alpha: np.ndarray, t_max: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Fraction of a gamma profile (alpha, T) in layers [lo, hi) (depths from start, (N, L))."""
    beta = ((alpha - 1.0) / t_max)[:, None]
    return gammainc(alpha[:, None], beta * hi) - gammainc(alpha[:, None], beta * lo)


def soft_transport(lo: np.ndarray, hi: np.ndarray, length_x0: float) -> np.ndarray:
    """Share of what is emitted in layer i (at its centre) absorbed in layer j: (L, L).

    Forward exponential attenuation with mean free path ``length_x0`` (X0); ``lo``, ``hi`` are
    the layer bounds in X0 along the axis, shape (L,). Gaps between layers (dead material)
    absorb without being read out, and what passes the last layer leaks out, so rows sum to
    less than 1.
    """
    mid = 0.5 * (lo + hi)
    a = np.clip(lo[None, :] - mid[:, None], 0.0, None) / length_x0
    b = np.clip(hi[None, :] - mid[:, None], 0.0, None) / length_x0
    return np.exp(-a) - np.exp(-b)


def primary_track(
    detector: Detector, length_x0: np.ndarray, cos_theta: float
) -> tuple[np.ndarray, np.ndarray]:
    """(visible, true) MeV, each (N, L), of a MIP track from the face to ``length_x0``.

    ``length_x0`` is measured along the axis; the track loses dE/dx (the whole stack) and
    shows dE/dx f_mip / normalisation in the file.
    """
    lo, hi = (b / cos_theta for b in detector.bounds_x0)
    overlap = np.clip(np.minimum(hi[None, :], length_x0[:, None]) - lo[None, :], 0.0, None)
    x0_mm = np.array([s.x0_mm for s in detector.stacks])
    path_mm = overlap * x0_mm[None, :]
    true = path_mm * np.array([s.mip_mev_per_mm for s in detector.stacks])[None, :]
    return path_mm * detector.mip_visible_per_mm[None, :], true


def em_deposits(
    detector: Detector,
    energy_mev: np.ndarray,
    particle: str,
    incidence: Incidence,
    rng: np.random.Generator,
) -> list[LayerDeposits]:
    """Layer deposits of N EM showers (electron/positron/photon).

    Returns [core, halo, early component, primary track], each with arrays (N, L), plus the
    soft-photon component when the detector's tune has ``soft_fraction > 0``.
    """
    stack, tune = detector.em_stack, detector.tune
    e_mev = np.asarray(energy_mev, dtype=float)
    e_gev = e_mev / 1000.0
    n, n_layers = len(e_gev), detector.n_layers
    cos_t = incidence.cos_theta
    t_max, alpha = sample_profiles(e_gev, stack, rng, sigma_scale=tune.profile_sigma_scale)
    t_max = np.maximum(t_max * tune.t_scale, 1.0)
    if particle == "photon":
        start = rng.exponential(CONVERSION_DEPTH_X0, n)  # X0 along the axis
        track_vis = np.zeros((n, n_layers))
        track_true = track_vis
    else:
        start = np.zeros(n)
        length = rng.exponential(tune.track_x0, n) if tune.track_x0 > 0 else np.zeros(n)
        track_vis, track_true = primary_track(detector, length, cos_t)
        # Moyal variate -ln(Z^2), Z ~ N(0, 1): mean gamma + ln 2, a Landau-like right tail
        moyal = -np.log(rng.standard_normal(track_vis.shape) ** 2 + 1e-300)
        track_vis = track_vis * np.clip(1.0 + TRACK_LANDAU_XI * (moyal - _MOYAL_MEAN), 0.0, None)
    lo, hi = (b / cos_t for b in detector.bounds_x0)
    d_lo = np.clip(lo[None, :] - start[:, None], 0.0, None)  # (N, L)
    d_hi = np.clip(hi[None, :] - start[:, None], 0.0, None)
    e_shower = np.clip(e_mev - track_true.sum(axis=1), 0.0, None)[:, None]
    main = (1.0 - tune.early_fraction) * layer_fractions(alpha, t_max, d_lo, d_hi)
    # early component: gamma profile of shape 2 and scale early_x0 (a conversion depth and an
    # absorption length in series); CDF 1 - e^(-x) (1 + x), x = t / early_x0
    x_lo, x_hi = d_lo / tune.early_x0, d_hi / tune.early_x0
    early = tune.early_fraction * (np.exp(-x_lo) * (1 + x_lo) - np.exp(-x_hi) * (1 + x_hi))
    # soft component: a share of the main part is carried forward by soft photons and
    # deposited after an exponential attenuation length (forward transport between layers)
    soft = np.zeros_like(main)
    if tune.soft_fraction > 0:
        soft = tune.soft_fraction * (main @ soft_transport(lo, hi, tune.soft_x0))
        main = (1.0 - tune.soft_fraction) * main
    true = e_shower * (main + early + soft)
    scale = detector.em_scale[None, :]
    if tune.constant_term > 0:
        scale = scale * np.clip(1.0 + tune.constant_term * rng.standard_normal((n, 1)), 0.0, None)
    smeared = sampling_smear(true, detector.c_s, rng)
    visible = smeared * scale
    soft_share = np.divide(soft, main + early + soft, out=np.zeros_like(main),
                           where=(main + early + soft) > 0)  # fmt: skip
    soft_e = visible * soft_share
    visible = visible - soft_e

    # spots: the main part follows the GFlash spot profile, the early part its own profile;
    # spots carry equal energies within a layer
    ts, a_s = spot_profile(t_max, alpha, stack)
    spot_main = (1.0 - tune.early_fraction) * layer_fractions(a_s, ts, d_lo, d_hi)
    per_shower = tune.spot_factor * n_spots(e_gev, stack)[:, None]
    mean_spots = per_shower * (spot_main + early)
    if tune.spots_follow_signal:
        # the sampling fluctuation is one of the number of tracks crossing the active layers
        mean_spots = mean_spots * np.divide(smeared, true, out=np.ones_like(true), where=true > 0)
    spots = stochastic_round(mean_spots, rng)
    spots = np.where(visible > 0, np.maximum(spots, 1), 0)
    early_share = np.divide(early, main + early, out=np.zeros_like(main), where=(main + early) > 0)
    early_k = rng.binomial(spots, np.clip(early_share, 0.0, 1.0))
    spots = spots - early_k
    early_e = visible * np.divide(early_k, spots + early_k, out=np.zeros(spots.shape),
                                  where=(spots + early_k) > 0)  # fmt: skip
    visible = visible - early_e
    tau = 0.5 * (d_lo + d_hi) / t_max[:, None]
    r_core, r_tail, p = radial_params(tau, e_gev[:, None], stack)
    r_core = r_core * tune.core_scale
    r_tail = np.maximum(r_tail, r_core)
    # the halo takes a binomial share of the main part's spots, growing with depth (the late
    # shower is dominated by soft photons); spots keep equal energies within a layer
    halo = np.clip(tune.halo_fraction + tune.halo_slope * (tau - 1.0), 0.0, 0.9)
    wide_k = rng.binomial(spots, halo)
    share = np.divide(wide_k, spots, out=np.zeros(spots.shape), where=spots > 0)
    # soft halo deposits are many and small: the halo's energy is shared by more spots
    halo_k = stochastic_round(tune.halo_spot_factor * wide_k, rng)
    halo_k = np.where(wide_k > 0, np.maximum(halo_k, 1), 0)
    rm = detector.moliere_mm[None, :]
    halo_r = tune.halo_radius_rm * rm * ((1.0 + tau) / 2.0) ** tune.halo_growth
    ones = np.ones((n, n_layers))
    early_r = np.broadcast_to(tune.early_radius_rm * rm, (n, n_layers))
    track_r = np.full((n, n_layers), max(tune.track_radius_mm, TRACK_RADIUS_MM))
    out = [
        LayerDeposits(visible * (1.0 - share), spots - wide_k, p, r_core * rm, r_tail * rm),
        LayerDeposits(visible * share, halo_k, ones, halo_r, halo_r),
        LayerDeposits(early_e, early_k, ones, early_r, early_r),
        LayerDeposits(track_vis, TRACK_SPOTS * (track_vis > 0), ones, track_r, track_r),
    ]
    if tune.soft_fraction > 0:
        # many small deposits: their number follows the soft energy (soft_spot_mev each)
        soft_k = stochastic_round(soft_e / tune.soft_spot_mev, rng)
        soft_k = np.where(soft_e > 0, np.maximum(soft_k, 1), 0)
        growth = ((1.0 + np.maximum(tau, 0.0)) / 2.0) ** tune.halo_growth
        soft_r = tune.soft_radius_rm * rm * growth
        out.append(LayerDeposits(soft_e, soft_k, ones, soft_r, soft_r))
    return out
