"""A layer-to-layer normalizing flow, in the spirit of CaloFlow and L2LFlows.

A shower with incident energy E_inc (MeV) and L layers is generated in two stages:

1. **energies** -- one flow for the layer energies given log E_inc. Its L features are the
   CaloFlow variables ``u_0 = E_tot / (r_max E_inc)`` (``r_max``: 1.05 times the largest
   response of the training showers) and ``u_i = E_i / sum_{j >= i} E_j`` for i = 1 .. L-1
   (stick breaking: layer i's share of what is left), each mapped through
   ``logit(alpha + (1 - 2 alpha) u)`` and standardised;
2. **voxels, layer by layer** -- one flow per layer (layers of one voxel need none) for the
   normalised pattern ``p = voxels / E_i`` of that layer, as ``logit(alpha + (1 - 2 alpha) p)``
   standardised, given log E_inc, log E_i and -- with ``condition_on_previous``, as L2LFlows --
   the previous layer's pattern (scaled by its voxel count) and log energy. Training uses the
   true previous layer; generation runs the layers in order and feeds each the pattern it drew.

Every flow is a zuko neural spline flow (``zuko.flows.NSF``) of ``transforms`` coupling
transforms (``passes=2``: one pass each way, so sampling is as fast as density evaluation).
Voxel energies are dequantised with uniform noise in [0, ``noise_mev``) MeV per voxel before
the features are made (zero voxels would otherwise be a point mass); generated voxels below
``noise_mev`` are set to 0. The model is trained by maximum likelihood (the summed negative
log-likelihoods of the energy flow and of the layer flows, per shower, in standardised
feature space) through the one engine (:mod:`caloforge.models.training`).

Generation is ``inference_module()(noise (N, L + V), e_inc (N, 1) MeV) -> (N, V) MeV``: the
first L noise columns drive the energy flow, the next V the layer flows (layer by layer, in
voxel order; the columns of one-voxel layers are unused). zuko is an optional extra
(``pip install 'caloforge[flows]'``), imported only when a flow model is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from caloforge._optional import require
from caloforge.errors import ConfigError
from caloforge.geometry import Geometry
from caloforge.io import Showers
from caloforge.models.base import Generator, LatentInput, register_model
from caloforge.models.config import ModelConfig, option
from caloforge.models.training import StepContext, TrainingPlan
from caloforge.seeding import derive_seed


@dataclass(frozen=True)
class FlowConfig(ModelConfig):
    """Options of the layer-to-layer flow (see the module docstring)."""

    model_name: ClassVar[str] = "flow"

    #: coupling transforms of each layer flow and of the energy flow
    transforms: int = option(3, min=1)
    energy_transforms: int = option(4, min=1)
    #: hidden layer widths of every transform's network
    hidden: tuple[int, ...] = option((64, 64), min=1, min_length=1)
    #: spline bins
    bins: int = option(8, min=2)
    #: condition layer i on layer i-1's pattern and energy (L2LFlows) or only on the energies
    condition_on_previous: bool = True
    #: the logit's margin: features are logit(alpha + (1 - 2 alpha) x) for x in [0, 1]
    alpha: float = option(1e-6, min=0, max=0.1, min_exclusive=True, max_exclusive=True)
    #: dequantisation noise per voxel, MeV (generated voxels below it are set to 0)
    noise_mev: float = option(0.01, min=0)
    lr: float = option(1e-3, min=0, min_exclusive=True)
    #: gradient-norm clip (0: none)
    grad_clip: float = option(10.0, min=0)
    batch_size: int = option(256, min=1)
    epochs: int = option(10, min=1)


def _logit(x: torch.Tensor, alpha: float) -> torch.Tensor:
    y = alpha + (1 - 2 * alpha) * x.clamp(0.0, 1.0)
    return torch.log(y) - torch.log1p(-y)


def _unlogit(f: torch.Tensor, alpha: float) -> torch.Tensor:
    return ((torch.sigmoid(f) - alpha) / (1 - 2 * alpha)).clamp(0.0, 1.0)


class LayerFlowNet(nn.Module):
    """The flows and the fitted standardisation (buffers); ``forward`` is generation.

    Args:
        geometry: the readout geometry (layer sizes).
        options: the model's options.
        zuko: the zuko module (imported by the caller, an optional extra).
    """

    #: fitted on the training data (buffers): 1.05 x the largest response; (mean, std) of
    #: log E_inc (2,), of the energy features (2, L), of log E_i (2, L), of the patterns (2, V)
    r_max: torch.Tensor
    log_e_stats: torch.Tensor
    energy_stats: torch.Tensor
    layer_log_stats: torch.Tensor
    pattern_stats: torch.Tensor

    def __init__(self, geometry: Geometry, options: FlowConfig, zuko: Any) -> None:
        super().__init__()
        self.sizes = [int(n) for n in geometry.layer_sizes]
        self.offsets = [int(o) for o in geometry.layer_offsets[: len(self.sizes)]]
        self.n_layers = len(self.sizes)
        self.n_voxels = int(sum(self.sizes))
        self.alpha = float(options.alpha)
        self.noise_mev = float(options.noise_mev)
        self.previous = bool(options.condition_on_previous)
        hidden = tuple(int(h) for h in options.hidden)

        def nsf(features: int, context: int, transforms: int) -> nn.Module:
            return zuko.flows.NSF(
                features, context, bins=options.bins, transforms=transforms, passes=2,
                hidden_features=hidden,
            )  # fmt: skip

        self.energy_flow = nsf(self.n_layers, 1, options.energy_transforms)
        self.layer_flows = nn.ModuleDict(
            {
                str(i): nsf(n, self._context_size(i), options.transforms)
                for i, n in enumerate(self.sizes)
                if n > 1
            }
        )
        # fitted on the training data (FlowModel.training_plan), stored with the weights
        L, V = self.n_layers, self.n_voxels
        self.register_buffer("r_max", torch.ones(()))
        self.register_buffer("log_e_stats", torch.tensor([0.0, 1.0]))
        self.register_buffer("energy_stats", torch.stack([torch.zeros(L), torch.ones(L)]))
        self.register_buffer("layer_log_stats", torch.stack([torch.zeros(L), torch.ones(L)]))
        self.register_buffer("pattern_stats", torch.stack([torch.zeros(V), torch.ones(V)]))

    def _context_size(self, i: int) -> int:
        return 2 + (self.sizes[i - 1] + 1 if self.previous and i > 0 else 0)

    # ------------------------------------------------------------------ features
    def c_inc(self, e_inc: torch.Tensor) -> torch.Tensor:
        """(N, 1) MeV -> standardised log E_inc (N, 1)."""
        return (torch.log(e_inc) - self.log_e_stats[0]) / self.log_e_stats[1]

    def c_layer(self, e_layers: torch.Tensor) -> torch.Tensor:
        """(N, L) MeV -> standardised log layer energies (N, L)."""
        s = self.layer_log_stats
        return (torch.log(e_layers.clamp_min(1e-6)) - s[0]) / s[1]

    def raw_energy_features(self, e_layers: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        """(N, L) layer energies and (N, 1) E_inc (MeV) -> (N, L) logit features (unscaled)."""
        total = e_layers.sum(dim=1, keepdim=True)
        left = torch.flip(torch.cumsum(torch.flip(e_layers, [1]), 1), [1])  # sum_{j >= i}
        shares = e_layers[:, :-1] / left[:, :-1].clamp_min(1e-12)
        u = torch.cat([total / (self.r_max * e_inc), shares], dim=1)
        return _logit(u, self.alpha)

    def energy_features(self, e_layers: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        s = self.energy_stats
        return (self.raw_energy_features(e_layers, e_inc) - s[0]) / s[1]

    def raw_pattern(self, voxels: torch.Tensor, i: int) -> torch.Tensor:
        """Layer ``i``'s voxels (N, n_i) MeV -> logit of its normalised pattern (N, n_i)."""
        p = voxels / voxels.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return _logit(p, self.alpha)

    def pattern_features(self, voxels: torch.Tensor, i: int) -> torch.Tensor:
        sl = slice(self.offsets[i], self.offsets[i] + self.sizes[i])
        s = self.pattern_stats[:, sl]
        return (self.raw_pattern(voxels, i) - s[0]) / s[1]

    def layer_context(
        self, i: int, c_inc: torch.Tensor, c_layer: torch.Tensor, prev_voxels: torch.Tensor | None
    ) -> torch.Tensor:
        """The context of layer ``i``'s flow (N, k): log E_inc, log E_i and, with
        ``condition_on_previous``, layer i-1's pattern times its size and log E_{i-1}."""
        parts = [c_inc, c_layer[:, i : i + 1]]
        if self.previous and i > 0:
            assert prev_voxels is not None
            p = prev_voxels / prev_voxels.sum(dim=1, keepdim=True).clamp_min(1e-12)
            parts += [p * self.sizes[i - 1], c_layer[:, i - 1 : i]]
        return torch.cat(parts, dim=1)

    # ------------------------------------------------------------------ likelihood
    def nll(self, voxels: torch.Tensor, e_inc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean negative log-likelihoods per shower (energy flow, all layer flows) of
        dequantised (N, V) voxels (MeV) at (N, 1) incident energies (MeV)."""
        layers = [voxels[:, o : o + n] for o, n in zip(self.offsets, self.sizes, strict=True)]
        e_layers = torch.stack([x.sum(dim=1) for x in layers], dim=1)
        c_inc = self.c_inc(e_inc)
        nll_energy = -self.energy_flow(c_inc).log_prob(self.energy_features(e_layers, e_inc))
        c_layer = self.c_layer(e_layers)
        nll_voxels = torch.zeros_like(nll_energy)
        for i, x in enumerate(layers):
            if self.sizes[i] == 1:
                continue
            prev = layers[i - 1] if i > 0 else None
            ctx = self.layer_context(i, c_inc, c_layer, prev)
            lp = self.layer_flows[str(i)](ctx).log_prob(self.pattern_features(x, i))
            nll_voxels = nll_voxels - torch.where(e_layers[:, i] > 0, lp, torch.zeros_like(lp))
        return nll_energy.mean(), nll_voxels.mean()

    # ------------------------------------------------------------------ generation
    def forward(self, noise: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        """(noise (N, L + V), e_inc (N, 1) MeV) -> (N, V) voxel energies in MeV."""
        L = self.n_layers
        c_inc = self.c_inc(e_inc)
        y = self.energy_flow(c_inc).transform.inv(noise[:, :L])
        u = _unlogit(y * self.energy_stats[1] + self.energy_stats[0], self.alpha)
        left = u[:, 0:1] * self.r_max * e_inc
        energies = []
        for i in range(L - 1):
            e_i = u[:, i + 1 : i + 2] * left
            energies.append(e_i)
            left = left - e_i
        energies.append(left)
        e_layers = torch.cat(energies, dim=1)
        c_layer = self.c_layer(e_layers)
        out: list[torch.Tensor] = []
        for i, (o, n) in enumerate(zip(self.offsets, self.sizes, strict=True)):
            if n == 1:
                out.append(e_layers[:, i : i + 1])
                continue
            ctx = self.layer_context(i, c_inc, c_layer, out[-1] if out else None)
            z = noise[:, L + o : L + o + n]
            f = self.layer_flows[str(i)](ctx).transform.inv(z)
            s = self.pattern_stats[:, o : o + n]
            p = _unlogit(f * s[1] + s[0], self.alpha)
            p = p / p.sum(dim=1, keepdim=True).clamp_min(1e-12)
            out.append(p * e_layers[:, i : i + 1])
        showers = torch.cat(out, dim=1)
        return torch.where(showers < self.noise_mev, torch.zeros_like(showers), showers)


@register_model("flow")
class FlowModel(Generator):
    """Layer-to-layer normalizing flow (CaloFlow/L2LFlows style) on zuko.

    See the module docstring for the features, the flows and generation.
    """

    config_class = FlowConfig
    #: every tensor of training follows ``self.device`` (noise is drawn on the CPU and moved)
    compute_devices = frozenset({"cpu", "cuda"})
    smoke_config = {
        "transforms": 1,
        "energy_transforms": 1,
        "hidden": [4],
        "bins": 2,
        "batch_size": 8,
    }
    options: FlowConfig

    def __init__(self, geometry: Geometry, config: ModelConfig | Mapping[str, Any] | None = None):
        super().__init__(geometry, config)
        self._zuko = require("zuko", extra="flows", purpose="the normalizing-flow model (flow)")
        self._build()

    def _build(self) -> None:
        self.net = LayerFlowNet(self.geometry, self.options, self._zuko)

    # ------------------------------------------------------------------ engine hooks
    def initialize(self, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._build()

    def _dequantised(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        noise = torch.rand(x.shape, generator=gen, dtype=x.dtype) * self.options.noise_mev
        return x + noise.to(x.device)

    def _fit_preprocessing(self, x: torch.Tensor, e: torch.Tensor, seed: int) -> None:
        """Standardisation statistics (and r_max) from the dequantised training showers."""
        net = self.net
        gen = torch.Generator().manual_seed(derive_seed(seed, "prepare", "flow"))
        xq = self._dequantised(x, gen)
        layers = [xq[:, o : o + n] for o, n in zip(net.offsets, net.sizes, strict=True)]
        e_layers = torch.stack([v.sum(dim=1) for v in layers], dim=1)
        with torch.no_grad():
            net.r_max.fill_(1.05 * float((e_layers.sum(dim=1, keepdim=True) / e).max()))
            log_e = torch.log(e)
            net.log_e_stats.copy_(torch.stack([log_e.mean(), log_e.std().clamp_min(1e-3)]))
            feats = net.raw_energy_features(e_layers, e)
            net.energy_stats.copy_(torch.stack([feats.mean(0), feats.std(0).clamp_min(1e-3)]))
            log_layers = torch.log(e_layers.clamp_min(1e-6))
            net.layer_log_stats.copy_(
                torch.stack([log_layers.mean(0), log_layers.std(0).clamp_min(1e-3)])
            )
            for i, (o, n) in enumerate(zip(net.offsets, net.sizes, strict=True)):
                f = net.raw_pattern(layers[i], i)
                net.pattern_stats[0, o : o + n] = f.mean(0)
                net.pattern_stats[1, o : o + n] = f.std(0).clamp_min(1e-3)

    def training_plan(
        self, train: Showers, val: Showers | None, *, seed: int, fresh: bool
    ) -> TrainingPlan:
        self.geometry.check_voxels(train.n_voxels, "training showers")
        if len(train) < 2:
            raise ConfigError("the flow model needs at least 2 training showers")
        e = self.check_conditions(train.incident_energies).energy
        dev = self.device
        x = torch.as_tensor(np.asarray(train.showers, dtype=np.float32), device=dev).clamp_min(0.0)
        e_t = torch.as_tensor(e, dtype=torch.float32, device=dev).reshape(-1, 1)
        if fresh:
            self._fit_preprocessing(x, e_t, seed)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.options.lr)
        clip = self.options.grad_clip

        def step(idx: torch.Tensor, ctx: StepContext) -> dict[str, float]:
            xq = self._dequantised(x[idx], ctx.rng)
            nll_e, nll_v = self.net.nll(xq, e_t[idx])
            loss = nll_e + nll_v
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), clip)
            opt.step()
            return {"loss": loss.item(), "nll_energy": nll_e.item(), "nll_voxels": nll_v.item()}

        validate = None
        if val is not None and len(val) > 0:
            self.geometry.check_voxels(val.n_voxels, "validation showers")
            xv = torch.as_tensor(np.asarray(val.showers, dtype=np.float32), device=dev)
            xv = xv.clamp_min(0.0)
            ev = self.check_conditions(val.incident_energies).energy
            ev_t = torch.as_tensor(ev, dtype=torch.float32, device=dev).reshape(-1, 1)

            def validate(epoch_seed: int) -> dict[str, float]:
                gen = torch.Generator().manual_seed(derive_seed(epoch_seed, "validate"))
                self.net.eval()
                with torch.no_grad():
                    nll_e, nll_v = self.net.nll(self._dequantised(xv, gen), ev_t)
                return {"val_nll_energy": nll_e.item(), "val_nll_voxels": nll_v.item()}

        return TrainingPlan(
            n_items=len(x),
            batch_size=self.options.batch_size,
            step=step,
            optimizers={"adam": opt},
            loss_names=("loss", "nll_energy", "nll_voxels"),
            validate=validate,
        )

    # ------------------------------------------------------------------ generation
    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def latent_spec(self) -> tuple[LatentInput, ...]:
        n = self.net.n_layers + self.net.n_voxels
        return (
            LatentInput("noise", (n,), "normal(0, 1)"),
            LatentInput("incident_energy", (1,), "incident energy (MeV)", sampler="given"),
        )

    def latent_inputs(
        self, incident_energies: np.ndarray, *, seed: int = 0
    ) -> tuple[torch.Tensor, ...]:
        e = self.check_conditions(incident_energies).energy
        e_t = torch.as_tensor(e, dtype=torch.float32).reshape(-1, 1)
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(len(e), self.net.n_layers + self.net.n_voxels, generator=gen)
        return noise, e_t

    def inference_module(self) -> nn.Module:
        return self.net


__all__ = ["FlowConfig", "FlowModel", "LayerFlowNet"]
