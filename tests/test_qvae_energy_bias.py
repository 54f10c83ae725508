"""The QVAE's energy conditioning by biases (``energy_conditioning: "bias"``): a clamped code
partition coupled to every free unit, for any topology (also the two-partite ``rbm-dense``)."""

from __future__ import annotations

import pytest
import torch

from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.models.base import load_generator
from caloforge.models.qvae import QVAE, QVAEConfig, thermometer_code
from caloforge.refsim import simulate

TINY = {
    "topology": "rbm-dense",
    "units_per_partition": 6,
    "energy_conditioning": "bias",
    "energy_code_units": 5,
    "hidden": 16,
    "batch_size": 16,
    "gibbs_sweeps_sample": 3,
    "diagnose_chains": 8,
    "diagnose_sweeps": 16,
}


@pytest.fixture(scope="module")
def photons():
    return simulate("ds1-photons", "photon", "loguniform:1e3:1e5", n=64, seed=5)


def test_default_is_clamping_and_rbm_dense_stays_unconditioned_by_default():
    assert QVAEConfig().energy_conditioning == "clamp"
    model = QVAE(get_geometry("ds1-photons"), {"topology": "rbm-dense", "units_per_partition": 4})
    assert model.latents.cond_partition is None and model.prior is not None
    assert model.prior.topology.partition_sizes == (4, 4)


@pytest.mark.parametrize(("topology", "n_free_parts"), [("rbm-dense", 2), ("pegasus", 4)])
def test_bias_conditioning_adds_a_code_partition_coupled_to_every_free_unit(topology, n_free_parts):
    model = QVAE(get_geometry("ds1-photons"), {**TINY, "topology": topology})
    topo = model.prior.topology
    assert model.latents.cond_partition == 0
    assert topo.partition_sizes == (5, *([6] * n_free_parts))
    # every free partition is an encoder level; the code partition is not
    assert model.latents.level_partitions == list(range(1, n_free_parts + 1))
    assert topo.mask[:5, 5:].all() and not topo.mask[:5, :5].any()


def test_trained_bias_conditioned_prior_clamps_the_code_and_reloads(photons, tmp_path):
    model = QVAE(get_geometry("ds1-photons"), TINY)
    model.fit(photons, out_dir=tmp_path, epochs=1, seed=0, progress=False)
    e = torch.tensor([[2e3], [5e4], [9e4]])
    z = model.latent_inputs(e.numpy().reshape(-1), seed=1)[0]
    assert torch.equal(z[:, :5], thermometer_code(e, 5))
    again = load_generator(tmp_path)
    assert again.latents.cond_partition == 0
    assert torch.equal(again.prior.coupling_mask, model.prior.coupling_mask)
    assert torch.equal(again.latent_inputs(e.numpy().reshape(-1), seed=1)[0], z)


def test_bad_conditioning_option_is_one_clear_sentence():
    with pytest.raises(ConfigError, match="energy_conditioning"):
        QVAE(get_geometry("ds1-photons"), {"energy_conditioning": "flux"})
