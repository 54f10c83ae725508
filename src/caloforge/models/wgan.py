"""WGAN-GP with an energy constrainer, after Buhmann et al. (pion showers in a highly granular
calorimeter, 48x25x25).

Three networks:

* **generator** -- noise concatenated with the energy feature ``c`` (below) -> dense layer to a
  small 3D seed volume -> (x2 up-sampling, Conv3D, LeakyReLU, BatchNorm) blocks -> Conv3D to one
  channel, cropped to the geometry's (L, a, b), ReLU;
* **critic** -- stride-2 Conv3D layers with layer normalisation (no batch statistics, which the
  gradient penalty forbids), the energy feature concatenated to the flattened features, an MLP
  to one Wasserstein score;
* **regressor** (the energy constrainer) -- stride-2 Conv3D layers and an MLP predicting ``c``
  from a shower. It is pre-trained on the real training showers (``regressor_epochs``, MSE)
  at the start of :meth:`fit`, then frozen; the generator pays
  ``constraint_weight * |regressor(G(z, E)) - c(E)|`` on top of the Wasserstein loss.

Losses: critic ``D(fake) - D(real) + lambda_gp * (|grad D(x_hat)| - 1)^2`` with ``x_hat`` on the
line between a real and a fake shower (Gulrajani et al., ``lambda_gp = 10``); the generator is
updated once every ``n_critic`` critic updates.

Energy feature: ``c = ln(E_inc / energy_ref_mev) / ln(energy_span)``; with the defaults (1 GeV,
span 1000) it runs from 0 at 1 GeV to 1 at 1 TeV. Conditioning is by concatenation (3DGAN
multiplies the noise instead).

Shower scaling (caloforge's choice, not from the paper): voxel energies in GeV to the power 0.5.
The inverse scaling is part of :meth:`inference_module`, so samples are in MeV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from caloforge.errors import ConfigError
from caloforge.models._gan_common import (
    ImageGAN,
    ImageShape,
    crop_image,
    down_stack,
    flat_size,
    positive_int_list,
    seed_shape,
    up_block,
)
from caloforge.models.base import register_model
from caloforge.models.config import ModelConfig, option


class EnergyFeature(nn.Module):
    """e_inc (N, 1) MeV -> c = ln(e_inc / ref) / ln(span), (N, 1)."""

    def __init__(self, ref_mev: float, span: float) -> None:
        super().__init__()
        if not ref_mev > 0 or not span > 1:
            raise ConfigError(
                f"energy feature needs energy_ref_mev > 0 and energy_span > 1, got {ref_mev} "
                f"and {span}"
            )
        self.ref_mev = float(ref_mev)
        self.log_span = math.log(float(span))

    def forward(self, e_inc: torch.Tensor) -> torch.Tensor:
        return torch.log(e_inc / self.ref_mev) / self.log_span


class ConcatGenerator3D(nn.Module):
    """(noise (N, d), e_inc (N, 1) MeV) -> scaled image (N, L, a, b); energy concatenated."""

    def __init__(
        self,
        latent_dim: int,
        image_shape: ImageShape,
        channels: list[int],
        kernel: int,
        feature: EnergyFeature,
    ) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.feature = feature
        self.seed = seed_shape(image_shape, len(channels))
        self.c0 = channels[0]
        self.fc = nn.Linear(latent_dim + 1, channels[0] * math.prod(self.seed))
        outs = [*channels[1:], channels[-1]]
        self.blocks = nn.Sequential(
            *(up_block(ci, co, kernel, 3) for ci, co in zip(channels, outs, strict=True))
        )
        self.out = nn.Conv3d(channels[-1], 1, kernel, padding=kernel // 2)

    def forward(self, noise: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([noise, self.feature(e_inc)], dim=1))
        h = h.reshape(-1, self.c0, *self.seed)
        h = self.out(self.blocks(h))
        return torch.relu(crop_image(h, self.image_shape)).squeeze(1)


class Critic(nn.Module):
    """(scaled image (N, L, a, b), c (N, 1)) -> Wasserstein score (N,)."""

    def __init__(self, image_shape: ImageShape, channels: list[int], hidden: int) -> None:
        super().__init__()
        self.features = down_stack(channels, norm="layer")
        n = flat_size(self.features, image_shape)
        self.head = nn.Sequential(nn.Linear(n + 1, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, image: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.features(image.unsqueeze(1))
        return self.head(torch.cat([h, c], dim=1)).squeeze(1)


class EnergyRegressor(nn.Module):
    """Scaled image (N, L, a, b) -> predicted energy feature c (N, 1)."""

    def __init__(self, image_shape: ImageShape, channels: list[int], hidden: int) -> None:
        super().__init__()
        self.features = down_stack(channels, norm="none")
        n = flat_size(self.features, image_shape)
        self.head = nn.Sequential(nn.Linear(n, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image.unsqueeze(1)))


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    c: torch.Tensor,
    rng: torch.Generator | None = None,
) -> torch.Tensor:
    """Gulrajani et al.'s penalty ``mean((|grad_x critic(x_hat, c)|_2 - 1)^2)``.

    ``x_hat = u * real + (1 - u) * fake`` with one ``u ~ U(0, 1)`` per shower (drawn from
    ``rng``); real and fake are (N, ...) with the same shape, c is (N, 1).
    """
    u = torch.rand(len(real), *([1] * (real.dim() - 1)), generator=rng).to(real.device)
    x_hat = (u * real + (1 - u) * fake).requires_grad_(True)
    score = critic(x_hat, c)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


@dataclass(frozen=True)
class WGANConfig(ModelConfig):
    """Options of the WGAN-GP (see the module docstring)."""

    model_name: ClassVar[str] = "wgan"

    latent_dim: int = option(64, min=1)
    gen_channels: tuple[int, ...] = option((32, 8), min=1, min_length=1)
    kernel: int = option(3, min=1, odd=True)
    critic_channels: tuple[int, ...] = option((8, 16), min=1, min_length=1)
    regressor_channels: tuple[int, ...] = option((8, 16), min=1, min_length=1)
    hidden: int = option(64, min=1)
    lambda_gp: float = option(10.0, min=0)
    n_critic: int = option(5, min=1)
    constraint_weight: float = option(1.0, min=0)
    regressor_epochs: int = option(5, min=0)
    lr_regressor: float = option(1e-3, min=0, min_exclusive=True)
    power: float = option(0.5, min=0, min_exclusive=True)
    unit_mev: float = option(1000.0, min=0, min_exclusive=True)
    energy_ref_mev: float = option(1000.0, min=0, min_exclusive=True)
    energy_span: float = option(1000.0, min=1, min_exclusive=True)
    lr_g: float = option(1e-4, min=0, min_exclusive=True)
    lr_c: float = option(1e-4, min=0, min_exclusive=True)
    betas: tuple[float, ...] = option((0.5, 0.9), min=0, max=1, max_exclusive=True, length=2)
    batch_size: int = option(32, min=1)
    epochs: int = option(5, min=1)


@register_model("wgan")
class WGAN(ImageGAN):
    """WGAN-GP with a pre-trained energy regressor as a constraint on the generator.

    Modules: ``generator``, ``critic`` and ``regressor``. See the module docstring.
    """

    loss_names = ("loss_c", "w_dist", "gp", "loss_g", "energy_constraint")

    config_class = WGANConfig
    smoke_config = {
        "latent_dim": 4, "gen_channels": [4, 2], "critic_channels": [2, 2],
        "regressor_channels": [2, 2], "hidden": 4, "regressor_epochs": 1, "n_critic": 2,
        "batch_size": 8,
    }  # fmt: skip

    def _build(self) -> None:
        cfg = self.config
        kernel = int(cfg["kernel"])
        hidden = positive_int_list([cfg["hidden"]], "hidden")[0]
        self.feature = EnergyFeature(cfg["energy_ref_mev"], cfg["energy_span"])
        self.generator = ConcatGenerator3D(
            cfg["latent_dim"],
            self.image_shape,
            positive_int_list(cfg["gen_channels"], "gen_channels"),
            kernel,
            self.feature,
        )
        self.critic = Critic(
            self.image_shape, positive_int_list(cfg["critic_channels"], "critic_channels"), hidden
        )
        self.regressor = EnergyRegressor(
            self.image_shape,
            positive_int_list(cfg["regressor_channels"], "regressor_channels"),
            hidden,
        )

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "critic": self.critic, "regressor": self.regressor}

    def _generator_net(self) -> nn.Module:
        return self.generator

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = tuple(self.config["betas"])
        return {
            "generator": torch.optim.Adam(
                self.generator.parameters(), lr=self.config["lr_g"], betas=betas
            ),
            "critic": torch.optim.Adam(
                self.critic.parameters(), lr=self.config["lr_c"], betas=betas
            ),
        }

    def regressor_loss(self, x: torch.Tensor, e_inc: torch.Tensor) -> float:
        """Mean squared error of the regressor's energy feature on scaled showers x (N, L, a, b)."""
        self.regressor.eval()
        with torch.no_grad():
            pred = torch.cat([self.regressor(x[i : i + 256]) for i in range(0, len(x), 256)])
            return F.mse_loss(pred, self.feature(e_inc)).item()

    def _prepare(self, x: torch.Tensor, e_inc: torch.Tensor, seed: int, progress: bool) -> None:
        """Pre-train the energy regressor on the real training showers, then freeze it."""
        n_epochs = int(self.config["regressor_epochs"])
        rng = torch.Generator().manual_seed(int(seed))
        opt = torch.optim.Adam(self.regressor.parameters(), lr=self.config["lr_regressor"])
        bs = min(self.config["batch_size"], len(x))
        c = self.feature(e_inc)
        losses = [self.regressor_loss(x, e_inc)]
        self.regressor.train()
        for _ in range(n_epochs):
            perm = torch.randperm(len(x), generator=rng)
            for i in range(0, len(x), bs):
                idx = perm[i : i + bs]
                loss = F.mse_loss(self.regressor(x[idx]), c[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            losses.append(self.regressor_loss(x, e_inc))
        self.regressor.requires_grad_(False)
        self.regressor.eval()
        self.state["regressor_mse"] = losses

    def _train_step(
        self, x: torch.Tensor, e_inc: torch.Tensor, rng: torch.Generator
    ) -> dict[str, float]:
        cfg = self.config
        c = self.feature(e_inc)
        self.regressor.requires_grad_(False)
        self.regressor.eval()
        opt_g, opt_c = self._optimizers["generator"], self._optimizers["critic"]

        noise = torch.randn(len(x), cfg["latent_dim"], generator=rng).to(x.device)
        with torch.no_grad():
            fake = self.generator(noise, e_inc)
        w_dist = self.critic(x, c).mean() - self.critic(fake, c).mean()
        gp = gradient_penalty(self.critic, x, fake, c, rng)
        loss_c = -w_dist + cfg["lambda_gp"] * gp
        opt_c.zero_grad(set_to_none=True)
        loss_c.backward()
        opt_c.step()
        out = {"loss_c": loss_c.item(), "w_dist": w_dist.item(), "gp": gp.item()}

        if (int(self.state["step"]) + 1) % cfg["n_critic"] == 0:
            noise = torch.randn(len(x), cfg["latent_dim"], generator=rng).to(x.device)
            fake = self.generator(noise, e_inc)
            adv = -self.critic(fake, c).mean()
            constraint = (self.regressor(fake) - c).abs().mean()
            loss_g = adv + cfg["constraint_weight"] * constraint
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            out.update({"loss_g": loss_g.item(), "energy_constraint": constraint.item()})
        return out
