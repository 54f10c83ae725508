"""Circuits as configuration: gradients, noise, shots, drawing, bad options."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from caloforge.errors import ConfigError
from caloforge.quantum.circuits import CircuitSpec, QuantumCircuit, shots_from_uniforms
from caloforge.quantum.discriminators import MLPDiscriminator, QuantumDiscriminator


def _grads(spec: CircuitSpec, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    circuit = QuantumCircuit(spec, seed=3)
    target = torch.linspace(0.1, 1.0, spec.n_outputs)
    loss = (circuit(inputs) * target).sum()
    loss.backward()
    return circuit.weights.grad.clone(), circuit.input_scale.grad.clone()


@pytest.mark.parametrize(
    "options",
    [
        {"ansatz": "ryrz", "entangler": "ring", "encoding": "reupload"},
        {"ansatz": "rot", "entangler": "all", "gate": "cz", "encoding": "angle"},
        {"ansatz": "ry", "encoding": "angle", "depolarizing": 0.05, "amplitude_damping": 0.1},
        {"ansatz": "ry", "encoding": "angle", "readout": "expval"},
    ],
)
def test_parameter_shift_and_backprop_gradients_agree(options):
    spec = CircuitSpec(3, 2, n_latent=3, n_cond=1, diff_method="backprop", **options)
    inputs = torch.tensor([[0.3, -1.2, 0.7, 1.1], [1.5, 0.2, -0.4, 0.5]])
    g_bp, s_bp = _grads(spec, inputs)
    g_ps, s_ps = _grads(replace(spec, diff_method="parameter-shift"), inputs)
    assert g_bp.abs().max() > 1e-3
    torch.testing.assert_close(g_ps, g_bp, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(s_ps, s_bp, atol=1e-5, rtol=1e-4)


def test_probabilities_and_noise():
    spec = CircuitSpec(3, 2, encoding="none")
    clean = QuantumCircuit(spec, seed=1)(None, batch=2)
    assert clean.shape == (2, 8) and torch.allclose(clean.sum(1), torch.ones(2))
    damped = QuantumCircuit(replace(spec, amplitude_damping=0.5), seed=1)(None, batch=1)
    assert damped.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert damped[0, 0] > clean[0, 0]  # amplitude damping pushes towards |000>
    assert "AmplitudeDamping" in QuantumCircuit(replace(spec, amplitude_damping=0.5)).draw()


def test_finite_shots_are_frequencies():
    spec = CircuitSpec(2, 1, encoding="none", shots=50, diff_method="parameter-shift")
    out = QuantumCircuit(spec, seed=0)(None, batch=1)
    assert torch.allclose(out.sum(), torch.tensor(1.0)) and torch.all((out * 50) % 1 < 1e-6)


def test_shots_from_uniforms_follow_probabilities():
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    uniforms = torch.rand(1, 20000, generator=torch.Generator().manual_seed(0))
    freq = shots_from_uniforms(probs, uniforms)
    torch.testing.assert_close(freq, probs, atol=0.01, rtol=0.0)
    assert freq.sum().item() == pytest.approx(1.0)


def test_discriminators_give_one_logit_and_gradients():
    shapes = torch.softmax(torch.randn(4, 8), dim=1).requires_grad_(True)
    cond = torch.rand(4, 1)
    for disc in (MLPDiscriminator(8, 1), QuantumDiscriminator(8, 1, n_layers=2)):
        logits = disc(shapes, cond)
        assert logits.shape == (4,)
        (grad,) = torch.autograd.grad(logits.sum(), shapes)
        assert grad.abs().sum() > 0
    drawing = QuantumDiscriminator(8, 1).draw()
    assert "|Ψ⟩" in drawing and "<Z>" in drawing and "RX(1.57)" in drawing


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ansatz": "xyz"}, "unknown ansatz 'xyz'"),
        ({"entangler": "star"}, "unknown entangler 'star'"),
        ({"shots": 100}, "needs exact simulation"),
        ({"depolarizing": 1.5}, r"depolarizing rate must be in \[0, 1\)"),
        ({"n_latent": 5}, "n_latent must be between 0 and n_qubits=3"),
    ],
)
def test_bad_circuit_options(options, message):
    with pytest.raises(ConfigError, match=message):
        CircuitSpec(3, 2, **{"encoding": "angle", **options})
