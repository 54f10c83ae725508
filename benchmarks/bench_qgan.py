"""Circuit-simulation cost of the quantum GAN generator: per generated image and per training step.

For n qubits (3 and 6 as in the 1D/2D models, then 8 and 10) the sample-level generator circuit
(reupload encoding, ryrz ansatz, ring of CNOTs, probability readout) is timed:

* ``gen_ms_per_image``: exact forward pass for a batch of images (broadcast), per image;
* ``step_ms``: one generator training step (forward + backward of a batch of 16 images through a
  fixed classical critic) with backprop; ``ps_step_ms`` the same with parameter-shift, which runs
  the batch circuit by circuit as hardware would (timed on 2 images, times 8; <= 6 qubits);
* each with and without noise (depolarising + amplitude damping 1 %, mixed-state simulator
  ``default.mixed``). The baseline, measured in the same run, is the noiseless state-vector
  simulation at the same size.

    python benchmarks/bench_qgan.py            # 3, 6, 8, 10 qubits
    python benchmarks/bench_qgan.py --quick    # 3 and 6 qubits, fewer repeats

Writes benchmarks/results/qgan.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import replace
from pathlib import Path

import torch

from caloforge.bench import wall_times
from caloforge.ioutil import atomic_path
from caloforge.quantum.circuits import CircuitSpec, QuantumCircuit

OUT = Path(__file__).resolve().parent / "results" / "qgan.json"


def measure(n_qubits: int, noisy: bool, batch: int, repeats: int, n_layers: int = 4) -> dict:
    rate = 0.01 if noisy else 0.0
    spec = CircuitSpec(
        n_qubits,
        n_layers,
        encoding="reupload",
        n_latent=n_qubits,
        n_cond=1,
        depolarizing=rate,
        amplitude_damping=rate,
    )
    circuit = QuantumCircuit(spec, seed=0)
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, spec.n_inputs, generator=gen)
    critic = torch.randn(spec.n_outputs, generator=gen)

    def generate() -> None:
        with torch.no_grad():
            circuit(inputs)

    # 10-qubit density matrices are slow: time 2 images and scale the step to 16 (linear)
    step_batch = 16 if (not noisy or n_qubits <= 8) else 2
    step_inputs = inputs[:step_batch]

    def step(c: QuantumCircuit) -> None:
        c.zero_grad()
        (c(step_inputs) @ critic).sum().backward()

    row = {
        "n_qubits": n_qubits,
        "noise": noisy,
        "device": spec.device_name,
        "gen_ms_per_image": 1e3 * min(wall_times(generate, repeats=repeats, warmup=1)) / batch,
        "step_ms": 1e3
        * min(wall_times(lambda: step(circuit), repeats=repeats, warmup=1))
        * 16
        / step_batch,
    }
    if n_qubits <= 6:
        # parameter-shift: 2 images only (it is linear in the batch), scaled to a 16-image step
        ps = QuantumCircuit(replace(spec, diff_method="parameter-shift"), seed=0)

        def ps_step() -> None:
            ps.zero_grad()
            (ps(inputs[:2]) @ critic).sum().backward()

        row["ps_step_ms"] = 8 * 1e3 * min(wall_times(ps_step, repeats=1, warmup=1))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_start = os.getloadavg()
    sizes = (3, 6) if args.quick else (3, 6, 8, 10)
    repeats = 2 if args.quick else 5
    rows = []
    for n in sizes:
        for noisy in (False, True) if n <= 8 else (False,):
            # 10-qubit density-matrix runs did not finish within minutes on the shared machine
            batch = 64 if not noisy or n <= 6 else (8 if n <= 8 else 2)
            rows.append(measure(n, noisy, batch, repeats if n <= 8 else 1))
            print(f"measured {n} qubits, noise={noisy}", flush=True)
    base = {r["n_qubits"]: r for r in rows if not r["noise"]}
    for r in rows:
        r["noise_slowdown_gen"] = r["gen_ms_per_image"] / base[r["n_qubits"]]["gen_ms_per_image"]
    header = f"{'qubits':>6} {'noise':>5} {'device':>14} {'ms/image':>10} {'step ms (bp)':>13} {'step ms (ps)':>13} {'x noiseless':>11}"
    print(header)
    for r in rows:
        ps = f"{r['ps_step_ms']:.1f}" if "ps_step_ms" in r else "-"
        print(
            f"{r['n_qubits']:>6} {'yes' if r['noise'] else 'no':>5} {r['device']:>14} "
            f"{r['gen_ms_per_image']:>10.3f} {r['step_ms']:>13.1f} {ps:>13} {r['noise_slowdown_gen']:>11.1f}"
        )
    meta = {
        "note": "CPU, one torch thread; min of repeats",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "layers": 4,
        "step_batch": 16,
        "rows": rows,
    }
    with atomic_path(OUT) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
