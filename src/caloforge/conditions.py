"""What a shower is conditioned on, as one checked value.

:class:`Conditions` holds, per shower, the incident energy (MeV) and optionally the polar and
azimuthal angles of incidence (radians) and the entry position (mm). A model declares which of
them it supports (``Generator.supported_conditions``) and refuses the others with one sentence::

    c = Conditions(energy=np.array([1e3, 5e4]), theta=np.array([0.1, 0.2]))
    model.sample(c, seed=0)   # ConfigError unless the model supports "theta"

Plain arrays of incident energies are accepted wherever a :class:`Conditions` is, through
:meth:`Conditions.of`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from caloforge.errors import ConfigError

#: every condition name, in a fixed order
NAMES = ("energy", "theta", "phi", "entry")


def _array(value: Any, name: str, unit: str, n_columns: int | None = None) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"condition {name!r} must hold numbers ({unit})") from None
    a = a.reshape(-1) if n_columns is None else a.reshape(-1, n_columns) if a.size else a
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"condition {name!r} must hold finite values ({unit})")
    return a


@dataclass(frozen=True, eq=False)
class Conditions:
    """Per-shower conditions; every array has the same length N.

    Attributes:
        energy: (N,) incident energies in MeV, finite and > 0.
        theta: (N,) polar angle of incidence in radians, in [0, pi], or None.
        phi: (N,) azimuthal angle in radians, finite, or None.
        entry: (N, 3) entry position (x, y, z) in mm, or None.
    """

    energy: np.ndarray
    theta: np.ndarray | None = None
    phi: np.ndarray | None = None
    entry: np.ndarray | None = None

    def __post_init__(self) -> None:
        try:
            energy = np.asarray(self.energy, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ConfigError("incident energies must be numbers (MeV)") from None
        if energy.size == 0:
            raise ConfigError("no incident energies given; expected an array (N,) in MeV")
        if not np.all(np.isfinite(energy)) or np.any(energy <= 0):
            raise ConfigError(
                f"incident energies must be finite and > 0 MeV, got values from "
                f"{np.nanmin(energy):g} to {np.nanmax(energy):g}"
            )
        object.__setattr__(self, "energy", energy)
        n = len(energy)
        for name, unit, cols in (("theta", "rad", None), ("phi", "rad", None), ("entry", "mm", 3)):
            value = getattr(self, name)
            if value is None:
                continue
            a = _array(value, name, unit, cols)
            if len(a) != n:
                raise ConfigError(
                    f"condition {name!r} has {len(a)} values but there are {n} incident energies"
                )
            if name == "theta" and (np.any(a < 0) or np.any(a > math.pi)):
                raise ConfigError("condition 'theta' (polar angle) must lie in [0, pi] radians")
            object.__setattr__(self, name, a)

    @classmethod
    def of(cls, value: Conditions | Any) -> Conditions:
        """``value`` itself, or incident energies (N,) in MeV wrapped as conditions."""
        return value if isinstance(value, Conditions) else cls(energy=value)

    @classmethod
    def uniform(
        cls,
        energy: Any,
        *,
        theta: float | None = None,
        phi: float | None = None,
        entry: tuple[float, float, float] | None = None,
    ) -> Conditions:
        """Incident energies (N,) MeV with one angle (rad) and entry point (x, y, z) mm for all."""
        e = np.asarray(energy, dtype=np.float64).reshape(-1)
        n = len(e)
        return cls(
            energy=e,
            theta=None if theta is None else np.full(n, theta, dtype=np.float64),
            phi=None if phi is None else np.full(n, phi, dtype=np.float64),
            entry=None if entry is None else np.tile(np.asarray(entry, dtype=np.float64), (n, 1)),
        )

    @classmethod
    def from_attrs(cls, energy: Any, attrs: dict[str, Any]) -> Conditions:
        """The conditions a shower file records: its incident energies (N,) MeV and the file
        attributes ``theta``, ``phi`` (rad), ``offset_x_mm``, ``offset_y_mm`` that
        ``caloforge simulate`` writes (an entry point on the front face, z = 0); attributes a
        file lacks are conditions it does not give."""
        theta = attrs.get("theta")
        phi = attrs.get("phi")
        x, y = attrs.get("offset_x_mm"), attrs.get("offset_y_mm")
        entry = None if x is None and y is None else (float(x or 0.0), float(y or 0.0), 0.0)
        return cls.uniform(
            energy,
            theta=None if theta is None else float(theta),
            phi=None if phi is None else float(phi),
            entry=entry,
        )

    @property
    def names(self) -> frozenset[str]:
        """The conditions given (always ``energy``)."""
        return frozenset(n for n in NAMES if getattr(self, n) is not None)

    @property
    def effective(self) -> frozenset[str]:
        """The conditions that differ from a shower entering head-on at the centre.

        A model conditioned on energy alone produces showers at normal incidence through the
        origin, so ``theta`` = 0 and an entry point at (0, 0, 0) ask nothing more of it; ``phi``
        matters only for showers that are not head-on (some ``theta`` > 0).
        """
        out = {"energy"}
        tilted = self.theta is not None and bool(np.any(self.theta != 0))
        if tilted:
            out.add("theta")
            if self.phi is not None:
                out.add("phi")
        if self.entry is not None and bool(np.any(self.entry != 0)):
            out.add("entry")
        return frozenset(out)

    def __len__(self) -> int:
        return len(self.energy)

    def __getitem__(self, index: slice) -> Conditions:
        """The conditions of the showers ``index`` selects (a slice)."""
        theta, phi, entry = self.theta, self.phi, self.entry
        return Conditions(
            energy=self.energy[index],
            theta=None if theta is None else theta[index],
            phi=None if phi is None else phi[index],
            entry=None if entry is None else entry[index],
        )
