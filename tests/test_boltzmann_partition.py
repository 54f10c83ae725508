"""log Z: enumeration against a hand sum, AIS against enumeration; chain diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from caloforge.boltzmann import (
    BoltzmannMachine,
    ais_log_partition,
    autocorrelation_time,
    burn_in_sweeps,
    effective_sample_size,
    exact_log_partition,
    make_topology,
)
from caloforge.boltzmann.partition import all_states, state_index
from caloforge.errors import CaloforgeError


def test_exact_log_partition_of_a_two_unit_machine_by_hand():
    bm = BoltzmannMachine(make_topology("rbm-dense", 1))
    with torch.no_grad():
        bm.bias.copy_(torch.tensor([0.3, -1.2]))
        bm.weight[0, 1] = 0.7
    by_hand = math.log(1 + math.exp(0.3) + math.exp(-1.2) + math.exp(0.3 - 1.2 + 0.7))
    assert exact_log_partition(bm) == pytest.approx(by_hand, abs=1e-6)
    assert exact_log_partition(bm, beta=0.0) == pytest.approx(math.log(4))


def test_state_index_inverts_all_states():
    assert torch.equal(state_index(all_states(5)), torch.arange(32))


@pytest.mark.parametrize(
    ("kind", "n", "scale"),
    [("rbm-dense", 6, 0.6), ("chimera", 8, 1.0), ("pegasus", 4, 0.8), ("zephyr", 4, 0.6)],
)
def test_ais_matches_exact_log_partition(kind, n, scale):
    # 12-16 units: enumeration is exact. AIS must agree within 4 of its own standard errors
    # plus 0.01 for its small downward bias (log of an unbiased estimate of Z).
    bm = BoltzmannMachine.random(make_topology(kind, n), weight_scale=scale, seed=3)
    exact = exact_log_partition(bm)
    log_z, stderr = ais_log_partition(bm, n_chains=500, n_betas=300, seed=1)
    assert stderr < 0.05
    assert abs(log_z - exact) < 4 * stderr + 0.01, (log_z, stderr, exact)


def test_ais_error_shrinks_with_more_steps():
    bm = BoltzmannMachine.random(make_topology("pegasus", 4), weight_scale=1.5, seed=2)
    _, coarse = ais_log_partition(bm, n_chains=300, n_betas=10, seed=0)
    _, fine = ais_log_partition(bm, n_chains=300, n_betas=300, seed=0)
    assert fine < coarse / 3


def test_enumeration_refuses_machines_too_large():
    bm = BoltzmannMachine(make_topology("pegasus", 7))
    with pytest.raises(CaloforgeError, match="limited to 24 units; this machine has 28"):
        exact_log_partition(bm)


# ------------------------------------------------------------------ diagnostics


def ar1(phi: float, t: int, chains: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty((t, chains))
    x[0] = rng.normal(size=chains) / math.sqrt(1 - phi**2)
    for k in range(1, t):
        x[k] = phi * x[k - 1] + rng.normal(size=chains)
    return x


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_autocorrelation_time_of_an_ar1_process(phi):
    # AR(1): rho(t) = phi^t, tau = (1 + phi) / (1 - phi) = 1, 3, 19
    x = ar1(phi, 4000, 16, seed=int(phi * 10))
    tau = autocorrelation_time(x)
    assert tau == pytest.approx((1 + phi) / (1 - phi), rel=0.1)
    assert effective_sample_size(x) == pytest.approx(x.size / tau)
    assert autocorrelation_time(x[:, 0]) == pytest.approx((1 + phi) / (1 - phi), rel=0.3)


def test_burn_in_is_found_where_the_mean_settles():
    x = ar1(0.0, 400, 500, seed=1)
    x[:30] += np.linspace(10, 0, 30, endpoint=False)[:, None]  # a relaxing start
    assert 25 <= burn_in_sweeps(x) <= 31


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.ones(100), "the series is constant"),
        (np.zeros((2, 3)), "at least 4 steps"),
        (np.zeros((5, 2, 2)), r"expected a \(T,\) or \(T, chains\) series"),
        (np.array([1.0, np.nan, 2.0, 3.0]), "NaN or infinite"),
    ],
)
def test_diagnostics_reject_unusable_series(x, match):
    with pytest.raises(CaloforgeError, match=match):
        autocorrelation_time(x)
