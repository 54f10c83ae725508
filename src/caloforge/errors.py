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


class OutputError(CaloforgeError, ValueError):
    """An output path that cannot be written: a missing or read-only parent, a directory where a
    file is expected, one of the run's own inputs, or a path another caloforge run is writing."""


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """Raised in the main thread by :mod:`caloforge.signals` on SIGINT or SIGTERM.

    A BaseException, so no ``except Exception`` swallows it, and not a KeyboardInterrupt, which
    click/typer turn into a silent exit status; ``signum`` is the signal number
    and ``exit_code`` the conventional status (128 + signum: 130 for Ctrl-C, 143 for SIGTERM).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class MissingExtraError(CaloforgeError, ImportError):
    """An optional dependency that is not installed; the message names the extra to install
    (``pip install 'caloforge[EXTRA]'``)."""
