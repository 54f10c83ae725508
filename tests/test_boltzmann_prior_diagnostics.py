"""Prior diagnostics against cases with known answers.

* independent units (W = 0): KL = 0 exactly (enumeration) and within the AIS estimator's
  plug-in-corrected noise; every autocorrelation time is 1 (one sweep draws fresh units);
* a two-unit machine: KL = the mutual information by hand; the Gibbs chain of either unit is
  a two-state Markov chain with second eigenvalue lambda = (a1 - a0)(c1 - c0) (a_z = p(z0 = 1 |
  z1 = z), c_z = p(z1 = 1 | z0 = z)), so tau = (1 + lambda) / (1 - lambda) exactly;
* 20- and 32-unit machines: the AIS KL agrees with enumeration / the exact tree decomposition;
* strongly coupled machines: Gibbs with the recommended sweep count passes the moment check.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from caloforge.boltzmann import (
    BlockGibbsSampler,
    BoltzmannMachine,
    check_moments,
    condition,
    coupling_stats,
    diagnose_prior,
    make_topology,
    mixing_stats,
    product_kl,
    tree_moments,
)
from caloforge.boltzmann.partition import all_states
from caloforge.errors import CaloforgeError

#: one torch thread (tests/conftest.py): small products stall on an oversubscribed CPU
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def machine(kind: str, n: int, seed: int = 0, scale: float = 0.8) -> BoltzmannMachine:
    return BoltzmannMachine.random(make_topology(kind, n), weight_scale=scale, seed=seed)


def two_units(b0: float, b1: float, w: float) -> BoltzmannMachine:
    bm = BoltzmannMachine(make_topology("rbm-dense", 1))
    with torch.no_grad():
        bm.bias.copy_(torch.tensor([b0, b1]))
        bm.weight.zero_()
        bm.weight[0, 1] = w
    return bm


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ------------------------------------------------------------------ couplings


def test_coupling_stats_count_and_split_by_partition_pair():
    bm = machine("pegasus", 4, seed=1, scale=0.5)
    stats = coupling_stats(bm)
    w = bm.couplings().detach().abs().numpy()
    edges = bm.topology.edges
    on = w[edges[:, 0], edges[:, 1]]
    assert stats.n_couplers == len(edges)
    assert stats.mean_abs == pytest.approx(on.mean(), rel=1e-6)
    assert stats.fraction_above["0.3"] == pytest.approx(np.mean(on > 0.3))
    assert sum(p.n_couplers for p in stats.per_pair) == len(edges)
    assert all(p.partitions[0] < p.partitions[1] for p in stats.per_pair)


# ------------------------------------------------------------------ KL


def test_kl_of_independent_units_is_zero():
    bm = machine("pegasus", 4, scale=0.0)  # 16 units, biases only
    exact = product_kl(bm, method="exact", seed=0)
    assert exact.kl == pytest.approx(0.0, abs=1e-9) and exact.stderr == 0.0
    # AIS: g is constant for independent units, so only the plug-in correction and the noise of
    # the marginals remain: measured |KL| 4e-5 with 64 units; uncorrected it would be -6e-4
    big = machine("pegasus", 16, scale=0.0)
    ais = product_kl(big, method="ais", seed=0, ais_chains=64, ais_steps=20, burn_in=5)
    assert abs(ais.kl) < 3e-4


def test_kl_of_a_two_unit_machine_is_its_mutual_information():
    bm = two_units(-0.4, 0.7, 1.8)
    w = np.exp([0.0, -0.4, 0.7, -0.4 + 0.7 + 1.8])  # 00, 10, 01, 11
    p = (w / w.sum()).reshape(2, 2)  # p[z1, z0]
    p0, p1 = p.sum(0), p.sum(1)
    mi = float(np.sum(p * np.log(p / np.outer(p1, p0))))
    est = product_kl(bm, method="exact", seed=0)
    assert est.kl == pytest.approx(mi, abs=1e-6)  # float32 parameters
    assert est.entropy == pytest.approx(float(-(p * np.log(p)).sum()), abs=1e-6)


def test_ais_and_tree_kl_agree_with_enumeration_and_each_other():
    bm = machine("pegasus", 5, seed=3, scale=1.5)  # 20 units: enumeration still possible
    exact = product_kl(bm, method="exact", seed=0)
    tree = product_kl(bm, method="tree", seed=0)
    assert tree.kl == pytest.approx(exact.kl, abs=1e-6)
    assert tree.log_partition == pytest.approx(exact.log_partition, abs=1e-6)
    # AIS vs exact: 4 standard errors (measured |difference| < 2 se over 4 seeds on a 32-unit
    # machine); the AIS bias (log Z low) is far below the error at these sizes
    ais = product_kl(bm, method="ais", seed=1, ais_chains=300, ais_steps=500, burn_in=100)
    assert abs(ais.kl - exact.kl) < 4 * ais.stderr, (ais.kl, ais.stderr, exact.kl)


def test_clamped_kl_is_that_of_the_conditional_and_averages_rows():
    bm = machine("pegasus", 5, seed=4, scale=1.5)
    rows = torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0, 0.0]])  # sorted
    est = product_kl(bm, method="exact", seed=0, clamp={3: rows})
    # by hand: enumerate the 2^20 states, keep those with the clamp row, compute the KL
    states = all_states(bm.n_units)
    energies = bm.energy(states.float()).detach().double()
    expected = []
    for row in rows:
        keep = (states[:, 15:] == row.double()).all(1)
        p = torch.softmax(-energies[keep], 0)
        m = p @ states[keep][:, :15]
        h_m = float(-(m * m.log() + (1 - m) * (1 - m).log()).sum())
        expected.append(h_m - float(-(p * p.log()).sum()))
    assert est.per_row == pytest.approx(expected, abs=1e-5)
    assert est.kl == pytest.approx(np.mean(expected), abs=1e-5)
    assert est.n_free == 15
    tree = product_kl(bm, method="tree", seed=0, clamp={3: rows})
    assert tree.per_row == pytest.approx(expected, abs=1e-5)


def test_one_free_partition_given_the_clamp_has_kl_zero():
    bm = machine("chimera", 4, seed=2, scale=1.5)
    est = product_kl(bm, seed=0, clamp={0: torch.tensor([1.0, 0.0, 1.0, 1.0])})
    assert est.kl == 0.0 and est.n_free == 4


def test_conditioned_machine_energy_plus_offset_is_the_clamped_energy():
    bm = machine("pegasus", 4, seed=5, scale=1.0)
    row = torch.tensor([1.0, 0.0, 1.0, 1.0])
    cond = condition(bm, {2: row})
    z_free = (torch.rand(50, 12, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    z = torch.zeros(50, 16)
    z[:, cond.free_units] = z_free
    z[:, 8:12] = row
    full = bm.energy(z).detach().double()
    sub = cond.machine.energy(z_free).detach().double() + cond.offset
    assert torch.allclose(full, sub, atol=1e-5)


# ------------------------------------------------------------------ mixing


def test_independent_units_decorrelate_in_one_sweep():
    bm = machine("pegasus", 8, scale=0.0)
    mix = mixing_stats(bm, seed=0, n_chains=128, n_sweeps=200)
    # tau = 1 exactly; the estimator over 100 x 128 values (Sokal window ~5) errs by ~2 %
    for name, tau in mix.tau.items():
        assert tau == pytest.approx(1.0, abs=0.1), name
    assert mix.unit_tau_max < 1.2
    assert mix.recommended_sweeps <= 12 and mix.reliable  # ceil(10 x ~1.05) or burn-in
    assert mix.observable_sweeps <= mix.recommended_sweeps


def test_two_unit_machine_tau_matches_the_markov_chain_eigenvalue():
    b0, b1, w = -1.2, -1.2, 2.5
    lam = (sigmoid(b0 + w) - sigmoid(b0)) * (sigmoid(b1 + w) - sigmoid(b1))
    tau = (1 + lam) / (1 - lam)  # 1.89
    mix = mixing_stats(two_units(b0, b1, w), seed=1, n_chains=64, n_sweeps=2000)
    # estimator error: sqrt(2 (2M + 1) / N) tau ~ 2.5 % for window M ~ 10, N = 64 000; 10 %
    # is 4 such errors
    assert mix.unit_tau_max == pytest.approx(tau, rel=0.1)
    assert mix.unit_tau_median == pytest.approx(tau, rel=0.1)


def test_user_observables_are_measured_and_checked():
    bm = machine("chimera", 8, seed=1, scale=1.0)
    v = torch.linspace(-1, 1, bm.n_units)
    mix = mixing_stats(
        bm, seed=0, n_chains=32, n_sweeps=64, observables={"decoder_energy": lambda z: z @ v}
    )
    assert "decoder_energy" in mix.tau and mix.tau["decoder_energy"] > 0.5
    with pytest.raises(CaloforgeError, match="observable 'bad' must map"):
        mixing_stats(bm, seed=0, n_chains=32, n_sweeps=32, observables={"bad": lambda z: z})


@pytest.mark.parametrize(("kind", "n"), [("pegasus", 8), ("chimera", 16)])
def test_recommended_sweeps_sample_strongly_coupled_machines_correctly(kind, n):
    # |W| ~ 1.7: 3 sweeps are rejected by the moment check (test_boltzmann_moments.py); the
    # recommended count (measured 69 and 42 sweeps) must pass it at 64 000 draws (it also
    # passes at 128 000, where 40 sweeps fail on the Pegasus machine: max |z| 6.7)
    bm = machine(kind, n, seed=0, scale=2.0)
    mix = mixing_stats(bm, seed=0)
    assert mix.recommended_sweeps > 20
    samples = BlockGibbsSampler(mix.recommended_sweeps).sample(bm, 64_000, seed=5)
    check = check_moments(bm, samples, tree_moments(bm))
    assert check.passed, check.summary()


def test_clamped_mixing_centres_each_row():
    bm = machine("pegasus", 6, seed=2, scale=0.3)
    rows = torch.tensor([[1.0] * 6, [0.0] * 6])  # very different energies per row
    mix = mixing_stats(bm, seed=0, clamp={3: rows}, n_chains=64, n_sweeps=200)
    assert "magnetisation[3]" not in mix.tau  # clamped partitions are not observables
    # weakly coupled: tau ~ 1; without per-row centring the energy would look frozen
    assert mix.tau["energy"] < 2.0


# ------------------------------------------------------------------ all together


def test_diagnose_prior_returns_a_json_dict_and_is_deterministic():
    bm = machine("pegasus", 4, seed=6, scale=1.0)
    clamp = {3: torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]])}
    a = diagnose_prior(bm, clamp=clamp, seed=3, n_chains=32, n_sweeps=64)
    b = diagnose_prior(bm, clamp=clamp, seed=3, n_chains=32, n_sweeps=64)
    da = a.to_dict()
    assert json.loads(json.dumps(da, allow_nan=False)) == da
    assert da == b.to_dict()
    assert a.clamped_partitions == [3] and a.n_clamp_rows == 2 and a.kl.method == "exact"
    assert a.mixing.recommended_sweeps >= 1
    assert any("recommended Gibbs sweeps" in line for line in a.summary_lines())


def test_bad_input_is_one_sentence():
    bm = machine("pegasus", 4)
    with pytest.raises(CaloforgeError, match="unknown KL method"):
        product_kl(machine("pegasus", 6), method="magic", seed=0)
    with pytest.raises(CaloforgeError, match="exact KL enumerates at most 20"):
        product_kl(machine("pegasus", 6), method="exact", seed=0)
    with pytest.raises(CaloforgeError, match=r"must have shape \(rows, 4\)"):
        diagnose_prior(bm, clamp={3: torch.zeros(2, 3)}, seed=0)
    with pytest.raises(CaloforgeError, match="not a partition index"):
        diagnose_prior(bm, clamp={9: torch.zeros(4)}, seed=0)
    with pytest.raises(CaloforgeError, match="n_sweeps >= 16"):
        mixing_stats(bm, seed=0, n_sweeps=4)
