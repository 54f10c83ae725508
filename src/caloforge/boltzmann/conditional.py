"""The machine over the free units given one clamp row: a smaller machine of the same kind.

Clamping units C to values c leaves the free units F with the energy

    E(z_F, c) = E_F(z_F) + offset,
    E_F(z_F) = -(b_F + Wsym[F, C] c) . z_F - sum_{i<j in F} W_ij z_i z_j,
    offset = -b_C . c - sum_{i<j in C} W_ij c_i c_j,

so p(z_F | c) is the Boltzmann distribution of the machine E_F, and its log partition function
log Z_F relates to the conditional's log Z (with the clamped energy) by log Z = log Z_F - offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from caloforge.boltzmann.errors import BoltzmannError
from caloforge.boltzmann.machine import BoltzmannMachine
from caloforge.boltzmann.topology import Topology


@dataclass
class ConditionedMachine:
    """The free units of a machine given one clamp row.

    Attributes:
        machine: a :class:`BoltzmannMachine` over the free units, or None when a single free
            partition remains (its units are then independent: ``bias`` says everything).
        free_units: (n_free,) int64 unit indices of the original machine, in order.
        bias: (n_free,) float64 effective biases b_F + Wsym[F, C] c.
        offset: energy of the clamped units (see the module docstring).
    """

    machine: BoltzmannMachine | None
    free_units: np.ndarray
    bias: np.ndarray
    offset: float


def clamp_row_units(
    bm: BoltzmannMachine, clamp: Mapping[int, torch.Tensor] | None
) -> dict[int, int]:
    """unit index -> 0/1 for a clamp of ONE row per partition (values (size,) or (1, size))."""
    if not clamp:
        return {}
    sizes = bm.topology.partition_sizes
    fixed: dict[int, int] = {}
    for p, values in clamp.items():
        if not isinstance(p, int) or not 0 <= p < len(sizes):
            raise BoltzmannError(f"clamp key {p!r} is not a partition index (0..{len(sizes) - 1})")
        row = torch.as_tensor(values).detach().cpu().reshape(-1)
        if row.numel() != sizes[p] or not torch.all((row == 0) | (row == 1)):
            raise BoltzmannError(
                f"the clamp of partition {p} must be one row of {sizes[p]} 0/1 values"
            )
        for unit, value in zip(bm.partitions[p].tolist(), row.tolist(), strict=True):
            fixed[unit] = int(value)
    if len(fixed) == bm.n_units:
        raise BoltzmannError("clamp fixes every partition; leave at least one free")
    return fixed


def condition(bm: BoltzmannMachine, clamp: Mapping[int, torch.Tensor] | None) -> ConditionedMachine:
    """The machine of the free units given one clamp row (partition -> (size,) 0/1 values)."""
    fixed = clamp_row_units(bm, clamp)
    with torch.no_grad():
        b = bm.bias.detach().double().cpu().numpy()
        w = bm.couplings().detach().double().cpu().numpy()
    n = bm.n_units
    c_idx = np.array(sorted(fixed), dtype=np.int64)
    c_val = np.array([fixed[u] for u in c_idx], dtype=np.float64)
    free = np.setdiff1d(np.arange(n), c_idx)
    wsym = w + w.T
    bias_f = b[free] + (wsym[np.ix_(free, c_idx)] @ c_val if c_idx.size else 0.0)
    offset = -float(b[c_idx] @ c_val) - float(c_val @ w[np.ix_(c_idx, c_idx)] @ c_val)
    part = bm.topology.partition_of.numpy()
    free_parts = [p for p in range(bm.topology.n_partitions) if np.any(part[free] == p)]
    if len(free_parts) < 2:
        return ConditionedMachine(None, free, bias_f, offset)
    sizes = tuple(int(np.sum(part[free] == p)) for p in free_parts)
    position = -np.ones(n, dtype=np.int64)
    position[free] = np.arange(free.size)
    edges = bm.topology.edges
    keep = (position[edges[:, 0]] >= 0) & (position[edges[:, 1]] >= 0)
    sub_edges = position[edges[keep]]
    topo = Topology("custom", sizes, sub_edges, None, "", {"conditioned_on": sorted(clamp or {})})
    sub = BoltzmannMachine(topo, weight_scale=0.0)
    with torch.no_grad():
        sub.bias.copy_(torch.from_numpy(bias_f))
        sub.weight.copy_(torch.from_numpy(w[np.ix_(free, free)]))
    return ConditionedMachine(sub, free, bias_f, offset)
