"""Every sampler reproduces the exact moments of small and strongly coupled machines.

The yardstick is :func:`caloforge.boltzmann.check_moments`: the unit marginals <z_i>, the
coupler moments <z_i z_j> and the mean energy of N samples, each as a z-score against the exact
value with its null standard deviation (exact sqrt(mu (1 - mu) / N) for i.i.d. draws; each
sampler's draws come from independent chains or reads, so they are i.i.d.). A check fails when
any |z| exceeds the Bonferroni threshold z* with P(|Z| > z*) = alpha / K over the K tested
quantities, alpha = 1e-4: by the union bound a correct sampler fails with probability <= 1e-4
(z* = 4.6-5.0 here). Exact values come from enumeration (10- and 12-unit machines) or from
dwave-samplers' exact tree-decomposition marginals (32-unit Chimera and Pegasus regions with
|W| ~ 1.5-1.7, where 3 Gibbs sweeps are far from equilibrium). Negative controls in
``test_boltzmann_moments.py`` show the same check rejects too few sweeps, a wrong temperature
and a biased sampler.
"""

from __future__ import annotations

import warnings

import dimod
import numpy as np
import pytest
import torch

from caloforge.boltzmann import (
    BlockGibbsSampler,
    BoltzmannError,
    BoltzmannMachine,
    ExactSampler,
    ProductOfMarginalsSampler,
    QPUSampler,
    SimulatedAnnealingSampler,
    SimulatedQuantumAnnealingSampler,
    check_moments,
    exact_moments,
    get_sampler,
    make_topology,
    tree_moments,
)
from caloforge.boltzmann.moments import product_moments
from caloforge.boltzmann.partition import all_states, exact_energies
from caloforge.errors import CaloforgeError

N = 12_000  # samples per check: null SD of a marginal <= 0.5 / sqrt(N) = 0.0046


#: one torch thread (tests/conftest.py): small products stall on an oversubscribed CPU
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def machine(kind: str, n: int, seed: int = 0, scale: float = 0.8) -> BoltzmannMachine:
    return BoltzmannMachine.random(make_topology(kind, n), weight_scale=scale, seed=seed)


BIPARTITE = machine("chimera", 5, seed=1)  # 10 units, 1024 states
FOUR_PARTITE = machine("pegasus", 3, seed=2)  # 12 units, 4096 states
DENSE_FOUR_PARTITE = machine("dense-4partite", 3, seed=4)  # 12 units, 54 couplers
# strongly coupled: mean |W| = 1.66 (Pegasus 4x8) and 1.71 (Chimera 2x16); 3 Gibbs sweeps give
# |z| = 349 and 160, 20 sweeps still |z| = 21 on the Pegasus one (measured)
STRONG_PEGASUS = machine("pegasus", 8, seed=0, scale=2.0)
STRONG_CHIMERA = machine("chimera", 16, seed=0, scale=2.0)
STRONG_SWEEPS = 200  # >> 5 x the largest measured integrated autocorrelation time (~6 sweeps)


def reference(bm: BoltzmannMachine, beta: float = 1.0, clamp=None):
    if bm.n_units <= 20:
        return exact_moments(bm, beta, clamp)
    return tree_moments(bm, beta, clamp)


def assert_matches(samples: torch.Tensor, bm: BoltzmannMachine, beta: float = 1.0) -> None:
    check = check_moments(bm, samples, reference(bm, beta))
    assert check.passed, check.summary()


@pytest.mark.parametrize(
    "bm",
    [BIPARTITE, FOUR_PARTITE, DENSE_FOUR_PARTITE],
    ids=["bipartite", "four-partite", "dense-four-partite"],
)
@pytest.mark.parametrize(
    "sampler",
    [
        BlockGibbsSampler(n_sweeps=30),
        SimulatedAnnealingSampler(num_sweeps=60),  # flat schedule: Metropolis at beta = 1
        ExactSampler(),
    ],
    ids=["gibbs", "sa", "exact"],
)
def test_sampler_matches_the_exact_distribution(bm, sampler):
    assert_matches(sampler.sample(bm, N, seed=11), bm)


@pytest.mark.parametrize("bm", [STRONG_PEGASUS, STRONG_CHIMERA], ids=["pegasus", "chimera"])
@pytest.mark.parametrize(
    "sampler",
    [
        BlockGibbsSampler(n_sweeps=STRONG_SWEEPS),
        SimulatedAnnealingSampler(num_sweeps=STRONG_SWEEPS),
    ],
    ids=["gibbs", "sa"],
)
def test_sampler_matches_strongly_coupled_machines_given_enough_sweeps(bm, sampler):
    assert_matches(sampler.sample(bm, N, seed=12), bm)


def test_gibbs_at_another_beta_samples_that_beta():
    assert_matches(
        BlockGibbsSampler(30, beta=0.6).sample(FOUR_PARTITE, N, seed=3), FOUR_PARTITE, 0.6
    )
    assert_matches(
        BlockGibbsSampler(STRONG_SWEEPS, beta=0.6).sample(STRONG_PEGASUS, N, seed=3),
        STRONG_PEGASUS,
        0.6,
    )


def test_sa_with_beta_eff_samples_the_machine_at_inverse_temperature_one_over_beta_eff():
    # flat schedule at 1 on E / 2 is the machine at beta = 0.5
    samples = SimulatedAnnealingSampler(2.0, num_sweeps=60).sample(BIPARTITE, N, seed=4)
    assert_matches(samples, BIPARTITE, 0.5)
    samples = SimulatedAnnealingSampler(2.0, num_sweeps=100).sample(STRONG_CHIMERA, N, seed=4)
    assert_matches(samples, STRONG_CHIMERA, 0.5)


SMALL = machine("rbm-dense", 3, seed=7, scale=1.0)  # 6 units: SQA is slow, keep it tiny


def test_sqa_ending_in_a_classical_hold_matches_the_exact_distribution():
    # the anneal finishes (s = 1, no transverse field) and 30 sweeps at s = 1 are a Metropolis
    # sampler at beta_phys: the reads must be Boltzmann at beta_phys / beta_eff
    sqa = SimulatedQuantumAnnealingSampler(1.0, num_sweeps=10, beta_phys=1.0, hold_sweeps=30)
    assert_matches(sqa.sample(SMALL, 4000, seed=8), SMALL)
    # beta_eff = 2 programs E / 2: the reads follow the machine at beta = 0.5
    sqa = SimulatedQuantumAnnealingSampler(2.0, num_sweeps=10, beta_phys=1.0, hold_sweeps=30)
    assert_matches(sqa.sample(FOUR_PARTITE, 4000, seed=9), FOUR_PARTITE, 0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sqa_at_low_temperature_finds_the_ground_state(seed):
    # 12-unit frustrated machines; at beta_phys = 5 the exact ground-state probability is
    # 0.35-0.73 for these seeds. A random read would hit it with probability 2^-12; SQA's
    # reads must hit it in more than a quarter of the cases (PIMC freezes some reads in local
    # minima, e.g. seed 0 reaches 36% against 64% at equilibrium, which is why the effective
    # temperature is calibrated rather than assumed).
    bm = machine("pegasus", 3, seed=seed, scale=1.0)
    energies = exact_energies(bm)
    ground = all_states(bm.n_units)[int(torch.argmin(energies))]
    sqa = SimulatedQuantumAnnealingSampler(num_sweeps=100, beta_phys=5.0, gamma=1.0)
    samples = sqa.sample(bm, 200, seed=10).double()
    hit = (samples == ground).all(1).double().mean()
    assert hit > 0.25, f"only {hit:.0%} of reads reached the ground state"


def test_sqa_freeze_out_is_not_boltzmann_at_beta_phys():
    # documents the limit calibration exists for: reads frozen at s = 0.3 are hotter than
    # exp(-beta_phys E) and the moment check rejects them
    frozen = SimulatedQuantumAnnealingSampler(num_sweeps=20, beta_phys=1.0, s_freeze=0.3)
    check = check_moments(SMALL, frozen.sample(SMALL, 2000, seed=12), reference(SMALL))
    assert not check.passed, check.summary()


# ------------------------------------------------------------------ clamping

ROWS = {
    "four-partite": (FOUR_PARTITE, torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])),
    "strong-pegasus": (
        STRONG_PEGASUS,
        torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0], [0.0] * 7 + [1.0]]),
    ),
}


@pytest.mark.parametrize(
    ("case", "sampler"),
    [
        (case, sampler)
        for case in ROWS
        for sampler in (
            BlockGibbsSampler(n_sweeps=STRONG_SWEEPS),
            SimulatedAnnealingSampler(num_sweeps=STRONG_SWEEPS),
        )
    ]
    + [("four-partite", ExactSampler())],  # exact sampling enumerates at most 20 units
    ids=["gibbs-12", "sa-12", "gibbs-32-strong", "sa-32-strong", "exact-12"],
)
def test_clamped_sampling_matches_the_conditional_distribution(case, sampler):
    bm, rows = ROWS[case]
    which = torch.arange(N) % 2
    samples = sampler.sample(bm, N, seed=13, clamp={3: rows[which]})
    assert torch.equal(samples[:, bm.partitions[3]], rows[which])
    for g in range(2):
        # two rows tested: alpha / 2 each keeps the family-wise false alarm at 1e-4
        ref = reference(bm, clamp={3: rows[g]})
        check = check_moments(bm, samples[which == g], ref, alpha=0.5e-4)
        assert check.passed, f"clamp row {g}: {check.summary()}"


# ------------------------------------------------------------------ Gibbs mechanics


def test_gibbs_is_deterministic_given_the_seed_and_returns_binary_float32():
    s = BlockGibbsSampler(5)
    a, b = s.sample(FOUR_PARTITE, 64, seed=1), s.sample(FOUR_PARTITE, 64, seed=1)
    assert a.dtype == torch.float32 and a.shape == (64, 12)
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, s.sample(FOUR_PARTITE, 64, seed=2))


def test_persistent_chains_continue_between_calls():
    s = BlockGibbsSampler(1, persistent=True)
    first = s.sample(FOUR_PARTITE, 32, seed=1)
    assert torch.equal(s.chains, first)
    second = s.sample(FOUR_PARTITE, 32, seed=2)
    fresh = BlockGibbsSampler(1).sample(FOUR_PARTITE, 32, seed=2)
    assert not torch.equal(second, fresh)  # started from `first`, not from scratch
    s.reset()
    assert torch.equal(s.sample(FOUR_PARTITE, 32, seed=2), fresh)
    # many short persistent calls converge to the same law as long fresh chains
    s = BlockGibbsSampler(2, persistent=True)
    for k in range(15):
        z = s.sample(BIPARTITE, N, seed=k)
    assert_matches(z, BIPARTITE)


def test_num_threads_applies_while_sampling_only():
    before = torch.get_num_threads()
    a = BlockGibbsSampler(3, num_threads=1).sample(FOUR_PARTITE, 16, seed=0)
    assert torch.get_num_threads() == before
    assert torch.equal(a, BlockGibbsSampler(3).sample(FOUR_PARTITE, 16, seed=0))
    with pytest.raises(CaloforgeError, match="num_threads must be a positive integer"):
        BlockGibbsSampler(3, num_threads=0)


def test_sparse_and_dense_field_products_agree():
    bm = machine("pegasus", 8, seed=3)
    a = BlockGibbsSampler(4, sparse=True).sample(bm, 256, seed=6)
    b = BlockGibbsSampler(4, sparse=False).sample(bm, 256, seed=6)
    assert (a != b).float().mean() < 0.01  # identical up to float rounding at a threshold


def test_energy_trace_matches_energies_of_the_states():
    bm = machine("chimera", 8, seed=3)
    gibbs = BlockGibbsSampler(3)
    trace = gibbs.energy_trace(bm, 50, 3, seed=2)
    states = gibbs.sample(bm, 50, seed=2)
    assert trace.shape == (3, 50)
    assert torch.allclose(trace[-1], bm.energy(states).detach(), atol=1e-4)


# ------------------------------------------------------------------ QPU, offline


def mock_qpu(topology, broken=(), drop_couplers=0):
    """A mock Advantage QPU whose working qubits are the topology's (minus ``broken``), with all
    the Pegasus P16 couplers between them; its 'anneal' is a flat-schedule Metropolis sampler
    at beta = 1 on the programmed Hamiltonian."""
    import dwave.graphs as dg
    from dwave.samplers import SimulatedAnnealingSampler as Neal
    from dwave.system.testing import MockDWaveSampler

    qubits = [q for q in topology.qubits if q not in broken]
    couplers = list(dg.pegasus_graph(16).subgraph(qubits).edges())[drop_couplers:]
    return MockDWaveSampler(
        nodelist=qubits,
        edgelist=couplers,
        topology_type="pegasus",
        topology_shape=[16],
        substitute_sampler=Neal(),
        substitute_kwargs={"beta_range": (1.0, 1.0), "num_sweeps": 60, "seed": 21},
        parameter_warnings=False,
    )


def test_qpu_sampler_programs_the_hardware_qubits_directly():
    # the mock's substitute is a flat-schedule Metropolis sampler, so the "QPU" samples
    # exp(-H); with beta_eff = 1 the units must follow the machine's distribution
    # (one call only: the mock's substitute is seeded, so two calls would repeat their reads)
    qpu = QPUSampler(1.0, qpu=mock_qpu(FOUR_PARTITE.topology), max_reads_per_call=8000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = qpu.sample(FOUR_PARTITE, 8000, seed=0)
    assert_matches(samples, FOUR_PARTITE)


def test_qpu_sampler_rejects_what_the_hardware_cannot_run():
    topo = FOUR_PARTITE.topology
    with pytest.raises(CaloforgeError, match="no minor-embedding of the 64-unit"):
        QPUSampler(qpu=mock_qpu(topo)).sample(machine("dense-4partite", 16), 4, seed=0)
    broken = topo.qubits[0]
    with pytest.raises(CaloforgeError, match=r"qubit\(s\) of the topology .* not working"):
        QPUSampler(qpu=mock_qpu(topo, broken=[broken])).sample(FOUR_PARTITE, 4, seed=0)
    with pytest.raises(CaloforgeError, match=r"coupler\(s\) of the topology .* missing"):
        QPUSampler(qpu=mock_qpu(topo, drop_couplers=1)).sample(FOUR_PARTITE, 4, seed=0)
    strong = machine("pegasus", 3, scale=20.0, seed=1)
    with torch.no_grad():  # biases that cancel the couplings' share of h: only J is too large
        strong.bias.copy_(-strong.symmetric_couplings().sum(1) / 2)
    with pytest.raises(CaloforgeError, match="outside the QPU's j_range"):
        QPUSampler(qpu=mock_qpu(topo)).sample(strong, 4, seed=0)


class _FreshTreeSampler(dimod.Sampler):
    """Exact Boltzmann draws at beta = 1 (dwave-samplers' tree decomposition), seeded afresh on
    every call so that repeated QPU calls give new reads; the 'anneal' of the mock QPU below."""

    parameters = {"num_reads": []}
    properties: dict = {}

    def __init__(self) -> None:
        self.calls = 0

    def sample(self, bqm, num_reads=1, **kwargs):
        from dwave.samplers import TreeDecompositionSampler

        self.calls += 1
        return TreeDecompositionSampler().sample(
            bqm, num_reads=num_reads, beta=1.0, marginals=False, seed=1000 + self.calls
        )


def mock_pegasus_qpu(substitute):
    """A mock Advantage-like QPU: the whole Pegasus P4 graph, ``substitute`` as its anneal."""
    from dwave.system.testing import MockDWaveSampler

    return MockDWaveSampler(
        topology_type="pegasus",
        topology_shape=[4],
        substitute_sampler=substitute,
        parameter_warnings=False,
    )


def test_qpu_sampler_embeds_a_machine_without_qubits_and_keeps_its_distribution():
    # the dense four-partite machine has no qubit layout: each unit becomes a chain of qubits.
    # The mock QPU draws exact Boltzmann samples of the programmed (embedded) Ising model, so
    # reads whose chains all agree follow the logical machine's distribution exactly; keeping
    # only those must pass the moment check (a wrong unit -> chain map, a wrong split of h or J
    # over a chain, or keeping broken reads would not)
    tree = _FreshTreeSampler()
    qpu = QPUSampler(1.0, qpu=mock_pegasus_qpu(tree), max_reads_per_call=4000)
    samples = qpu.sample(DENSE_FOUR_PARTITE, N, seed=0)
    assert_matches(samples, DENSE_FOUR_PARTITE)
    emb = qpu.embedding
    assert emb is not None and sorted(emb) == list(range(DENSE_FOUR_PARTITE.n_units))
    assert max(len(c) for c in emb.values()) >= 2  # real chains, not a direct placement
    from dwave.embedding import verify_embedding

    graph = qpu.qpu.to_networkx_graph()
    source = [tuple(map(int, e)) for e in DENSE_FOUR_PARTITE.topology.edges]
    assert verify_embedding(emb, source, graph.edges())
    # with the strongest chains j_range allows (1), some reads break and are dropped
    assert qpu.unbroken_fraction is not None and 0.05 < qpu.unbroken_fraction < 1.0
    qpu.sample(DENSE_FOUR_PARTITE, 8, seed=1)  # the embedding is found once per machine
    assert qpu.embedding is emb


def test_embedded_qpu_sampling_with_a_clamped_partition_is_conditional():
    # a clamp fixes the spins of partition 3 in the logical model before it is embedded: the
    # free units' chains must then follow the conditional distribution, row by row
    bm = DENSE_FOUR_PARTITE
    rows = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    which = torch.arange(N) % 2
    qpu = QPUSampler(1.0, qpu=mock_pegasus_qpu(_FreshTreeSampler()), max_reads_per_call=4000)
    samples = qpu.sample(bm, N, seed=13, clamp={3: rows[which]})
    assert torch.equal(samples[:, bm.partitions[3]], rows[which])
    for g in range(2):
        # two rows tested: alpha / 2 each keeps the family-wise false alarm at 1e-4
        check = check_moments(
            bm, samples[which == g], reference(bm, clamp={3: rows[g]}), alpha=0.5e-4
        )
        assert check.passed, f"clamp row {g}: {check.summary()}"


def test_keeping_broken_chains_fails_the_same_check(monkeypatch):
    # negative control: resolve broken chains by majority vote instead of discarding them (what
    # an optimiser would do) and the draws are no longer the machine's distribution
    import dwave.embedding.chain_breaks as chain_breaks

    monkeypatch.setattr(chain_breaks, "discard", chain_breaks.majority_vote)
    qpu = QPUSampler(1.0, qpu=mock_pegasus_qpu(_FreshTreeSampler()), max_reads_per_call=4000)
    samples = qpu.sample(DENSE_FOUR_PARTITE, N, seed=0)
    check = check_moments(DENSE_FOUR_PARTITE, samples, reference(DENSE_FOUR_PARTITE))
    assert not check.passed, check.summary()


def test_qpu_sampler_says_when_chains_break_too_often():
    qpu = QPUSampler(
        1.0, qpu=mock_pegasus_qpu(_FreshTreeSampler()), chain_strength=1e-3, max_calls=2
    )
    with pytest.raises(CaloforgeError, match=r"reads kept every chain unbroken .* raise chain"):
        qpu.sample(DENSE_FOUR_PARTITE, 200, seed=0)
    with pytest.raises(CaloforgeError, match="chain_strength must be a positive"):
        QPUSampler(chain_strength=0.0)


def test_qpu_without_credentials_says_how_to_configure(monkeypatch):
    import dwave.system

    def refuse(**kwargs):
        raise ValueError("API token not defined")

    monkeypatch.setattr(dwave.system, "DWaveSampler", refuse)
    with pytest.raises(CaloforgeError, match="cannot connect to a D-Wave QPU"):
        QPUSampler().sample(FOUR_PARTITE, 4, seed=0)


# ------------------------------------------------------------------ registry


def test_get_sampler_builds_each_kind_and_rejects_unknown_names():
    assert isinstance(get_sampler("gibbs", n_sweeps=3), BlockGibbsSampler)
    assert isinstance(get_sampler("sa", beta_eff=2.0), SimulatedAnnealingSampler)
    assert isinstance(get_sampler("sqa"), SimulatedQuantumAnnealingSampler)
    assert isinstance(get_sampler("qpu"), QPUSampler)
    assert isinstance(get_sampler("marginals", n_sweeps=3), ProductOfMarginalsSampler)
    with pytest.raises(CaloforgeError, match="unknown sampler 'metropolis'"):
        get_sampler("metropolis")
    with pytest.raises(CaloforgeError, match="bad option for sampler 'sa'"):
        get_sampler("sa", n_sweeps=3)
    with pytest.raises(BoltzmannError, match="n_samples must be a positive integer"):
        BlockGibbsSampler().sample(BIPARTITE, 0, seed=0)


# ------------------------------------------------------------------ product of marginals


def test_product_of_marginals_keeps_the_marginals_and_drops_the_couplings():
    # STRONG_PEGASUS: pair covariances up to ~0.2, so the product differs from the prior by up
    # to ~25 null SDs at N = 4000; with K = 32 chains per sample 1/32 of each covariance
    # remains (<= 0.8 null SD), well inside z* = 5.0. 40 sweeps > the 35 diagnose_prior
    # recommends for this machine (test_boltzmann_prior_diagnostics.py).
    bm = STRONG_PEGASUS
    ref = reference(bm)
    samples = ProductOfMarginalsSampler(40).sample(bm, 4000, seed=14)
    product = check_moments(bm, samples, product_moments(bm, ref))
    assert product.passed, product.summary()
    prior = check_moments(bm, samples, ref)
    assert not prior.passed and np.abs(prior.z_unit).max() <= prior.threshold, prior.summary()
    # and the prior's own Gibbs samples are not a product
    gibbs = BlockGibbsSampler(40).sample(bm, 4000, seed=14)
    assert not check_moments(bm, gibbs, product_moments(bm, ref)).passed


def test_product_of_marginals_uses_each_samples_clamp():
    bm, rows = ROWS["strong-pegasus"]
    which = torch.arange(4000) % 2
    sampler = get_sampler("marginals", n_sweeps=40, chains_per_sample=32)
    samples = sampler.sample(bm, 4000, seed=15, clamp={3: rows[which]})
    assert torch.equal(samples[:, bm.partitions[3]], rows[which])
    for g in range(2):
        ref = product_moments(bm, reference(bm, clamp={3: rows[g]}))
        check = check_moments(bm, samples[which == g], ref, alpha=0.5e-4)
        assert check.passed, f"clamp row {g}: {check.summary()}"
    with pytest.raises(CaloforgeError, match="chains_per_sample must be an integer >= 2"):
        ProductOfMarginalsSampler(chains_per_sample=1)
