"""Exceptions caloforge raises for bad input.

Every error a user can cause derives from :class:`CaloforgeError`; its message is one sentence
that names what was wrong (the file, the key, the value) and what was expected. The CLI prints
that sentence and exits with status 2 instead of a traceback.
"""

from __future__ import annotations


class CaloforgeError(Exception):
    """Base class for errors caused by bad input (files, names, shapes, values)."""


class GeometryError(CaloforgeError, ValueError):
    """An unknown geometry name, a malformed binning XML, or a shape that does not fit."""


class ShowerFileError(CaloforgeError, ValueError):
    """A shower file that cannot be read or does not hold valid showers."""


class ConfigError(CaloforgeError, ValueError):
    """An invalid option, configuration value or name."""


class CheckpointError(CaloforgeError, ValueError):
    """A missing, corrupt or mismatched model checkpoint or exported artifact."""
