"""Energy conditioning by biases: a clamped code partition coupled to every unit.

An annealer conditions its Boltzmann distribution on a shower's incident energy most simply
through the units' biases (flux biases / linear terms): h_i(E) = b_i + sum_k A_ik c_k(E), a
learned linear function of a binary code c(E) of log E. That is exactly the field a clamped
partition holding c(E) exerts through couplers A_ik to every unit, so the conditioning is
expressed as a topology: a new partition 0 of ``n_code`` code units, densely coupled to every
unit of the base topology and never coupled inside itself. Clamping partition 0 to the code
(as the QVAE clamps its energy partition) then gives every unit its energy-dependent bias; the
samplers, the KL term's persistent chains and the diagnostics need nothing new, and an annealer
sampler folds the clamped units into the biases of the free qubits (``fix_variables``).

Compared with clamping one partition of the hardware graph itself (the conditioned
four-partite design), every free unit is conditioned, through ``n_code`` weights rather than
its few hardware couplers into the clamped partition, and no hardware partition is spent on the
code.
"""

from __future__ import annotations

import numpy as np

from caloforge.boltzmann.errors import BoltzmannError
from caloforge.boltzmann.topology import Topology


def with_energy_code(base: Topology, n_code: int) -> Topology:
    """``base`` with a code partition of ``n_code`` units prepended and coupled to every unit.

    Args:
        base: the topology of the free units (any number of partitions).
        n_code: units of the energy code (the clamped partition 0 of the result).

    Returns:
        A topology with partitions ``(n_code, *base.partition_sizes)``: base unit i becomes
        unit ``n_code + i``, its couplers are kept, and every code unit couples to every base
        unit. Its ``qubits`` is None (the code units are biases, not qubits); the base's qubit
        labels are kept in ``meta["base_qubits"]``.
    """
    if not isinstance(n_code, (int, np.integer)) or isinstance(n_code, bool) or n_code < 1:
        raise BoltzmannError(f"the energy code needs a positive number of units, got {n_code!r}")
    n_code = int(n_code)
    n_base = base.n_units
    code, unit = np.meshgrid(np.arange(n_code), np.arange(n_code, n_code + n_base), indexing="ij")
    edges = np.concatenate(
        [base.edges + n_code, np.stack([code.ravel(), unit.ravel()], axis=1)], axis=0
    )
    meta = {
        **base.meta,
        "energy_code_units": n_code,
        "base_partition_sizes": list(base.partition_sizes),
        "base_qubits": None if base.qubits is None else list(base.qubits),
    }
    return Topology(base.kind, (n_code, *base.partition_sizes), edges, None, base.graph, meta)
