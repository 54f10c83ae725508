"""3DGAN Conv2D generator trained longer: one run continued with ``fit(..., resume=True)``.

The Conv2D-only 3DGAN of ``bench_gan3d_variants.py`` (same showers, same seed, same sampling)
is trained to the first stage (4 epochs), then continued from its checkpoint to each later
stage (8, 16, 32 epochs). At every stage the shower-shape MSE along the three axes (layer,
x, y) against the validation sample and the generated response E_sum/E_inc are recorded.
Then a separate, uninterrupted run is trained straight to the last stage and compared with the
continued one: the weights of every module and the generated showers, bit for bit (the
training engine promises that a resumed run repeats the uninterrupted one step for step).

Showers: the reference simulator's ``pbwo4`` preset (grid:25x25x25:22, photons, 10-200 GeV),
drawn exactly as in ``bench_gan3d_variants.py`` (imported from it).

    python benchmarks/gan3d_continuation.py              # 500 / 300 showers, 4, 8, 16, 32 epochs
    python benchmarks/gan3d_continuation.py --quick      # 64 / 64 showers, 1, 2 epochs, temp JSON

Writes benchmarks/results/gan3d_continuation.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from bench_gan3d_variants import GEOMETRY, SPECTRUM, showers
from caloforge.evaluate.shapes import shower_shape_mse
from caloforge.geometry import get_geometry
from caloforge.ioutil import atomic_path
from caloforge.models.gan3d import GAN3D
from caloforge.refsim import REFSIM_VERSION

RESULTS = Path(__file__).parent / "results" / "gan3d_continuation.json"
VARIANT = "conv2d"


def stages_arg(text: str) -> list[int]:
    """``"4,8,16,32"`` -> [4, 8, 16, 32]: strictly increasing epoch counts >= 1."""
    try:
        stages = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers"
        ) from None
    if stages[0] < 1 or any(b <= a for a, b in zip(stages, stages[1:], strict=False)):
        raise argparse.ArgumentTypeError(f"{text!r}: epochs must be >= 1 and strictly increasing")
    return stages


def evaluate(model: GAN3D, val_showers: np.ndarray, val_e: np.ndarray, seed: int) -> dict:
    """Shape MSE (layer, x, y, mean) and mean E_sum/E_inc of showers generated for ``val_e``.

    Also returns the generated (N, V) MeV showers under ``"generated"``.
    """
    generated = model.sample(val_e, seed=seed)
    return {
        "shape_mse": shower_shape_mse(val_showers, generated, model.geometry.image_shape),
        "response_generated": float(np.mean(generated.sum(axis=1) / val_e)),
        "generated": generated,
    }


def identical_weights(a: GAN3D, b: GAN3D) -> tuple[bool, list[str]]:
    """Whether every tensor of every module is bit-identical; and the names that differ."""
    differ = []
    for name, module in a.modules().items():
        other = b.modules()[name].state_dict()
        for key, tensor in module.state_dict().items():
            if not torch.equal(tensor, other[key]):
                differ.append(f"{name}.{key}")
    return not differ, differ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny run: 64/64 showers, 1, 2 epochs")
    ap.add_argument("--n-train", type=int, default=500)
    ap.add_argument("--n-val", type=int, default=300)
    ap.add_argument("--stages", type=stages_arg, default=[4, 8, 16, 32], help="e.g. 4,8,16,32")
    ap.add_argument(
        "--no-uninterrupted",
        action="store_true",
        help="skip the separate uninterrupted run to the last stage",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--output", type=Path, default=None, help=f"JSON (default {RESULTS.name}; --quick: temp)"
    )
    args = ap.parse_args()
    if args.quick:
        args.n_train, args.n_val, args.stages = 64, 64, [1, 2]
    if args.output is None:  # a smoke run never replaces the recorded results
        args.output = RESULTS
        if args.quick:
            args.output = Path(tempfile.mkdtemp(prefix="gan3d_continuation_")) / RESULTS.name
    if args.n_train < 1 or args.n_val < 1:
        ap.error("--n-train and --n-val must be at least 1")
    torch.set_num_threads(args.threads)
    console = Console(width=150)
    geo = get_geometry(GEOMETRY)
    config = {"generator": VARIANT}

    # the same showers and sampling seed as bench_gan3d_variants.py
    t0 = time.perf_counter()
    train, source = showers(args.n_train, args.seed)
    val, _ = showers(args.n_val, args.seed + 1)
    console.print(f"data: {source} (refsim {REFSIM_VERSION}), {time.perf_counter() - t0:.1f} s")
    sample_seed = args.seed + 3

    rows = []
    with tempfile.TemporaryDirectory(prefix="gan3d_cont_") as tmp:
        run_dir = Path(tmp) / "continued"
        model = GAN3D(geo, config)
        for i, epochs in enumerate(args.stages):
            t0 = time.perf_counter()
            model.fit(
                train,
                out_dir=run_dir,
                epochs=epochs,
                seed=args.seed,
                resume=i > 0,
                progress=False,
            )
            seconds = time.perf_counter() - t0
            ev = evaluate(model, val.showers, val.incident_energies, sample_seed)
            rows.append(
                {
                    "epochs": epochs,
                    "resumed_from": args.stages[i - 1] if i else None,
                    "train_seconds": seconds,
                    "shape_mse": ev["shape_mse"],
                    "response_generated": ev["response_generated"],
                }
            )
            continued_generated = ev["generated"]
            console.print(f"{epochs} epochs: {seconds:.0f} s, MSE {ev['shape_mse']}")

        uninterrupted = None
        if not args.no_uninterrupted:
            fresh = GAN3D(geo, config)
            t0 = time.perf_counter()
            fresh.fit(
                train,
                out_dir=Path(tmp) / "uninterrupted",
                epochs=args.stages[-1],
                seed=args.seed,
                progress=False,
            )
            seconds = time.perf_counter() - t0
            ev = evaluate(fresh, val.showers, val.incident_energies, sample_seed)
            same, differ = identical_weights(model, fresh)
            uninterrupted = {
                "epochs": args.stages[-1],
                "train_seconds": seconds,
                "shape_mse": ev["shape_mse"],
                "response_generated": ev["response_generated"],
                "weights_bit_identical_to_continued": same,
                "tensors_that_differ": differ,
                "samples_bit_identical_to_continued": bool(
                    np.array_equal(ev["generated"], continued_generated)
                ),
            }

    result = {
        "benchmark": "gan3d_continuation",
        "variant": VARIANT,
        "geometry": GEOMETRY,
        "data": source,
        "refsim_version": REFSIM_VERSION,
        "energies_mev": SPECTRUM,
        "n_train": args.n_train,
        "n_val": args.n_val,
        "stages": args.stages,
        "threads": args.threads,
        "seed": args.seed,
        "sample_seed": sample_seed,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "response_val": float(np.mean(val.showers.sum(axis=1) / val.incident_energies)),
        "continued": rows,
        "uninterrupted": uninterrupted,
    }
    with atomic_path(args.output) as out:
        out.write_text(json.dumps(result, indent=2))

    table = Table(title=f"3DGAN Conv2D continued with resume ({source}, refsim {REFSIM_VERSION})")
    for col in ("epochs", "run", "train s", "MSE layer", "MSE x", "MSE y", "MSE mean"):
        table.add_column(col, justify="right")
    table.add_column("E_sum/E_inc", justify="right")
    for r in [*rows, *([uninterrupted] if uninterrupted else [])]:
        m = r["shape_mse"]
        run = "uninterrupted" if r is uninterrupted else ("resumed" if r["resumed_from"] else "new")
        table.add_row(
            str(r["epochs"]),
            run,
            f"{r['train_seconds']:.0f}",
            *(f"{m[k]:.4f}" for k in ("layer", "x", "y", "mean")),
            f"{r['response_generated']:.3f}",
        )
    console.print(table)
    console.print(f"validation E_sum/E_inc: {result['response_val']:.3f}")
    if uninterrupted:
        console.print(
            "uninterrupted vs continued, bit-identical: weights "
            f"{uninterrupted['weights_bit_identical_to_continued']}, samples "
            f"{uninterrupted['samples_bit_identical_to_continued']}"
        )
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
