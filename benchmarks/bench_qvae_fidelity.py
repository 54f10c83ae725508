"""QVAE against the Gaussian-prior VAE baseline on refsim showers: the full validation metrics.

Both models share the encoder, decoder, data, seed and training wall-time budget; only the prior
differs. For each: train, generate showers for the held-out sample's incident energies, run
``caloforge.evaluate`` (CaloChallenge metrics) and collect the numbers.

    python benchmarks/bench_qvae_fidelity.py --detector ds1-photons --particle photon \
        --n-train 20000 --n-test 5000 --minutes 8 --out runs/fidelity-ds1

Prints a table and writes JSON to benchmarks/results/qvae_fidelity_<detector>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detector", default="ds1-photons")
    p.add_argument("--particle", default="photon")
    p.add_argument(
        "--energies",
        default=None,
        help="spectrum spec (default: ds1 for ds1-*, else loguniform:1e3:1e6)",
    )
    p.add_argument("--n-train", type=int, default=20000)
    p.add_argument("--n-test", type=int, default=5000)
    p.add_argument("--minutes", type=float, default=8.0, help="training wall time per model")
    p.add_argument("--models", default="qvae,vae")
    p.add_argument("--config", default="{}", help="JSON options for both models")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="runs/fidelity")
    p.add_argument("--tag", default="", help="suffix of the results file name")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    args = p.parse_args()
    if args.quick:
        args.n_train, args.n_test, args.minutes = 1000, 500, 0.5

    from caloforge.evaluate import evaluate
    from caloforge.refsim import simulate_to_file
    from caloforge.workflows import generate, train

    spec = args.energies or ("ds1" if args.detector.startswith("ds1") else "loguniform:1e3:1e6")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ref_train, ref_test = out / "ref_train.h5", out / "ref_test.h5"
    if not ref_train.exists():
        simulate_to_file(
            ref_train, args.detector, args.particle, spec, n=args.n_train, seed=args.seed
        )
    if not ref_test.exists():
        simulate_to_file(
            ref_test, args.detector, args.particle, spec, n=args.n_test, seed=args.seed + 1
        )

    rows = []
    for name in args.models.split(","):
        run = out / name
        t0 = time.perf_counter()
        model = train(name, ref_train, run, config={"epochs": 1000, **json.loads(args.config)},
                      seed=args.seed, max_minutes=args.minutes, progress=False)  # fmt: skip
        t_train = time.perf_counter() - t0
        gen = out / f"gen_{name}.h5"
        g = generate(run, gen, energies_from=ref_test, seed=args.seed, progress=False)
        m = evaluate(
            gen, ref_test, out_dir=out / f"report_{name}", seed=args.seed, plots=False,
            protocol="fast",
        )  # fmt: skip
        rows.append(
            {
                "model": name,
                "parameters": model.n_parameters(),
                "epochs": model.state["epoch"],
                "train_seconds": t_train,
                "generate_seconds": g["seconds"],
                "auc_low": m["classifier"]["low"]["auc"],
                "auc_high": m["classifier"]["high"]["auc"],
                "fpd": m["fpd"]["value"],
                "fpd_err": m["fpd"]["error"],
                "kpd": m["kpd"]["value"],
                "kpd_err": m["kpd"]["error"],
                "sep_mean": m["separation_power_summary"]["mean"]
                if isinstance(m["separation_power_summary"], dict)
                and "mean" in m["separation_power_summary"]
                else m["separation_power_summary"],
                "response_gen": m["response"],
            }
        )

    table = Table(
        title=f"QVAE vs Gaussian VAE on refsim {args.detector} ({args.n_train} train / {args.n_test} test)"
    )
    for col in ("model", "params", "epochs", "train s", "AUC low", "AUC high", "FPD", "KPD"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["model"], str(r["parameters"]), str(r["epochs"]), f"{r['train_seconds']:.0f}",
            f"{r['auc_low']:.3f}", f"{r['auc_high']:.3f}", f"{r['fpd']:.4f}±{r['fpd_err']:.4f}",
            f"{r['kpd']:.5f}±{r['kpd_err']:.5f}",
        )  # fmt: skip
    Console().print(table)
    result = {
        "args": vars(args),
        "machine": f"{platform.machine()} {platform.processor() or ''}, {__import__('os').cpu_count()} cores",
        "rows": rows,
    }
    suffix = f"_{args.tag}" if args.tag else ""
    path = Path("benchmarks/results") / f"qvae_fidelity_{args.detector}{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
