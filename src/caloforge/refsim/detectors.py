"""Detector presets: a material stack per readout layer, paired with a built-in geometry.

Each readout layer of the geometry is a slab of one :class:`~caloforge.refsim.materials.Stack`
with a thickness in mm; the layers follow each other along the beam axis (z) without gaps.
:class:`Detector` turns that into the per-layer arrays the shower models need (depth edges in
mm, X0 and lambda_I; Molière radius, sampling fraction and c_S of every layer).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from caloforge.errors import ConfigError
from caloforge.geometry import Geometry, get_geometry
from caloforge.refsim.deposit import SPOT_SHAPE
from caloforge.refsim.materials import (
    ALUMINIUM,
    IRON,
    LEAD,
    LIQUID_ARGON,
    PBWO4,
    SCINTILLATOR,
    SILICON,
    TUNGSTEN,
    Material,
    Stack,
)


@dataclass(frozen=True)
class ShowerTune:
    """Calibrated shower-model parameters beyond GFlash (docs/refsim.md, "Calibration").

    Attributes:
        track_x0: mean length (X0, exponential) over which an incident electron or positron
            ionises as a minimum-ionising track before its shower has built up.
        track_radius_mm: lateral scale of the primary track's deposits (delta rays, multiple
            scattering), mm.
        halo_fraction: share of a layer's EM energy carried by a wide halo (low-energy photons
            and their Compton electrons far from the axis) at the depth of maximum (tau = 1).
        halo_slope: growth of that share per unit of tau = t / T (clipped to [0, 0.9]).
        halo_spot_factor: the halo's energy is shared by this many times more spots than the
            core's (soft photons leave many small deposits).
        halo_radius_rm: radial scale of the halo at tau = 1 (Molière radii), profile
            2rR^2/(r^2+R^2)^2; it scales with ((1 + tau) / 2)^halo_growth.
        halo_growth: exponent of that growth with depth.
        profile_sigma_scale: factor on the GFlash widths sigma(ln T), sigma(ln alpha).
        constant_term: per-shower Gaussian relative spread of the response (the constant term
            c of sigma/E = c_S/sqrt(E) (+) c).
        spot_factor: factor on the GFlash number of spots.
        t_scale: factor on the GFlash depth of maximum T.
        early_fraction: share of an EM shower's energy in an early component (the first soft
            brems, conversions and back-scattered particles) with a depth profile
            (t / early_x0) e^(-t / early_x0) / early_x0 from where the shower starts, spread over
            ``early_radius_rm`` Molière radii (profile 2rR^2/(r^2+R^2)^2).
        early_x0: depth scale of the early component, X0.
        core_scale: factor on the GFlash core radius R_C.
        pion_start_lambda: mean depth of the first hadronic interaction, lambda_I.
        hadron_length_scale: factor on the lambda_I scale of the hadronic (late) term of the
            Bock profile (> 1: longer showers).
        soft_fraction: share of the main (gamma-profile) energy carried away from where it is
            produced by soft photons near their minimum attenuation (a few MeV) and deposited
            further down by their Compton and photo-electrons (refsim 3).
        soft_x0: attenuation length of those photons, X0 (exponential, forward only).
        soft_radius_rm: lateral scale of their deposits, Molière radii (profile
            2rR^2/(r^2+R^2)^2); it grows with depth like the halo (``halo_growth``).
        soft_spot_mev: file energy (MeV, after the normalisation) of one soft deposit: the
            soft component is shared by visible / soft_spot_mev spots, so its number of
            deposits follows its energy.
        spots_follow_signal: the number of core, halo and early spots of a layer is scaled by
            the layer's sampling fluctuation (visible / mean visible): the sampling
            fluctuation is a fluctuation of the number of charged tracks crossing the active
            layers (refsim 3).
        spot_shape: the spots of a layer share its energy by Gamma(``spot_shape``) weights
            (a spot's signal fluctuates like a MIP's in the sensors, relative spread
            1/sqrt(k) = 1/3); ``None``: equal shares, the comb of identical single-spot voxel
            energies of refsim 1-3 (refsim 4; :mod:`caloforge.refsim.deposit`).
    """

    track_x0: float = 0.0
    track_radius_mm: float = 1.0
    halo_fraction: float = 0.0
    halo_slope: float = 0.0
    halo_spot_factor: float = 1.0
    halo_growth: float = 0.0
    halo_radius_rm: float = 1.0
    profile_sigma_scale: float = 1.0
    constant_term: float = 0.0
    spot_factor: float = 1.0
    pion_start_lambda: float = 1.0
    hadron_length_scale: float = 1.0
    t_scale: float = 1.0
    early_fraction: float = 0.0
    early_x0: float = 1.0
    early_radius_rm: float = 1.0
    core_scale: float = 1.0
    soft_fraction: float = 0.0
    soft_x0: float = 3.7
    soft_radius_rm: float = 2.0
    soft_spot_mev: float = 3.0
    spots_follow_signal: bool = False
    spot_shape: float | None = SPOT_SHAPE


@dataclass(frozen=True)
class Section:
    """``n_layers`` consecutive readout layers of one stack, each ``thickness_mm`` deep."""

    stack: Stack
    n_layers: int
    thickness_mm: float


@dataclass(frozen=True)
class Detector:
    """A calorimeter: readout geometry plus the material of every readout layer.

    Attributes:
        name: preset name.
        geometry: the readout geometry (a :class:`Geometry` or a built-in name).
        sections: material sections front to back; their layer counts add up to the geometry's
            number of layers.
        em_stack: the stack whose Z, F_S and e-hat set the EM longitudinal profile.
        threshold_mev: readout threshold applied to voxel energies (after dividing by the
            sampling fraction), MeV.
        e_over_h: response to the EM part of a hadron shower over that to its hadronic part.
        normalisation: the number the files divide the visible energy by; ``None``: every
            layer's own EM sampling fraction (energies at the EM scale, electron response ~1).
            The CaloChallenge ds2/ds3 files use 0.033 for a stack whose physical EM sampling
            fraction is f_mip e/mip ~ 0.026, hence their response ~0.78.
        dead_mm: per readout layer, mm of ``dead_material`` in front of it (not read out;
            e.g. the inner detector, solenoid and cryostat in front of an ATLAS presampler).
        dead_material: the material of ``dead_mm``.
        tune: calibrated shower-model parameters (:class:`ShowerTune`).
        description: one line for tables; ``approximate`` says what is not the real detector.
    """

    name: str
    geometry: Geometry | str
    sections: tuple[Section, ...]
    em_stack: Stack
    threshold_mev: float = 0.0
    e_over_h: float = 1.4
    normalisation: float | None = None
    dead_mm: tuple[float, ...] = ()
    dead_material: Material = ALUMINIUM
    tune: ShowerTune = ShowerTune()
    description: str = ""
    approximate: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @cached_property
    def geo(self) -> Geometry:
        geo = get_geometry(self.geometry) if isinstance(self.geometry, str) else self.geometry
        if geo.n_layers != self.n_layers:
            raise ConfigError(
                f"detector {self.name!r} has {self.n_layers} material layers but geometry "
                f"{geo.name!r} has {geo.n_layers} readout layers"
            )
        return geo

    @property
    def n_layers(self) -> int:
        return sum(s.n_layers for s in self.sections)

    @cached_property
    def stacks(self) -> tuple[Stack, ...]:
        """The stack of every readout layer, front to back."""
        return tuple(s.stack for s in self.sections for _ in range(s.n_layers))

    def _per_layer(self, attr: str) -> np.ndarray:
        return np.array([getattr(s, attr) for s in self.stacks], dtype=float)

    @cached_property
    def thickness_mm(self) -> np.ndarray:
        """Depth of every readout layer, mm, shape (L,)."""
        return np.array([s.thickness_mm for s in self.sections for _ in range(s.n_layers)])

    @cached_property
    def _dead(self) -> np.ndarray:
        dead = np.zeros(self.n_layers)
        dead[: len(self.dead_mm)] = self.dead_mm[: self.n_layers]
        return dead

    def _bounds(self, per_layer: np.ndarray, dead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ends = np.cumsum(per_layer + dead)
        return ends - per_layer, ends

    @cached_property
    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) of every readout layer along z, mm, each (L,); dead material included."""
        return self._bounds(self.thickness_mm, self._dead)

    @cached_property
    def bounds_x0(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) of every readout layer in radiation lengths from the front, each (L,)."""
        dead = self._dead / self.dead_material.x0_mm
        return self._bounds(self.thickness_mm / self._per_layer("x0_mm"), dead)

    @cached_property
    def bounds_lambda(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) of every readout layer in interaction lengths, each (L,)."""
        dead = self._dead / self.dead_material.lambda_mm
        return self._bounds(self.thickness_mm / self._per_layer("lambda_mm"), dead)

    @cached_property
    def dead_mip_mev(self) -> np.ndarray:
        """MIP energy lost in the dead material in front of every layer, MeV, shape (L,)."""
        return self._dead * self.dead_material.mip_mev_per_mm

    @cached_property
    def edges_mm(self) -> np.ndarray:
        """Readout-layer boundaries along z, mm, shape (L + 1,), starting at 0 (no dead material)."""
        return np.concatenate([[0.0], np.cumsum(self.thickness_mm)])

    @cached_property
    def edges_x0(self) -> np.ndarray:
        """Layer boundaries in radiation lengths, shape (L + 1,)."""
        return np.concatenate([[0.0], np.cumsum(self.thickness_mm / self._per_layer("x0_mm"))])

    @cached_property
    def edges_lambda(self) -> np.ndarray:
        """Layer boundaries in nuclear interaction lengths, shape (L + 1,)."""
        lam = self._per_layer("lambda_mm")
        return np.concatenate([[0.0], np.cumsum(self.thickness_mm / lam)])

    @cached_property
    def moliere_mm(self) -> np.ndarray:
        return self._per_layer("moliere_radius_mm")

    @cached_property
    def lambda_mm(self) -> np.ndarray:
        return self._per_layer("lambda_mm")

    @cached_property
    def c_s(self) -> np.ndarray:
        """Stochastic term of every layer, shape (L,)."""
        return self._per_layer("c_s")

    @cached_property
    def sampling_fraction(self) -> np.ndarray:
        """Physical EM sampling fraction f_mip * e/mip of every layer, shape (L,)."""
        return self._per_layer("sampling_fraction")

    @cached_property
    def layer_normalisation(self) -> np.ndarray:
        """What the file divides every layer's visible energy by, shape (L,)."""
        if self.normalisation is None:
            return self.sampling_fraction
        return np.full(self.n_layers, float(self.normalisation))

    @cached_property
    def em_scale(self) -> np.ndarray:
        """File energy per MeV deposited by an EM shower: f_em / normalisation, shape (L,)."""
        return self.sampling_fraction / self.layer_normalisation

    @cached_property
    def mip_visible_per_mm(self) -> np.ndarray:
        """File energy per mm of MIP path: dE/dx * f_mip / normalisation, MeV/mm, shape (L,).

        A MIP looks larger than an EM shower of the same deposited energy when e/mip < 1.
        """
        f_mip = self._per_layer("mip_fraction")
        return self._per_layer("mip_mev_per_mm") * f_mip / self.layer_normalisation

    @property
    def total_x0(self) -> float:
        return float(self.bounds_x0[1][-1])

    @property
    def total_lambda(self) -> float:
        return float(self.bounds_lambda[1][-1])

    def with_geometry(self, geometry: Geometry) -> Detector:
        """The same material stack read out by another geometry (front layers kept).

        The geometry may have fewer layers than the detector; deeper material is removed.
        """
        if geometry.n_layers > self.n_layers:
            raise ConfigError(
                f"geometry {geometry.name!r} has {geometry.n_layers} layers, more than the "
                f"{self.n_layers} material layers of detector {self.name!r}"
            )
        sections, left = [], geometry.n_layers
        for s in self.sections:
            take = min(left, s.n_layers)
            if take:
                sections.append(replace(s, n_layers=take))
            left -= take
        return replace(self, geometry=geometry, sections=tuple(sections))


# --------------------------------------------------------------------------- presets
# Calibration against real Geant4 statistics (docs/refsim.md, "Calibration against Geant4";
# fitted with benchmarks/refsim_fit.py to the CaloChallenge statistics in refsim/geant4_stats).
#: e/mip of 1.4 mm W + 0.3 mm Si (README of the statistics: about 0.7; e_hat gives 0.70)
E_OVER_MIP_WSI = 0.748
#: layer-energy stochastic term of the CaloChallenge W/Si stack (thin Si: Landau and path-length
#: fluctuations on top of the Amaldi 0.078; CALICE with 0.525 mm Si measures 0.166)
C_S_WSI = 0.359
TUNE_EM = ShowerTune(
    # longitudinal (fitted to the response and logit-u statistics of dataset_2_1; t_scale,
    # early_fraction and e/mip refitted for refsim 3 together with the soft component)
    track_x0=1.05,
    t_scale=1.082,
    profile_sigma_scale=0.82,
    early_fraction=0.0737,
    early_x0=1.67,
    # per-shower constant term: CALICE Si-W, sigma/E = 16.6 %/sqrt(E) (+) 1.1 % (0811.2354)
    constant_term=0.011,
    # lateral (fitted to the per-voxel logit means of dataset_2_1; core_scale, spot_factor and
    # the halo refitted for refsim 3)
    track_radius_mm=3.7,
    early_radius_rm=1.01,
    core_scale=1.342,
    spot_factor=0.376,
    halo_fraction=0.0481,
    halo_slope=0.0606,
    halo_radius_rm=1.52,
    halo_growth=0.726,
    halo_spot_factor=9.2,
    # refsim 3: soft photons near their minimum attenuation carry 7 % of the main shower
    # forward (fitted with the external real-ds2 numbers: lit voxels, empty layers, ring
    # profile; benchmarks/refsim_fit.py ds2-v3); spot numbers follow the sampled signal
    soft_fraction=0.0697,
    soft_x0=8.68,
    soft_radius_rm=1.49,
    soft_spot_mev=14.9,
    spots_follow_signal=True,
)
#: CaloChallenge datasets 2 and 3: 1.4 mm W + 0.3 mm Si, read out in pairs (3.4 mm, 0.81 X0).
_WSI_CC = Stack(
    SILICON, 0.3, TUNGSTEN, 1.4, e_over_mip_override=E_OVER_MIP_WSI, c_s_override=C_S_WSI
)
#: the CaloChallenge ds2/ds3 files divide every energy by this (dataset-creation notebook)
CC_NORMALISATION = 0.033
#: ATLAS-like LAr/Pb accordion (barrel, |eta| < 0.8): 1.5 mm Pb, 2 x 2.1 mm LAr gaps.
_LAR_PB = Stack(LIQUID_ARGON, 4.2, LEAD, 1.5)
#: the presampler: a thin layer of liquid argon only.
_LAR = Stack(LIQUID_ARGON, 11.0)
#: ATLAS-like Tile calorimeter: iron and scintillator in 14 : 3 by thickness.
_TILE = Stack(SCINTILLATOR, 3.0, IRON, 14.0)
#: CaloGAN: 2 mm Pb, 4 mm LAr.
_CALOGAN = Stack(LIQUID_ARGON, 4.0, LEAD, 2.0)
#: ILD SiW ECAL: 20 layers of 2.1 mm W and 10 of 4.2 mm W, each with 0.5 mm Si.
_ILD_THIN = Stack(SILICON, 0.5, TUNGSTEN, 2.1)
_ILD_THICK = Stack(SILICON, 0.5, TUNGSTEN, 4.2)
#: ILD/CALICE AHCAL: 20 mm steel, 3 mm scintillator tiles.
_AHCAL = Stack(SCINTILLATOR, 3.0, IRON, 20.0)
_PBWO4 = Stack(PBWO4, 9.2)

_CC_NOTE = (
    "readout pairs of 1.4 mm W + 0.3 mm Si; the inner radius (80 cm) and the shower axis frame "
    "are not simulated; e/mip, c_S and the shower shape are fitted to Geant4 statistics"
)
_DS1_NOTE = (
    "ATLAS barrel at |eta|~0.2 reduced to slabs: 1.6 X0 of Al-equivalent dead material, "
    "presampler 11 mm LAr, accordion 4.3/16/2 X0 as LAr/Pb, Tile 1.5/4.1/1.8 lambda as "
    "Fe/scint; no accordion geometry, no cracks"
)


def _ds1_sections(with_hadronic: bool) -> tuple[Section, ...]:
    x0 = _LAR_PB.x0_mm
    lam = _TILE.lambda_mm
    em = (
        Section(_LAR, 1, 11.0),
        Section(_LAR_PB, 1, 4.3 * x0),
        Section(_LAR_PB, 1, 16.0 * x0),
        Section(_LAR_PB, 1, 2.0 * x0),
    )
    had: tuple[Section, ...] = (Section(_TILE, 1, 1.5 * lam),)
    if with_hadronic:
        had += (Section(_TILE, 1, 4.1 * lam), Section(_TILE, 1, 1.8 * lam))
    return em + had


#: ATLAS barrel at |eta| ~ 0.2: dead material in front of the presampler (inner detector,
#: solenoid, cryostat wall) and between presampler and strips, in aluminium-equivalent mm;
#: fitted to the ds1-photons layer split (ATLAS quotes ~2 X0 in front of the accordion near
#: eta = 0, of which this effective slab model needs 1.0 + 0.56 X0)
DS1_DEAD_MM = (1.024 * ALUMINIUM.x0_mm, 0.564 * ALUMINIUM.x0_mm)
#: ds1: shower maximum earlier than the GFlash sampling formula (t_scale, fitted to the photon
#: split); pions interact earlier than one lambda_I of the slab model (effective start 0.52
#: lambda_I: the accordion's folds and the dead material are denser in lambda than the slabs)
#: and develop longer (hadron_length_scale), fitted to the pion layer split and response
#: ds1 keeps refsim 2's EM shape parameters and has no soft component: no real ds1 number
#: beyond the shared statistics was found to fit it to (its back layers are already too full)
TUNE_DS1 = replace(
    TUNE_EM,
    t_scale=0.95,
    pion_start_lambda=0.524,
    hadron_length_scale=1.57,
    early_fraction=0.084,
    core_scale=1.75,
    spot_factor=0.363,
    halo_fraction=0.0464,
    halo_radius_rm=1.80,
    soft_fraction=0.0,
)
#: e/h of the ds1 calorimeters at the EM scale (fitted to the pion response 0.731; ATLAS LAr and
#: Tile quote e/h ~ 1.3-1.4 with invisible-energy losses included)
E_OVER_H_DS1 = 1.36

_PRESETS: dict[str, Detector] = {
    d.name: d
    for d in (
        Detector(
            "ds1-photons", "ds1-photons", _ds1_sections(False), _LAR_PB,
            dead_mm=DS1_DEAD_MM, tune=TUNE_DS1, e_over_h=E_OVER_H_DS1,
            description="ATLAS-like LAr/Pb EM + Fe/scintillator Tile, dataset-1 photon binning",
            approximate=_DS1_NOTE,
        ),
        Detector(
            "ds1-pions", "ds1-pions", _ds1_sections(True), _LAR_PB,
            dead_mm=DS1_DEAD_MM, tune=TUNE_DS1, e_over_h=E_OVER_H_DS1,
            description="ATLAS-like LAr/Pb EM + Fe/scintillator Tile, dataset-1 pion binning",
            approximate=_DS1_NOTE,
        ),
        Detector(
            "ds2", "ds2", (Section(_WSI_CC, 45, 3.4),), _WSI_CC, threshold_mev=0.01515,
            normalisation=CC_NORMALISATION, tune=TUNE_EM,
            description="CaloChallenge W/Si sampling calorimeter, 45 x 16 x 9 voxels",
            approximate=_CC_NOTE,
        ),
        Detector(
            "ds3", "ds3", (Section(_WSI_CC, 45, 3.4),), _WSI_CC, threshold_mev=0.01515,
            normalisation=CC_NORMALISATION, tune=TUNE_EM,
            description="CaloChallenge W/Si sampling calorimeter, 45 x 50 x 18 voxels",
            approximate=_CC_NOTE,
        ),
        Detector(
            "calogan", "calogan",
            (Section(_CALOGAN, 1, 90.0), Section(_CALOGAN, 1, 347.0), Section(_CALOGAN, 1, 43.0)),
            _CALOGAN,
            description="CaloGAN three-layer LAr/Pb calorimeter (90, 347, 43 mm)",
            approximate="2 mm Pb / 4 mm LAr slabs; no upstream material",
        ),
        Detector(
            "ild-ecal", "grid:30x30x30:5",
            (Section(_ILD_THIN, 20, 2.6), Section(_ILD_THICK, 10, 4.7)), _ILD_THIN,
            description="ILD-like SiW ECAL, 30 layers, 5 mm cells",
            approximate="no PCB/air gaps; 0.5 mm Si per layer",
        ),
        Detector(
            "ild-ahcal", "grid:48x25x25:30", (Section(_AHCAL, 48, 23.0),), _AHCAL,
            e_over_h=1.2,
            description="ILD/CALICE-like Fe/scintillator AHCAL, 48 layers, 30 mm tiles",
            approximate="no cassette/PCB material",
        ),
        Detector(
            "pbwo4", "grid:25x25x25:22", (Section(_PBWO4, 25, 9.2),), _PBWO4,
            description="homogeneous PbWO4 crystals, 22 mm cells, 25 x 9.2 mm = 230 mm deep",
            approximate="crystals cut into 25 depth slices for readout; c_S = 3 % assumed",
        ),
    )
}  # fmt: skip


def detector_names() -> list[str]:
    """Names of the detector presets."""
    return list(_PRESETS)


def get_detector(name: str | Detector) -> Detector:
    """The preset called ``name`` (a :class:`Detector` is returned unchanged)."""
    if isinstance(name, Detector):
        return name
    try:
        return _PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown detector {name!r}; presets are {', '.join(_PRESETS)}") from None
