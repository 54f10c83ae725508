"""The embedded reference shower simulator: GFlash-style parametrized showers, offline.

    >>> from caloforge.refsim import simulate
    >>> showers = simulate("ds2", "electron", "loguniform:1e3:1e6", n=100, seed=1)

Materials and sampling stacks (:mod:`~caloforge.refsim.materials`), detector presets that pair
a stack with a built-in geometry (:mod:`~caloforge.refsim.detectors`), electromagnetic
(:mod:`~caloforge.refsim.em`) and hadronic (:mod:`~caloforge.refsim.hadronic`) shower models,
deposition into cylindrical or Cartesian readouts (:mod:`~caloforge.refsim.deposit`).
Energies in MeV, lengths in mm, angles in radians. The model and its limits: docs/refsim.md.
"""

from caloforge.refsim.detectors import Detector, Section, detector_names, get_detector
from caloforge.refsim.files import simulate_to_file
from caloforge.refsim.materials import MATERIALS, Material, Stack
from caloforge.refsim.simulate import (
    SimulationPlan,
    canonical_particle,
    chunk_seed,
    plan_simulation,
    simulate,
)
from caloforge.refsim.version import REFSIM_VERSION

__all__ = [
    "REFSIM_VERSION",
    "MATERIALS",
    "Detector",
    "Material",
    "Section",
    "Stack",
    "canonical_particle",
    "chunk_seed",
    "detector_names",
    "get_detector",
    "simulate",
    "simulate_to_file",
    "plan_simulation",
    "SimulationPlan",
]
