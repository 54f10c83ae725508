"""Refit a trained QVAE's Boltzmann prior to the encoder's aggregate posterior.

During training the prior chases a moving target: the encoder changes every step, the KL term
pulls the posterior towards the prior, and the persistent chains run only a few sweeps per step.
The prior ends up close to the product of its own marginals (docs/qvae.md, "Prior scan"). This
phase runs after the last epoch with the encoder and decoder frozen: persistent contrastive
divergence on hard posterior samples of the training showers, i.e. the same maximum-likelihood
gradient the prior gets in training, with more sweeps and no moving target.

    >>> from caloforge.models.qvae_prior_refit import RefitSettings
    >>> RefitSettings(steps=300).sweeps
    20

The QVAE runs it when its option ``prior_refit_steps`` is above 0
(:meth:`caloforge.models.qvae.QVAE.after_training`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from caloforge.io import Showers
    from caloforge.models.vae_latents import LatentSpace


class PosteriorModel(Protocol):
    """What :func:`refit_prior` needs of a model: its latent space (with a Boltzmann prior)
    and hard posterior samples. :class:`caloforge.models.qvae.QVAE` is one; the protocol keeps
    this module from importing the model that calls it."""

    @property
    def model_name(self) -> str: ...

    @property
    def latents(self) -> LatentSpace: ...

    def posterior_latents(self, showers: Showers, *, seed: int) -> torch.Tensor: ...


@dataclass(frozen=True)
class RefitSettings:
    """Settings of :func:`refit_prior`.

    Attributes:
        steps: number of PCD updates of the prior's parameters.
        sweeps: block-Gibbs sweeps of the persistent chains per update.
        lr: Adam learning rate of the prior's parameters.
        draws: hard posterior samples drawn per training shower (the data of the fit).
        batch: posterior samples and persistent chains per update.
    """

    steps: int
    sweeps: int = 20
    lr: float = 3e-3
    draws: int = 4
    batch: int = 1024


def refit_prior(
    model: PosteriorModel, showers: Showers, settings: RefitSettings, *, seed: int
) -> dict[str, Any]:
    """Fit ``model``'s Boltzmann prior further to the aggregate posterior of ``showers``.

    The data are ``settings.draws`` hard samples of q(z | x, E) per shower, (draws * N,
    n_units); each update draws ``settings.batch`` of them, runs the persistent chains
    ``settings.sweeps`` sweeps clamped to the same rows' energy codes and steps Adam on
    ``<E(z_data)> - <E(z_model)>``. Only the prior's parameters change, in place. The run is
    deterministic for a seed (its own generators; the global RNG is not touched).

    Returns a summary: the settings and the largest coupler moment mismatch
    ``|<z_i z_j>_data - <z_i z_j>_model|`` over the graph's couplers at the first and the last
    update (the second should be the smaller).
    """
    from caloforge.boltzmann import BlockGibbsSampler

    latents = model.latents.boltzmann(model.model_name)
    bm = latents.machine
    device = bm.bias.device
    s = settings
    e = torch.as_tensor(np.asarray(showers.incident_energies, dtype=np.float32)).reshape(-1, 1)
    with torch.no_grad():
        z = torch.cat([model.posterior_latents(showers, seed=seed + d) for d in range(s.draws)])
    e = e.repeat(s.draws, 1)
    gen = torch.Generator().manual_seed(seed)
    sampler = BlockGibbsSampler(n_sweeps=s.sweeps, persistent=True, num_threads=1)
    opt = torch.optim.Adam(bm.parameters(), lr=s.lr)
    coupler = bm.coupling_mask + bm.coupling_mask.T
    mismatch: list[float] = []
    for step in range(s.steps):
        idx = torch.randint(0, len(z), (s.batch,), generator=gen)
        zd = z[idx].to(device)
        with torch.no_grad():
            zm = sampler.sample(
                bm,
                s.batch,
                seed=int(torch.randint(0, 2**31 - 1, (1,), generator=gen)),
                clamp=latents.clamp(e[idx].to(device)),
            )
        loss = bm.energy(zd).mean() - bm.energy(zm).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in (0, s.steps - 1):
            with torch.no_grad():
                d = (zd.T @ zd - zm.T @ zm) / s.batch
                mismatch.append(float((d * coupler).abs().max()))
    return {**asdict(s), "seed": int(seed), "max_coupler_moment_mismatch_first_last": mismatch}


__all__ = ["PosteriorModel", "RefitSettings", "refit_prior"]
