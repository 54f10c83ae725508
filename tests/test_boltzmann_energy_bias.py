"""Energy conditioning by biases: the code partition couples to every unit, and clamping it
shifts each free unit's bias by a linear function of the code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloforge.boltzmann import BoltzmannError, BoltzmannMachine, make_topology
from caloforge.boltzmann.energy_bias import with_energy_code


@pytest.mark.parametrize("kind", ["rbm-dense", "pegasus"])
def test_code_partition_is_prepended_and_coupled_to_every_unit(kind):
    base = make_topology(kind, 6)
    topo = with_energy_code(base, 4)
    assert topo.partition_sizes == (4, *base.partition_sizes)
    assert topo.n_couplers == base.n_couplers + 4 * base.n_units
    mask = topo.mask
    assert not mask[:4, :4].any(), "code units must not couple to each other"
    assert mask[:4, 4:].all(), "every code unit couples to every base unit"
    # the base couplers are kept, shifted by the code size
    assert torch.equal(mask[4:, 4:], base.mask)
    assert topo.qubits is None and topo.meta["energy_code_units"] == 4
    assert topo.meta["base_qubits"] == (None if base.qubits is None else list(base.qubits))


def test_clamped_code_acts_as_a_linear_bias_of_the_code():
    topo = with_energy_code(make_topology("rbm-dense", 3), 5)
    bm = BoltzmannMachine.random(topo, seed=3)
    code = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.float32)
    free = torch.zeros(2, topo.n_units - 5)
    z = torch.cat([code, free], dim=1)
    w = bm.symmetric_couplings().detach()
    for p in (1, 2):
        sl = bm.partition_slices[p]
        # with the other free partition at 0 the field is b + A c exactly
        expected = bm.bias.detach()[sl] + code @ w[:5, sl]
        got = bm.conditional_logits(z, p).detach()
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_code_size_is_one_clear_error(bad):
    with pytest.raises(BoltzmannError, match="positive number of units"):
        with_energy_code(make_topology("rbm-dense", 2), bad)
