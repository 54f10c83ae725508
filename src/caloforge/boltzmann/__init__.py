"""Boltzmann-machine priors on quantum-annealer topologies, their samplers and diagnostics.

The pieces, one module each:

* :mod:`~caloforge.boltzmann.topology`: :func:`make_topology` (dense RBM, Chimera, Pegasus,
  Zephyr regions of real D-Wave graphs, partitioned by a proper colouring);
* :mod:`~caloforge.boltzmann.machine`: :class:`BoltzmannMachine`, E(z) = -b.z - sum W_ij z_i z_j;
* :mod:`~caloforge.boltzmann.gibbs`: :class:`BlockGibbsSampler` (vectorised, persistent chains);
* :mod:`~caloforge.boltzmann.ising`: :func:`to_ising`, the equivalent dimod Ising model;
* :mod:`~caloforge.boltzmann.samplers`: simulated annealing, simulated quantum annealing, QPU,
  exact sampling and :func:`get_sampler`;
* :mod:`~caloforge.boltzmann.temperature`: :func:`calibrate_beta`, the annealer's effective beta;
* :mod:`~caloforge.boltzmann.partition`: log Z exactly (small machines) and by AIS;
* :mod:`~caloforge.boltzmann.moments`: exact moments (enumeration, tree decomposition) and
  :func:`check_moments`, the z-score test that samples reproduce them;
* :mod:`~caloforge.boltzmann.diagnostics`: autocorrelation time and effective sample size;
* :mod:`~caloforge.boltzmann.conditional`: the machine of the free units given a clamp row;
* :mod:`~caloforge.boltzmann.prior_diagnostics`: :func:`diagnose_prior` (coupling statistics,
  KL to the product of marginals, Gibbs mixing and the recommended sweep count).
"""

from caloforge.boltzmann.conditional import ConditionedMachine, condition
from caloforge.boltzmann.diagnostics import (
    autocorrelation_function,
    autocorrelation_time,
    burn_in_sweeps,
    effective_sample_size,
)
from caloforge.boltzmann.errors import BoltzmannError
from caloforge.boltzmann.gibbs import BlockGibbsSampler, sweeps_from_autocorrelation
from caloforge.boltzmann.ising import ising_coefficients, to_ising
from caloforge.boltzmann.machine import BoltzmannMachine
from caloforge.boltzmann.moments import (
    MomentCheck,
    Moments,
    check_moments,
    exact_moments,
    tree_moments,
)
from caloforge.boltzmann.partition import (
    ais_log_partition,
    exact_log_partition,
    exact_probabilities,
    total_variation,
    tv_bound,
)
from caloforge.boltzmann.prior_diagnostics import (
    CouplingStats,
    KLEstimate,
    MixingStats,
    PriorDiagnostics,
    coupling_stats,
    diagnose_prior,
    mixing_stats,
    product_kl,
)
from caloforge.boltzmann.samplers import (
    SAMPLER_NAMES,
    AnnealingSampler,
    ExactSampler,
    ProductOfMarginalsSampler,
    QPUSampler,
    SimulatedAnnealingSampler,
    SimulatedQuantumAnnealingSampler,
    get_sampler,
    register_sampler,
    sampler_names,
)
from caloforge.boltzmann.temperature import (
    CalibrationHistory,
    calibrate_beta,
    plot_beta_calibration,
)
from caloforge.boltzmann.topology import TOPOLOGY_KINDS, Topology, make_topology

__all__ = [
    "SAMPLER_NAMES",
    "TOPOLOGY_KINDS",
    "AnnealingSampler",
    "BlockGibbsSampler",
    "BoltzmannError",
    "BoltzmannMachine",
    "CalibrationHistory",
    "ConditionedMachine",
    "CouplingStats",
    "KLEstimate",
    "MixingStats",
    "PriorDiagnostics",
    "ProductOfMarginalsSampler",
    "MomentCheck",
    "Moments",
    "ExactSampler",
    "QPUSampler",
    "SimulatedAnnealingSampler",
    "SimulatedQuantumAnnealingSampler",
    "Topology",
    "ais_log_partition",
    "autocorrelation_function",
    "autocorrelation_time",
    "burn_in_sweeps",
    "calibrate_beta",
    "check_moments",
    "condition",
    "coupling_stats",
    "diagnose_prior",
    "effective_sample_size",
    "exact_log_partition",
    "exact_moments",
    "exact_probabilities",
    "get_sampler",
    "register_sampler",
    "sampler_names",
    "ising_coefficients",
    "make_topology",
    "mixing_stats",
    "plot_beta_calibration",
    "product_kl",
    "sweeps_from_autocorrelation",
    "to_ising",
    "total_variation",
    "tree_moments",
    "tv_bound",
]
