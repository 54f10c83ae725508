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
from caloforge.refsim.materials import (
    IRON,
    LEAD,
    LIQUID_ARGON,
    PBWO4,
    SCINTILLATOR,
    SILICON,
    TUNGSTEN,
    Stack,
)


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
        description: one line for tables; ``approximate`` says what is not the real detector.
    """

    name: str
    geometry: Geometry | str
    sections: tuple[Section, ...]
    em_stack: Stack
    threshold_mev: float = 0.0
    e_over_h: float = 1.4
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
    def edges_mm(self) -> np.ndarray:
        """Layer boundaries along z, mm, shape (L + 1,), starting at 0."""
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
        return self._per_layer("sampling_fraction")

    @cached_property
    def mip_visible_per_mm(self) -> np.ndarray:
        """MIP energy per mm of path as it appears after dividing by the EM sampling fraction.

        ``dE/dx * f_mip / f_em``: a MIP looks larger than its true loss when e/mip < 1.
        """
        return np.array(
            [s.mip_mev_per_mm * s.mip_fraction / s.sampling_fraction for s in self.stacks]
        )

    @property
    def total_x0(self) -> float:
        return float(self.edges_x0[-1])

    @property
    def total_lambda(self) -> float:
        return float(self.edges_lambda[-1])

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
#: CaloChallenge datasets 2 and 3: 1.4 mm W + 0.3 mm Si, read out in pairs (3.4 mm, 0.81 X0).
_WSI_CC = Stack(SILICON, 0.3, TUNGSTEN, 1.4, sampling_fraction_override=0.033)
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
    "are not simulated; c_S is the Amaldi estimate"
)
_DS1_NOTE = (
    "ATLAS barrel at |eta|~0.2 reduced to slabs: presampler 11 mm LAr, accordion 4.3/16/2 X0 "
    "as LAr/Pb, Tile 1.5/4.1/1.8 lambda as Fe/scint; no dead material, no accordion geometry"
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
    had = (Section(_TILE, 1, 1.5 * lam),)
    if with_hadronic:
        had += (Section(_TILE, 1, 4.1 * lam), Section(_TILE, 1, 1.8 * lam))
    return em + had


_PRESETS: dict[str, Detector] = {
    d.name: d
    for d in (
        Detector(
            "ds1-photons", "ds1-photons", _ds1_sections(False), _LAR_PB,
            description="ATLAS-like LAr/Pb EM + Fe/scintillator Tile, dataset-1 photon binning",
            approximate=_DS1_NOTE,
        ),
        Detector(
            "ds1-pions", "ds1-pions", _ds1_sections(True), _LAR_PB,
            description="ATLAS-like LAr/Pb EM + Fe/scintillator Tile, dataset-1 pion binning",
            approximate=_DS1_NOTE,
        ),
        Detector(
            "ds2", "ds2", (Section(_WSI_CC, 45, 3.4),), _WSI_CC, threshold_mev=0.01515,
            description="CaloChallenge W/Si sampling calorimeter, 45 x 16 x 9 voxels",
            approximate=_CC_NOTE,
        ),
        Detector(
            "ds3", "ds3", (Section(_WSI_CC, 45, 3.4),), _WSI_CC, threshold_mev=0.01515,
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
