"""Reduced precision: speed, size and fidelity of fp32 / fp16 / int8 exports of one model.

For a trained model directory, every variant is exported (ONNX fp32, fp16, int8 dynamic,
int8 static calibrated on the reference file, and PyTorch-dynamic int8 in TorchScript) and
run on the *same latent inputs* as the original fp32 PyTorch module. Per variant:

* network time per shower at one batch size (median of repeats after warm-up), and the
  speed-up against the original torch fp32 module timed in the same run;
* model file size and the reduction against the ONNX fp32 file;
* shower-shape MSE along the layer axis and along the radial (cylindrical) or x (Cartesian)
  axis: mean over bins of (log10 p_a - log10 p_b)^2, where p is the mean shower's energy
  per bin divided by its sum (floored at 1e-12). Against the fp32 output it measures what
  the precision changed; against the reference sample, the model's fidelity, whose change
  from fp32 is what matters;
* with ``caloforge.evaluate``: the mean separation power of the CaloChallenge high-level
  features against the reference sample (and, with ``--classifier``, the classifier AUC).

The seed result to set beside ours: int8 gave 1.8x speed-up and a 2.26x smaller model with
unchanged shower-shape MSE (a naive toolchain: MSE 0.06 -> 0.25-0.34).

    python benchmarks/bench_precision.py RUN --reference REF.h5 [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from caloforge.bench import machine_info, median_time
from caloforge.export import default_energies, draw_latents, export_model, generator_parts
from caloforge.export.verify import mean_profiles
from caloforge.io import read_showers

RESULTS = Path(__file__).parent / "results" / "precision.json"
VARIANTS = (
    ("onnx", "fp32", False),
    ("onnx", "fp16", False),
    ("onnx", "int8", False),  # dynamic
    ("onnx", "int8", True),  # static, calibrated on the reference file
    ("torchscript", "int8", False),  # PyTorch dynamic quantization
)


def shape_mse(a: np.ndarray, b: np.ndarray, geometry) -> dict[str, float]:
    """Log-profile MSE per axis between two (N, V) samples (see the module docstring)."""
    pa, pb = mean_profiles(a, geometry), mean_profiles(b, geometry)
    out = {}
    for axis in pa:
        la = np.log10(np.maximum(pa[axis] / max(pa[axis].sum(), 1e-300), 1e-12))
        lb = np.log10(np.maximum(pb[axis] / max(pb[axis].sum(), 1e-300), 1e-12))
        out[axis] = float(np.mean((la - lb) ** 2))
    return out


def separation(reference, energies, showers, geometry, classifier: bool, seed: int):
    """Mean separation power (and optionally classifier AUC) against the reference sample."""
    from caloforge.evaluate import (
        FeatureExtractor,
        classifier_inputs,
        classifier_test,
        default_threshold,
        feature_binnings,
        separation_powers,
    )
    from caloforge.evaluate.histograms import CALOCHALLENGE

    threshold = default_threshold(geometry)
    extract = FeatureExtractor(geometry, threshold)
    ref = extract(reference.incident_energies, reference.showers)
    gen = extract(energies, showers)
    # the official binning exists only for the CaloChallenge geometries; grids use caloforge's
    scheme = "official" if geometry.name in CALOCHALLENGE else "caloforge"
    seps = separation_powers(ref, gen, feature_binnings(ref, geometry, threshold, scheme))
    out = {"separation_power_mean": float(np.nanmean(list(seps.values())))}
    if classifier:
        x_ref = classifier_inputs("high", features=ref)
        x_gen = classifier_inputs("high", features=gen)
        out["classifier_auc"] = float(classifier_test(x_ref, x_gen, seed=seed).auc)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="trained model directory")
    p.add_argument("--reference", type=Path, help="reference shower file of the same geometry")
    p.add_argument("--n", type=int, default=2000, help="showers generated per variant")
    p.add_argument("--batch-size", type=int, default=500, help="batch size of the timing")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--classifier", action="store_true", help="also train the AUC classifier")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="200 showers, batch 100, 3 repeats")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.batch_size, args.repeats = 200, 100, 3
    torch.set_num_threads(args.threads)
    console = Console(width=200)

    from caloforge.models import load_generator

    model = load_generator(args.run)
    geometry = model.geometry
    reference = None
    if args.reference:
        reference = read_showers(args.reference, geometry=geometry, max_showers=args.n)
        energies = reference.incident_energies
    else:
        energies = default_energies(geometry, args.n, args.seed)
    latents = draw_latents(model, energies, args.seed)
    batch = tuple(t[: args.batch_size] for t in latents)
    module, _ = generator_parts(model)
    with torch.inference_mode():
        fp32 = np.concatenate(
            [
                module(*(t[i : i + 1000] for t in latents)).float().numpy()
                for i in range(0, len(energies), 1000)
            ]
        )

        def torch_run():
            module(*batch)

        t_torch = median_time(torch_run, repeats=args.repeats, warmup=2) / args.batch_size

    base = {
        "variant": "torch fp32 (original)",
        "ms_per_shower": 1e3 * t_torch,
        "speedup": 1.0,
        "size_mb": None,
        "size_reduction": None,
        "mse_vs_fp32": {k: 0.0 for k in mean_profiles(fp32[:1], geometry)},
    }
    if reference is not None:
        base["mse_vs_reference"] = shape_mse(fp32, reference.showers, geometry)
        base.update(separation(reference, energies, fp32, geometry, args.classifier, args.seed))
    rows = [base]
    fp32_size = None
    with tempfile.TemporaryDirectory() as work:
        for fmt, precision, static in VARIANTS:
            if static and reference is None:
                continue
            name = f"{fmt} {precision}" + (
                " static" if static else " dynamic" if precision == "int8" else ""
            )
            console.print(f"exporting {name} ...")
            out = Path(work) / name.replace(" ", "-")
            try:
                art = export_model(
                    model,
                    out,
                    fmt=fmt,
                    precision=precision,
                    n_check=64,
                    seed=args.seed,
                    calibration=args.reference if static else None,
                )
            except Exception as exc:  # noqa: BLE001 - report the failure as a row
                rows.append({"variant": name, "error": str(exc).splitlines()[0][:200]})
                continue
            from caloforge.export import load_artifact

            art = load_artifact(out, threads=args.threads)
            gen = np.concatenate(
                [
                    art.run(*(t[i : i + 1000] for t in latents))
                    for i in range(0, len(energies), 1000)
                ]
            )
            t = median_time(lambda art=art: art.run(*batch), repeats=args.repeats, warmup=2)
            size = art.file_size / 1e6
            if fmt == "onnx" and precision == "fp32":
                fp32_size = size
            row = {
                "variant": name,
                "ms_per_shower": 1e3 * t / args.batch_size,
                "speedup": t_torch / (t / args.batch_size),
                "size_mb": size,
                "size_reduction": None if fp32_size is None else fp32_size / size,
                "check": art.check.summary(),
                "check_passed": art.check.passed,
                "mse_vs_fp32": shape_mse(gen, fp32, geometry),
            }
            if reference is not None:
                row["mse_vs_reference"] = shape_mse(gen, reference.showers, geometry)
                row.update(
                    separation(reference, energies, gen, geometry, args.classifier, args.seed)
                )
            rows.append(row)

    table = Table(title=f"reduced precision: {model.model_name} on {geometry.name}")
    axes = list(base["mse_vs_fp32"])
    cols = ["variant", "ms/shower", "speed-up", "MB", "smaller"]
    cols += [f"MSE {a} vs fp32" for a in axes]
    if reference is not None:
        cols += [f"MSE {a} vs ref" for a in axes] + ["sep. power"]
        if args.classifier:
            cols.append("AUC")
    for c in cols:
        table.add_column(c, justify="left" if c == "variant" else "right")

    def f(x, spec=".3g"):
        return "-" if x is None else format(x, spec)

    for r in rows:
        if "error" in r:
            table.add_row(r["variant"], f"failed: {r['error']}", *[""] * (len(cols) - 2))
            continue
        cells = [
            r["variant"],
            f(r["ms_per_shower"]),
            f(r["speedup"]),
            f(r["size_mb"]),
            f(r["size_reduction"]),
        ]
        cells += [f(r["mse_vs_fp32"][a], ".2e") for a in axes]
        if reference is not None:
            cells += [f(r["mse_vs_reference"][a], ".3g") for a in axes]
            cells.append(f(r.get("separation_power_mean")))
            if args.classifier:
                cells.append(f(r.get("classifier_auc")))
        table.add_row(*cells)
    console.print(table)
    for r in rows:
        if "check" in r:
            console.print(f"{r['variant']}: {r['check']}")
    result = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "model": model.model_name,
        "run": str(args.run),
        "geometry": geometry.name,
        "n_parameters": model.n_parameters(),
        "n_showers": int(len(energies)),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "machine": machine_info(args.threads, "cpu"),
        "load_average": os.getloadavg(),
        "rows": rows,
        "seed_result": "int8: 1.8x speed-up, 2.26x smaller, unchanged shower-shape MSE",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from caloforge.ioutil import atomic_path

    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
