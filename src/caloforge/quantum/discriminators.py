"""Discriminators for the quantum GAN: a classical MLP and a variational quantum classifier.

Both take a batch of normalised pixel images (shower shapes, rows summing to 1), shape (B, P),
and optional condition values (B, n_cond) (the scaled log incident energy, in [0, 1]), and
return one logit per image, shape (B,).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from caloforge._optional import require
from caloforge.errors import ConfigError
from caloforge.quantum.circuits import CircuitSpec, QuantumCircuit, apply_layer

if TYPE_CHECKING:
    import pennylane as qml
else:
    qml = require("pennylane", extra="quantum", purpose="the quantum-circuit models")

#: default floor added before taking the log of a pixel fraction
LOG_FLOOR = 1e-6


def log_features(shapes: torch.Tensor, floor: float = LOG_FLOOR) -> torch.Tensor:
    """Log-scaled pixel fractions mapped to [0, 1]: 1 - log10(p + floor) / log10(floor).

    Pixels far below ``floor`` all look alike, so ``floor`` sets the smallest fraction the
    discriminator can tell apart from an empty pixel.
    """
    return 1.0 - torch.log10(shapes.clamp_min(0.0) + floor) / math.log10(floor)


class MLPDiscriminator(nn.Module):
    """Classical discriminator: log-scaled pixels and conditions -> MLP with LeakyReLU -> logit.

    Args:
        n_pixels: P.
        n_cond: number of condition inputs.
        hidden: widths of the hidden layers.
        log_floor: see :func:`log_features`.
        log_inputs: apply :func:`log_features` to the images (shapes); ``False`` for images
            already scaled to [0, 1].
    """

    def __init__(
        self,
        n_pixels: int,
        n_cond: int = 0,
        hidden: tuple[int, ...] = (64, 32),
        log_floor: float = LOG_FLOOR,
        log_inputs: bool = True,
    ) -> None:
        super().__init__()
        if not 0 < log_floor < 1:
            raise ConfigError(f"the discriminator's log floor must be in (0, 1), got {log_floor}")
        self.log_floor = float(log_floor)
        self.log_inputs = log_inputs
        widths = [n_pixels + n_cond, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(widths[-1], 1))
        self.net = nn.Sequential(*layers)
        self.n_cond = n_cond

    def forward(self, shapes: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = log_features(shapes, self.log_floor) if self.log_inputs else shapes
        if self.n_cond:
            if cond is None:
                raise ValueError("this discriminator is conditioned: pass cond, shape (N, n_cond)")
            x = torch.cat([x, cond.reshape(len(x), -1)], dim=1)
        return self.net(x).squeeze(-1)


class QuantumDiscriminator(nn.Module):
    """Variational quantum classifier.

    The image's square-root fractions are amplitude-embedded on log2(P) qubits (a shape is a
    probability vector, so sqrt(p) is a normalised state), each condition enters as RX(pi * c)
    on every qubit, then ``n_layers`` trainable layers; the logit is ``a * <Z_0> + b`` with
    trainable a, b. It always uses exact backprop simulation, since the generator's gradient
    flows through the embedded image.
    """

    def __init__(
        self,
        n_pixels: int,
        n_cond: int = 0,
        n_layers: int = 3,
        ansatz: str = "ryrz",
        entangler: str = "ring",
        seed: int = 0,
    ) -> None:
        super().__init__()
        n_qubits = int(round(math.log2(n_pixels)))
        if 2**n_qubits != n_pixels:
            raise ConfigError(
                f"the quantum discriminator needs a power-of-two number of pixels, got {n_pixels}"
            )
        self.n_qubits = n_qubits
        self.n_cond = n_cond
        self.spec = CircuitSpec(
            n_qubits, n_layers, ansatz=ansatz, entangler=entangler, readout="z0"
        )
        self.weights = nn.Parameter(QuantumCircuit(self.spec, seed=seed).weights.detach().clone())
        self.scale = nn.Parameter(torch.tensor([3.0, 0.0]))
        device = qml.device("default.qubit", wires=n_qubits)
        spec = self.spec

        def circuit(amplitudes, cond, weights):
            qml.AmplitudeEmbedding(amplitudes, wires=range(n_qubits), normalize=True)
            for c in range(n_cond):
                for w in range(n_qubits):
                    qml.RX(math.pi * cond[..., c], wires=w)
            for layer in range(spec.n_layers):
                apply_layer(spec, weights[layer])
            return qml.expval(qml.PauliZ(0))

        self.qnode = qml.QNode(circuit, device, interface="torch", diff_method="backprop")

    def forward(self, shapes: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        amplitudes = torch.sqrt(shapes.clamp_min(0.0) + 1e-9).double()
        c = (cond if cond is not None else torch.zeros(len(shapes), 0)).reshape(len(shapes), -1)
        z = self.qnode(amplitudes, c.double(), self.weights).to(torch.float32).reshape(-1)
        return self.scale[0] * z + self.scale[1]

    def draw(self) -> str:
        """The classifier circuit as text (amplitude embedding drawn as |Psi>)."""
        p = torch.full((2**self.n_qubits,), 2.0**-self.n_qubits, dtype=torch.float64)
        cond = torch.full((self.n_cond,), 0.5, dtype=torch.float64)
        return qml.draw(self.qnode, decimals=2)(p, cond, self.weights)
