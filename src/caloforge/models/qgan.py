"""Hybrid quantum GANs: parametrized-circuit generators for downsampled calorimeter showers.

Two registered models share this module:

``qgan`` -- the sample-level conditional generator (default). Every circuit call makes one
shower image: latent noise z ~ N(0, 1) enters as RY(s z_i) on qubit i, the incident energy as
RX(s' pi u) on every qubit (u = scaled log E in [0, 1]; s, s' trainable input scales). With
``pixels: "shape"`` the image is the shower *shape* read from the basis-state probabilities
(2**n pixels from n qubits) or the normalised per-qubit P(1); with ``pixels: "energy"`` each
qubit's P(1) is one pixel's energy on a log scale, so the circuit also makes the total.
Training: a warm start on the conditional mean image, then adversarial epochs whose generator
loss adds feature matching on the per-pixel batch mean and spread; the critic is a small MLP
(or a variational quantum classifier) that sees the images given u.

``qgan-dist`` -- the distribution-learning 1D/2D hybrid QGAN of the published models: an
input-free circuit whose measured probabilities *are* the image; it learns the average shower
shape over the training set. Its :meth:`sample` gives every shower that shape; with finite
``shots`` each shower is the frequency image of its own ``shots`` measurements, so the shot noise
is the only shower-to-shower fluctuation.

In shape mode (both models) the total deposited energy is drawn from a fitted log-normal
response, log(E_dep / E_inc) ~ N(a0 + a1 u, exp(b0 + b1 u)^2), fitted by least squares on the
training showers, and pixel energies = shape * E_dep. Everything that differs between the two
pixel modes (noise columns, critic inputs, losses, decoding) is one
:class:`~caloforge.models.qgan_pixels.PixelMode` object, ``model.pixels``. Pixels are spread
back over the voxels of the geometry with the fitted per-voxel fractions
(:class:`~caloforge.quantum.Downsampler`), so the output has the full (N, V) geometry in MeV.

The inference module holds PennyLane QNodes: it runs in torch, but is not ONNX- or
TorchScript-exportable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from caloforge.errors import ConfigError
from caloforge.io import Showers
from caloforge.models.base import Generator, LatentInput, register_model
from caloforge.models.config import ModelConfig, option
from caloforge.models.qgan_pixels import PIXEL_MODES, PixelMode, Readout
from caloforge.models.training import StepContext, TrainingPlan
from caloforge.quantum.circuits import (
    CircuitSpec,
    QuantumCircuit,
    build_qnode,
    qubit_shots_from_uniforms,
    shots_from_uniforms,
)
from caloforge.quantum.discriminators import MLPDiscriminator, QuantumDiscriminator
from caloforge.quantum.downsample import Downsampler


@dataclass(frozen=True)
class QGANCommonConfig(ModelConfig):
    """Options shared by ``qgan`` and ``qgan-dist`` (see the module docstring)."""

    model_name: ClassVar[str] = "qgan-dist"

    #: "1d": 8-pixel depth profile; "2d": 8 x 8 image stacked to 64
    image: Literal["1d", "2d"] = "1d"
    #: "shape": the circuit makes pixel fractions, the total comes from a fitted response;
    #: "energy": one qubit per pixel (expval readout), P(1) is the pixel's scaled energy
    pixels: Literal["shape", "energy"] = "shape"
    #: 2d image axes: "depth-radius" or "x-y" (Cartesian geometries)
    axes: Literal["depth-radius", "x-y"] = "depth-radius"
    n_qubits: int = option(3, min=1)
    n_layers: int = option(4, min=1)
    ansatz: Literal["ry", "ryrz", "rot"] = "ryrz"
    entangler: Literal["linear", "ring", "all", "none"] = "ring"
    gate: Literal["cnot", "cz"] = "cnot"
    diff_method: Literal["backprop", "parameter-shift"] = "backprop"
    #: None: exact probabilities; int: finite-shot measurement
    shots: int | None = option(None, min=1)
    #: depolarising rate per qubit per layer (mixed-state simulator)
    depolarizing: float = option(0.0, min=0, max=1)
    #: amplitude-damping rate per qubit per layer
    amplitude_damping: float = option(0.0, min=0, max=1)
    discriminator: Literal["mlp", "quantum"] = "mlp"
    disc_hidden: tuple[int, ...] = option((64, 32), min=1)
    #: MLP discriminator input: log10(fraction + floor), scaled to [0, 1]
    disc_log_floor: float = option(1e-4, min=0, max=1, min_exclusive=True, max_exclusive=True)
    disc_layers: int = option(3, min=1)
    lr_g: float = option(0.02, min=0, min_exclusive=True)
    lr_d: float = option(0.002, min=0, min_exclusive=True)
    batch_size: int = option(64, min=1)
    #: discriminator updates per generator update
    n_critic: int = option(1, min=1)
    epochs: int = option(10, min=1)
    #: None: one pass over the training showers
    steps_per_epoch: int | None = option(None, min=1)


@dataclass(frozen=True)
class DistributionQGANConfig(QGANCommonConfig):
    """Options of ``qgan-dist``: one-hot pixel samples; a small discriminator kept near its
    optimum (``n_critic``) makes the generator follow the Jensen-Shannon gradient instead of
    oscillating."""

    model_name: ClassVar[str] = "qgan-dist"
    n_critic: int = option(5, min=1)
    lr_g: float = option(0.01, min=0, min_exclusive=True)
    lr_d: float = option(0.02, min=0, min_exclusive=True)
    disc_hidden: tuple[int, ...] = option((32,), min=1)
    batch_size: int = option(128, min=1)


@dataclass(frozen=True)
class QGANConfig(QGANCommonConfig):
    """Options of ``qgan``.

    ``latent_scale``: initial trainable scale of the latent angles RY(s z); ``pretrain_steps``:
    warm-start steps fitting the conditional mean image (see ``QGAN._pretrain``);
    ``moment_weight``: weight of the feature-matching term (:func:`batch_moment_distance`). A
    small, slowly learning discriminator: with lr_d 0.002 and (64, 32) hidden units it
    separated real from generated 64-pixel images within one epoch and the generator
    collapsed (docs/qgan.md).
    """

    model_name: ClassVar[str] = "qgan"
    encoding: Literal["angle", "reupload", "none"] = "reupload"
    readout: Literal["probs", "expval"] = "probs"
    latent_scale: float = 1.0
    pretrain_steps: int = option(400, min=0)
    pretrain_lr: float = option(0.02, min=0, min_exclusive=True)
    moment_weight: float = option(10.0, min=0)
    lr_d: float = option(0.0005, min=0, min_exclusive=True)
    disc_hidden: tuple[int, ...] = option((32,), min=1)


def demo_config(image: str = "1d", **overrides: Any) -> dict[str, Any]:
    """A small working configuration: 1D (8 px, 3 qubits) or 2D (8 x 8, 6 qubits); with
    ``pixels="energy"`` (``qgan``, 1D only) 8 qubits with expval readout, one per pixel."""
    if image not in ("1d", "2d"):
        raise ConfigError(f"unknown image kind {image!r}; use '1d' or '2d'")
    cfg: dict[str, Any] = {"image": image, "n_qubits": 3 if image == "1d" else 6}
    if image == "2d":
        cfg.update(n_layers=5, batch_size=32, steps_per_epoch=40)
    if overrides.get("pixels") == "energy":
        cfg.update(n_qubits=8 if image == "1d" else 64, readout="expval")
    return {**cfg, **overrides}


# --------------------------------------------------------------------------- inference
class QGANSampler(nn.Module):
    """The deterministic part of a QGAN: forward(noise, e_inc) -> (N, V) showers in MeV.

    The circuit's readout is decoded into pixel energies by the model's
    :class:`~caloforge.models.qgan_pixels.PixelMode`: shapes times a total drawn from the
    fitted log-normal ``response`` (``pixels: shape``), or per-pixel scaled energies with the
    fitted ``pixel_scale`` (``pixels: energy``, expval readout, one qubit per pixel).

    ``noise`` columns: ``n_latent`` latent angles z ~ N(0, 1); ``mode.n_response`` N(0, 1) for
    the response (1 in shape mode, 0 in energy mode); then ``shots`` (probs readout) or
    ``shots * n_qubits`` (expval readout) uniforms that draw the measurement outcomes when
    ``shots`` is set. ``e_inc``: (N, 1) MeV. The circuit is always simulated exactly here
    (mixed-state when noisy); finite shots are then sampled from its probabilities with the
    given uniforms, which is what a measurement does.
    """

    # buffers (registered in __init__), declared for the type checker
    pixel_of_voxel: torch.Tensor
    fractions: torch.Tensor
    energy_range: torch.Tensor
    response: torch.Tensor
    pixel_scale: torch.Tensor

    def __init__(
        self,
        circuit: QuantumCircuit,
        conditional: bool,
        mode: PixelMode,
        pixel_of_voxel: torch.Tensor,
        fractions: torch.Tensor,
        energy_range: torch.Tensor,
        response: torch.Tensor,
        pixel_scale: torch.Tensor,
    ) -> None:
        super().__init__()
        self.circuit = circuit
        self.conditional = conditional
        self.mode = mode
        spec = circuit.spec
        self.n_latent = spec.n_latent
        self.shots = spec.shots
        self.readout = spec.readout
        self.exact_qnode = build_qnode(replace(spec, shots=None, diff_method="backprop"))
        self.register_buffer("pixel_of_voxel", pixel_of_voxel.long())
        self.register_buffer("fractions", fractions.float())
        self.register_buffer("energy_range", energy_range.float())
        self.register_buffer("response", response.float())
        self.register_buffer("pixel_scale", pixel_scale.float())

    def scaled_log_energy(self, e_inc: torch.Tensor) -> torch.Tensor:
        """u = (log E - log E_min) / (log E_max - log E_min) of the training range, shape (N,)."""
        lo, hi = self.energy_range[0], self.energy_range[1]
        return (torch.log(e_inc.reshape(-1)) - lo) / (hi - lo).clamp_min(1e-6)

    def measured(self, noise: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        """The circuit's readout: basis-state probabilities (probs) or P(qubit = 1) (expval),
        (N, n_outputs), replaced by shot frequencies when ``shots`` is set."""
        n = len(noise)
        u = self.scaled_log_energy(e_inc)
        circuit = self.circuit
        if self.conditional:
            inputs = torch.cat([noise[:, : self.n_latent], math.pi * u[:, None]], dim=1)
            out = self.exact_qnode(inputs, circuit.weights, circuit.input_scale)
        else:
            out = self.exact_qnode(torch.zeros(1), circuit.weights, circuit.input_scale)
        if isinstance(out, list | tuple):
            out = torch.stack(list(out), dim=-1)
        out = out.to(torch.float32).reshape(-1 if self.conditional else 1, circuit.spec.n_outputs)
        out = out.expand(n, -1)
        uniforms = noise[:, self.n_latent + self.mode.n_response :]
        if self.readout == "probs":
            return shots_from_uniforms(out, uniforms) if self.shots else out
        p_one = (1.0 - out) / 2.0
        return qubit_shots_from_uniforms(p_one, uniforms) if self.shots else p_one

    def readout_of(self, noise: torch.Tensor, e_inc: torch.Tensor) -> Readout:
        """The measured readout with everything the pixel mode decodes it with."""
        z = noise[:, self.n_latent : self.n_latent + self.mode.n_response]
        return Readout(
            self.measured(noise, e_inc),
            e_inc,
            self.scaled_log_energy(e_inc),
            z,
            self.response,
            self.pixel_scale,
        )

    def images(self, noise: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        """Generated pixel images in MeV, (N, P)."""
        return self.mode.energies(self.readout_of(noise, e_inc))

    def shapes(self, noise: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        """Generated pixel fractions, (N, P), rows summing to 1."""
        return self.mode.shapes(self.readout_of(noise, e_inc))

    def totals(self, noise: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        """Deposited energy, (N,) MeV: the sum of the pixels in energy mode, else drawn from the
        fitted log-normal response."""
        return self.mode.totals(self.readout_of(noise, e_inc))

    def forward(self, noise: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
        pixels = self.images(noise, e_inc)
        return pixels[:, self.pixel_of_voxel] * self.fractions


# --------------------------------------------------------------------------- shared model
class _HybridQGAN(Generator):
    """Shared machinery of ``qgan`` and ``qgan-dist``: config checks, preprocessing, training."""

    conditional = True
    config_class: ClassVar[type[ModelConfig] | None] = QGANCommonConfig
    #: PennyLane QNodes run in torch but trace to neither ONNX nor TorchScript
    exportable = False
    takes_device = True

    def __init__(self, geometry, config: ModelConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__(geometry, config)
        c = self.config
        #: what the circuit's readout means (qgan_pixels): shapes or scaled pixel energies
        self.pixels: PixelMode = PIXEL_MODES[c["pixels"]]
        self.downsampler = Downsampler(geometry, c["image"], c["axes"])
        self.spec = self._circuit_spec()
        self.pixels.check(
            self.model_name,
            self.conditional,
            self.spec.readout,
            self.downsampler.n_pixels,
            c["discriminator"],
        )
        self._check_qubits()
        self.generator = QuantumCircuit(
            self.spec, seed=0, latent_scale=float(self.config.get("latent_scale", 1.0))
        )
        self.discriminator = self._build_discriminator(seed=0)
        self.energy_range = torch.tensor([math.log(1e3), math.log(1e6)])
        self.response = torch.tensor([0.0, 0.0, math.log(0.1), 0.0])
        # (2, P): per-pixel eps and x_max of unit_scale, fitted in _prepare (energy pixels)
        self.pixel_scale = torch.tensor([[1e-6], [1.0]]).repeat(1, self.downsampler.n_pixels)
        self._optimizers: dict[str, torch.optim.Optimizer] = {}

    def initialize(self, seed: int) -> None:
        """Fresh circuit and discriminator weights drawn from ``seed``."""
        self.generator.reset_parameters(seed)
        with torch.random.fork_rng(devices=[]):
            self.discriminator = self._build_discriminator(seed)

    # ----------------------------------------------------------------- construction
    def _circuit_spec(self) -> CircuitSpec:
        c = self.config
        extra = self._spec_inputs()
        return CircuitSpec(
            n_qubits=int(c["n_qubits"]),
            n_layers=int(c["n_layers"]),
            ansatz=c["ansatz"],
            entangler=c["entangler"],
            gate=c["gate"],
            depolarizing=float(c["depolarizing"]),
            amplitude_damping=float(c["amplitude_damping"]),
            shots=None if c["shots"] is None else int(c["shots"]),
            diff_method=c["diff_method"],
            **extra,
        )

    def _spec_inputs(self) -> dict[str, Any]:
        return {"encoding": "none", "readout": "probs"}

    def _check_qubits(self) -> None:
        n_pixels, n, readout = self.downsampler.n_pixels, self.spec.n_qubits, self.spec.readout
        need = int(math.log2(n_pixels)) if readout == "probs" else n_pixels
        if n != need:
            raise ConfigError(
                f"n_qubits={n} does not match the {self.config['image']} image of {n_pixels} "
                f"pixels with {readout!r} readout, which needs n_qubits={need}"
            )

    def _build_discriminator(self, seed: int) -> nn.Module:
        c, n_pixels = self.config, self.downsampler.n_pixels
        n_cond = 1 if self.conditional else 0
        torch.manual_seed(seed)
        if c["discriminator"] == "quantum":
            return QuantumDiscriminator(
                n_pixels, n_cond, int(c["disc_layers"]), c["ansatz"], c["entangler"], seed=seed
            )
        return MLPDiscriminator(
            n_pixels + self.pixels.n_critic_features,
            n_cond,
            tuple(int(h) for h in c["disc_hidden"]),
            float(c["disc_log_floor"]),
            log_inputs=self.pixels.log_critic_inputs,
        )

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    # ----------------------------------------------------------------- fitted tensors
    def extra_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"downsample.{k}": v for k, v in self.downsampler.state().items()}
        out["energy_range"] = self.energy_range.float()
        out["response"] = self.response.float()
        out["pixel_scale"] = self.pixel_scale.float()
        return out

    def load_extra_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.downsampler.load_state(
            {k[len("downsample.") :]: v for k, v in tensors.items() if k.startswith("downsample.")}
        )
        self.energy_range = tensors["energy_range"].float()
        self.response = tensors["response"].float()
        self.pixel_scale = tensors.get("pixel_scale", self.pixel_scale).float()

    # ----------------------------------------------------------------- hardware settings
    HARDWARE_OPTIONS = ("depolarizing", "amplitude_damping", "shots")

    def with_hardware(self, **changes: Any) -> _HybridQGAN:
        """The same trained model run on a different simulated device.

        ``changes``: any of ``depolarizing``, ``amplitude_damping`` (rates per qubit per layer)
        and ``shots`` (``None`` = exact). Weights, fitted downsampling and response are copied;
        e.g. ``model.with_hardware(depolarizing=0.02).sample(e)`` generates with a circuit
        trained noiselessly but executed on a noisy device.
        """
        unknown = set(changes) - set(self.HARDWARE_OPTIONS)
        if unknown:
            raise ConfigError(
                f"with_hardware takes {', '.join(self.HARDWARE_OPTIONS)}; "
                f"got {', '.join(sorted(unknown))}"
            )
        config = {**self.config, **changes}
        if config["shots"] is not None and config["diff_method"] == "backprop":
            config["diff_method"] = "parameter-shift"  # generation only; no gradients needed
        other = type(self)(self.geometry, config)
        for name, module in self.modules().items():
            other.modules()[name].load_state_dict(module.state_dict())
        other.load_extra_tensors(self.extra_tensors())
        other.state = dict(self.state)
        return other

    # ----------------------------------------------------------------- generation
    def n_latent(self) -> int:
        return self.spec.n_latent

    def n_noise(self) -> int:
        shots = self.spec.shots or 0
        per_shot = 1 if self.spec.readout == "probs" else self.spec.n_qubits
        return self.n_latent() + self.n_response() + shots * per_shot

    def n_response(self) -> int:
        """Noise columns of the fitted energy response: 1 in shape mode, 0 in energy mode."""
        return self.pixels.n_response

    def latent_spec(self) -> tuple[LatentInput, ...]:
        what = f"normal(0, 1) x {self.n_latent() + self.n_response()}"
        if self.n_noise() > self.n_latent() + self.n_response():
            what += f", then uniform(0, 1) x {self.n_noise() - self.n_latent() - self.n_response()}"
        return (
            LatentInput("noise", (self.n_noise(),), what),
            LatentInput("incident_energy", (1,), "incident energy (MeV)", "given"),
        )

    def latent_inputs(self, e: np.ndarray, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise (N, n_latent [+ 1 response] [+ shot uniforms]) float32 and e_inc (N, 1) MeV."""
        e = np.asarray(e, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(e)) or np.any(e <= 0):
            raise ConfigError("incident energies must be finite and > 0 MeV")
        gen = torch.Generator().manual_seed(int(seed))
        n, k = len(e), self.n_latent() + self.n_response()
        gauss = torch.randn(n, k, generator=gen)
        uniforms = torch.rand(n, self.n_noise() - k, generator=gen)
        noise = torch.cat([gauss, uniforms], dim=1)
        return noise, torch.as_tensor(e, dtype=torch.float32).reshape(-1, 1)

    def inference_module(self) -> QGANSampler:
        """circuit -> pixel images -> voxels; runs in torch (not ONNX)."""
        return QGANSampler(
            self.generator,
            self.conditional,
            self.pixels,
            torch.as_tensor(self.downsampler.pixel_of_voxel),
            torch.as_tensor(self.downsampler.fractions, dtype=torch.float32),
            self.energy_range,
            self.response,
            self.pixel_scale,
        )

    def sample_pixels(
        self, incident_energies: np.ndarray, *, seed: int = 0, batch_size: int = 1024
    ) -> np.ndarray:
        """Generated pixel images (N, P) in MeV, before spreading over voxels: the pixels behind
        ``sample(incident_energies, seed=seed, batch_size=batch_size)`` (same draws)."""
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        module = self.inference_module().eval()
        with torch.no_grad():
            batches = self.latent_batches(e, seed=seed, batch_size=batch_size)
            return np.concatenate([module.images(*inputs).numpy() for inputs in batches])

    # ----------------------------------------------------------------- training pieces
    def _pretrain(self, real: torch.Tensor, u: torch.Tensor, gen: torch.Generator) -> None:
        """Warm start before the adversarial epochs (none here; see :class:`QGAN`)."""

    def _fake_images(self, u: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Training-time generated images (differentiable), (B, P): shapes, or scaled energies."""
        return self.generator(None, batch=len(u))

    def _train_step(
        self, x_real: torch.Tensor, u: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step on a batch of real images (B, P) at scaled energies u (B,);
        returns (discriminator loss, generator loss)."""
        raise NotImplementedError

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def _disc(self, shapes: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.discriminator(shapes, u[:, None] if self.conditional else None)

    def _prepare(self, train: Showers) -> tuple[torch.Tensor, torch.Tensor]:
        """Fit downsampling, energy range, response and pixel scale; returns the real images
        (M, P) the discriminator sees (shapes, or unit-scaled energies) and u (M,)."""
        x, e = _checked(train, self.geometry)
        self.downsampler.fit(x)
        pixels = self.downsampler.forward(x).astype(np.float64)
        totals = pixels.sum(axis=1)
        keep = totals > 0
        if keep.sum() < 2:
            raise ConfigError("the training showers need at least two with deposited energy")
        log_e = np.log(e[keep])
        lo, hi = float(log_e.min()), float(log_e.max())
        if hi - lo < 1e-6:
            lo, hi = lo - 0.5, hi + 0.5
        self.energy_range = torch.tensor([lo, hi], dtype=torch.float32)
        u = (log_e - lo) / (hi - lo)
        y = np.log(totals[keep] / e[keep])
        design = np.stack([np.ones_like(u), u], axis=1)
        a = np.linalg.lstsq(design, y, rcond=None)[0]
        # E[log |r|] = log sigma - (euler_gamma + log 2) / 2 for r ~ N(0, sigma^2)
        log_abs = np.log(np.abs(y - design @ a) + 1e-9) + (np.euler_gamma + math.log(2)) / 2
        b = np.linalg.lstsq(design, log_abs, rcond=None)[0]
        self.response = torch.tensor([a[0], a[1], b[0], b[1]], dtype=torch.float32)
        images, pixel_scale = self.pixels.fit(pixels[keep], e[keep])
        if pixel_scale is not None:
            self.pixel_scale = torch.tensor(pixel_scale, dtype=torch.float32)
        return torch.as_tensor(images, dtype=torch.float32), torch.as_tensor(u, dtype=torch.float32)

    def _real_shapes(self, data: Showers) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        x, e = _checked(data, self.geometry)
        pixels = self.downsampler.forward(x).astype(np.float64)
        totals = pixels.sum(axis=1)
        keep = totals > 0
        shapes = torch.as_tensor(pixels[keep] / totals[keep, None], dtype=torch.float32)
        return shapes, torch.as_tensor(e[keep], dtype=torch.float32), keep

    def shape_mse(self, data: Showers, seed: int = 12345, max_showers: int = 512) -> float:
        """MSE between the mean generated and the mean real shower shape (pixel fractions)."""
        shapes, e, _ = self._real_shapes(data[:max_showers])
        noise, e_in = self.latent_inputs(e.numpy(), seed=seed)
        with torch.no_grad():
            fake = self.inference_module().shapes(noise, e_in)
        return float(((fake.mean(0) - shapes.mean(0)) ** 2).mean())

    # ----------------------------------------------------------------- training
    def training_plan(
        self, train: Showers, val: Showers | None, *, seed: int, fresh: bool
    ) -> TrainingPlan:
        """Adversarial steps on the downsampled training images (``steps_per_epoch`` batches,
        default one pass; the shuffled order repeats cyclically). Preprocessing is refitted
        on every call (it is deterministic); a fresh run first runs :meth:`_pretrain`. History:
        ``loss_d``, ``loss_g`` and, with ``val``, ``val_shape_mse`` (MSE of mean shapes)."""
        from caloforge.seeding import derive_seed

        c = self.config
        real, u_real = self._prepare(train)
        opt_g = torch.optim.Adam(
            self.generator.parameters(), lr=float(c["lr_g"]), betas=(0.5, 0.999)
        )
        opt_d = torch.optim.Adam(
            self.discriminator.parameters(), lr=float(c["lr_d"]), betas=(0.5, 0.999)
        )
        self._optimizers = {"g": opt_g, "d": opt_d}
        batch = min(int(c["batch_size"]), len(real))
        steps = int(c["steps_per_epoch"] or max(1, len(real) // batch))
        if fresh:
            self._pretrain(
                real, u_real, torch.Generator().manual_seed(derive_seed(seed, "pretrain"))
            )

        def step(idx: torch.Tensor, ctx: StepContext) -> dict[str, float]:
            loss_d, loss_g = self._train_step(real[idx], u_real[idx], ctx.rng)
            return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

        def validate(epoch_seed: int) -> dict[str, float]:
            assert val is not None
            return {"val_shape_mse": self.shape_mse(val)}

        return TrainingPlan(
            n_items=len(real),
            batch_size=batch,
            steps_per_epoch=steps,
            step=step,
            optimizers=self._optimizers,
            loss_names=("loss_d", "loss_g"),
            validate=validate,
            begin_epoch=self.generator.reseed,
        )

    # ----------------------------------------------------------------- description
    def describe(self) -> str:
        """Configuration, pixel mapping, parameter counts and the circuit drawings."""
        d = self.downsampler
        lines = [
            f"{self.model_name}: hybrid quantum GAN on {self.geometry!r}",
            f"  image: {d.image} {'x'.join(map(str, d.image_shape))} "
            f"({', '.join(d.axis_names)}) = {d.n_pixels} pixels",
            f"  generator: {self.generator.extra_repr()}",
            f"  trainable parameters: generator {sum(p.numel() for p in self.generator.parameters())}, "
            f"discriminator {sum(p.numel() for p in self.discriminator.parameters())}",
            self.pixels.describe(self.response, self.pixel_scale),
            "",
            "generator circuit:",
            self.generator.draw(),
        ]
        if isinstance(self.discriminator, QuantumDiscriminator):
            lines += ["", "discriminator circuit:", self.discriminator.draw()]
        else:
            lines += ["", f"discriminator: {self.discriminator}"]
        return "\n".join(lines)


def batch_moment_distance(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Feature matching (Salimans et al. 2016) on the per-pixel batch mean and standard
    deviation: the triangular discrimination sum_j (f_j - r_j)^2 / (f_j + r_j) of the means plus
    that of the standard deviations, which weights faint pixels as much as bright ones.
    (B, P) and (B', P) -> scalar >= 0; 0 when both moments agree. The fake batch is generated
    at the real batch's energies, so the two are compared like for like."""

    def tri(f: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return ((f - r) ** 2 / (f + r).clamp_min(1e-6)).sum()

    return tri(fake.mean(dim=0), real.mean(dim=0)) + tri(fake.std(dim=0), real.std(dim=0))


def _checked(data: Showers, geometry) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(data.showers)
    e = np.asarray(data.incident_energies, dtype=np.float64).reshape(-1)
    geometry.check_voxels(x.shape[1], "training showers")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ConfigError("training showers must hold finite, non-negative voxel energies (MeV)")
    if not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise ConfigError("training incident energies must be finite and > 0 MeV")
    return x, e


# --------------------------------------------------------------------------- the two models
@register_model("qgan")
class QGAN(_HybridQGAN):
    """Sample-level conditional quantum generator: one circuit call per shower image.

    Extra options over ``qgan-dist``: ``encoding`` (``angle`` once, ``reupload`` before every
    layer) and ``readout`` (``probs``: 2**n pixels; ``expval``: n pixels from P(qubit = 1)).
    """

    conditional = True
    config_class = QGANConfig
    smoke_config = {
        "n_layers": 1, "batch_size": 8, "steps_per_epoch": 2, "pretrain_steps": 1,
        "disc_hidden": [4],
    }  # fmt: skip

    def _pretrain(self, real: torch.Tensor, u: torch.Tensor, gen: torch.Generator) -> None:
        """Warm start: ``pretrain_steps`` Adam steps on the cross-entropy between real shapes
        and generated shapes at the same u, -sum_j x_j log q_j(z, u) (energy pixels: the
        squared error of the scaled energies).

        Its minimum is q(z, u) = E[x | u] for every z: the circuit starts from the conditional
        mean shape (what ``qgan-dist`` learns, here per energy) instead of a random 2**n-state
        distribution, and the adversarial epochs then learn the shower-to-shower fluctuations.
        """
        steps = int(self.config["pretrain_steps"])
        if steps <= 0:
            return
        opt = torch.optim.Adam(self.generator.parameters(), lr=float(self.config["pretrain_lr"]))
        batch = min(int(self.config["batch_size"]), len(real))
        for _ in range(steps):
            idx = torch.randint(len(real), (batch,), generator=gen)
            loss = self.pixels.pretrain_loss(self._fake_images(u[idx], gen), real[idx])
            self._step(opt, loss)

    def _spec_inputs(self) -> dict[str, Any]:
        c = self.config
        if c["encoding"] == "none":
            raise ConfigError("the qgan generator needs inputs; use encoding 'angle' or 'reupload'")
        return {
            "encoding": c["encoding"],
            "readout": c["readout"],
            "n_latent": int(c["n_qubits"]),
            "n_cond": 1,
        }

    def _train_step(
        self, x_real: torch.Tensor, u: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n_critic`` discriminator updates, then one generator update (non-saturating loss,
        plus ``moment_weight`` times :func:`batch_moment_distance` of fake and real images)."""
        bce = nn.functional.binary_cross_entropy_with_logits
        ones, zeros = torch.ones(len(u)), torch.zeros(len(u))
        x_real = self._critic_inputs(x_real, u)
        for _ in range(int(self.config["n_critic"])):
            with torch.no_grad():
                x_fake = self._critic_inputs(self._fake_images(u, gen), u)
            loss_d = bce(self._disc(x_real, u), ones) + bce(self._disc(x_fake, u), zeros)
            self._step(self._optimizers["d"], loss_d)
        x_fake = self._critic_inputs(self._fake_images(u, gen), u)
        loss_g = bce(self._disc(x_fake, u), ones)
        weight = float(self.config["moment_weight"])
        if weight > 0:
            loss_g = loss_g + weight * batch_moment_distance(x_fake, x_real)
        self._step(self._optimizers["g"], loss_g)
        return loss_d, loss_g

    def _critic_inputs(self, images: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """What the discriminator and the moment term see, (B, P + n_critic_features): see
        :meth:`~caloforge.models.qgan_pixels.PixelMode.critic_inputs`."""
        return self.pixels.critic_inputs(images, u, self.response, self.pixel_scale)

    def _fake_images(self, u: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        z = torch.randn(len(u), self.n_latent(), generator=gen)
        out = self.generator(torch.cat([z, math.pi * u[:, None]], dim=1))
        return self.pixels.train_images(out, self.spec.readout)


@register_model("qgan-dist")
class DistributionQGAN(_HybridQGAN):
    """Distribution-learning hybrid QGAN (1D: 3 qubits, 2D: 6 qubits).

    An input-free circuit whose basis-state probabilities are the normalised image; it learns the
    average shower shape. :meth:`sample` gives each shower that shape (or, with ``shots``, the
    frequency image of ``shots`` measurements) scaled by E_inc times the fitted response.
    """

    conditional = False
    config_class = DistributionQGANConfig
    smoke_config = {"n_layers": 1, "batch_size": 8, "steps_per_epoch": 2, "disc_hidden": [4]}

    def _train_step(
        self, x_real: torch.Tensor, u: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample-space qGAN update (Zoufal et al.): the discriminator sees single pixel
        indices (one-hot; a basis state for the quantum discriminator), real ones drawn from
        the training showers' energy fractions, fake ones weighted by the circuit's measured
        probabilities; the generator minimises -sum_j p(j) log D(j)."""
        n_pixels = x_real.shape[1]
        eye = torch.eye(n_pixels)
        probs = self.generator(None, batch=1).reshape(-1)
        for _ in range(int(self.config["n_critic"])):
            real_idx = torch.multinomial(x_real, 1, generator=gen).reshape(-1)
            log_d_real = nn.functional.logsigmoid(self.discriminator(eye[real_idx], None))
            log_1m_d_fake = nn.functional.logsigmoid(-self.discriminator(eye, None))
            loss_d = -log_d_real.mean() - (probs.detach() * log_1m_d_fake).sum()
            self._step(self._optimizers["d"], loss_d)
        log_d = nn.functional.logsigmoid(self.discriminator(eye, None)).detach()
        loss_g = -(probs * log_d).sum()
        self._step(self._optimizers["g"], loss_g)
        return loss_d, loss_g

    def learned_distribution(self) -> np.ndarray:
        """The circuit's exact basis-state probabilities, shape (2**n_qubits,)."""
        module = self.inference_module()
        with torch.no_grad():
            out = module.exact_qnode(
                torch.zeros(1), self.generator.weights, self.generator.input_scale
            )
        return out.double().numpy().reshape(-1)
