"""The two latent spaces of the VAE family (caloforge.models.vae_latents), on their own and as
the QVAE / VAE use them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloforge.errors import ConfigError
from caloforge.geometry import get_geometry
from caloforge.models.qvae import QVAE, GaussianVAE, HierarchicalEncoder
from caloforge.models.vae_latents import BoltzmannLatents, GaussianLatents, thermometer_code


def _encoder(space, n_in: int = 5, seed: int = 0):
    torch.manual_seed(seed)
    enc = HierarchicalEncoder(n_in, 8, space.level_sizes, space.stats_per_unit)
    x, e_feat = torch.randn(6, n_in), torch.zeros(6, 1)
    return lambda draw: enc(x, e_feat, draw)


def test_gaussian_kl_is_the_analytic_one():
    space = GaussianLatents(3)
    # an encoder whose statistics are (mu, logvar) = (1, 0) for every unit
    stats = torch.cat([torch.ones(6, 3), torch.zeros(6, 3)], dim=1)

    def encode(draw):
        s1 = draw(stats)
        return [stats, stats], [s1, draw(stats)]

    z, kl = space.relaxed_posterior(encode, torch.ones(6, 1), 1.0, torch.Generator())
    assert z.shape == (6, 6)
    # KL(N(1, 1) || N(0, 1)) = mu^2 / 2 = 0.5 per unit, 6 units
    assert float(kl) == pytest.approx(3.0)
    hard = space.hard_posterior(encode, torch.ones(6, 1), torch.Generator())
    torch.testing.assert_close(hard, torch.ones(6, 6))  # the posterior mean


def test_boltzmann_levels_skip_the_clamped_partition():
    space = BoltzmannLatents("pegasus", 4, topology_seed=0, condition=True)
    assert space.cond_partition == 0 and space.level_partitions == [1, 2, 3]
    assert space.level_sizes == [4, 4, 4] and space.n_latent == 16
    assert sorted(space.free_units.tolist()) == list(range(4, 16))
    bipartite = BoltzmannLatents("chimera", 4, topology_seed=0, condition=True)
    assert bipartite.cond_partition is None and bipartite.clamp(torch.ones(2, 1)) is None


def test_boltzmann_hard_posterior_is_binary_with_the_energy_code_in_place():
    space = BoltzmannLatents("pegasus", 4, topology_seed=0, condition=True)
    e = torch.tensor([[1e3], [1e3], [1e4], [1e4], [1e6], [1e6]])
    z = space.hard_posterior(_encoder(space), e, torch.Generator().manual_seed(0))
    assert z.shape == (6, 16) and set(z.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(z[:, :4], thermometer_code(e, 4))


def test_boltzmann_kl_needs_its_chains_and_then_resumes_them():
    space = BoltzmannLatents("pegasus", 4, topology_seed=0, condition=True)
    e = torch.full((6, 1), 1e4)
    with pytest.raises(RuntimeError, match="start_kl_chains"):
        space.relaxed_posterior(_encoder(space), e, 0.5, torch.Generator())
    space.start_kl_chains(2, persistent=True)
    z, kl = space.relaxed_posterior(_encoder(space), e, 0.5, torch.Generator().manual_seed(1))
    assert z.shape == (6, 16) and torch.isfinite(kl)
    chains = space.chain_tensors()["gibbs_chains"]
    other = BoltzmannLatents("pegasus", 4, topology_seed=0, condition=True)
    other.start_kl_chains(2, persistent=True)
    other.load_chain_tensors({"gibbs_chains": chains})
    torch.testing.assert_close(other.chain_tensors()["gibbs_chains"], chains)
    # keep=True leaves running chains alone (validation outside training)
    space.start_kl_chains(7, persistent=False, keep=True)
    torch.testing.assert_close(space.chain_tensors()["gibbs_chains"], chains)


def test_sampler_choice_is_recorded_and_refused_by_the_gaussian_prior():
    space = BoltzmannLatents("zephyr", 4, topology_seed=0, condition=True)
    assert space.description()["sampler"] is None
    space.set_sampler("gibbs", n_sweeps=3)
    assert space.latent_input().sampler == "gibbs"
    assert space.description()["sampler"] == {"name": "gibbs", "n_sweeps": 3}
    z = space.prior_sample(torch.full((5, 1), 1e4), seed=0, gen=torch.Generator())
    assert z.shape == (5, 16)
    with pytest.raises(ConfigError, match="no Boltzmann prior"):
        GaussianLatents(2).set_sampler("gibbs")
    with pytest.raises(ConfigError, match="Gaussian prior"):
        GaussianLatents(2).boltzmann("vae")


def test_the_models_hold_the_matching_space():
    geo = get_geometry("ds1-photons")
    qvae = QVAE(geo, {"units_per_partition": 4, "hidden": 8})
    vae = GaussianVAE(geo, {"units_per_partition": 4, "hidden": 8})
    assert isinstance(qvae.latents, BoltzmannLatents) and qvae.prior is qvae.latents.machine
    assert "prior" in qvae.modules() and "prior" not in vae.modules()
    assert isinstance(vae.latents, GaussianLatents) and vae.prior is None
    assert qvae.takes_prior_sampler and not vae.takes_prior_sampler
    assert vae.latent_spec()[0].distribution == "normal(0, 1)"
    assert qvae.prior_description["sampler"]["name"] == "gibbs"
    with pytest.raises(ConfigError, match="no Boltzmann prior"):
        vae.set_sampler("gibbs")
    z = vae.latent_inputs(np.array([1e4, 2e4]), seed=0)[0]
    assert z.shape == (2, 8)
