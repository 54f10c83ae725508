"""Materials and sampling stacks: the effective quantities the shower parametrizations use.

Units: lengths in mm, densities in g/cm^3, energies in MeV. Radiation and interaction lengths
are kept both as lengths (mm) and as mass thicknesses (g/cm^2); the critical energy is computed
from the mass thickness (Grindhammer & Peters, hep-ex/0001020), never from a length.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: scale energy of multiple scattering, MeV
E_S_MEV = 21.2


@dataclass(frozen=True)
class Material:
    """A pure material or compound.

    Attributes:
        name: label.
        z, a: (effective) atomic number and mass number (g/mol).
        density: g/cm^3.
        x0_mm: radiation length, mm.
        lambda_mm: nuclear interaction length, mm.
        dedx_mip: minimum-ionising stopping power, MeV cm^2/g.
    """

    name: str
    z: float
    a: float
    density: float
    x0_mm: float
    lambda_mm: float
    dedx_mip: float

    @property
    def x0_gcm2(self) -> float:
        """Radiation length as a mass thickness, g/cm^2."""
        return self.x0_mm / 10.0 * self.density

    @property
    def lambda_gcm2(self) -> float:
        return self.lambda_mm / 10.0 * self.density

    @property
    def critical_energy_mev(self) -> float:
        """E_c = 2.66 (X0[g/cm^2] Z/A)^1.1 MeV."""
        return 2.66 * (self.x0_gcm2 * self.z / self.a) ** 1.1

    @property
    def moliere_radius_mm(self) -> float:
        """R_M = X0 E_s / E_c, mm."""
        return self.x0_mm * E_S_MEV / self.critical_energy_mev

    @property
    def mip_mev_per_mm(self) -> float:
        """Mean energy a minimum-ionising particle loses per mm, MeV/mm."""
        return self.dedx_mip * self.density / 10.0


# Reference values: PDG tables and docs/refsim.md (X0, lambda_I as given there).
TUNGSTEN = Material("W", 74, 183.84, 19.30, 3.504, 103.0, 1.145)
LEAD = Material("Pb", 82, 207.2, 11.35, 5.613, 183.0, 1.122)
SILICON = Material("Si", 14, 28.0855, 2.329, 93.7, 457.0, 1.664)
IRON = Material("Fe", 26, 55.845, 7.874, 17.57, 168.0, 1.451)
LIQUID_ARGON = Material("LAr", 18, 39.948, 1.396, 140.0, 858.0, 1.519)
#: polystyrene scintillator; Z_eff 3.5 and A from its Z/A = 0.5377
SCINTILLATOR = Material("scintillator", 3.5, 3.5 / 0.5377, 1.060, 413.0, 775.0, 1.936)
#: lead tungstate; mass-weighted Z and A of PbWO4
PBWO4 = Material("PbWO4", 68.4, 170.8, 8.28, 8.925, 207.0, 1.255)
#: aluminium: stands for the cryostat and other dead material in front of a calorimeter
ALUMINIUM = Material("Al", 13, 26.98, 2.699, 88.97, 397.0, 1.615)

MATERIALS = {
    m.name: m for m in (TUNGSTEN, LEAD, SILICON, IRON, LIQUID_ARGON, SCINTILLATOR, PBWO4, ALUMINIUM)
}


@dataclass(frozen=True)
class Stack:
    """One sampling cell (passive absorber + active layer), or a homogeneous medium.

    A homogeneous medium has ``passive=None``; it is fully active (sampling fraction 1).

    Attributes:
        active, active_mm: the active material and its thickness per cell, mm.
        passive, passive_mm: the absorber and its thickness per cell, mm (``None``/0: homogeneous).
        e_over_mip_override: the electron-to-MIP response ratio e/mip, when known better than
            the estimate ``e_hat = 1 / (1 + 0.007 (Z_passive - Z_active))`` (the EM sampling
            fraction is ``f_mip * e/mip``; a *physical* quantity, not the files' normalisation).
        c_s_override: the stochastic term c_S (sigma/E = c_S / sqrt(E / GeV)) of the layer
            energies, when known better than the Amaldi estimate
            ``0.027 sqrt(d_active[mm] / f_mip)`` (0.03 for a homogeneous medium).
    """

    active: Material
    active_mm: float
    passive: Material | None = None
    passive_mm: float = 0.0
    e_over_mip_override: float | None = None
    c_s_override: float | None = None

    @property
    def is_homogeneous(self) -> bool:
        return self.passive is None or self.passive_mm <= 0

    def _absorber(self) -> Material:
        """The passive material of a sampling layer (callers check ``is_homogeneous`` first)."""
        if self.passive is None:
            raise ValueError("a homogeneous medium has no passive material")
        return self.passive

    @property
    def parts(self) -> tuple[tuple[Material, float], ...]:
        if self.is_homogeneous:
            return ((self.active, self.active_mm),)
        return ((self._absorber(), self.passive_mm), (self.active, self.active_mm))

    @property
    def cell_mm(self) -> float:
        """Thickness of one sampling cell, mm."""
        return sum(d for _, d in self.parts)

    @cached_property
    def _weights(self) -> np.ndarray:
        mass = np.array([m.density * d for m, d in self.parts])
        return mass / mass.sum()

    @property
    def density(self) -> float:
        return sum(m.density * d for m, d in self.parts) / self.cell_mm

    @property
    def z(self) -> float:
        return float(sum(w * m.z for w, (m, _) in zip(self._weights, self.parts, strict=True)))

    @property
    def a(self) -> float:
        return float(sum(w * m.a for w, (m, _) in zip(self._weights, self.parts, strict=True)))

    def _mass_mean_inverse(self, attr: str) -> float:
        return float(
            sum(w / getattr(m, attr) for w, (m, _) in zip(self._weights, self.parts, strict=True))
        )

    @property
    def x0_gcm2(self) -> float:
        return 1.0 / self._mass_mean_inverse("x0_gcm2")

    @property
    def x0_mm(self) -> float:
        """Effective radiation length, mm."""
        return self.x0_gcm2 / self.density * 10.0

    @property
    def lambda_mm(self) -> float:
        """Effective nuclear interaction length, mm."""
        return 1.0 / self._mass_mean_inverse("lambda_gcm2") / self.density * 10.0

    @property
    def _ec_over_x0(self) -> float:
        return float(
            sum(
                w * m.critical_energy_mev / m.x0_gcm2
                for w, (m, _) in zip(self._weights, self.parts, strict=True)
            )
        )

    @property
    def critical_energy_mev(self) -> float:
        """E_c,eff = X0_eff sum_i w_i E_c,i / X0_i (mass thicknesses)."""
        return self.x0_gcm2 * self._ec_over_x0

    @property
    def moliere_radius_mm(self) -> float:
        """1/R_M,eff = sum_i (w_i E_c,i / X0_i) / E_s, converted to mm."""
        return E_S_MEV / self._ec_over_x0 / self.density * 10.0

    @property
    def sampling_frequency(self) -> float:
        """F_S = X0_eff / (d_passive + d_active); infinite for a homogeneous medium."""
        return np.inf if self.is_homogeneous else self.x0_mm / self.cell_mm

    @property
    def e_hat(self) -> float:
        """e/mip estimate 1 / (1 + 0.007 (Z_passive - Z_active)); 1 for homogeneous media."""
        if self.is_homogeneous:
            return 1.0
        return 1.0 / (1.0 + 0.007 * (self._absorber().z - self.active.z))

    @property
    def mip_mev_per_mm(self) -> float:
        """Mean energy lost by a minimum-ionising particle per mm of stack (all materials)."""
        return sum(m.mip_mev_per_mm * d for m, d in self.parts) / self.cell_mm

    @property
    def mip_fraction(self) -> float:
        """Fraction of a MIP's energy loss that happens in the active material."""
        return self.active.mip_mev_per_mm * self.active_mm / (self.mip_mev_per_mm * self.cell_mm)

    @property
    def e_over_mip(self) -> float:
        """Electron-to-MIP response ratio (``e_hat`` unless given)."""
        if self.e_over_mip_override is not None:
            return self.e_over_mip_override
        return self.e_hat

    @property
    def sampling_fraction(self) -> float:
        """EM sampling fraction f_mip * e/mip: visible / deposited energy of an electron shower."""
        if self.is_homogeneous:
            return 1.0
        return self.mip_fraction * self.e_over_mip

    @property
    def c_s(self) -> float:
        """Stochastic term c_S of sigma/E = c_S / sqrt(E/GeV) (Amaldi estimate if not given)."""
        if self.c_s_override is not None:
            return self.c_s_override
        return self.c_s_amaldi

    @property
    def c_s_amaldi(self) -> float:
        """The Amaldi estimate 0.027 sqrt(d_active[mm] / f_mip) (0.03 homogeneous).

        It counts only the number of sampled track segments; it sets the GFlash spot number.
        """
        if self.is_homogeneous:
            return 0.03  # typical of crystals (photostatistics), e.g. CMS PbWO4 ~2.8 %
        return 0.027 * float(np.sqrt(self.active_mm / self.mip_fraction))

    def describe(self) -> str:
        if self.is_homogeneous:
            return f"{self.active.name} (homogeneous)"
        return f"{self.passive_mm:g} mm {self._absorber().name} + {self.active_mm:g} mm {self.active.name}"
