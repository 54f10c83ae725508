"""Pieces shared by the classical image GANs (:mod:`~caloforge.models.gan3d`, :mod:`~.wgan`).

Both models see a shower as a 3D image ``(L, a, b)`` -- layers, then the two in-layer axes of a
*regular* geometry (``(L, nx, ny)`` for grids, ``(L, n_alpha, n_radial)`` for cylindrical
binnings such as ``ds2``) -- so this module holds:

* :func:`regular_image_shape` -- the image shape, or a :class:`ConfigError` for geometries whose
  layers differ in shape;
* :class:`PowerScaling` -- the invertible voxel scaling ``y = (x / unit) ** power``;
* :class:`ShowerInference` -- generator network + inverse scaling: ``(noise, e_inc) -> (N, V) MeV``,
  the deterministic, ONNX-exportable part of sampling;
* up-sampling blocks and :func:`crop_image`, with which a generator reaches any image shape:
  it grows a small seed volume by factors of two and crops the result to ``(L, a, b)``;
* :class:`ImageGAN` -- seeded initialisation and the training plan handed to the engine
  (:mod:`caloforge.models.training`), ``latent_inputs`` and ``inference_module`` (the base
  class's ``sample`` runs them in batches).

The validation metric, :func:`caloforge.evaluate.shapes.shower_shape_mse`, and the toy showers
of the tests, :func:`caloforge.testing.toy_showers`, live outside (they are not GAN-specific).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from caloforge.errors import ConfigError
from caloforge.geometry import Geometry
from caloforge.io import Showers, check_values
from caloforge.models.base import Generator, LatentInput
from caloforge.models.config import ModelConfig
from caloforge.models.training import StepContext, TrainingPlan

#: (L, a, b): layers and the two in-layer axes of a regular image
ImageShape = tuple[int, int, int]


# --------------------------------------------------------------------------- geometry
def regular_image_shape(geometry: Geometry, model_name: str) -> ImageShape:
    """``(L, a, b)`` of a regular geometry; :class:`ConfigError` if its layers differ in shape."""
    if not geometry.is_regular:
        shapes = sorted({"x".join(map(str, lay.shape)) for lay in geometry.layers})
        raise ConfigError(
            f"model {model_name!r} needs a regular geometry (every layer the same shape) but "
            f"{geometry.name!r} has layers of shapes {', '.join(shapes)}; use e.g. "
            "grid:25x25x25, grid:48x25x25:30 or ds2"
        )
    return geometry.image_shape


def check_incident_energies(incident_energies: Any) -> np.ndarray:
    """Incident energies as a float64 array (N,), checked finite and > 0 MeV."""
    e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
    if e.size == 0:
        raise ConfigError("no incident energies given; expected an array (N,) in MeV")
    if not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise ConfigError(
            f"incident energies must be finite and > 0 MeV, got values from {np.nanmin(e):g} "
            f"to {np.nanmax(e):g}"
        )
    return e


def positive_int_list(value: Any, key: str) -> list[int]:
    """A config entry that must be a non-empty list of positive ints (layer widths)."""
    try:
        out = [int(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError(
            f"option {key!r} must be a list of positive integers, got {value!r}"
        ) from None
    if not out or any(v < 1 for v in out):
        raise ConfigError(f"option {key!r} must be a list of positive integers, got {value!r}")
    return out


# --------------------------------------------------------------------------- transforms
class PowerScaling(nn.Module):
    """Voxel energies in MeV <-> model space: ``y = (x / unit_mev) ** power``.

    ``power < 1`` compresses the dynamic range (3DGAN uses GeV ** 0.85). The inverse clamps at 0,
    so any generator output maps to non-negative, finite MeV.
    """

    def __init__(self, power: float, unit_mev: float) -> None:
        super().__init__()
        if not power > 0 or not unit_mev > 0:
            raise ConfigError(
                f"shower scaling needs power > 0 and unit_mev > 0, got {power} and {unit_mev}"
            )
        self.power = float(power)
        self.unit_mev = float(unit_mev)

    def forward(self, x_mev: torch.Tensor) -> torch.Tensor:
        """(...) MeV -> (...) model space."""
        return (x_mev.clamp_min(0.0) / self.unit_mev) ** self.power

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """(...) model space -> (...) MeV, >= 0."""
        return y.clamp_min(0.0) ** (1.0 / self.power) * self.unit_mev


class ShowerInference(nn.Module):
    """The deterministic part of sampling: ``forward(noise (N, d), e_inc (N, 1) MeV) -> (N, V) MeV``.

    ``net(noise, e_inc)`` returns the scaled image (N, L, a, b); this module maps it back to MeV
    and flattens it in the geometry's voxel order (layer, then a, then b fastest).
    """

    def __init__(self, net: nn.Module, scaling: PowerScaling) -> None:
        super().__init__()
        self.net = net
        self.scaling = scaling

    def forward(self, noise: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        image = self.net(noise, e_inc)
        return self.scaling.inverse(image).flatten(1)


# --------------------------------------------------------------------------- building blocks
def seed_shape(image_shape: tuple[int, ...], n_upsamplings: int) -> tuple[int, ...]:
    """Smallest shape that, doubled ``n_upsamplings`` times, covers ``image_shape``."""
    f = 2**n_upsamplings
    return tuple(max(1, math.ceil(s / f)) for s in image_shape)


def crop_image(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Crop the trailing ``len(shape)`` axes of ``x`` to ``shape`` (keeps the first cells)."""
    if len(shape) == 3:
        return x[..., : shape[0], : shape[1], : shape[2]]
    return x[..., : shape[0], : shape[1]]


def up_block(c_in: int, c_out: int, kernel: int, dims: int) -> nn.Sequential:
    """Nearest-neighbour x2 up-sampling, convolution ('same' padding), LeakyReLU, BatchNorm."""
    conv = nn.Conv3d if dims == 3 else nn.Conv2d
    norm = nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv(c_in, c_out, kernel, padding=kernel // 2),
        nn.LeakyReLU(0.2),
        norm(c_out),
    )


def down_stack(channels: list[int], *, norm: str, dropout: float = 0.0) -> nn.Sequential:
    """Stride-2 3x3x3 Conv3d layers 1 -> channels[0] -> ... with LeakyReLU (and a normalisation:
    ``"batch"``, ``"layer"`` (GroupNorm with one group) or ``"none"``)."""
    layers: list[nn.Module] = []
    c_in = 1
    for i, c in enumerate(channels):
        layers.append(nn.Conv3d(c_in, c, 3, stride=2, padding=1))
        if i > 0 and norm == "batch":
            layers.append(nn.BatchNorm3d(c))
        elif norm == "layer":
            layers.append(nn.GroupNorm(1, c))
        layers.append(nn.LeakyReLU(0.2))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        c_in = c
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)


def flat_size(stack: nn.Module, image_shape: ImageShape) -> int:
    """Number of features ``stack`` produces from one (1, 1, L, a, b) image."""
    with torch.no_grad():
        was = stack.training
        stack.eval()
        n = stack(torch.zeros(1, 1, *image_shape)).shape[1]
        stack.train(was)
    return int(n)


# --------------------------------------------------------------------------- the base model
class ImageGAN(Generator):
    """Common machinery of the image GANs; subclasses build the networks and the train step.

    Subclasses implement :meth:`_build` (create the modules; the global torch RNG is seeded by
    the caller), :meth:`_make_optimizers`, :meth:`_train_step` and :meth:`modules`, and may
    override :meth:`_prepare` (one-off work before the first epoch, e.g. pre-training a
    regressor). Every subclass config has ``latent_dim``, ``epochs``, ``batch_size``, ``power``
    and ``unit_mev`` (the :class:`PowerScaling` of the showers).
    """

    #: the losses :meth:`_train_step` reports; each is a per-epoch list in the history
    loss_names: ClassVar[tuple[str, ...]] = ()
    #: every tensor of training follows ``self.device`` (noise is drawn on the CPU and moved)
    compute_devices = frozenset({"cpu", "cuda"})

    def __init__(
        self, geometry: Geometry, config: ModelConfig | Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(geometry, config)
        self.image_shape = regular_image_shape(geometry, self.model_name)
        self.scaling = PowerScaling(self.config["power"], self.config["unit_mev"])
        #: mean summed energy / incident energy of the training showers (fitted in fit)
        self.response = torch.tensor(1.0)
        self._optimizers: dict[str, torch.optim.Optimizer] = {}
        self._build()

    def initialize(self, seed: int) -> None:
        """Fresh networks drawn from ``seed``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self._build()

    # ----------------------------------------------------------------- to implement
    def _build(self) -> None:
        raise NotImplementedError

    def _generator_net(self) -> nn.Module:
        """The module mapping (noise, e_inc MeV) -> scaled image (N, L, a, b)."""
        raise NotImplementedError

    def _make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def _train_step(
        self, x: torch.Tensor, e_inc: torch.Tensor, rng: torch.Generator
    ) -> dict[str, float]:
        """One optimisation step on a batch: x (B, L, a, b) scaled, e_inc (B, 1) MeV."""
        raise NotImplementedError

    def _prepare(self, x: torch.Tensor, e_inc: torch.Tensor, seed: int, progress: bool) -> None:
        """One-off work before the first epoch (x: (N, L, a, b) scaled, e_inc (N, 1) MeV)."""

    # ----------------------------------------------------------------- sampling
    def latent_spec(self) -> tuple[LatentInput, ...]:
        return (
            LatentInput("noise", (self.config["latent_dim"],), "normal(0, 1)"),
            LatentInput("incident_energy", (1,), "incident energy (MeV)", "given"),
        )

    def latent_inputs(
        self, incident_energies: Any, *, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw the stochastic inputs of :meth:`inference_module`.

        Returns:
            noise: (N, latent_dim) float32, standard normal, from a generator seeded by ``seed``;
            e_inc: (N, 1) float32, the incident energies in MeV.
        """
        e = check_incident_energies(incident_energies)
        g = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(len(e), self.config["latent_dim"], generator=g)
        return noise, torch.as_tensor(e, dtype=torch.float32).reshape(-1, 1)

    def inference_module(self) -> ShowerInference:
        """``forward(noise (N, d), e_inc (N, 1) MeV) -> (N, V) MeV``, in eval mode.

        Shares its weights with the model (no copy); deterministic and ONNX-exportable.
        """
        module = ShowerInference(self._generator_net(), self.scaling)
        return module.eval()

    # ----------------------------------------------------------------- checkpoints
    def extra_tensors(self) -> dict[str, torch.Tensor]:
        return {"response": self.response.reshape(1)}

    def load_extra_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if "response" in tensors:
            self.response = tensors["response"].reshape(())

    # ----------------------------------------------------------------- training
    def _training_tensors(self, showers: Showers, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        self.geometry.check_voxels(showers.n_voxels, what)
        check_values(showers.incident_energies, showers.showers, what)
        x = torch.as_tensor(np.asarray(showers.showers, dtype=np.float32), device=self.device)
        x = self.scaling(x).reshape(-1, *self.image_shape)
        e = torch.as_tensor(showers.incident_energies, dtype=torch.float32, device=self.device)
        return x, e.reshape(-1, 1)

    def training_plan(
        self, train: Showers, val: Showers | None, *, seed: int, fresh: bool
    ) -> TrainingPlan:
        """Shuffled passes over the training images, batches of at least 2 (batch statistics);
        a fresh run first fits the mean response and runs :meth:`_prepare`. With ``val`` each
        epoch records ``val_shape_mse``: the mean of :func:`shower_shape_mse` over the three
        axes, at most 2000 showers generated at the validation energies."""
        from caloforge.seeding import derive_seed

        if len(train) < 2:
            raise ConfigError(f"training needs at least 2 showers, got {len(train)}")
        x, e = self._training_tensors(train, "training showers")
        if val is not None:
            self.geometry.check_voxels(val.n_voxels, "validation showers")
        if fresh:
            sums = x.new_tensor(train.showers.sum(axis=1)).reshape(-1, 1)
            self.response = (sums / e).mean().reshape(())
            self._prepare(x, e, derive_seed(seed, "prepare"), False)
        self._optimizers = self._make_optimizers()

        def step(idx: torch.Tensor, ctx: StepContext) -> dict[str, float]:
            return self._train_step(x[idx], e[idx], ctx.rng)

        def validate(epoch_seed: int) -> dict[str, float]:
            from caloforge.evaluate.shapes import shower_shape_mse  # the evaluate package

            assert val is not None
            v = val[: min(len(val), 2000)]
            gen = self.sample(v.incident_energies, seed=epoch_seed)
            return {"val_shape_mse": shower_shape_mse(v.showers, gen, self.image_shape)["mean"]}

        return TrainingPlan(
            n_items=len(x),
            batch_size=self.config["batch_size"],
            min_batch=2,
            step=step,
            optimizers=self._optimizers,
            loss_names=self.loss_names,
            validate=validate,
        )
