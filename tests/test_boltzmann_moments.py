"""The moment check: exact references agree, null z-scores are standard, and the check rejects
samplers that are off (negative controls).

Thresholds are those of :func:`caloforge.boltzmann.check_moments` (Bonferroni over the K tested
quantities at family-wise alpha = 1e-4, z* = 4.6-5.6 here); the negative controls below are
rejected with max |z| between 9 and 370 (measured), so none sits at the edge.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloforge.boltzmann import (
    BlockGibbsSampler,
    BoltzmannMachine,
    ExactSampler,
    SimulatedAnnealingSampler,
    check_moments,
    exact_log_partition,
    exact_moments,
    exact_probabilities,
    make_topology,
    total_variation,
    tree_moments,
    tv_bound,
)
from caloforge.boltzmann.moments import bonferroni_threshold
from caloforge.errors import CaloforgeError

N = 12_000


#: one torch thread (tests/conftest.py): small products stall on an oversubscribed CPU
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def machine(kind: str, n: int, seed: int = 0, scale: float = 0.8) -> BoltzmannMachine:
    return BoltzmannMachine.random(make_topology(kind, n), weight_scale=scale, seed=seed)


SMALL = machine("pegasus", 3, seed=2)  # 12 units, |W| ~ 0.6
STRONG = {  # 32 units, mean |W| 1.66 and 1.71
    "pegasus": machine("pegasus", 8, seed=0, scale=2.0),
    "chimera": machine("chimera", 16, seed=0, scale=2.0),
}


# ------------------------------------------------------------------ references


@pytest.mark.parametrize("beta", [1.0, 0.6])
def test_tree_decomposition_and_enumeration_give_the_same_moments(beta):
    clamp = {3: torch.tensor([1.0, 0.0, 1.0])}
    for c in (None, clamp):
        a, b = exact_moments(SMALL, beta, c), tree_moments(SMALL, beta, c)
        np.testing.assert_allclose(a.unit, b.unit, atol=1e-12)
        np.testing.assert_allclose(a.pair, b.pair, atol=1e-12)
        assert a.mean_energy == pytest.approx(b.mean_energy, abs=1e-10)
        assert a.log_partition == pytest.approx(b.log_partition, abs=1e-10)
    assert exact_moments(SMALL, beta).log_partition == pytest.approx(
        exact_log_partition(SMALL, beta), abs=1e-12
    )
    fixed = exact_moments(SMALL, beta, clamp)
    assert fixed.unit[SMALL.partitions[3].numpy()].tolist() == [1.0, 0.0, 1.0]


def test_moments_of_a_two_unit_machine_by_hand():
    bm = BoltzmannMachine(make_topology("rbm-dense", 1))
    with torch.no_grad():
        bm.bias.copy_(torch.tensor([0.3, -0.7]))
        bm.weight.zero_()
        bm.weight[0, 1] = 1.2
    w = np.exp([0.0, 0.3, -0.7, 0.3 - 0.7 + 1.2])  # states 00, 10, 01, 11
    p = w / w.sum()
    ref = exact_moments(bm)  # parameters are float32: 0.3 is stored to ~1e-8
    np.testing.assert_allclose(ref.unit, [p[1] + p[3], p[2] + p[3]], atol=1e-7)
    np.testing.assert_allclose(ref.pair, [p[3]], atol=1e-7)
    assert ref.log_partition == pytest.approx(np.log(w.sum()), abs=1e-7)


# ------------------------------------------------------------------ the null


def test_null_z_scores_are_standard_and_false_alarms_stay_below_alpha():
    # 200 independent sets of 2000 exact draws: every z should be ~ N(0, 1), so mean z^2 over
    # 200 x 51 values is 1 within ~0.03 (0.1/sqrt(#independent-ish features)); 0.85-1.15 is
    # ~5 such errors. At alpha = 0.2, Bonferroni (conservative) rejects at most 20 % of the
    # sets: the count is <= 40 + 3 sqrt(200 x 0.2 x 0.8) = 57.
    ref = exact_moments(SMALL)
    sampler = ExactSampler()
    z2, rejected = [], 0
    for k in range(200):
        check = check_moments(SMALL, sampler.sample(SMALL, 2000, seed=100 + k), ref, alpha=0.2)
        z2.append(np.concatenate([check.z_unit, check.z_pair, [check.z_energy]]) ** 2)
        rejected += not check.passed
    assert 0.85 < float(np.mean(z2)) < 1.15
    assert rejected <= 57


def test_bonferroni_threshold_values():
    assert bonferroni_threshold(1, 0.05) == pytest.approx(1.95996, abs=1e-4)
    assert bonferroni_threshold(51, 1e-4) == pytest.approx(4.76, abs=0.01)
    assert bonferroni_threshold(51, 1e-4, dof=63) > bonferroni_threshold(51, 1e-4)


# ------------------------------------------------------------------ negative controls


@pytest.mark.parametrize("kind", list(STRONG))
def test_too_few_gibbs_sweeps_on_a_strongly_coupled_machine_are_rejected(kind):
    # measured max |z|: 3 sweeps 349 (pegasus) / 160 (chimera); the same check passes 200
    # sweeps (test_boltzmann_samplers.py)
    bm = STRONG[kind]
    ref = tree_moments(bm)
    check = check_moments(bm, BlockGibbsSampler(3).sample(bm, N, seed=1), ref)
    assert not check.passed and check.max_abs_z > 2 * check.threshold, check.summary()


def test_twenty_sweeps_are_still_rejected_on_the_strong_pegasus_machine():
    # the generation default of 20 sweeps: measured max |z| = 21
    bm = STRONG["pegasus"]
    check = check_moments(bm, BlockGibbsSampler(20).sample(bm, N, seed=1), tree_moments(bm))
    assert not check.passed, check.summary()


def test_too_few_annealing_sweeps_are_rejected():
    bm = STRONG["pegasus"]
    samples = SimulatedAnnealingSampler(num_sweeps=2).sample(bm, N, seed=1)
    assert not check_moments(bm, samples, tree_moments(bm)).passed


@pytest.mark.parametrize("bm", [SMALL, STRONG["chimera"]], ids=["small", "strong"])
def test_a_ten_percent_wrong_temperature_is_rejected(bm):
    # Gibbs at beta = 1.1 checked against beta = 1: measured max |z| 17 (small), 29 (strong),
    # both on the energy
    ref = exact_moments(bm) if bm.n_units <= 20 else tree_moments(bm)
    check = check_moments(bm, BlockGibbsSampler(200, beta=1.1).sample(bm, N, seed=1), ref)
    assert not check.passed and check.max_abs_z > 2 * check.threshold, check.summary()


def test_a_biased_sampler_that_the_tv_bound_passes_is_rejected():
    # exact draws with unit 0 forced to 1 in 5 % of them: its marginal moves by 0.05 (1 - m_0)
    # ~ 10 null SDs (measured z = 9.5). The old TV test (E[TV] + McDiarmid at 1e-6) passes it:
    # TV 0.146 < bound 0.162, which is why the sampler tests use moments.
    z = ExactSampler().sample(SMALL, N, seed=4)
    z[torch.rand(N, generator=torch.Generator().manual_seed(5)) < 0.05, 0] = 1.0
    p = exact_probabilities(SMALL)
    assert total_variation(z, p) < tv_bound(p, N)
    check = check_moments(SMALL, z, exact_moments(SMALL))
    assert not check.passed and abs(check.z_unit[0]) > check.threshold, check.summary()


def test_samples_of_another_clamp_row_are_rejected():
    bm = STRONG["pegasus"]
    row_a = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    row_b = torch.tensor([0.0] * 7 + [1.0])
    samples = BlockGibbsSampler(200).sample(bm, 4000, seed=2, clamp={3: row_a.expand(4000, -1)})
    assert check_moments(bm, samples, tree_moments(bm, clamp={3: row_a})).passed
    wrong = tree_moments(bm, clamp={3: row_b})
    check = check_moments(bm, samples, wrong)
    assert not check.passed and np.isinf(check.max_abs_z)  # clamped units differ outright
    # the free units alone (clamped features fixed by the reference are excluded) also differ
    free = check.z_unit[np.r_[0:24]]
    assert np.abs(free).max() > check.threshold


# ------------------------------------------------------------------ correlated draws


def test_batch_means_accept_persistent_gibbs_chains():
    # 64 chains recorded for 400 sweeps after 100 sweeps of burn-in on the strong Pegasus
    # machine: batch means over the chains (Student t, 63 dof) accept them (max |z| 3.7
    # against z* = 5.6); fresh chains recorded for their first 3 sweeps are rejected
    bm = STRONG["pegasus"]
    ref = tree_moments(bm)
    trace = BlockGibbsSampler(1).state_trace(bm, 64, 400, seed=3, burn_in=100)
    assert trace.shape == (400, 64, 32) and trace.dtype == torch.uint8
    batch = check_moments(bm, trace, ref)
    assert batch.passed and batch.n_draws == 64, batch.summary()
    early = BlockGibbsSampler(1).state_trace(bm, 64, 3, seed=3)
    assert not check_moments(bm, early, ref).passed


def test_batch_means_account_for_autocorrelation_that_iid_errors_ignore():
    # Chains that are exact in law but sticky: each of 64 chains holds each of 20 exact draws
    # for 20 steps (tau ~ 20). Treated as 25 600 independent draws the standard errors are
    # sqrt(20) ~ 4.5 times too small and the correct "sampler" is rejected; batch means over
    # the 64 chains see 20 independent draws per chain and accept it.
    draws = ExactSampler().sample(SMALL, 64 * 20, seed=6).reshape(64, 20, 12)
    trace = draws.repeat_interleave(20, dim=1).permute(1, 0, 2)  # (400, 64, 12)
    ref = exact_moments(SMALL)
    batch = check_moments(SMALL, trace, ref)
    assert batch.passed, batch.summary()
    naive = check_moments(SMALL, trace.reshape(-1, 12), ref)
    assert not naive.passed and naive.max_abs_z > 1.5 * naive.threshold, naive.summary()


def test_state_trace_matches_sampling_and_honours_the_clamp():
    bm = SMALL
    trace = BlockGibbsSampler(1).state_trace(bm, 16, 5, seed=7, burn_in=2)
    final = BlockGibbsSampler(5, burn_in=2).sample(bm, 16, seed=7)
    assert torch.equal(trace[-1].float(), final)
    row = torch.tensor([1.0, 0.0, 1.0]).expand(16, -1)
    clamped = BlockGibbsSampler(1).state_trace(bm, 16, 4, seed=7, clamp={3: row})
    assert torch.equal(clamped[:, :, bm.partitions[3]].float(), row.expand(4, 16, 3))


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("samples", "match"),
    [
        (torch.zeros(10, 5), r"samples must be \(N, 12\)"),
        (torch.full((10, 12), 0.5), "only 0 and 1"),
        (torch.zeros(1, 12), "at least 2 draws"),
        (torch.zeros(10, 4, 12), "at least 8 chains"),
    ],
)
def test_check_moments_rejects_bad_samples(samples, match):
    with pytest.raises(CaloforgeError, match=match):
        check_moments(SMALL, samples, exact_moments(SMALL))


def test_reference_rejects_bad_clamps():
    with pytest.raises(CaloforgeError, match="one row of 3 0/1 values"):
        exact_moments(SMALL, clamp={3: torch.tensor([1.0, 0.0])})
    with pytest.raises(CaloforgeError, match="not a partition index"):
        tree_moments(SMALL, clamp={7: torch.tensor([1.0, 0.0, 1.0])})
