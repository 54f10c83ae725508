"""3DGAN generator variants side by side: Conv3D vs Conv2D-only (the seed-style comparison).

For each variant: number of parameters (generator, and generator + discriminator), CPU fp32
inference time per shower at batch sizes 1 and 100 (median of repeated runs after warm-up), and
the mean squared error of the shower shapes along the three axes (layer, x, y) against a
validation sample, after a short training on the same showers. A second real sample's MSE
against the validation sample is measured as well: the floor a perfect generator would reach
with this many showers.

Showers: the reference simulator's ``pbwo4`` preset (grid:25x25x25:22, photons).

    python benchmarks/bench_gan3d_variants.py            # 1000 train / 500 val, 5 epochs
    python benchmarks/bench_gan3d_variants.py --quick    # 64 / 64, 1 epoch, a smoke run

Writes benchmarks/results/gan3d_variants.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from caloforge.energies import parse_energies
from caloforge.evaluate.shapes import shower_shape_mse
from caloforge.geometry import get_geometry
from caloforge.io import Showers
from caloforge.ioutil import atomic_path
from caloforge.models.gan3d import GAN3D
from caloforge.refsim import simulate

GEOMETRY = "grid:25x25x25:22"
SPECTRUM = "uniform:1e4:2e5"  # 10-200 GeV photons, MeV
RESULTS = Path(__file__).parent / "results" / "gan3d_variants.json"


def showers(n: int, seed: int) -> tuple[Showers, str]:
    """(showers, source): refsim pbwo4 photons."""
    e = parse_energies(SPECTRUM, n, seed=seed)
    return simulate("pbwo4", "photon", e, seed=seed), "refsim pbwo4 photons"


def time_per_shower(model: GAN3D, batch: int, repeats: int, warmup: int = 3) -> float:
    """Median wall time per shower in ms of the inference module at one batch size."""
    module = model.inference_module()
    noise, e = model.latent_inputs(np.full(batch, 5e4), seed=0)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            module(noise, e)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times) / batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny run: 64/64 showers, 1 epoch")
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-val", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=20, help="timed runs per batch size")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.quick:
        args.n_train, args.n_val, args.epochs, args.repeats = 64, 64, 1, 5
    torch.set_num_threads(args.threads)
    console = Console(width=150)

    geo = get_geometry(GEOMETRY)
    t0 = time.perf_counter()
    train, source = showers(args.n_train, args.seed)
    val, _ = showers(args.n_val, args.seed + 1)
    floor, _ = showers(args.n_val, args.seed + 2)
    console.print(f"data: {source}, {time.perf_counter() - t0:.1f} s")
    floor_mse = shower_shape_mse(val.showers, floor.showers, geo.image_shape)

    rows = []
    for variant in ("conv3d", "conv2d"):
        model = GAN3D(geo, {"generator": variant})
        t0 = time.perf_counter()
        model.fit(train, epochs=args.epochs, seed=args.seed, progress=True)
        train_s = time.perf_counter() - t0
        generated = model.sample(val.incident_energies, seed=args.seed + 3)
        mse = shower_shape_mse(val.showers, generated, geo.image_shape)
        rows.append(
            {
                "variant": variant,
                "generator_parameters": sum(p.numel() for p in model.generator.parameters()),
                "total_parameters": model.n_parameters(),
                "ms_per_shower_batch1": time_per_shower(model, 1, args.repeats),
                "ms_per_shower_batch100": time_per_shower(model, 100, args.repeats),
                "shape_mse": mse,
                "train_seconds": train_s,
                "response_generated": float(np.mean(generated.sum(axis=1) / val.incident_energies)),
            }
        )

    result = {
        "benchmark": "gan3d_variants",
        "geometry": GEOMETRY,
        "data": source,
        "energies_mev": SPECTRUM,
        "n_train": args.n_train,
        "n_val": args.n_val,
        "epochs": args.epochs,
        "threads": args.threads,
        "repeats": args.repeats,
        "seed": args.seed,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "response_val": float(np.mean(val.showers.sum(axis=1) / val.incident_energies)),
        "shape_mse_second_real_sample": floor_mse,
        "variants": rows,
    }
    with atomic_path(args.output) as tmp:
        tmp.write_text(json.dumps(result, indent=2))

    table = Table(title=f"3DGAN Conv3D vs Conv2D ({source}, {args.epochs} epochs)")
    for col in (
        "generator",
        "params (G)",
        "params (G+D)",
        "ms/shower b=1",
        "ms/shower b=100",
        "MSE layer",
        "MSE x",
        "MSE y",
        "MSE mean",
        "E_sum/E_inc",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        m = r["shape_mse"]
        table.add_row(
            r["variant"],
            f"{r['generator_parameters']:,}",
            f"{r['total_parameters']:,}",
            f"{r['ms_per_shower_batch1']:.3f}",
            f"{r['ms_per_shower_batch100']:.3f}",
            *(f"{m[k]:.4f}" for k in ("layer", "x", "y", "mean")),
            f"{r['response_generated']:.3f}",
        )
    m = floor_mse
    table.add_row(
        "2nd real sample",
        "",
        "",
        "",
        "",
        *(f"{m[k]:.4f}" for k in ("layer", "x", "y", "mean")),
        f"{result['response_val']:.3f}",
    )
    console.print(table)
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
