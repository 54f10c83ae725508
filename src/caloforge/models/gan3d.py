"""3DGAN: the CERN openlab conditional GAN on 3D calorimeter images (Khattak et al.).

The generator turns noise and the incident energy into a shower image; the discriminator
answers three questions about an image, as in the original:

* real or fake (binary cross-entropy);
* the incident energy that made it (regressed, mean absolute percentage error, MAPE);
* its summed energy ("ECAL sum", computed exactly from the image, not learned): for generated
  showers it must match ``response * E_inc``, the mean response of the training showers (MAPE).

Conditioning, as in the original: the generator input is the noise *multiplied* by the incident
energy in units of ``energy_unit_mev`` (100 GeV, the original's ``E / 100`` in GeV).

Showers are scaled as in the original: voxel energies in GeV raised to ``power = 0.85``; the
generator ends in a ReLU and :meth:`inference_module` applies the inverse, so it returns MeV.

Two generator variants (config ``generator``):

* ``"conv3d"`` -- a dense layer to a small 3D seed volume, then (x2 up-sampling, Conv3D,
  LeakyReLU, BatchNorm) blocks and a last Conv3D to one channel;
* ``"conv2d"`` -- only Conv2D layers: the layer axis is the channel axis. A dense layer to a
  small 2D seed map, (x2 up-sampling, Conv2D, LeakyReLU, BatchNorm) blocks over the (a, b)
  plane, and a last Conv2D whose ``L`` output channels are the ``L`` layers.

Both grow their seed by factors of two and crop to the geometry's (L, a, b), so any regular
geometry works (25x25x25, ds2's 45x16x9 ...). The defaults are small enough to train a few
epochs on a CPU; the original's size is reachable through ``latent_dim``, ``gen_channels``,
``kernel`` and ``disc_channels`` (see docs/classical-models.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from caloforge.models._gan_common import (
    ImageGAN,
    ImageShape,
    PowerScaling,
    crop_image,
    down_stack,
    flat_size,
    positive_int_list,
    seed_shape,
    up_block,
)
from caloforge.models.base import register_model
from caloforge.models.config import ModelConfig, option

#: generator widths used when ``gen_channels`` is None
DEFAULT_CHANNELS = {"conv3d": [32, 8], "conv2d": [128, 64]}


class Generator3D(nn.Module):
    """(noise (N, d), e_inc (N, 1) MeV) -> scaled image (N, L, a, b), Conv3D layers only."""

    def __init__(
        self,
        latent_dim: int,
        image_shape: ImageShape,
        channels: list[int],
        kernel: int,
        energy_unit_mev: float,
    ) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.energy_unit_mev = float(energy_unit_mev)
        self.seed = seed_shape(image_shape, len(channels))
        self.c0 = channels[0]
        self.fc = nn.Linear(latent_dim, channels[0] * math.prod(self.seed))
        outs = [*channels[1:], channels[-1]]
        self.blocks = nn.Sequential(
            *(up_block(ci, co, kernel, 3) for ci, co in zip(channels, outs, strict=True))
        )
        self.out = nn.Conv3d(channels[-1], 1, kernel, padding=kernel // 2)

    def forward(self, noise: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        h = self.fc(noise * (e_inc / self.energy_unit_mev))
        h = h.reshape(-1, self.c0, *self.seed)
        h = self.out(self.blocks(h))
        return torch.relu(crop_image(h, self.image_shape)).squeeze(1)


class Generator2D(nn.Module):
    """(noise (N, d), e_inc (N, 1) MeV) -> scaled image (N, L, a, b), Conv2D layers only.

    The L layers are the channels of the last Conv2D; the convolutions run over the (a, b) plane.
    """

    def __init__(
        self,
        latent_dim: int,
        image_shape: ImageShape,
        channels: list[int],
        kernel: int,
        energy_unit_mev: float,
    ) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.energy_unit_mev = float(energy_unit_mev)
        self.seed = seed_shape(image_shape[1:], len(channels))
        self.c0 = channels[0]
        self.fc = nn.Linear(latent_dim, channels[0] * math.prod(self.seed))
        outs = [*channels[1:], channels[-1]]
        self.blocks = nn.Sequential(
            *(up_block(ci, co, kernel, 2) for ci, co in zip(channels, outs, strict=True))
        )
        self.out = nn.Conv2d(channels[-1], image_shape[0], kernel, padding=kernel // 2)

    def forward(self, noise: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        h = self.fc(noise * (e_inc / self.energy_unit_mev))
        h = h.reshape(-1, self.c0, *self.seed)
        h = self.out(self.blocks(h))
        return torch.relu(crop_image(h, self.image_shape[1:]))


class AuxDiscriminator(nn.Module):
    """Scaled image (N, L, a, b) -> (real/fake logit (N,), regressed energy (N,), ECAL sum (N,)).

    The energy is in units of ``energy_unit_mev``; the ECAL sum is the image's summed energy in
    GeV, computed exactly through the inverse scaling (no weights), as the original's Lambda layer.
    """

    def __init__(
        self, image_shape: ImageShape, channels: list[int], dropout: float, scaling: PowerScaling
    ) -> None:
        super().__init__()
        self.features = down_stack(channels, norm="batch", dropout=dropout)
        n = flat_size(self.features, image_shape)
        self.real_fake = nn.Linear(n, 1)
        self.energy = nn.Linear(n, 1)
        self.scaling = scaling

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.features(image.unsqueeze(1))
        ecal_gev = self.scaling.inverse(image).flatten(1).sum(dim=1) / 1000.0
        return self.real_fake(h).squeeze(1), self.energy(h).squeeze(1), ecal_gev


def mape(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute percentage error, %, as Keras' ``mean_absolute_percentage_error``."""
    return 100.0 * ((pred - target).abs() / target.abs().clamp_min(1e-7)).mean()


@dataclass(frozen=True)
class GAN3DConfig(ModelConfig):
    """Options of the 3DGAN (see the module docstring)."""

    model_name: ClassVar[str] = "gan3d"

    generator: Literal["conv3d", "conv2d"] = "conv3d"
    #: original: 200 (254 in the angle version)
    latent_dim: int = option(64, min=1)
    #: None: [32, 8] for conv3d, [128, 64] for conv2d
    gen_channels: tuple[int, ...] | None = option(None, min=1, min_length=1)
    kernel: int = option(3, min=1, odd=True)
    disc_channels: tuple[int, ...] = option((8, 16), min=1, min_length=1)
    dropout: float = option(0.2, min=0, max=1, max_exclusive=True)
    #: real/fake BCE, energy MAPE, ECAL-sum MAPE
    loss_weights: tuple[float, ...] = option((3.0, 0.1, 0.1), min=0, length=3)
    power: float = option(0.85, min=0, min_exclusive=True)
    #: images in GeV before the power
    unit_mev: float = option(1000.0, min=0, min_exclusive=True)
    #: conditioning and regression target: E / 100 GeV
    energy_unit_mev: float = option(100_000.0, min=0, min_exclusive=True)
    lr_g: float = option(2e-4, min=0, min_exclusive=True)
    lr_d: float = option(2e-4, min=0, min_exclusive=True)
    betas: tuple[float, ...] = option((0.5, 0.999), min=0, max=1, max_exclusive=True, length=2)
    batch_size: int = option(32, min=1)
    epochs: int = option(5, min=1)


@register_model("gan3d")
class GAN3D(ImageGAN):
    """The 3DGAN with a Conv3D or Conv2D-only generator (config ``generator``).

    Modules: ``generator`` and ``discriminator``. See the module docstring for the losses,
    conditioning and scaling.
    """

    loss_names = ("loss_d", "loss_g", "bce_g", "energy_mape", "ecal_mape")

    config_class = GAN3DConfig
    smoke_config = {
        "latent_dim": 4, "gen_channels": [4, 2], "disc_channels": [2, 2], "batch_size": 8,
    }  # fmt: skip

    def _build(self) -> None:
        cfg = self.config
        variant = cfg["generator"]
        channels = cfg["gen_channels"] or DEFAULT_CHANNELS[variant]
        channels = positive_int_list(channels, "gen_channels")
        kernel = int(cfg["kernel"])
        cls = Generator3D if variant == "conv3d" else Generator2D
        self.generator = cls(
            cfg["latent_dim"], self.image_shape, channels, kernel, cfg["energy_unit_mev"]
        )
        self.discriminator = AuxDiscriminator(
            self.image_shape,
            positive_int_list(cfg["disc_channels"], "disc_channels"),
            float(cfg["dropout"]),
            self.scaling,
        )

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def _generator_net(self) -> nn.Module:
        return self.generator

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = tuple(self.config["betas"])
        return {
            "generator": torch.optim.Adam(
                self.generator.parameters(), lr=self.config["lr_g"], betas=betas
            ),
            "discriminator": torch.optim.Adam(
                self.discriminator.parameters(), lr=self.config["lr_d"], betas=betas
            ),
        }

    def _train_step(
        self, x: torch.Tensor, e_inc: torch.Tensor, rng: torch.Generator
    ) -> dict[str, float]:
        w_bce, w_e, w_ecal = (float(w) for w in self.config["loss_weights"])
        e_target = e_inc.reshape(-1) / self.config["energy_unit_mev"]
        ecal_target_fake = self.response * e_inc.reshape(-1) / 1000.0  # GeV
        noise = torch.randn(len(x), self.config["latent_dim"], generator=rng).to(x.device)
        opt_g, opt_d = self._optimizers["generator"], self._optimizers["discriminator"]

        # discriminator: real -> 1, fake -> 0; energy regressed on both
        fake = self.generator(noise, e_inc)
        logit_r, e_r, _ = self.discriminator(x)
        logit_f, e_f, _ = self.discriminator(fake.detach())
        bce_d = F.binary_cross_entropy_with_logits(
            logit_r, torch.ones_like(logit_r)
        ) + F.binary_cross_entropy_with_logits(logit_f, torch.zeros_like(logit_f))
        loss_d = w_bce * bce_d + w_e * (mape(e_r, e_target) + mape(e_f, e_target))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        # generator: fool the real/fake output, match the energy and the ECAL sum
        logit_f, e_f, ecal_f = self.discriminator(fake)
        bce_g = F.binary_cross_entropy_with_logits(logit_f, torch.ones_like(logit_f))
        mape_e = mape(e_f, e_target)
        mape_ecal = mape(ecal_f, ecal_target_fake)
        loss_g = w_bce * bce_g + w_e * mape_e + w_ecal * mape_ecal
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "bce_g": bce_g.item(),
            "energy_mape": mape_e.item(),
            "ecal_mape": mape_ecal.item(),
        }
