"""Benchmark: sampling the Boltzmann-machine prior (1024 samples) with each sampler.

For every topology size the QVAE uses it measures, on this CPU:

* the integrated autocorrelation time tau of the energy under block Gibbs (persistent chains in
  equilibrium) and the burn-in of fresh chains, so the number of sweeps for decorrelated samples
  is MEASURED: fresh chains need ``burn_in`` sweeps, persistent chains ``ceil(2 tau)`` between
  draws; ``sweeps_needed`` = max of the two (energy only); ``recommended_sweeps`` is the
  library's recommendation (:func:`caloforge.boltzmann.mixing_stats`: the largest tau of the
  energy, every partition magnetisation and every unit, times k = 10, or the largest burn-in);
* the wall time of ``BlockGibbsSampler.sample(bm, 1024)`` against the number of sweeps, with the
  automatic (sparse for annealer graphs) field products and, as the baseline measured in the
  same run, dense block products;
* simulated annealing (dwave-samplers, 100 sweeps) and path-integral SQA (100 sweeps; timed on
  fewer reads and extrapolated linearly, each read being an independent run) per 1024 samples.

The machines are random: couplings N(0, (g / sqrt(mean degree))^2) (so the coupling field felt
by a unit has the same spread g on every topology; g = 1 is weakly, g = 4 and 8 strongly coupled) and
biases N(0, 0.5^2). A trained prior can be measured instead with ``--weights`` (a safetensors
file with ``bias`` (n,) and ``weight`` (n, n), e.g. the prior of a QVAE checkpoint).

    python benchmarks/bench_prior_sampling.py [--quick] [--threads 2]

Prints a table and writes benchmarks/results/prior_sampling.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from caloforge.bench import median_time
from caloforge.boltzmann import (
    BlockGibbsSampler,
    BoltzmannMachine,
    SimulatedAnnealingSampler,
    SimulatedQuantumAnnealingSampler,
    autocorrelation_time,
    burn_in_sweeps,
    effective_sample_size,
    make_topology,
    mixing_stats,
)
from caloforge.ioutil import atomic_path

RESULTS = Path(__file__).parent / "results" / "prior_sampling.json"
FULL_CONFIGS = [
    ("pegasus", 128),
    ("pegasus", 256),
    ("zephyr", 128),
    ("chimera", 256),
    ("rbm-dense", 256),
]
QUICK_CONFIGS = [("pegasus", 128), ("rbm-dense", 256)]
#: Reference figures from the issue (CaloChallenge ds2, 1024 showers), not measured here.
REFERENCE = {
    "gibbs_a100_gpu_s": [2.19, 0.14],
    "dwave_qpu_s": 0.18,
    "decoder_s": 0.01,
    "geant4_s": 400.0,
}


def build_machine(kind: str, n: int, g: float, seed: int, weights: str | None) -> BoltzmannMachine:
    topo = make_topology(kind, n, seed=0)
    mean_degree = float(topo.degree().mean())
    bm = BoltzmannMachine.random(topo, weight_scale=g / math.sqrt(mean_degree), seed=seed)
    if weights:
        from safetensors.torch import load_file

        tensors = load_file(weights)
        with torch.no_grad():
            bm.bias.copy_(tensors["bias"])
            bm.weight.copy_(tensors["weight"])
    return bm


def measure(kind, n, g, args) -> dict:
    bm = build_machine(kind, n, g, args.seed, args.weights)
    topo = bm.topology
    gibbs = BlockGibbsSampler()
    row = {
        "topology": kind,
        "partitions": list(topo.partition_sizes),
        "n_units": topo.n_units,
        "couplers": topo.n_couplers,
        "g": g,
        "weight_std": g / math.sqrt(float(topo.degree().mean())),
    }
    # --- mixing: tau in equilibrium, burn-in from fresh chains
    trace = gibbs.energy_trace(
        bm, args.tau_chains, args.tau_sweeps, seed=args.seed, burn_in=args.tau_burn_in
    )
    tau = autocorrelation_time(trace)
    fresh = gibbs.energy_trace(bm, args.n_samples, args.burn_in_window, seed=args.seed + 1)
    burn = burn_in_sweeps(fresh)
    needed = max(burn, math.ceil(2 * tau))
    # the library's recommendation: every unit, partition magnetisation and the energy, k = 10
    mix = mixing_stats(bm, seed=args.seed, n_chains=args.tau_chains, n_sweeps=args.tau_sweeps)
    row.update(
        tau_energy_sweeps=tau,
        ess_per_sweep_per_chain=effective_sample_size(trace) / trace.numel(),
        burn_in_sweeps=burn,
        sweeps_needed=needed,
        tau_max_sweeps=mix.tau_max,
        recommended_sweeps=mix.recommended_sweeps,
        recommendation_reliable=mix.reliable,
    )
    # --- Gibbs wall time vs sweeps, automatic and dense field products
    sweep_list = sorted(set(args.sweeps) | {needed, mix.recommended_sweeps})
    row["gibbs_s"] = {}
    row["gibbs_dense_s"] = {}
    for sweeps in sweep_list:
        auto = BlockGibbsSampler(sweeps)
        row["gibbs_s"][sweeps] = median_time(
            lambda s=auto: s.sample(bm, args.n_samples, seed=args.seed),
            repeats=args.repeats,
            warmup=1,
        )
        dense = BlockGibbsSampler(sweeps, sparse=False)
        row["gibbs_dense_s"][sweeps] = median_time(
            lambda s=dense: s.sample(bm, args.n_samples, seed=args.seed),
            repeats=args.repeats,
            warmup=1,
        )
    row["gibbs_s_at_needed"] = row["gibbs_s"][needed]
    row["gibbs_s_at_recommended"] = row["gibbs_s"][mix.recommended_sweeps]
    return row


def measure_annealers(kind, n, args) -> dict:
    """SA and SQA wall time per ``n_samples`` reads (one run each, timed on ``*_reads`` reads
    and scaled linearly: reads are independent runs of the C++ samplers)."""
    bm = build_machine(kind, n, args.g[0], args.seed, args.weights)
    sa = SimulatedAnnealingSampler(num_sweeps=100, beta_range=(0.1, 1.0))
    t0 = time.perf_counter()
    sa.sample(bm, args.sa_reads, seed=args.seed)
    sa_s = time.perf_counter() - t0
    sqa = SimulatedQuantumAnnealingSampler(num_sweeps=100, beta_phys=1.0, gamma=1.0, s_freeze=0.9)
    t0 = time.perf_counter()
    sqa.sample(bm, args.sqa_reads, seed=args.seed)
    sqa_s = time.perf_counter() - t0
    return {
        "sa_100_sweeps_s": sa_s * args.n_samples / args.sa_reads,
        "sa_timed_reads": args.sa_reads,
        "sqa_100_sweeps_s": sqa_s * args.n_samples / args.sqa_reads,
        "sqa_timed_reads": args.sqa_reads,
    }


def print_table(rows: list[dict], n_samples: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"prior sampling, {n_samples} samples (wall seconds, this CPU)")
    for col in (
        "topology",
        "units",
        "g",
        "tau",
        "burn-in",
        "sweeps",
        "tau max",
        "rec.",
        "gibbs@rec.",
        "gibbs@sweeps",
        "dense@sweeps",
        "gibbs/sweep",
        "SA 100*",
        "SQA 100*",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        needed = r["sweeps_needed"]
        largest = max(r["gibbs_s"])
        table.add_row(
            f"{r['topology']} {'x'.join(map(str, r['partitions']))}",
            str(r["n_units"]),
            f"{r['g']:g}",
            f"{r['tau_energy_sweeps']:.2f}",
            str(r["burn_in_sweeps"]),
            str(needed),
            f"{r['tau_max_sweeps']:.2f}",
            str(r["recommended_sweeps"]),
            f"{r['gibbs_s'][r['recommended_sweeps']]:.3f}",
            f"{r['gibbs_s'][needed]:.3f}",
            f"{r['gibbs_dense_s'][needed]:.3f}",
            f"{r['gibbs_s'][largest] / largest * 1e3:.1f} ms",
            f"{r['sa_100_sweeps_s']:.2f}" if "sa_100_sweeps_s" in r else "-",
            f"{r['sqa_100_sweeps_s']:.1f}" if "sqa_100_sweeps_s" in r else "-",
        )
    Console(width=160).print(table)
    print(
        "* SA/SQA timed on fewer reads where noted in the JSON and scaled linearly. Reference (issue, ds2 1024 showers): "
        f"Gibbs on A100 {REFERENCE['gibbs_a100_gpu_s'][0]} s, D-Wave QPU "
        f"{REFERENCE['dwave_qpu_s']} s."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two topologies, shorter traces")
    parser.add_argument("--n-samples", type=int, default=1024)
    parser.add_argument("--g", type=float, nargs="+", default=[1.0, 4.0, 8.0])
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1; see docs/boltzmann.md)"
    )
    parser.add_argument("--weights", default=None, help="safetensors with bias/weight to measure")
    parser.add_argument("--kind", default=None, help="topology of --weights")
    parser.add_argument("--n-per-partition", type=int, default=None, help="size of --weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    configs = QUICK_CONFIGS if args.quick else FULL_CONFIGS
    if args.weights:
        if not (args.kind and args.n_per_partition):
            parser.error("--weights needs --kind and --n-per-partition")
        configs = [(args.kind, args.n_per_partition)]
        args.g = [1.0]
    args.tau_chains = 128 if args.quick else 256
    args.tau_sweeps = 200 if args.quick else 400
    args.tau_burn_in = 100 if args.quick else 200
    args.burn_in_window = 60 if args.quick else 150
    args.sweeps = [1, 10, 50] if args.quick else [1, 10, 30, 100]
    args.repeats = 3
    args.sa_reads = 256 if args.quick else args.n_samples
    args.sqa_reads = 4 if args.quick else 16

    rows = []
    for kind, n in configs:
        annealers = measure_annealers(kind, n, args)
        for i, g in enumerate(args.g):
            t0 = time.perf_counter()
            row = measure(kind, n, g, args)
            if i == 0:
                row.update(annealers)
            rows.append(row)
            print(
                f"{kind} {n}: g={g:g} tau={row['tau_energy_sweeps']:.2f} "
                f"burn-in={row['burn_in_sweeps']} ({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
            )
    print_table(rows, args.n_samples)
    result = {
        "benchmark": "prior_sampling",
        "command": "python benchmarks/bench_prior_sampling.py " + " ".join(argv or sys.argv[1:]),
        "n_samples": args.n_samples,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "note": "timings on a shared machine under load; see load_average_at_end",
        "reference_from_issue": REFERENCE,
        "rows": rows,
    }
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
