"""Parametrized quantum circuits as configuration, wrapped as torch modules.

A circuit is described by a :class:`CircuitSpec` (plain values, so it lives in a model's JSON
config) and built by :class:`QuantumCircuit`, a ``torch.nn.Module`` around a PennyLane QNode
with the torch interface. Its layout, for ``n_layers`` layers on ``n_qubits`` wires::

    [encode inputs] -> layer 1: rotations, entangler, noise -> [encode] -> layer 2 ... -> readout

============  ============================================================================
option        values
============  ============================================================================
ansatz        ``ry`` (RY per qubit), ``ryrz`` (RY then RZ), ``rot`` (general Rot(phi,theta,omega))
entangler     ``linear`` (i, i+1), ``ring`` (linear plus last -> first), ``all`` (every pair),
              ``none``
gate          ``cnot`` or ``cz``
encoding      ``none`` (no inputs), ``angle`` (inputs once, before the first layer),
              ``reupload`` (inputs before every layer); latent angles enter as RY on their
              qubit, condition angles (incident energy) as RX on every qubit, each multiplied by
              a trainable input scale
readout       ``probs`` (2**n basis-state probabilities), ``expval`` (P(qubit = 1) for each
              qubit, from <Z>), ``z0`` (<Z> of qubit 0, for classifiers)
noise         ``depolarizing`` p and ``amplitude_damping`` gamma after every gate layer on
              every qubit; either > 0 switches to the mixed-state simulator ``default.mixed``
shots         ``None`` (exact probabilities) or a number of measurement shots
diff_method   ``backprop`` (analytic only) or ``parameter-shift`` (also with shots, as hardware)
============  ============================================================================
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from caloforge._optional import require
from caloforge.errors import ConfigError

if TYPE_CHECKING:
    import pennylane as qml
else:
    qml = require("pennylane", extra="quantum", purpose="the quantum-circuit models")

ANSATZE = {"ry": 1, "ryrz": 2, "rot": 3}
ENTANGLERS = ("linear", "ring", "all", "none")
GATES = ("cnot", "cz")
ENCODINGS = ("none", "angle", "reupload")
READOUTS = ("probs", "expval", "z0")
DIFF_METHODS = ("backprop", "parameter-shift")


@dataclass(frozen=True)
class CircuitSpec:
    """Everything that defines a circuit; validated on construction.

    Attributes:
        n_qubits, n_layers: register size and number of trainable layers.
        ansatz, entangler, gate, encoding, readout: see the module table.
        n_latent: number of latent input angles (<= n_qubits; qubit i gets latent angle i).
        n_cond: number of condition angles (each enters on every qubit).
        depolarizing, amplitude_damping: noise rates in [0, 1).
        shots: ``None`` for exact simulation, else the number of shots.
        diff_method: ``backprop`` or ``parameter-shift``.
    """

    n_qubits: int
    n_layers: int
    ansatz: str = "ryrz"
    entangler: str = "ring"
    gate: str = "cnot"
    encoding: str = "none"
    readout: str = "probs"
    n_latent: int = 0
    n_cond: int = 0
    depolarizing: float = 0.0
    amplitude_damping: float = 0.0
    shots: int | None = None
    diff_method: str = "backprop"

    def __post_init__(self) -> None:
        def choice(name: str, value: Any, allowed) -> None:
            if value not in allowed:
                raise ConfigError(f"unknown {name} {value!r}; use one of {', '.join(allowed)}")

        choice("ansatz", self.ansatz, tuple(ANSATZE))
        choice("entangler", self.entangler, ENTANGLERS)
        choice("entangling gate", self.gate, GATES)
        choice("encoding", self.encoding, ENCODINGS)
        choice("readout", self.readout, READOUTS)
        choice("diff_method", self.diff_method, DIFF_METHODS)
        if not 1 <= self.n_qubits <= 16:
            raise ConfigError(f"n_qubits must be between 1 and 16, got {self.n_qubits}")
        if self.n_layers < 1:
            raise ConfigError(f"n_layers must be >= 1, got {self.n_layers}")
        if not 0 <= self.n_latent <= self.n_qubits:
            raise ConfigError(
                f"n_latent must be between 0 and n_qubits={self.n_qubits}, got {self.n_latent}"
            )
        if self.encoding == "none" and (self.n_latent or self.n_cond):
            raise ConfigError("encoding 'none' takes no inputs; use 'angle' or 'reupload'")
        for name in ("depolarizing", "amplitude_damping"):
            rate = getattr(self, name)
            if not 0.0 <= rate < 1.0:
                raise ConfigError(f"{name} rate must be in [0, 1), got {rate}")
        if self.shots is not None and self.shots < 1:
            raise ConfigError(f"shots must be None (exact) or >= 1, got {self.shots}")
        if self.shots is not None and self.diff_method == "backprop":
            raise ConfigError(
                "diff_method 'backprop' needs exact simulation (shots=None); "
                "use 'parameter-shift' with finite shots"
            )

    @property
    def noisy(self) -> bool:
        return self.depolarizing > 0 or self.amplitude_damping > 0

    @property
    def device_name(self) -> str:
        return "default.mixed" if self.noisy else "default.qubit"

    @property
    def n_inputs(self) -> int:
        return self.n_latent + self.n_cond

    @property
    def n_outputs(self) -> int:
        return {"probs": 2**self.n_qubits, "expval": self.n_qubits, "z0": 1}[self.readout]

    @property
    def weight_shape(self) -> tuple[int, int, int]:
        return (self.n_layers, self.n_qubits, ANSATZE[self.ansatz])

    def pairs(self) -> list[tuple[int, int]]:
        """The (control, target) wire pairs of one entangling block."""
        n = self.n_qubits
        if self.entangler == "none" or n < 2:
            return []
        if self.entangler == "all":
            return list(combinations(range(n), 2))
        linear = [(i, i + 1) for i in range(n - 1)]
        return linear + [(n - 1, 0)] if self.entangler == "ring" and n > 2 else linear

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- circuit body
def apply_encoding(spec: CircuitSpec, inputs: torch.Tensor, scale: torch.Tensor) -> None:
    """Latent angle i as RY on qubit i; condition angles as RX on every qubit."""
    for i in range(spec.n_latent):
        qml.RY(scale[i] * inputs[..., i], wires=i)
    for c in range(spec.n_cond):
        angle = scale[spec.n_latent + c] * inputs[..., spec.n_latent + c]
        for w in range(spec.n_qubits):
            qml.RX(angle, wires=w)


def apply_layer(spec: CircuitSpec, weights: torch.Tensor) -> None:
    """One trainable layer: rotations (weights (n_qubits, n_rot)), entangler, noise."""
    for w in range(spec.n_qubits):
        if spec.ansatz == "ry":
            qml.RY(weights[w, 0], wires=w)
        elif spec.ansatz == "ryrz":
            qml.RY(weights[w, 0], wires=w)
            qml.RZ(weights[w, 1], wires=w)
        else:
            qml.Rot(weights[w, 0], weights[w, 1], weights[w, 2], wires=w)
    gate = qml.CNOT if spec.gate == "cnot" else qml.CZ
    for pair in spec.pairs():
        gate(wires=list(pair))
    if spec.noisy:
        for w in range(spec.n_qubits):
            if spec.depolarizing > 0:
                qml.DepolarizingChannel(spec.depolarizing, wires=w)
            if spec.amplitude_damping > 0:
                qml.AmplitudeDamping(spec.amplitude_damping, wires=w)


def _readout(spec: CircuitSpec):
    if spec.readout == "probs":
        return qml.probs(wires=range(spec.n_qubits))
    if spec.readout == "expval":
        return [qml.expval(qml.PauliZ(w)) for w in range(spec.n_qubits)]
    return qml.expval(qml.PauliZ(0))


def build_qnode(spec: CircuitSpec, seed: int | None = None) -> qml.QNode:
    """The QNode ``f(inputs (B, n_inputs), weights, scale)`` of ``spec`` (torch interface).

    ``seed`` seeds the device's shot sampling (only used with finite shots).
    """
    device = qml.device(spec.device_name, wires=spec.n_qubits, seed=seed)

    def circuit(inputs, weights, scale):
        for layer in range(spec.n_layers):
            if spec.encoding == "reupload" or (spec.encoding == "angle" and layer == 0):
                apply_encoding(spec, inputs, scale[layer if spec.encoding == "reupload" else 0])
            apply_layer(spec, weights[layer])
        return _readout(spec)

    qnode = qml.QNode(circuit, device, interface="torch", diff_method=spec.diff_method)
    if spec.shots is not None:
        qnode = qml.set_shots(qnode, shots=spec.shots)
    return qnode


class QuantumCircuit(nn.Module):
    """A parametrized circuit as a torch module: (B, n_inputs) angles -> (B, n_outputs).

    Trainable tensors: ``weights`` (n_layers, n_qubits, n_rot) rotation angles, initialised
    uniformly in [0, 2 pi) from ``seed``, and ``input_scale`` (n_encodings, n_inputs): ones for
    condition angles, ``latent_scale`` for latent ones (a small value starts the generator close
    to a fixed shape with small fluctuations).
    The output is float32; for ``expval`` readout it is P(qubit = 1) = (1 - <Z>) / 2.
    """

    def __init__(self, spec: CircuitSpec, seed: int = 0, latent_scale: float = 1.0) -> None:
        super().__init__()
        self.spec = spec
        self.latent_scale = float(latent_scale)
        n_enc = spec.n_layers if spec.encoding == "reupload" else 1
        self.weights = nn.Parameter(torch.empty(spec.weight_shape))
        self.input_scale = nn.Parameter(torch.ones(n_enc, max(spec.n_inputs, 1)))
        self.reset_parameters(seed)
        self.qnode = build_qnode(spec, seed=seed)

    def reset_parameters(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            self.weights.copy_(torch.rand(self.spec.weight_shape, generator=gen) * 2 * math.pi)
            self.input_scale.fill_(1.0)
            self.input_scale[:, : self.spec.n_latent] = self.latent_scale

    def reseed(self, seed: int | None) -> None:
        """Rebuild the QNode with a new shot-sampling seed (weights are kept)."""
        self.qnode = build_qnode(self.spec, seed=seed)

    def forward(self, inputs: torch.Tensor | None = None, batch: int = 1) -> torch.Tensor:
        """(B, n_inputs) angles (or ``None`` with ``batch`` copies for input-free circuits)
        -> (B, n_outputs) float32."""
        if inputs is None or self.spec.n_inputs == 0:
            n = batch if inputs is None else len(inputs)
            out = self._run(torch.zeros(1))
            return out.reshape(1, -1).expand(n, -1)
        if inputs.ndim != 2 or inputs.shape[1] != self.spec.n_inputs:
            raise ConfigError(
                f"circuit inputs must have shape (B, {self.spec.n_inputs}), got {tuple(inputs.shape)}"
            )
        return self._run(inputs).reshape(len(inputs), -1)

    def _run(self, inputs: torch.Tensor) -> torch.Tensor:
        if (
            self.spec.diff_method == "parameter-shift"
            and inputs.ndim == 2
            and torch.is_grad_enabled()
        ):
            # parameter-shift cannot differentiate broadcast (batched) trainable angles: run the
            # batch one circuit at a time, as hardware would
            return torch.stack([self._run(row) for row in inputs])
        out = self.qnode(inputs, self.weights, self.input_scale)
        if isinstance(out, list | tuple):
            out = torch.stack(list(out), dim=-1)
        out = out.to(torch.float32)
        if self.spec.readout == "expval":
            out = (1.0 - out) / 2.0
        return out

    def draw(self, decimals: int | None = 2) -> str:
        """The circuit as text (``qml.draw``), for one input."""
        example = torch.zeros(max(self.spec.n_inputs, 1))
        return qml.draw(self.qnode, decimals=decimals)(example, self.weights, self.input_scale)

    def extra_repr(self) -> str:
        s = self.spec
        return (
            f"{s.n_qubits} qubits, {s.n_layers} layers, ansatz={s.ansatz}, entangler={s.entangler}"
            f"/{s.gate}, encoding={s.encoding}, readout={s.readout}, device={s.device_name}, "
            f"shots={s.shots}, diff_method={s.diff_method}"
        )


def shots_from_uniforms(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Measured frequencies from S shots drawn by inverse-CDF with given uniforms.

    Args:
        probs: (N, P) basis-state probabilities (rows sum to 1).
        uniforms: (N, S) numbers in [0, 1).

    Returns:
        (N, P) frequencies (counts / S): exactly the multinomial outcome of S measurements.
    """
    cdf = torch.cumsum(probs, dim=1)
    cdf = cdf / cdf[:, -1:].clamp_min(1e-12)
    index = torch.searchsorted(cdf.contiguous(), uniforms.contiguous(), right=True)
    index = index.clamp(max=probs.shape[1] - 1)
    counts = torch.zeros_like(probs).scatter_add_(1, index, torch.ones_like(uniforms))
    return counts / uniforms.shape[1]


def qubit_shots_from_uniforms(p_one: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Per-qubit frequencies of outcome 1 from S shots: (N, n) and (N, S * n) -> (N, n)."""
    n = p_one.shape[1]
    u = uniforms.reshape(len(uniforms), -1, n)
    return (u < p_one.unsqueeze(1)).to(p_one.dtype).mean(dim=1)
