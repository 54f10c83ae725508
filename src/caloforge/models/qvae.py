"""The quantum-assisted VAE: a discrete VAE with a Boltzmann-machine prior on an annealer graph.

The CaloQVAE / Calo4pQVAE design, in four parts:

* **Preprocessing** -- voxel energies become fractions u = x / (s E_inc) in [0, 1] (s fitted so
  that no training shower exceeds 1), then y = logit(eps + (1 - 2 eps) u), standardised per voxel
  over the voxels that are hit. Hits are ``x > 0`` (files are already thresholded).
* **Encoder** -- hierarchical: a trunk reads (y, hits, log E_inc); level k emits the logits of
  partition k of the binary latent units from the trunk features and the samples of levels
  < k. Training uses the binary-concrete (Gumbel) relaxation with a temperature annealed from
  ``tau_start`` to ``tau_end``; evaluation uses hard samples.
* **Decoder** -- conditioned on log E_inc; x = a * h: hit logits (is the voxel above
  threshold) and a Gaussian (mean, log-sigma) over the standardised logit energy, trained with
  BCE on hits plus the Gaussian negative log-likelihood of the hit voxels' energies, summed over
  voxels. Generation samples both. With ``response_head`` the decoder also emits a Gaussian
  over the logit of the shower's response E_dep / (s E_inc), trained by its likelihood; at
  generation the sampled voxel energies are rescaled so that they sum to a response drawn from
  it (the total energy is then modelled once, not as a sum of independent voxel draws).
* **Prior** -- a :class:`~caloforge.boltzmann.BoltzmannMachine` on a real annealer topology
  (``rbm-dense``, ``chimera``: bipartite; ``dense-4partite``, ``pegasus``, ``zephyr``:
  four-partite). With
  ``condition_prior`` one partition is clamped to a thermometer code of log E_inc, so the prior
  itself is conditioned (the conditioned four-partite design). The KL term is
  -H(q) + <E(z)>_q - <E(z)>_model, the last from persistent block-Gibbs chains; its gradient
  is that of KL(q || p) including log Z.

``prior="gaussian"`` swaps the Boltzmann machine for a standard-normal prior with the same
encoder and decoder (the baseline registered as ``vae``).

Generation: :meth:`QVAE.latent_inputs` draws prior samples with the sampler chosen by
:meth:`QVAE.set_sampler` (``gibbs``, ``sa``, ``sqa``, ``qpu``) plus uniform noise for the hit
draws and normal noise for the energies; :meth:`QVAE.inference_module` is the deterministic
decoder that maps them to MeV.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from caloforge.errors import ConfigError
from caloforge.geometry import Geometry
from caloforge.io import Showers
from caloforge.models.base import Generator, LatentInput, register_model
from caloforge.models.config import ModelConfig, option
from caloforge.models.training import StepContext, TrainingPlan
from caloforge.models.vae_latents import (
    LOG_E_MAX,
    LOG_E_MIN,
    BoltzmannLatents,
    Encode,
    GaussianLatents,
    LatentSpace,
    thermometer_code,
)
from caloforge.seeding import derive_seed

if TYPE_CHECKING:
    from caloforge.boltzmann import BoltzmannMachine
    from caloforge.boltzmann.prior_diagnostics import PriorDiagnostics

#: model.json state key of the Gibbs sweep count measured at the end of training
PRIOR_SWEEPS_KEY = "prior_sweeps"
#: model.json state key of the summary of the diagnostics measured at the end of training
PRIOR_DIAGNOSTICS_KEY = "prior_diagnostics"
#: model.json state key of the summary of the prior's refit phase (option prior_refit_steps)
PRIOR_REFIT_KEY = "prior_refit"
#: optimizer-file prefix of the trained prior's parameters kept when the prior is refitted
TRAINED_PRIOR = "trained_prior"
#: incident energies (MeV) whose codes clamp the prior in diagnostics when none are given
DEFAULT_DIAGNOSTIC_ENERGIES = (1e3, 1e4, 1e5, 1e6)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the metadata of a safetensors file."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def energy_feature(e_inc: torch.Tensor) -> torch.Tensor:
    """log E_inc mapped to about [-1, 1] over 100 MeV .. 10 TeV: (N, 1) MeV -> (N, 1)."""
    return 2 * (torch.log(e_inc) - LOG_E_MIN) / (LOG_E_MAX - LOG_E_MIN) - 1


def mlp(sizes: list[int], final_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_act:
            layers += [nn.LayerNorm(b), nn.SiLU()]
    return nn.Sequential(*layers)


class HierarchicalEncoder(nn.Module):
    """q(z | x, E): a trunk and one head per latent level; level k sees the samples of levels < k.

    Each head emits ``stats_per_unit`` numbers per latent unit: 1 (Bernoulli logits) or 2
    (Gaussian mean and log-variance).
    """

    def __init__(
        self, n_in: int, hidden: int, level_sizes: list[int], stats_per_unit: int = 1
    ) -> None:
        super().__init__()
        self.trunk = mlp([n_in + 1, hidden, hidden], final_act=True)
        self.heads = nn.ModuleList()
        prev = 0
        for size in level_sizes:
            self.heads.append(mlp([hidden + prev, hidden // 2, stats_per_unit * size]))
            prev += size

    def forward(
        self, x: torch.Tensor, e_feat: torch.Tensor, draw
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Returns per level (logits, samples); ``draw(logits) -> samples`` picks relaxed or hard."""
        h = self.trunk(torch.cat([x, e_feat], dim=1))
        logits: list[torch.Tensor] = []
        samples: list[torch.Tensor] = []
        for head in self.heads:
            lg = head(torch.cat([h, *samples], dim=1))
            logits.append(lg)
            samples.append(draw(lg))
        return logits, samples


LOG_SIGMA_MIN, LOG_SIGMA_MAX = -5.0, 1.0  # bounds of the energy head's log-width


class Decoder(nn.Module):
    """p(x | z, E): hit logits, and a Gaussian over standardised logit energies; each (N, V).

    Returns (hit logits, energy mean, energy log-sigma). Sampling the energy instead of taking
    its mean keeps voxel fluctuations and avoids the bias of sigmoid(mean) < mean(sigmoid).
    With ``response_head``, :meth:`with_response` also gives a Gaussian (mean, log-sigma), each
    (N,), over the logit of the shower's response E_dep / (s E_inc) (see :class:`ShowerCodec`).
    With ``n_layers`` > 0 (the layer head), :meth:`with_layers` adds a Gaussian (mean,
    log-sigma), each (N, L), over the logits of the layers' stick-breaking shares
    (:meth:`ShowerCodec.layer_logits`).
    """

    def __init__(
        self,
        n_latent: int,
        hidden: int,
        n_voxels: int,
        response_head: bool = False,
        n_layers: int = 0,
    ) -> None:
        super().__init__()
        self.body = mlp([n_latent + 1, hidden, 2 * hidden], final_act=True)
        self.hit = nn.Linear(2 * hidden, n_voxels)
        self.energy = nn.Linear(2 * hidden, n_voxels)
        # the width varies smoothly across voxels: a rank-32 head costs 1/16 of a full one
        self.log_sigma = nn.Sequential(nn.Linear(2 * hidden, 32), nn.Linear(32, n_voxels))
        self.response_stats = nn.Linear(2 * hidden, 2) if response_head else None
        self.layer_stats = nn.Linear(2 * hidden, 2 * n_layers) if n_layers > 0 else None

    def forward(
        self, z: torch.Tensor, e_feat: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._heads(self.body(torch.cat([z, e_feat], dim=1)))

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.hit(h), self.energy(h), self.log_sigma(h).clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)

    def _response(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.response_stats is None:
            raise RuntimeError("this decoder was built without a response head")
        stats = self.response_stats(h)
        return stats[:, 0], stats[:, 1].clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)

    def with_response(
        self, z: torch.Tensor, e_feat: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`forward`'s three heads plus the response's (mean, log-sigma), each (N,)."""
        h = self.body(torch.cat([z, e_feat], dim=1))
        return (*self._heads(h), *self._response(h))

    def with_layers(self, z: torch.Tensor, e_feat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """:meth:`with_response`'s five outputs plus the layer shares' (mean, log-sigma), each
        (N, L)."""
        if self.layer_stats is None:
            raise RuntimeError("this decoder was built without a layer head")
        h = self.body(torch.cat([z, e_feat], dim=1))
        mean, log_sigma = self.layer_stats(h).chunk(2, dim=1)
        return (
            *self._heads(h),
            *self._response(h),
            mean,
            log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX),
        )


class ShowerCodec(nn.Module):
    """The fitted preprocessing: MeV showers <-> (hits, standardised logit energies).

    Buffers: ``scale`` (s, scalar), ``mean`` and ``std`` (V,) of the logit energy of hit voxels.
    """

    scale: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, n_voxels: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("mean", torch.zeros(n_voxels))
        self.register_buffer("std", torch.ones(n_voxels))

    def fit(self, x: torch.Tensor, e_inc: torch.Tensor) -> None:
        ratio = x.sum(1) / e_inc.reshape(-1)
        self.scale.fill_(max(1.0, float(ratio.max()) * 1.05))
        y = self._logit(x, e_inc)
        hits = (x > 0).float()
        n = hits.sum(0)
        glob_mean = (y * hits).sum() / hits.sum().clamp_min(1)
        glob_var = (((y - glob_mean) * hits) ** 2).sum() / hits.sum().clamp_min(1)
        mean = torch.where(n >= 10, (y * hits).sum(0) / n.clamp_min(1), glob_mean)
        var = torch.where(n >= 10, (((y - mean) * hits) ** 2).sum(0) / n.clamp_min(1), glob_var)
        self.mean.copy_(mean)
        self.std.copy_(var.sqrt().clamp_min(1e-2))

    def _logit(self, x: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        return self._logit_of(x / (self.scale * e_inc.reshape(-1, 1)))

    def _logit_of(self, u: torch.Tensor) -> torch.Tensor:
        """Fractions u in [0, 1] -> logit(eps + (1 - 2 eps) u), finite at 0 and 1."""
        u = self.eps + (1 - 2 * self.eps) * u.clamp(0, 1)
        return torch.log(u) - torch.log1p(-u)

    def _of_logit(self, t: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`_logit_of`: logits t -> fractions in [0, 1]."""
        return ((torch.sigmoid(t) - self.eps) / (1 - 2 * self.eps)).clamp(0, 1)

    def encode(self, x: torch.Tensor, e_inc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, V) MeV -> hits (N, V) in {0, 1}, standardised logit energy (N, V) (0 where no hit)."""
        hits = (x > 0).float()
        return hits, (self._logit(x, e_inc) - self.mean) / self.std * hits

    def decode(self, hits: torch.Tensor, y: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        """hits (N, V), standardised logit energies (N, V) -> (N, V) MeV."""
        u = self._of_logit(y * self.std + self.mean)
        return hits * u * self.scale * e_inc.reshape(-1, 1)

    def response_logit(self, x: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        """(N, V) MeV -> (N,) logit of the response E_dep / (s E_inc), as the voxels' logits."""
        return self._logit(x.sum(1, keepdim=True), e_inc).reshape(-1)

    def response(self, t: torch.Tensor) -> torch.Tensor:
        """Logits of responses t (N,) -> responses E_dep / E_inc (N,), the inverse of
        :meth:`response_logit`."""
        return self._of_logit(t) * self.scale

    def rescale_to_response(
        self, x: torch.Tensor, t: torch.Tensor, e_inc: torch.Tensor
    ) -> torch.Tensor:
        """Scale each shower x (N, V) MeV so that it deposits the response whose logit is t (N,);
        a shower without a hit stays empty. No voxel exceeds s E_inc, since none exceeds the sum.
        """
        target = self.response(t).reshape(-1, 1) * e_inc.reshape(-1, 1)
        total = x.sum(1, keepdim=True)
        return torch.where(total > 0, x * (target / total.clamp_min(1e-30)), x)

    def layer_logits(
        self, x: torch.Tensor, layer_map: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, V) MeV -> logits t (N, L) of the layers' stick-breaking shares and their mask.

        Layer l's share is u_l = E_l / (E_l + E_{l+1} + ... ), as CaloFlow's u_i (``layer_map``
        (V, L) is the voxels' one-hot layer membership). It is defined (mask 1) where the layer
        holds energy and a later layer does too; an empty layer has nothing to share, and the
        last non-empty layer takes what is left (u = 1). Where the mask is 0, t is 0.
        """
        e_layer = x @ layer_map
        rest = e_layer.flip(1).cumsum(1).flip(1)  # E_l + E_{l+1} + ...
        lit = (e_layer > 0).to(x.dtype)
        # the mask from counts, not energies, so that it is exactly generation's (a layer
        # holding 1e-35 MeV is lit, though adding it to the rest changes nothing)
        mask = (lit > 0) & (lit.flip(1).cumsum(1).flip(1) - lit > 0)
        u = e_layer / rest.clamp_min(1e-30)
        return torch.where(mask, self._logit_of(u), torch.zeros_like(u)), mask.to(x.dtype)

    def rescale_to_layers(
        self, x: torch.Tensor, t: torch.Tensor, layer_map: torch.Tensor
    ) -> torch.Tensor:
        """Share each shower's deposit x (N, V) MeV among its non-empty layers by the
        stick-breaking logits t (N, L) (:meth:`layer_logits`' inverse): the total stays, each
        layer's voxels keep their proportions. A layer without a hit stays empty."""
        e_layer = x @ layer_map
        lit = (e_layer > 0).to(x.dtype)
        later_lit = lit.flip(1).cumsum(1).flip(1) - lit
        # u_l: the drawn share where a later layer is lit, all of the rest in the last lit one
        u = torch.where(later_lit > 0, self._of_logit(t), torch.ones_like(t)) * lit
        # what is left before layer l: prod_{j<l} (1 - u_j), as exp(cumsum(log)) for ONNX
        log_rest = torch.log((1 - u).clamp_min(1e-30))
        left = torch.exp(log_rest.cumsum(1) - log_rest)
        target = u * left * x.sum(1, keepdim=True)
        # each voxel's part of its layer (<= 1, also for layers of denormal energy) times the
        # layer's target; the division is 0/0 only where the layer, hence the voxel, is empty
        e_voxel = e_layer @ layer_map.T
        part = torch.where(e_voxel > 0, x / e_voxel, torch.zeros_like(x))
        return part * (target @ layer_map.T)


class QVAEDecoderModule(nn.Module):
    """The deterministic generation path: (prior z, uniforms, normals, E_inc) -> (N, V) MeV.

    ``z`` (N, n_latent) holds all latent units in the prior's order (the conditioning partition
    included, as the sampler left it); a voxel is hit when its uniform draw (N, V) is below the
    hit probability, and its standardised logit energy is mean + sigma * normal (N, V).
    """

    def __init__(self, decoder: Decoder, codec: ShowerCodec) -> None:
        super().__init__()
        self.decoder = decoder
        self.codec = codec

    def forward(
        self, z: torch.Tensor, uniform: torch.Tensor, normal: torch.Tensor, e_inc: torch.Tensor
    ) -> torch.Tensor:
        hit_logits, mean, log_sigma = self.decoder(z, energy_feature(e_inc))
        return self._voxels(hit_logits, mean, log_sigma, uniform, normal, e_inc)

    def _voxels(
        self,
        hit_logits: torch.Tensor,
        mean: torch.Tensor,
        log_sigma: torch.Tensor,
        uniform: torch.Tensor,
        normal: torch.Tensor,
        e_inc: torch.Tensor,
    ) -> torch.Tensor:
        """Sampled hits and energies (N, V) MeV from the decoder's voxel heads and the draws."""
        hits = (uniform < torch.sigmoid(hit_logits)).to(mean.dtype)
        return self.codec.decode(hits, mean + torch.exp(log_sigma) * normal, e_inc)


class QVAEResponseDecoderModule(QVAEDecoderModule):
    """:class:`QVAEDecoderModule` with the response head: one more normal draw (N, 1) sets the
    shower's response, and the voxel energies are rescaled to deposit it."""

    def forward(  # type: ignore[override]
        self,
        z: torch.Tensor,
        uniform: torch.Tensor,
        normal: torch.Tensor,
        response_normal: torch.Tensor,
        e_inc: torch.Tensor,
    ) -> torch.Tensor:
        hit_logits, mean, log_sigma, r_mean, r_log_sigma = self.decoder.with_response(
            z, energy_feature(e_inc)
        )
        x = self._voxels(hit_logits, mean, log_sigma, uniform, normal, e_inc)
        return self._to_response(x, r_mean, r_log_sigma, response_normal, e_inc)

    def _to_response(
        self,
        x: torch.Tensor,
        r_mean: torch.Tensor,
        r_log_sigma: torch.Tensor,
        response_normal: torch.Tensor,
        e_inc: torch.Tensor,
    ) -> torch.Tensor:
        """Showers x (N, V) MeV rescaled to the response drawn from the head's (mean, log-sigma),
        each (N,), with the normals (N, 1)."""
        t = r_mean + torch.exp(r_log_sigma) * response_normal.reshape(-1)
        return self.codec.rescale_to_response(x, t, e_inc)


class QVAELayerDecoderModule(QVAEResponseDecoderModule):
    """:class:`QVAEResponseDecoderModule` with the layer head: normal draws (N, L) set the
    shares of the shower's layers before its voxels are rescaled to the drawn response.

    ``layer_map`` (V, L), the voxels' one-hot layer membership, follows from the geometry and
    is not stored in checkpoints (a non-persistent buffer; exports carry it as a constant).
    """

    layer_map: torch.Tensor

    def __init__(self, decoder: Decoder, codec: ShowerCodec, layer_map: torch.Tensor) -> None:
        super().__init__(decoder, codec)
        self.register_buffer("layer_map", layer_map, persistent=False)

    def forward(  # type: ignore[override]
        self,
        z: torch.Tensor,
        uniform: torch.Tensor,
        normal: torch.Tensor,
        response_normal: torch.Tensor,
        layer_normal: torch.Tensor,
        e_inc: torch.Tensor,
    ) -> torch.Tensor:
        hit_logits, mean, log_sigma, r_mean, r_log_sigma, l_mean, l_log_sigma = (
            self.decoder.with_layers(z, energy_feature(e_inc))
        )
        x = self._voxels(hit_logits, mean, log_sigma, uniform, normal, e_inc)
        x = self.codec.rescale_to_layers(
            x, l_mean + torch.exp(l_log_sigma) * layer_normal, self.layer_map
        )
        return self._to_response(x, r_mean, r_log_sigma, response_normal, e_inc)


@dataclass(frozen=True)
class QVAEConfig(ModelConfig):
    """Options of the QVAE (see the module docstring)."""

    model_name: ClassVar[str] = "qvae"
    absent_means: ClassVar[Mapping[str, Any]] = {"response_head": False}

    #: "gaussian" swaps the Boltzmann machine for a standard-normal prior (the baseline)
    prior: Literal["boltzmann", "gaussian"] = "boltzmann"
    topology: Literal["rbm-dense", "dense-4partite", "chimera", "pegasus", "zephyr"] = "pegasus"
    units_per_partition: int = option(64, min=2)
    topology_seed: int = option(0, min=0)
    #: clamp one partition to a code of E_inc (four-partite topologies only)
    condition_prior: bool = True
    #: how ``condition_prior`` conditions the prior: "clamp" partition 0 of the graph to the
    #: energy code (four-partite only), or "bias": a separate code of ``energy_code_units``
    #: units coupled to every unit, i.e. energy-dependent biases (any topology; see
    #: :mod:`caloforge.boltzmann.energy_bias`)
    energy_conditioning: Literal["clamp", "bias"] = "clamp"
    energy_code_units: int = option(16, min=1)
    hidden: int = option(256, min=2)
    epochs: int = option(10, min=1)
    batch_size: int = option(128, min=1)
    lr: float = option(1e-3, min=0, min_exclusive=True)
    #: the Boltzmann prior's learning rate is ``lr`` times this
    prior_lr_scale: float = option(1.0, min=0, min_exclusive=True)
    tau_start: float = option(1.0, min=0, min_exclusive=True)
    tau_end: float = option(0.2, min=0, min_exclusive=True)
    #: fraction of training over which the KL weight rises to ``kl_weight``
    kl_warmup: float = option(0.3, min=0, max=1)
    #: the KL weight after the warm-up (beta; 1 is the ELBO). Below 1 the latents carry more
    #: information about the shower; the prior's own gradient keeps its direction (maximum
    #: likelihood of the aggregate posterior), only its scale changes
    kl_weight: float = option(1.0, min=0, min_exclusive=True)
    #: sweeps of the persistent chains per training step
    gibbs_sweeps_train: int = option(4, min=1)
    #: sweeps from a fresh start at generation for checkpoints without a measured count
    #: (training measures the prior's mixing at its end and stores the count it needs)
    gibbs_sweeps_sample: int = option(32, min=1)
    #: after the last epoch, fit the prior further to the encoder's aggregate posterior on the
    #: training showers (encoder and decoder frozen) for this many persistent-contrastive-
    #: divergence updates; 0: off (:mod:`caloforge.models.qvae_prior_refit`). The trained
    #: prior is kept in the optimizer file, so a resumed run continues from it, not from the refit
    prior_refit_steps: int = option(0, min=0)
    #: Gibbs sweeps per refit update, the refit's Adam learning rate, hard posterior samples
    #: per training shower and samples (= persistent chains) per update
    prior_refit_sweeps: int = option(20, min=1)
    prior_refit_lr: float = option(3e-3, min=0, min_exclusive=True)
    prior_refit_draws: int = option(4, min=1)
    prior_refit_batch: int = option(1024, min=1)
    #: measure the prior's diagnostics (and the Gibbs sweeps it needs) at the end of training
    diagnose_prior: bool = True
    #: chains and recorded sweeps of that measurement (and of ``describe --prior``); the KL's
    #: AIS uses twice the chains and as many annealing steps as sweeps. The defaults are a
    #: compromise: a 4 x 64 ds2 prior with the decoder observable took ~5 min at 128 chains x
    #: 400 sweeps (AIS 256 x 500) on a loaded 2-core CPU; the stored ``reliable`` says when the
    #: trace was too short for the slowest observable
    diagnose_chains: int = option(64, min=2)
    diagnose_sweeps: int = option(200, min=16)
    logit_eps: float = option(1e-6, min=0, max=0.5, min_exclusive=True, max_exclusive=True)
    #: model the shower's response E_dep / E_inc with its own Gaussian head and rescale the
    #: generated voxels to it (see the module docstring); off in checkpoints from before it
    response_head: bool = True
    #: also model how the deposit is shared among the layers (Gaussians over the logits of
    #: CaloFlow-style stick-breaking shares, conditioned on z and E_inc) and rescale each
    #: generated layer to its drawn share (one more input, ``layer_normal`` (N, L)); needs
    #: ``response_head``
    layer_head: bool = False

    def validate(self) -> None:
        if self.layer_head and not self.response_head:
            raise ConfigError(
                f"option 'layer_head' of model {self.model_name!r} needs 'response_head': true"
            )


@dataclass(frozen=True)
class VAEConfig(QVAEConfig):
    """Options of the Gaussian-prior baseline: the QVAE's, with ``prior`` "gaussian"."""

    model_name: ClassVar[str] = "vae"
    prior: Literal["boltzmann", "gaussian"] = "gaussian"


@register_model("qvae")
class QVAE(Generator):
    """Discrete VAE with a Boltzmann-machine prior on an annealer topology (see module docs).

    The prior side (encoder levels, KL term, prior draws) is ``self.latents``, a
    :class:`~caloforge.models.vae_latents.LatentSpace`: :class:`BoltzmannLatents` here,
    :class:`GaussianLatents` for the ``vae`` baseline; nothing else differs between the two.
    """

    config_class = QVAEConfig
    smoke_config = {
        "units_per_partition": 4, "hidden": 8, "batch_size": 8, "gibbs_sweeps_sample": 2,
        "gibbs_sweeps_train": 1,
    }  # fmt: skip
    options: QVAEConfig
    latents: LatentSpace
    #: tensors follow ``self.device``; random numbers come from CPU generators (moved), but the
    #: Gibbs chains draw on the machine's device, so GPU runs differ from CPU ones
    compute_devices = frozenset({"cpu", "cuda"})

    def __init__(
        self, geometry: Geometry, config: QVAEConfig | Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(geometry, config)
        self._build()

    def initialize(self, seed: int) -> None:
        """Fresh encoder, decoder and prior weights drawn from ``seed``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self._build()

    def _build(self) -> None:
        o = self.options
        n_vox = self.geometry.n_voxels
        self.codec = ShowerCodec(n_vox, float(o.logit_eps))
        self.latents = (
            BoltzmannLatents(
                o.topology,
                int(o.units_per_partition),
                topology_seed=int(o.topology_seed),
                condition=bool(o.condition_prior),
                conditioning=o.energy_conditioning,
                energy_code_units=int(o.energy_code_units),
            )
            if o.prior == "boltzmann"
            else GaussianLatents(int(o.units_per_partition))
        )
        #: the prior's parameters before the refit phase (empty: not refitted in this process)
        self._trained_prior: dict[str, torch.Tensor] = {}
        #: :meth:`layer_map` per device
        self._layer_maps: dict[str, torch.Tensor] = {}
        sp = self.latents
        self.encoder = HierarchicalEncoder(
            2 * n_vox, int(o.hidden), sp.level_sizes, sp.stats_per_unit
        )
        self.decoder = Decoder(
            sp.n_latent,
            int(o.hidden),
            n_vox,
            bool(o.response_head),
            self.geometry.n_layers if o.layer_head else 0,
        )

    # ------------------------------------------------------------------ interface
    def modules(self) -> dict[str, nn.Module]:
        return {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "codec": self.codec,
            **self.latents.modules(),
        }

    @property
    def prior(self) -> BoltzmannMachine | None:
        """The Boltzmann machine of the prior (None for the Gaussian baseline)."""
        return self.latents.machine

    @property
    def generation_sweeps(self) -> int:
        """Gibbs sweeps from a fresh start at generation: the count training measured and stored
        (``state["prior_sweeps"]``, the diagnostics' ``recommended_sweeps``) or, for checkpoints
        without one, the config's ``gibbs_sweeps_sample``."""
        measured = self.state.get(PRIOR_SWEEPS_KEY)
        if isinstance(measured, int) and not isinstance(measured, bool) and measured >= 1:
            return measured
        return int(self.config["gibbs_sweeps_sample"])

    def set_sampler(self, name: str = "gibbs", **kwargs: Any) -> None:
        """Choose the prior sampler used at generation: gibbs | sa | sqa | qpu (kwargs go to it).

        Gibbs defaults to :attr:`generation_sweeps` sweeps from fresh chains."""
        if name == "gibbs" and self.latents.takes_sampler:
            kwargs.setdefault("n_sweeps", self.generation_sweeps)
            kwargs.setdefault("persistent", False)
        self.latents.set_sampler(name, **kwargs)

    # ------------------------------------------------------------------ prior diagnostics
    def _boltzmann(self) -> BoltzmannLatents:
        return self.latents.boltzmann(self.model_name)

    def decoder_energy_observable(
        self, energies: np.ndarray
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """The decoder's expected total energy / E_inc for prior states, as a Gibbs observable.

        Maps (B, n_units) float states to (B,): sum over voxels of P(hit) times the energy of the
        mean logit, divided by E_inc (with the response head: the response of its mean logit).
        With the conditioned prior, E_inc is read back from each state's clamped code (the first
        of ``energies`` (K,) MeV with that code); without it, the geometric mean of
        ``energies``.
        """
        e = np.asarray(energies, dtype=np.float64).reshape(-1)
        decoder, codec = self.decoder, self.codec
        space = self._boltzmann()
        cond = space.cond_partition
        if cond is None:
            e_fixed = float(np.exp(np.log(e).mean()))

            def e_of(states: torch.Tensor) -> torch.Tensor:
                return torch.full((len(states), 1), e_fixed, device=states.device)

        else:
            bm = space.machine
            sl = bm.partition_slices[cond]
            size = len(bm.partitions[cond])
            codes = thermometer_code(torch.as_tensor(e, dtype=torch.float32).reshape(-1, 1), size)
            by_level: dict[int, float] = {}
            for level, energy in zip(codes.sum(1).tolist(), e.tolist(), strict=True):
                by_level.setdefault(int(level), energy)
            lookup = torch.tensor(
                [by_level.get(k, math.nan) for k in range(size + 1)], dtype=torch.float32
            )

            def e_of(states: torch.Tensor) -> torch.Tensor:
                level = states[:, sl].sum(1).round().long()
                return lookup.to(states.device)[level].reshape(-1, 1)

        response_head = bool(self.options.response_head)

        def total_energy(states: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                e_inc = e_of(states)
                if response_head:  # the response of the head's mean logit
                    r_mean = decoder.with_response(states.float(), energy_feature(e_inc))[3]
                    return codec.response(r_mean)
                hit_logits, mean, _ = decoder(states.float(), energy_feature(e_inc))
                x = codec.decode(torch.sigmoid(hit_logits), mean, e_inc)
                return x.sum(1) / e_inc.reshape(-1)

        return total_energy

    def prior_diagnostics(
        self,
        *,
        seed: int = 0,
        energies: np.ndarray | None = None,
        decoder_observable: bool = True,
        n_chains: int | None = None,
        n_sweeps: int | None = None,
        ais_chains: int | None = None,
        ais_steps: int | None = None,
        kl_method: str = "auto",
    ) -> PriorDiagnostics:
        """:func:`~caloforge.boltzmann.prior_diagnostics.diagnose_prior` of the trained prior.

        Args:
            seed: seeds every chain (same seed, same numbers).
            energies: (K,) incident energies in MeV whose codes clamp the conditioned prior
                (at most 4 distinct codes enter the KL); default: those stored by training,
                else 1 GeV .. 1 TeV.
            decoder_observable: add "decoder_total_energy" (see
                :meth:`decoder_energy_observable`) to the mixing observables.
            n_chains, n_sweeps, ais_chains, ais_steps, kl_method: passed on; by default
                ``diagnose_chains``, ``diagnose_sweeps``, twice the chains and as many steps
                as sweeps (the config's).

        Raises:
            ConfigError: the model has the Gaussian prior.
        """
        from caloforge.boltzmann.prior_diagnostics import diagnose_prior

        space = self._boltzmann()
        if energies is None:
            stored = self.state.get(PRIOR_DIAGNOSTICS_KEY, {})
            energies = np.asarray(
                stored.get("energies", DEFAULT_DIAGNOSTIC_ENERGIES)
                if isinstance(stored, dict)
                else DEFAULT_DIAGNOSTIC_ENERGIES,
                dtype=np.float64,
            )
        e = np.asarray(energies, dtype=np.float64).reshape(-1)
        if e.size == 0 or not np.all(np.isfinite(e)) or np.any(e <= 0):
            raise ConfigError("prior diagnostics need finite positive incident energies in MeV")
        clamp = space.clamp(torch.as_tensor(e, dtype=torch.float32).reshape(-1, 1))
        observables = (
            {"decoder_total_energy": self.decoder_energy_observable(e)}
            if decoder_observable
            else None
        )
        for m in self.modules().values():
            m.eval()
        chains = int(self.options.diagnose_chains) if n_chains is None else n_chains
        sweeps = int(self.options.diagnose_sweeps) if n_sweeps is None else n_sweeps
        device = self.device
        self.to_device("cpu")  # the diagnostics run on the CPU, wherever the model trained
        try:
            return diagnose_prior(
                space.machine,
                clamp=clamp,
                seed=int(seed),
                observables=observables,
                kl_method=kl_method,
                n_chains=chains,
                n_sweeps=sweeps,
                ais_chains=2 * chains if ais_chains is None else ais_chains,
                ais_steps=sweeps if ais_steps is None else ais_steps,
            )
        finally:
            self.to_device(device)

    def describe_prior(self, *, seed: int = 0) -> str:
        """Lines for ``caloforge describe RUN --prior``: the stored sweep count and a fresh
        :meth:`prior_diagnostics` measurement."""
        diag = self.prior_diagnostics(seed=seed)
        stored = self.state.get(PRIOR_SWEEPS_KEY)
        lines = [
            f"{self.model_name} prior diagnostics (seed {seed})",
            *diag.summary_lines(),
            f"generation uses {self.generation_sweeps} Gibbs sweeps ("
            + (
                "measured at the end of training)"
                if stored is not None
                else "the config's gibbs_sweeps_sample; this checkpoint stores no measured count)"
            ),
        ]
        return "\n".join(lines)

    def after_training(self, train: Showers, *, seed: int, out_dir: Path | None) -> None:
        """With the Boltzmann prior and the option ``diagnose_prior``: measure the trained
        prior's diagnostics, store the Gibbs sweep count it needs (``state["prior_sweeps"]``)
        and a summary in ``model.json`` and re-commit the checkpoint set with them."""
        if not self.latents.takes_sampler:
            return
        o = self.options
        if o.prior_refit_steps > 0:
            self.refit_prior(train, seed=seed)
        if o.diagnose_prior:
            e = np.asarray(train.incident_energies, dtype=np.float64).reshape(-1)
            energies = np.quantile(e, [0.125, 0.375, 0.625, 0.875])
            self.record_prior_diagnostics(seed=seed, energies=energies, out_dir=out_dir)
        elif o.prior_refit_steps > 0 and out_dir is not None:
            self._recommit(Path(out_dir))

    def refit_prior(self, train: Showers, *, seed: int) -> dict[str, Any]:
        """The refit phase (option ``prior_refit_steps``): fit the prior further to the
        aggregate posterior of ``train`` with :func:`~caloforge.models.qvae_prior_refit.
        refit_prior`, keep the trained prior's parameters for resuming and store the refit's
        summary in ``state["prior_refit"]``."""
        from caloforge.models.qvae_prior_refit import RefitSettings
        from caloforge.models.qvae_prior_refit import refit_prior as run_refit

        o = self.options
        settings = RefitSettings(
            steps=int(o.prior_refit_steps),
            sweeps=int(o.prior_refit_sweeps),
            lr=float(o.prior_refit_lr),
            draws=int(o.prior_refit_draws),
            batch=int(o.prior_refit_batch),
        )
        machine = self.latents.boltzmann(self.model_name).machine
        self._trained_prior = {k: v.detach().cpu().clone() for k, v in machine.state_dict().items()}
        summary = run_refit(self, train, settings, seed=derive_seed(seed, "prior_refit"))
        self.state[PRIOR_REFIT_KEY] = summary
        return summary

    def record_prior_diagnostics(
        self,
        *,
        seed: int,
        energies: np.ndarray,
        out_dir: str | os.PathLike | None = None,
        **settings: Any,
    ) -> PriorDiagnostics:
        """Measure :meth:`prior_diagnostics` (``settings`` go to it), store the sweep count and a summary in
        ``self.state`` and, with ``out_dir``, re-commit its checkpoint set (weights, model.json
        and the optimizer file unchanged but for model.json) so that generation uses it."""
        diag = self.prior_diagnostics(seed=seed, energies=energies, **settings)
        m, k, c = diag.mixing, diag.kl, diag.couplings
        self.state[PRIOR_SWEEPS_KEY] = int(m.recommended_sweeps)
        self.state[PRIOR_DIAGNOSTICS_KEY] = {
            "energies": [float(x) for x in np.asarray(energies).reshape(-1)],
            "seed": int(seed),
            "recommended_sweeps": int(m.recommended_sweeps),
            "observable_sweeps": int(m.observable_sweeps),
            "tau_max": float(m.tau_max),
            "tau": {n: float(t) for n, t in m.tau.items()},
            "reliable": bool(m.reliable),
            "kl_product_nats": float(k.kl),
            "kl_stderr_nats": float(k.stderr),
            "kl_method": k.method,
            "mean_abs_coupling": float(c.mean_abs),
            "max_abs_coupling": float(c.max_abs),
        }
        if out_dir is not None:
            self._recommit(Path(out_dir))
        return diag

    def _recommit(self, out_dir: Path) -> None:
        """Write the checkpoint set again with the current weights and model.json. The optimizer
        file (if any) keeps its bytes, plus the trained prior after a refit phase, so
        ``--resume`` still continues exactly."""
        from safetensors.torch import save_file

        from caloforge.models.checkpoint import OPTIMIZER_FILE, commit_set

        writers = self._writers()
        opt = out_dir / OPTIMIZER_FILE
        if opt.exists() and self._trained_prior:
            # a refitted prior: the optimizer file also keeps the trained prior to resume from
            tensors, meta = _read_safetensors(opt)
            tensors.update(
                {f"train.{TRAINED_PRIOR}.{k}": v for k, v in self._trained_prior.items()}
            )
            writers[OPTIMIZER_FILE] = lambda p: save_file(tensors, str(p), metadata=meta)
        elif opt.exists():
            data = opt.read_bytes()
            writers[OPTIMIZER_FILE] = lambda p: Path(p).write_bytes(data)
        commit_set(out_dir, writers)

    def _load_resume_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Put back the persistent chains and, after a refit phase, the trained prior: a
        resumed run continues from what training left, exactly as an uninterrupted run."""
        prefix = f"{TRAINED_PRIOR}."
        trained = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if trained:
            machine = self.latents.boltzmann(self.model_name).machine
            machine.load_state_dict(trained)
            self.state.pop(PRIOR_REFIT_KEY, None)
        self.latents.load_chain_tensors(tensors)

    # ------------------------------------------------------------------ capabilities
    @property
    def takes_prior_sampler(self) -> bool:
        """True with the Boltzmann prior; the Gaussian baseline has no sampler to choose."""
        return self.latents.takes_sampler

    def latent_spec(self) -> tuple[LatentInput, ...]:
        n_vox = self.geometry.n_voxels
        extra: list[LatentInput] = []
        if self.options.response_head:
            extra.append(LatentInput("response_normal", (1,), "normal(0, 1)"))
        if self.options.layer_head:
            extra.append(LatentInput("layer_normal", (self.geometry.n_layers,), "normal(0, 1)"))
        return (
            self.latents.latent_input(),
            LatentInput("hit_uniform", (n_vox,), "uniform(0, 1)"),
            LatentInput("energy_normal", (n_vox,), "normal(0, 1)"),
            *extra,
            LatentInput("incident_energy", (1,), "incident energy (MeV)", "given"),
        )

    @property
    def prior_description(self) -> dict[str, Any]:
        """The prior (kind, topology, units, conditioning) and the sampler specification."""
        desc = self.latents.description()
        if self.latents.takes_sampler and desc.get("sampler") is None:
            desc["sampler"] = {"name": "gibbs", "n_sweeps": self.generation_sweeps}
        return desc

    def latent_inputs(
        self, incident_energies: np.ndarray, *, seed: int = 0
    ) -> tuple[torch.Tensor, ...]:
        """Prior draws z (N, n_latent), hit uniforms and energy normals (N, V), with the response
        head response normals (N, 1), with the layer head layer normals (N, L), and e_inc (N, 1)."""
        e = torch.as_tensor(np.asarray(incident_energies, dtype=np.float32).reshape(-1, 1))
        if self.latents.takes_sampler and self.latents.sampler_spec is None:
            self.set_sampler("gibbs")
        gen = torch.Generator().manual_seed(int(seed))
        z = self.latents.prior_sample(e, seed=int(seed), gen=gen)
        uniform = torch.rand(len(e), self.geometry.n_voxels, generator=gen)
        normal = torch.randn(len(e), self.geometry.n_voxels, generator=gen)
        return (z, uniform, normal, *self._shower_normals(len(e), gen), e)

    def _shower_normals(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        """The per-shower normal draws after the voxel ones: response (n, 1) with the response
        head, then layers (n, L) with the layer head; on the CPU, in that order."""
        out = []
        if self.options.response_head:
            out.append(torch.randn(n, 1, generator=gen))
        if self.options.layer_head:
            out.append(torch.randn(n, self.geometry.n_layers, generator=gen))
        return tuple(out)

    def layer_map(self) -> torch.Tensor:
        """(V, L) float32 on :attr:`device`: 1 where voxel v lies in layer l (from the geometry);
        built once per device, since training asks for it at every step."""
        key = str(self.device)
        if key not in self._layer_maps:
            layer = torch.as_tensor(self.geometry.voxel_layer, dtype=torch.long)
            one_hot = F.one_hot(layer, self.geometry.n_layers).to(torch.float32)
            self._layer_maps[key] = one_hot.to(self.device)
        return self._layer_maps[key]

    def inference_module(self) -> nn.Module:
        if self.options.layer_head:
            return QVAELayerDecoderModule(self.decoder, self.codec, self.layer_map()).eval()
        if self.options.response_head:
            return QVAEResponseDecoderModule(self.decoder, self.codec).eval()
        return QVAEDecoderModule(self.decoder, self.codec).eval()

    # ------------------------------------------------------------------ training
    @torch.no_grad()
    def _init_layer_head(self, x: torch.Tensor) -> None:
        """Start the layer head at the training showers' mean and spread of each layer's share
        logit (x (N, V) MeV), as the codec standardises the voxel energies: shares far from 1/2
        (ds1-photons layer 0: ~0.001, logit ~ -7) are otherwise learnt slowly."""
        head = self.decoder.layer_stats
        assert head is not None
        t, mask = self.codec.layer_logits(x, self.layer_map())
        n = mask.sum(0)
        mean = (t * mask).sum(0) / n.clamp_min(1)
        std = (((t - mean) * mask) ** 2).sum(0).div(n.clamp_min(1)).sqrt().clamp_min(1e-2)
        n_layers = len(mean)
        head.bias[:n_layers] = torch.where(n > 0, mean, torch.zeros_like(mean))
        head.bias[n_layers:] = torch.where(n > 1, std.log(), torch.zeros_like(std))

    def _tensors(self, showers: Showers) -> tuple[torch.Tensor, torch.Tensor]:
        """Showers (N, V) MeV and incident energies (N, 1) MeV as float32 on :attr:`device`."""
        x = torch.as_tensor(np.asarray(showers.showers, dtype=np.float32), device=self.device)
        e = np.asarray(showers.incident_energies, dtype=np.float32)
        return x, torch.as_tensor(e, device=self.device).reshape(-1, 1)

    def _encode(
        self, x: torch.Tensor, e_inc: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, Encode]:
        """hits (B, V), standardised logit energies (B, V) and the encoder as ``encode(draw)``."""
        hits, y = self.codec.encode(x, e_inc)
        enc_in, e_feat = torch.cat([y, hits], dim=1), energy_feature(e_inc)

        def encode(draw: Callable[[torch.Tensor], torch.Tensor]):
            return self.encoder(enc_in, e_feat, draw)

        return hits, y, encode

    def _loss(
        self,
        x: torch.Tensor,
        e_inc: torch.Tensor,
        tau: float,
        kl_weight: float,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The negative ELBO (with ``kl_weight`` on the KL) of a batch x (B, V) MeV, e_inc (B, 1)."""
        hits, y, encode = self._encode(x, e_inc)
        z, kl = self.latents.relaxed_posterior(encode, e_inc, tau, gen)
        o = self.options
        if o.layer_head:
            hit_logits, y_mean, log_sigma, r_mean, r_log_sigma, l_mean, l_log_sigma = (
                self.decoder.with_layers(z, energy_feature(e_inc))
            )
        elif o.response_head:
            hit_logits, y_mean, log_sigma, r_mean, r_log_sigma = self.decoder.with_response(
                z, energy_feature(e_inc)
            )
        else:
            hit_logits, y_mean, log_sigma = self.decoder(z, energy_feature(e_inc))
        bce = F.binary_cross_entropy_with_logits(hit_logits, hits, reduction="none").sum(1).mean()
        # Gaussian negative log-likelihood of the hit voxels' standardised logit energies
        nll = ((0.5 * ((y - y_mean) * torch.exp(-log_sigma)) ** 2 + log_sigma) * hits).sum(1).mean()
        if self.options.response_head:  # and of the shower's logit response
            t = self.codec.response_logit(x, e_inc)
            nll = nll + (0.5 * ((t - r_mean) * torch.exp(-r_log_sigma)) ** 2 + r_log_sigma).mean()
        if o.layer_head:  # and of the layers' shares, where they are defined
            t_l, mask = self.codec.layer_logits(x, self.layer_map())
            g = 0.5 * ((t_l - l_mean) * torch.exp(-l_log_sigma)) ** 2 + l_log_sigma
            nll = nll + (g * mask).sum(1).mean()
        loss = bce + nll + kl_weight * kl
        return loss, {"bce": bce.item(), "nll": nll.item(), "kl": kl.item()}

    def training_plan(
        self, train: Showers, val: Showers | None, *, seed: int, fresh: bool
    ) -> TrainingPlan:
        """Adam on encoder, decoder and prior; the temperature falls from ``tau_start`` to
        ``tau_end`` and the KL weight rises to ``kl_weight`` over the first ``kl_warmup`` of
        training, both following the engine's progress fraction (steps, or the elapsed budget)."""
        self.geometry.check_voxels(train.n_voxels, "training data")
        if val is not None:
            self.geometry.check_voxels(val.n_voxels, "validation data")
        o = self.options
        x, e = self._tensors(train)
        if fresh:
            self.codec.fit(x, e)
            if o.layer_head:
                self._init_layer_head(x)
        params = [p for m in (self.encoder, self.decoder) for p in m.parameters()]
        prior_params = [p for m in self.latents.modules().values() for p in m.parameters()]
        if prior_params and o.prior_lr_scale != 1.0:
            # Adam moves each weight by about lr per step, so |W| <= lr x steps: the prior's
            # own rate lets short runs reach strong couplings
            groups: list[dict[str, Any]] = [
                {"params": params},
                {"params": prior_params, "lr": o.lr * o.prior_lr_scale},
            ]
            opt = torch.optim.Adam(groups, lr=o.lr)
        else:  # one parameter group, as checkpoints before prior_lr_scale have it
            opt = torch.optim.Adam(params + prior_params, lr=o.lr)
        params = params + prior_params
        self.latents.start_kl_chains(o.gibbs_sweeps_train, persistent=True)
        batch = min(o.batch_size, len(x))

        def step(idx: torch.Tensor, ctx: StepContext) -> dict[str, float]:
            tau = o.tau_start * (o.tau_end / o.tau_start) ** ctx.fraction
            kl_w = min(1.0, ctx.fraction / o.kl_warmup) if o.kl_warmup > 0 else 1.0
            kl_w *= o.kl_weight
            loss, parts = self._loss(x[idx], e[idx], tau, kl_w, ctx.rng)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 100.0)
            opt.step()
            return {"loss": loss.item(), **parts}

        def validate(epoch_seed: int) -> dict[str, float]:
            assert val is not None
            return {"val_loss": self.validation_loss(val, seed=epoch_seed)}

        return TrainingPlan(
            n_items=len(x),
            batch_size=batch,
            min_batch=batch,  # full batches only: the persistent chains keep one size
            step=step,
            optimizers={"adam": opt},
            loss_names=("loss", "bce", "nll", "kl"),
            validate=validate,
            resume_tensors=self.latents.chain_tensors,
            load_resume_tensors=self._load_resume_tensors,
        )

    @torch.no_grad()
    def validation_loss(self, val: Showers, *, seed: int = 0, max_showers: int = 2048) -> float:
        """Loss (BCE + MSE + KL, KL weight 1, hard-ish tau) on up to ``max_showers`` showers."""
        self.geometry.check_voxels(val.n_voxels, "validation data")
        x, e = self._tensors(val[:max_showers])
        # outside training (no chains yet), fresh chains of the generation length
        self.latents.start_kl_chains(
            int(self.config["gibbs_sweeps_sample"]), persistent=False, keep=True
        )
        loss, _ = self._loss(
            x, e, float(self.config["tau_end"]), 1.0, torch.Generator().manual_seed(seed)
        )
        return float(loss)

    @torch.no_grad()
    def posterior_latents(self, showers: Showers, *, seed: int = 0) -> torch.Tensor:
        """The encoder's evaluation-time latents for ``showers``: (N, n_latent), hard samples of
        q(z | x) in the prior's unit order (the Boltzmann prior) or the posterior mean."""
        x, e = self._tensors(showers)
        _, _, encode = self._encode(x, e)
        z = self.latents.hard_posterior(encode, e, torch.Generator().manual_seed(seed))
        return z.cpu()

    @torch.no_grad()
    def reconstruct(self, showers: Showers, *, seed: int = 0) -> np.ndarray:
        """Encode with hard posterior samples and decode: (N, V) MeV -> (N, V) MeV."""
        x, e = self._tensors(showers)
        gen = torch.Generator().manual_seed(seed)
        _, _, encode = self._encode(x, e)
        z = self.latents.hard_posterior(encode, e, gen)
        uniform = torch.rand(x.shape, generator=gen).to(x.device)
        normal = torch.randn(x.shape, generator=gen).to(x.device)
        extra = [t.to(x.device) for t in self._shower_normals(len(x), gen)]
        return self.inference_module()(z, uniform, normal, *extra, e).cpu().numpy()


@register_model("vae")
class GaussianVAE(QVAE):
    """The baseline: the QVAE's encoder and decoder with a standard-normal prior."""

    config_class = VAEConfig
    smoke_config = {"units_per_partition": 4, "hidden": 8, "batch_size": 8}
