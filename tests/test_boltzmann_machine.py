"""The machine's energy, its Ising equivalent (property test) and input checks."""

from __future__ import annotations

import dimod
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from caloforge.boltzmann import BoltzmannMachine, make_topology, to_ising
from caloforge.boltzmann.machine import check_clamp
from caloforge.errors import CaloforgeError

TOPOLOGIES = {
    "rbm-dense": make_topology("rbm-dense", 3),
    "dense-4partite": make_topology("dense-4partite", 2),
    "chimera": make_topology("chimera", 4),
    "pegasus": make_topology("pegasus", 3),
}


def test_energy_matches_the_definition_summed_pair_by_pair():
    bm = BoltzmannMachine.random(TOPOLOGIES["pegasus"], weight_scale=1.0, seed=4)
    z = (torch.rand(7, bm.n_units, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    b = bm.bias.detach().double()
    w = bm.weight.detach().double()
    mask = TOPOLOGIES["pegasus"].mask
    expected = []
    for row in z.double():
        e = -float(b @ row)
        for i in range(bm.n_units):
            for j in range(i + 1, bm.n_units):
                if mask[i, j]:
                    e -= float(w[i, j] * row[i] * row[j])
        expected.append(e)
    assert torch.allclose(
        bm.energy(z).double(), torch.tensor(expected, dtype=torch.float64), atol=1e-5
    )


def test_energy_is_differentiable_in_bias_and_weight_on_couplers_only():
    bm = BoltzmannMachine.random(TOPOLOGIES["chimera"], seed=1)
    z = torch.ones(3, bm.n_units)
    bm.energy(z).sum().backward()
    assert torch.allclose(bm.bias.grad, -3 * torch.ones(bm.n_units))
    coupled = torch.triu(TOPOLOGIES["chimera"].mask, 1)
    assert torch.all(bm.weight.grad[coupled] == -3)
    assert torch.all(bm.weight.grad[~coupled] == 0)


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(sorted(TOPOLOGIES)),
    seed=st.integers(0, 10_000),
    scale=st.floats(0.01, 5.0),
    beta=st.floats(0.1, 10.0),
)
def test_ising_energy_equals_machine_energy_over_beta(kind, seed, scale, beta):
    bm = BoltzmannMachine.random(TOPOLOGIES[kind], weight_scale=scale, bias_scale=scale, seed=seed)
    bqm = to_ising(bm, beta)
    assert bqm.vartype is dimod.SPIN
    gen = torch.Generator().manual_seed(seed)
    z = (torch.rand(16, bm.n_units, generator=gen) < 0.5).float()
    spins = 2 * z.numpy().astype(np.int8) - 1
    ising = bqm.energies((spins, list(range(bm.n_units))))
    machine = bm.energy(z).detach().double().numpy() / beta
    # with the offset the energies agree exactly; without it, up to one constant
    np.testing.assert_allclose(ising, machine, rtol=1e-5, atol=1e-4 * scale * bm.n_units)
    shifted = ising - bqm.offset
    np.testing.assert_allclose(np.ptp(shifted - machine), 0.0, atol=1e-4 * scale * bm.n_units)


def test_ising_coefficients_follow_the_textbook_map():
    bm = BoltzmannMachine.random(make_topology("rbm-dense", 1), weight_scale=1.0, seed=0)
    b0, b1 = bm.bias.detach().double().tolist()
    w = float(bm.couplings().detach()[0, 1])
    bqm = to_ising(bm, 2.0)
    assert bqm.quadratic[(0, 1)] == pytest.approx(-w / 4 / 2)
    assert bqm.linear[0] == pytest.approx((-b0 / 2 - w / 4) / 2)
    assert bqm.linear[1] == pytest.approx((-b1 / 2 - w / 4) / 2)


@pytest.mark.parametrize(
    ("z", "match"),
    [
        (torch.zeros(4, 5), r"must be a \(batch, 12\) tensor"),
        (torch.full((2, 12), float("nan")), "NaN or infinite"),
    ],
)
def test_bad_states_raise(z, match):
    bm = BoltzmannMachine(TOPOLOGIES["pegasus"])
    with pytest.raises(CaloforgeError, match=match):
        bm.energy(z)


@pytest.mark.parametrize(
    ("clamp", "match"),
    [
        ({7: torch.zeros(2, 3)}, "clamp key 7 is not a partition index"),
        ({0: torch.zeros(3, 3)}, r"must have shape \(2, 3\)"),
        ({0: torch.full((2, 3), 0.5)}, "only 0 and 1 values"),
        ({p: torch.zeros(2, 3) for p in range(4)}, "leave at least one free"),
    ],
)
def test_bad_clamps_raise(clamp, match):
    bm = BoltzmannMachine(TOPOLOGIES["pegasus"])
    with pytest.raises(CaloforgeError, match=match):
        check_clamp(bm, 2, clamp)
