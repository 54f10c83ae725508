"""caloforge: fast calorimeter shower simulation with quantum-assisted and classical models.

Units everywhere: energies in MeV, lengths in mm, angles in radians.
"""

from __future__ import annotations

__version__ = "0.1.0"

from caloforge.errors import (  # noqa: E402
    CaloforgeError,
    CheckpointError,
    ConfigError,
    GeometryError,
    ShowerFileError,
)

__all__ = [
    "__version__",
    "CaloforgeError",
    "CheckpointError",
    "ConfigError",
    "GeometryError",
    "ShowerFileError",
]
