"""The error the Boltzmann-machine package raises for bad input."""

from __future__ import annotations

from caloforge.errors import CaloforgeError


class BoltzmannError(CaloforgeError, ValueError):
    """A bad topology, machine, sample tensor, clamp, sampler name or sampler setting."""
