"""Parametrized quantum circuits for the hybrid quantum GAN (PennyLane, torch interface).

* :mod:`~caloforge.quantum.downsample` -- showers <-> 8-pixel profiles and 8 x 8 images;
* :mod:`~caloforge.quantum.circuits` -- ansatz, entangler, encoding, readout, noise and shots as
  configuration (:class:`CircuitSpec`), wrapped as a torch module (:class:`QuantumCircuit`);
* :mod:`~caloforge.quantum.discriminators` -- classical MLP and variational quantum classifier.

The models themselves are in :mod:`caloforge.models.qgan`.
"""

from caloforge.quantum.circuits import CircuitSpec, QuantumCircuit, shots_from_uniforms
from caloforge.quantum.discriminators import MLPDiscriminator, QuantumDiscriminator
from caloforge.quantum.downsample import (
    Downsampler,
    inverse_unit_scale,
    log_scale,
    stack,
    unit_scale,
    unstack,
)

__all__ = [
    "CircuitSpec",
    "Downsampler",
    "MLPDiscriminator",
    "QuantumCircuit",
    "QuantumDiscriminator",
    "inverse_unit_scale",
    "log_scale",
    "shots_from_uniforms",
    "stack",
    "unit_scale",
    "unstack",
]
