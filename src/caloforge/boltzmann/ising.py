"""The Ising model equivalent to a Boltzmann machine, as a dimod ``BinaryQuadraticModel``.

With spins s = 2z - 1 (z = (1 + s) / 2) the machine's energy becomes an Ising energy

    E(z) = sum_i h_i s_i + sum_{i<j} J_ij s_i s_j + offset,
    J_ij = -W_ij / 4,   h_i = -b_i / 2 - sum_j Wsym_ij / 4,
    offset = -sum_i b_i / 2 - sum_{i<j} W_ij / 4.

An annealer samples exp(-beta_eff * H) for the Hamiltonian H it is programmed with, at an
effective inverse temperature beta_eff of its own. Programming H = E / beta_eff therefore makes it
sample the machine's distribution exp(-E): :func:`to_ising` divides h, J and the offset by
``beta``. Variables are the unit indices 0..n-1; every coupler of the topology appears in the
model (with J = 0 where the weight is 0), so the model's graph is the topology's graph.
"""

from __future__ import annotations

import dimod
import numpy as np
import torch

from caloforge.boltzmann.errors import BoltzmannError
from caloforge.boltzmann.machine import BoltzmannMachine


def ising_coefficients(
    bm: BoltzmannMachine, beta: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Ising fields and couplings of ``bm`` divided by ``beta`` (float64).

    Returns:
        ``h`` (n,), ``edges`` (E, 2) unit pairs i < j, ``J`` (E,), ``offset``.
    """
    if not (beta > 0 and np.isfinite(beta)):
        raise BoltzmannError(f"the effective beta must be a positive finite number, got {beta!r}")
    with torch.no_grad():
        b = bm.bias.detach().double().cpu().numpy()
        w = bm.couplings().detach().double().cpu().numpy()
    edges = bm.topology.edges
    w_edges = w[edges[:, 0], edges[:, 1]] if len(edges) else np.zeros(0)
    field_from_w = np.zeros_like(b)
    np.add.at(field_from_w, edges[:, 0], w_edges)
    np.add.at(field_from_w, edges[:, 1], w_edges)
    h = -b / 2 - field_from_w / 4
    j = -w_edges / 4
    offset = -b.sum() / 2 - w_edges.sum() / 4
    return h / beta, edges, j / beta, float(offset / beta)


def to_ising(bm: BoltzmannMachine, beta: float = 1.0) -> dimod.BinaryQuadraticModel:
    """The SPIN ``BinaryQuadraticModel`` whose energy is E(z) / beta for s = 2z - 1.

    Args:
        bm: the machine.
        beta: the annealer's effective inverse temperature (1.0: plain conversion).
    """
    h, edges, j, offset = ising_coefficients(bm, beta)
    return dimod.BinaryQuadraticModel.from_numpy_vectors(
        h, (edges[:, 0], edges[:, 1], j), offset, dimod.SPIN
    )


def spins_to_units(spins: np.ndarray) -> torch.Tensor:
    """(B, n) spins in {-1, +1} -> float32 units in {0, 1}."""
    return torch.from_numpy((np.asarray(spins) > 0).astype(np.float32))


def units_to_spins(z: torch.Tensor) -> np.ndarray:
    """(B, n) units in {0, 1} -> int8 spins in {-1, +1}."""
    return (2 * z.detach().cpu().numpy().astype(np.int8) - 1).astype(np.int8)


def sampleset_to_units(sampleset: dimod.SampleSet, n_units: int) -> torch.Tensor:
    """Samples of a SampleSet over variables 0..n-1 -> (reads, n) float32 units, unit order."""
    order = list(sampleset.variables)
    if sorted(order) != list(range(n_units)):
        raise BoltzmannError(
            f"the sampler returned variables {order[:5]}..., expected the units 0..{n_units - 1}"
        )
    spins = np.empty((len(sampleset), n_units), dtype=np.int8)
    spins[:, order] = sampleset.record.sample
    return spins_to_units(spins)
