"""Effective-temperature calibration recovers a known beta; its plot is written."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from caloforge.boltzmann import (
    AnnealingSampler,
    BlockGibbsSampler,
    BoltzmannMachine,
    SimulatedAnnealingSampler,
    SimulatedQuantumAnnealingSampler,
    calibrate_beta,
    make_topology,
    plot_beta_calibration,
)
from caloforge.errors import CaloforgeError

N = 2000
GIBBS = BlockGibbsSampler(50)  # the target; this machine's tau is ~1.2 sweeps


#: one torch thread (tests/conftest.py): small products stall on an oversubscribed CPU
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class HiddenBetaSampler(AnnealingSampler):
    """An 'annealer' that samples exp(-beta_true H) exactly-in-law (long Gibbs chains) for the
    H = E / beta_eff it is programmed with, i.e. the machine at beta_true / beta_eff."""

    def __init__(self, beta_true: float, beta_eff: float = 1.0) -> None:
        super().__init__(beta_eff)
        self.beta_true = beta_true

    def sample_bqm(self, bqm, num_reads, seed):  # pragma: no cover - never called
        raise AssertionError

    def sample(self, bm, n_samples, *, seed, clamp=None):
        gibbs = BlockGibbsSampler(50, beta=self.beta_true / self.beta_eff)
        return gibbs.sample(bm, n_samples, seed=seed, clamp=clamp)


def machine(seed: int = 0) -> BoltzmannMachine:
    return BoltzmannMachine.random(make_topology("pegasus", 16), weight_scale=0.6, seed=seed)


@pytest.mark.parametrize("beta_true", [0.5, 2.5])
def test_calibration_recovers_a_known_beta(beta_true):
    # Precision: the Newton update stops once the mean energies agree within 2 standard errors,
    # sigma_diff = sqrt(2 Var(E) / N); a mean-energy error d corresponds to a log-beta error
    # d / Var(E) (d<E>/dlog beta = Var(E) at the answer). For this 64-unit machine Var(E) ~ 17,
    # so 2 sigma_diff / Var(E) = 2 sqrt(2 / (N Var)) ~ 1.5% at N = 2000; 5% is a safe bound.
    bm = machine()
    sampler = HiddenBetaSampler(beta_true)
    beta, history = calibrate_beta(bm, sampler, n_samples=N, seed=1, gibbs_sampler=GIBBS)
    assert history.converged
    assert beta == pytest.approx(beta_true, rel=0.05)
    assert len(history.betas) <= 8


def test_calibration_finds_the_temperature_of_fixed_temperature_annealing():
    # SA with a flat schedule at beta_sa on E / beta_eff samples the machine at beta_sa / beta_eff:
    # the calibration must find beta_eff = beta_sa.
    bm = machine(seed=3)
    sa = SimulatedAnnealingSampler(num_sweeps=40, beta_range=(2.0, 2.0))
    beta, history = calibrate_beta(bm, sa, n_samples=N, seed=2, gibbs_sampler=GIBBS)
    assert history.converged
    assert beta == pytest.approx(2.0, rel=0.05)


def test_calibrated_sqa_with_freeze_out_matches_the_mean_energy(tmp_path):
    # Frozen-out SQA reads are not Boltzmann distributed; calibration still makes their mean
    # energy agree with the machine's within the statistical error, and the plot shows it.
    bm = BoltzmannMachine.random(make_topology("rbm-dense", 4), weight_scale=0.8, seed=5)
    sqa = SimulatedQuantumAnnealingSampler(num_sweeps=20, beta_phys=2.0, s_freeze=0.6)
    beta, history = calibrate_beta(
        bm, sqa, n_samples=1000, seed=3, max_iter=10, gibbs_sampler=GIBBS
    )
    assert history.converged and beta > 0
    diff = abs(history.annealer_means[-1] - history.gibbs_mean)
    assert diff <= 2 * math.hypot(history.annealer_stderrs[-1], history.gibbs_stderr)
    path = tmp_path / "plots" / "beta.png"
    plot_beta_calibration(history, path)
    assert path.stat().st_size > 10_000
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_calibration_rejects_a_non_annealing_sampler():
    with pytest.raises(CaloforgeError, match="needs an annealing sampler"):
        calibrate_beta(machine(), BlockGibbsSampler(), n_samples=10, seed=0)


def test_calibration_is_deterministic_given_the_seed():
    bm = machine(seed=4)
    sa = SimulatedAnnealingSampler(num_sweeps=20, beta_range=(1.5, 1.5))
    a = calibrate_beta(bm, sa, n_samples=500, seed=9, max_iter=3, gibbs_sampler=GIBBS)
    b = calibrate_beta(bm, sa, n_samples=500, seed=9, max_iter=3, gibbs_sampler=GIBBS)
    assert a[0] == b[0] and a[1].betas == b[1].betas
    assert torch.equal(torch.as_tensor(a[1].gibbs_energies), torch.as_tensor(b[1].gibbs_energies))


# ------------------------------------------------------------------ clamped (conditioned) prior


def clamp_rows(bm: BoltzmannMachine, n: int, partition: int = 3) -> dict[int, torch.Tensor]:
    """Four distinct codes on ``partition``, cycled over the n samples (like energy codes)."""
    size = bm.topology.partition_sizes[partition]
    gen = torch.Generator().manual_seed(11)
    codes = (torch.rand(4, size, generator=gen) < 0.5).float()
    return {partition: codes[torch.arange(n) % 4]}


@pytest.mark.parametrize("beta_true", [0.5, 2.5])
def test_clamped_calibration_recovers_a_known_beta(beta_true):
    # same precision argument as the unclamped test, with the within-row variance
    bm = machine()
    clamp = clamp_rows(bm, N)
    sampler = HiddenBetaSampler(beta_true)
    beta, history = calibrate_beta(
        bm, sampler, n_samples=N, seed=1, gibbs_sampler=GIBBS, clamp=clamp
    )
    assert history.converged
    assert beta == pytest.approx(beta_true, rel=0.05)


def test_clamped_calibration_finds_the_temperature_of_fixed_temperature_annealing():
    bm = machine(seed=3)
    sa = SimulatedAnnealingSampler(num_sweeps=40, beta_range=(2.0, 2.0))
    beta, history = calibrate_beta(
        bm, sa, n_samples=N, seed=2, gibbs_sampler=GIBBS, clamp=clamp_rows(bm, N)
    )
    assert history.converged
    assert beta == pytest.approx(2.0, rel=0.05)


def test_clamped_target_is_the_conditional_mean_energy_with_the_within_row_error():
    # 12-unit machine: the target mean must be the exact conditional mean energy averaged over
    # the samples' rows (4 standard errors), not the unclamped mean; its standard error uses
    # the within-row variance, smaller than the total one when rows differ.
    from caloforge.boltzmann import exact_moments

    bm = BoltzmannMachine.random(make_topology("pegasus", 3), weight_scale=1.0, seed=2)
    clamp = clamp_rows(bm, N)
    sa = SimulatedAnnealingSampler(num_sweeps=40)
    _, history = calibrate_beta(
        bm, sa, n_samples=N, seed=4, gibbs_sampler=GIBBS, clamp=clamp, max_iter=1
    )
    codes, which = torch.unique(clamp[3], dim=0, return_inverse=True)
    per_row = [exact_moments(bm, clamp={3: code}).mean_energy for code in codes]
    expected = float(np.mean(np.asarray(per_row)[which.numpy()]))
    unclamped = exact_moments(bm).mean_energy
    assert abs(history.gibbs_mean - expected) < 4 * history.gibbs_stderr
    assert abs(history.gibbs_mean - unclamped) > 10 * history.gibbs_stderr
    total = history.gibbs_energies.std(ddof=1) / math.sqrt(N)
    assert history.gibbs_stderr < total


def test_clamped_calibration_rejects_a_bad_clamp():
    bm = machine()
    with pytest.raises(CaloforgeError, match=r"clamp of partition 3 must have shape"):
        calibrate_beta(
            bm, SimulatedAnnealingSampler(), n_samples=10, seed=0, clamp={3: torch.zeros(5, 16)}
        )
