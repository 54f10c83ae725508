"""What the readout of a hybrid QGAN's circuit means: the two pixel modes (option ``pixels``).

Everything that differs between the modes lives here, so the model and its sampler
(:mod:`caloforge.models.qgan`) call one :class:`PixelMode` without asking which it is:

* :class:`ShapePixels` (``"shape"``) -- the readout is the shower *shape*, pixel fractions
  summing to 1; the deposited energy E_dep is drawn per shower from the log-normal response
  fitted on the training showers, log(E_dep / E_inc) ~ N(a0 + a1 u, exp(b0 + b1 u)^2), with one
  N(0, 1) noise column; pixel energies = shape * E_dep.
* :class:`EnergyPixels` (``"energy"``) -- one qubit per pixel (``expval`` readout): P(qubit k =
  1) is pixel k's energy E_k / E_inc on the per-pixel log scale :func:`unit_scale` with fitted
  (eps_k, x_max_k), so the circuit makes the total energy too and no response noise is drawn.

The model fits the same tensors on the training showers in both modes, and its checkpoint stores
them in both:
``response`` (4,): a0, a1, b0, b1 of the log-normal above (energy mode uses it only to
standardise the total-energy input of its critic); ``pixel_scale`` (2, P): per-pixel eps and
x_max (energy mode; shape mode keeps an unused placeholder). The modes themselves are stateless:
those tensors are passed in. Generation decodes one :class:`Readout` (N showers, P pixels);
training works on batches of B images. Example::

    mode = PIXEL_MODES["energy"]
    pixels_mev = mode.energies(readout)     # (N, P) MeV
    mode.n_response, mode.n_critic_features  # (0, 1): no response noise, critic sees the total
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple

import numpy as np
import torch

from caloforge.errors import ConfigError
from caloforge.quantum.downsample import inverse_unit_scale, unit_scale

#: energy pixels: per pixel, the scale's eps is this quantile of the pixel's non-zero
#: E_pixel / E_inc in the training showers (x_max: 1.05 times the largest)
PIXEL_EPS_QUANTILE = 0.01


def normalised(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` (N, P) divided by their sums: pixel fractions summing to 1."""
    return x / x.sum(dim=1, keepdim=True).clamp_min(1e-12)


class Readout(NamedTuple):
    """One batch of circuit readout and what decoding it into energies may use."""

    #: the circuit's readout, (N, P) in [0, 1]
    values: torch.Tensor
    #: incident energies, (N, 1) MeV
    e_inc: torch.Tensor
    #: scaled log incident energy, (N,) in [0, 1] over the training range
    u: torch.Tensor
    #: response noise, (N, n_response) N(0, 1)
    z: torch.Tensor
    #: fitted a0, a1, b0, b1 of the log-normal response, (4,)
    response: torch.Tensor
    #: per-pixel eps and x_max of unit_scale, (2, P)
    pixel_scale: torch.Tensor


class PixelMode(ABC):
    """One meaning of the circuit's readout: how training sees it and how generation decodes it.

    Stateless; the fitted tensors (``response``, ``pixel_scale``) stay with the model, are
    stored in its checkpoint in both modes, and are passed in.
    """

    #: the value of the config option ``pixels``
    name: ClassVar[str]
    #: N(0, 1) noise columns per shower for the fitted energy response
    n_response: ClassVar[int]
    #: discriminator inputs besides the P pixels
    n_critic_features: ClassVar[int]
    #: whether the MLP discriminator takes log10(x + floor) of its inputs
    log_critic_inputs: ClassVar[bool]

    # ------------------------------------------------------------------ configuration
    def check(
        self, model_name: str, conditional: bool, readout: str, n_pixels: int, discriminator: str
    ) -> None:
        """Raise :class:`ConfigError` (one sentence) if the model cannot run in this mode."""

    # ------------------------------------------------------------------ training
    @abstractmethod
    def fit(self, pixels: np.ndarray, e_inc: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """From training pixel energies (M, P) MeV with a positive total and their incident
        energies (M,) MeV: the real images the discriminator sees, (M, P), and the fitted
        ``pixel_scale`` (2, P) (None: the mode fits none)."""

    @abstractmethod
    def train_images(self, out: torch.Tensor, readout: str) -> torch.Tensor:
        """The circuit's training-time output (B, P) (``probs`` or P(1) for ``expval``) as the
        images compared with :meth:`fit`'s real images (differentiable)."""

    @abstractmethod
    def pretrain_loss(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Warm-start loss of generated against real images (B, P), minimised by E[x | u]."""

    def critic_inputs(
        self,
        images: torch.Tensor,
        u: torch.Tensor,
        response: torch.Tensor,
        pixel_scale: torch.Tensor,
    ) -> torch.Tensor:
        """What the discriminator and the feature-matching term see: (B, P +
        :attr:`n_critic_features`). Default: the images themselves."""
        return images

    # ------------------------------------------------------------------ generation
    @abstractmethod
    def energies(self, r: Readout) -> torch.Tensor:
        """Pixel energies (N, P) in MeV."""

    @abstractmethod
    def shapes(self, r: Readout) -> torch.Tensor:
        """Pixel fractions (N, P), rows summing to 1."""

    @abstractmethod
    def totals(self, r: Readout) -> torch.Tensor:
        """Deposited energy per shower, (N,) MeV."""

    # ------------------------------------------------------------------ description
    @abstractmethod
    def describe(self, response: torch.Tensor, pixel_scale: torch.Tensor) -> str:
        """One indented paragraph for ``caloforge describe``: where the energy comes from."""


class ShapePixels(PixelMode):
    """``pixels: "shape"``: the readout is the shape; the total comes from the fitted
    log-normal response (one noise column). The MLP critic sees log fractions."""

    name = "shape"
    n_response = 1
    n_critic_features = 0
    log_critic_inputs = True

    def fit(self, pixels: np.ndarray, e_inc: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The real shapes E_k / sum_j E_j; no pixel scale."""
        return pixels / pixels.sum(axis=1)[:, None], None

    def train_images(self, out: torch.Tensor, readout: str) -> torch.Tensor:
        # probs already sum to 1; per-qubit P(1) (expval) is normalised to fractions
        return normalised(out) if readout == "expval" else out

    def pretrain_loss(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Cross-entropy -sum_j x_j log q_j."""
        return -(real * torch.log(fake.clamp_min(1e-12))).sum(dim=1).mean()

    def energies(self, r: Readout) -> torch.Tensor:
        """Shape times the drawn total, (N, P) MeV."""
        shapes = self.shapes(r)
        return shapes * self.totals(r)[:, None]

    def shapes(self, r: Readout) -> torch.Tensor:
        return normalised(r.values)

    def totals(self, r: Readout) -> torch.Tensor:
        """E_inc exp(a0 + a1 u + exp(b0 + b1 u) z), (N,) MeV."""
        a0, a1, b0, b1 = r.response
        sigma = torch.exp(b0 + b1 * r.u)
        return r.e_inc.reshape(-1) * torch.exp(a0 + a1 * r.u + sigma * r.z[:, 0])

    def describe(self, response: torch.Tensor, pixel_scale: torch.Tensor) -> str:
        a0, a1, b0, b1 = (float(v) for v in response)
        return (
            f"  energy response: log(E_dep/E_inc) ~ N({a0:.3f} + {a1:.3f} u, "
            f"exp({b0:.3f} + {b1:.3f} u)^2)"
        )


class EnergyPixels(PixelMode):
    """``pixels: "energy"``: one qubit per pixel, P(1) is the pixel's scaled energy; the
    critic also sees the standardised total (one more input), without a log (already on a log
    scale)."""

    name = "energy"
    n_response = 0
    n_critic_features = 1
    log_critic_inputs = False

    def check(
        self, model_name: str, conditional: bool, readout: str, n_pixels: int, discriminator: str
    ) -> None:
        if not conditional:
            raise ConfigError(
                f"{model_name} learns the average shape; pixels 'energy' needs model 'qgan'"
            )
        if readout != "expval":
            raise ConfigError(
                f"pixels 'energy' reads one pixel per qubit and needs readout 'expval' with "
                f"n_qubits={n_pixels}, got readout {readout!r}"
            )
        if discriminator == "quantum":
            raise ConfigError(
                "the quantum discriminator embeds shapes (pixel fractions); "
                "use discriminator 'mlp' with pixels 'energy'"
            )

    def fit(self, pixels: np.ndarray, e_inc: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Per pixel: eps = the :data:`PIXEL_EPS_QUANTILE` quantile of the non-zero E_k / E_inc
        (1e-6 for a pixel that is always empty), x_max = max(1.05 max E_k / E_inc, 2 eps)."""
        x_pix = pixels / e_inc[:, None]
        eps = np.array(
            [np.quantile(c[c > 0], PIXEL_EPS_QUANTILE) if np.any(c > 0) else 1e-6 for c in x_pix.T]
        )
        x_max = np.maximum(1.05 * x_pix.max(axis=0), 2 * eps)
        return unit_scale(x_pix, eps, x_max), np.stack([eps, x_max])

    def train_images(self, out: torch.Tensor, readout: str) -> torch.Tensor:
        return out

    def pretrain_loss(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Squared error of the scaled energies."""
        return ((fake - real) ** 2).sum(dim=1).mean()

    def critic_inputs(
        self,
        images: torch.Tensor,
        u: torch.Tensor,
        response: torch.Tensor,
        pixel_scale: torch.Tensor,
    ) -> torch.Tensor:
        """The images and the deposited energy, (B, P + 1).

        The extra column is the response r = sum_k E_k / E_inc standardised with the fitted
        log-normal (z = (log r - mean(u)) / sigma(u), N(0, 1) for real showers), mapped to
        (0, 1) by sigmoid(asinh z): a 1 % error in the total is many sigma at high energy,
        and this makes it visible to the critic, while asinh keeps the gradient alive.
        """
        eps, x_max = pixel_scale[0], pixel_scale[1]
        log_r = torch.log(inverse_unit_scale(images, eps, x_max).sum(dim=1).clamp_min(1e-12))
        a0, a1, b0, b1 = response
        z = (log_r - a0 - a1 * u) / torch.exp(b0 + b1 * u)
        return torch.cat([images, torch.sigmoid(torch.asinh(z))[:, None]], dim=1)

    def energies(self, r: Readout) -> torch.Tensor:
        """E_k = E_inc eps_k (exp(P_k(1) log(1 + x_max_k / eps_k)) - 1), (N, P) MeV."""
        eps, x_max = r.pixel_scale[0], r.pixel_scale[1]
        return inverse_unit_scale(r.values, eps, x_max) * r.e_inc.reshape(-1, 1)

    def shapes(self, r: Readout) -> torch.Tensor:
        return normalised(self.energies(r))

    def totals(self, r: Readout) -> torch.Tensor:
        return self.energies(r).sum(dim=1)

    def describe(self, response: torch.Tensor, pixel_scale: torch.Tensor) -> str:
        eps = ", ".join(f"{v:.2g}" for v in pixel_scale[0].tolist())
        x_max = ", ".join(f"{v:.2g}" for v in pixel_scale[1].tolist())
        return (
            "  pixel energies from the circuit: E_k / E_inc = eps_k (exp(P_k(1) "
            f"log(1 + x_max_k / eps_k)) - 1),\n    eps = ({eps}),\n    x_max = ({x_max})"
        )


#: the modes by their config value
PIXEL_MODES: dict[str, PixelMode] = {m.name: m for m in (ShapePixels(), EnergyPixels())}
