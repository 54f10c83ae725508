"""End-to-end generation time of a trained QVAE per prior sampler (prior + decoder).

The number of Gibbs sweeps is measured, not guessed: persistent chains of the trained prior
(with its energy partition clamped, as at generation) are run one sweep at a time and the
integrated autocorrelation time tau of the prior energy gives the sweeps for decorrelated
samples (2 tau), together with the burn-in a fresh chain needs (``burn_in_sweeps``). Then, for
1024 showers with log-uniform 1 GeV - 1 TeV incident energies, every sampler is timed after a
warm-up, median of repeats.

    python benchmarks/bench_qvae_generation.py --run runs/demo/qvae --threads 1,2

Prints a table and writes benchmarks/results/qvae_generation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from caloforge.bench import median_time

SEED_RESULTS = {  # CaloChallenge ds2 geometry, 1024 showers (the seed results of the issue)
    "Geant4": 400.0,
    "Gibbs prior on an A100 GPU": 2.19,
    "D-Wave QPU prior": 0.18,
    "decoder": 0.01,
}


def measure_sweeps(model, e: np.ndarray, *, trace_sweeps: int, seed: int) -> dict:
    """tau of the prior energy under clamped block Gibbs, and the burn-in of fresh chains."""
    from caloforge.boltzmann import BlockGibbsSampler, autocorrelation_time
    from caloforge.boltzmann.diagnostics import burn_in_sweeps
    from caloforge.boltzmann.gibbs import sweeps_from_autocorrelation

    e_t = torch.as_tensor(e, dtype=torch.float32).reshape(-1, 1)
    clamp = model.latents.clamp(e_t)
    one = BlockGibbsSampler(n_sweeps=1, persistent=True)
    trace = []
    with torch.no_grad():
        for k in range(trace_sweeps):
            z = one.sample(model.prior, len(e), seed=seed + k, clamp=clamp)
            trace.append(model.prior.energy(z.float()).numpy())
    trace = np.array(trace)  # (sweeps, chains), from a fresh random start
    burn = burn_in_sweeps(trace)
    tail = trace[max(burn, trace_sweeps // 4) :]
    # every chain has its own clamp (its own incident energy), hence its own stationary mean:
    # measure the correlation of each chain around its own mean
    tau = autocorrelation_time(tail - tail.mean(axis=0, keepdims=True))
    return {
        "tau": float(tau),
        "burn_in": int(burn),
        "sweeps": int(max(burn, sweeps_from_autocorrelation(tau))),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="runs/demo/qvae", help="trained qvae directory")
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--samplers", default="gibbs,sa,sqa")
    p.add_argument(
        "--anneal-showers", type=int, default=128, help="showers timed for sa/sqa (scaled to --n)"
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--trace-sweeps", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    from caloforge.energies import parse_energies
    from caloforge.models.base import load_generator

    model = load_generator(args.run)
    e = parse_energies("loguniform:1e3:1e6", args.n, seed=args.seed)
    torch.set_num_threads(1)
    mix = measure_sweeps(model, e, trace_sweeps=args.trace_sweeps, seed=args.seed)
    decoder = model.inference_module()
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for name in args.samplers.split(","):
            n = args.n if name == "gibbs" else min(args.n, args.anneal_showers)
            kw = {"n_sweeps": mix["sweeps"]} if name == "gibbs" else {}
            model.set_sampler(name, **kw)
            inputs = model.latent_inputs(e[:n], seed=args.seed)
            t_prior = (
                median_time(
                    lambda n=n: model.latent_inputs(e[:n], seed=args.seed),
                    repeats=args.repeats,
                    warmup=1,
                )
                * args.n
                / n
            )
            with torch.no_grad():
                t_dec = (
                    median_time(
                        lambda inputs=inputs: decoder(*inputs), repeats=args.repeats, warmup=1
                    )
                    * args.n
                    / n
                )
            rows.append(
                {
                    "sampler": name,
                    "threads": threads,
                    "sweeps": mix["sweeps"] if name == "gibbs" else "sampler default",
                    "showers_timed": n,
                    "prior_s": t_prior,
                    "decoder_s": t_dec,
                    "total_s": t_prior + t_dec,
                }
            )
    table = Table(title=f"QVAE generation of {args.n} {model.geometry.name} showers ({args.run})")
    for col in ("sampler", "threads", "sweeps", "prior s", "decoder s", "total s", "ms/shower"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["sampler"], str(r["threads"]), str(r["sweeps"]), f"{r['prior_s']:.3f}",
            f"{r['decoder_s']:.3f}", f"{r['total_s']:.3f}", f"{1e3 * r['total_s'] / args.n:.3f}",
        )  # fmt: skip
    con = Console()
    con.print(table)
    con.print(
        f"measured mixing: tau = {mix['tau']:.2f} sweeps, burn-in {mix['burn_in']}, using {mix['sweeps']}"
    )
    con.print(
        "seed results for comparison (1024 ds2 showers): "
        + ", ".join(f"{k} {v} s" for k, v in SEED_RESULTS.items())
    )
    out = Path("benchmarks/results/qvae_generation.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
                "model": {
                    "geometry": model.geometry.name,
                    "parameters": model.n_parameters(),
                    "config": model.config,
                },
                "mixing": mix,
                "rows": rows,
                "seed_results_s": SEED_RESULTS,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
