"""Throughput of the reference simulator: showers/s for log-uniform 1 GeV - 1 TeV electrons.

    python benchmarks/bench_refsim.py [--quick] [--workers 2]

For ds1-photons, ds2 and ds3 it reports showers/s in one process and in ``--workers``
processes (each simulating its own share with its own seed), showers per CPU-second of one
process (less sensitive to other load on a shared machine), and where the time of one process
goes (shower model / deposition into voxels / rest: threshold, float32 copy). The baseline in
the same run is the spot-by-spot path (the shower moved 1 um off axis, so the exact multinomial
binning cannot be used and spots are capped at 2000 per layer). Results go to
benchmarks/results/refsim.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from caloforge.refsim import simulate  # noqa: E402

SPEC = "loguniform:1e3:1e6"
DETECTORS = ("ds1-photons", "ds2", "ds3")


def _run(detector: str, n: int, seed: int, offset: float = 0.0) -> float:
    """Wall-clock seconds to simulate ``n`` showers."""
    return _timed(detector, n, seed, offset)[0]


def _timed(detector: str, n: int, seed: int, offset: float = 0.0) -> tuple[float, float]:
    """(wall, CPU) seconds to simulate ``n`` showers in this process."""
    t0, c0 = time.perf_counter(), time.process_time()
    simulate(detector, "electron", SPEC, n=n, seed=seed, offset_mm=(offset, 0.0))
    return time.perf_counter() - t0, time.process_time() - c0


def _breakdown(detector: str, n: int) -> dict[str, float]:
    """Seconds spent in the shower model and in the deposition for one run of ``n`` showers."""
    sim = importlib.import_module("caloforge.refsim.simulate")
    spent = {"model": 0.0, "deposit": 0.0}
    originals = {"model": sim.em_deposits, "deposit": sim.deposit}

    def timed(key):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return originals[key](*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - t0

        return wrapper

    sim.em_deposits, sim.deposit = timed("model"), timed("deposit")
    try:
        total = _run(detector, n, seed=5)
    finally:
        sim.em_deposits, sim.deposit = originals["model"], originals["deposit"]
    spent["rest"] = total - spent["model"] - spent["deposit"]
    spent["total"] = total
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer showers")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel run")
    args = parser.parse_args()
    sizes = {"ds1-photons": 4000, "ds2": 2000, "ds3": 500}
    if args.quick:
        sizes = {k: v // 4 for k, v in sizes.items()}
    rows = []
    for det in DETECTORS:
        n = sizes[det]
        _run(det, min(n, 100), seed=0)  # warm up (imports, geometry caches)
        wall, cpu = _timed(det, n, seed=1)
        one, per_cpu_s = n / wall, n / cpu
        baseline = n / _run(det, n, seed=1, offset=1e-3)
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(_run, [det] * args.workers, [10] * args.workers, range(args.workers)))
            t0 = time.perf_counter()
            list(pool.map(_run, [det] * args.workers, [n] * args.workers, range(args.workers)))
            parallel = args.workers * n / (time.perf_counter() - t0)
        split = _breakdown(det, n)
        rows.append(
            {
                "detector": det,
                "showers": n,
                "showers_per_s_1_process": round(one, 1),
                "showers_per_cpu_s": round(per_cpu_s, 1),
                f"showers_per_s_{args.workers}_processes": round(parallel, 1),
                "baseline_spot_path_showers_per_s": round(baseline, 1),
                "time_fraction": {
                    k: round(v / split["total"], 3) for k, v in split.items() if k != "total"
                },
            }
        )
    head = f"{'detector':<12} {'N':>6} {'1 proc/s':>10} {'per CPU-s':>10} "
    head += f"{f'{args.workers} proc/s':>10} "
    head += f"{'spot path/s':>12}  time: model / deposit / rest"
    print(head)
    for r in rows:
        f = r["time_fraction"]
        print(
            f"{r['detector']:<12} {r['showers']:>6} {r['showers_per_s_1_process']:>10.0f} "
            f"{r['showers_per_cpu_s']:>10.0f} "
            f"{r[f'showers_per_s_{args.workers}_processes']:>10.0f} "
            f"{r['baseline_spot_path_showers_per_s']:>12.0f}  "
            f"{f['model']:.2f} / {f['deposit']:.2f} / {f['rest']:.2f}"
        )
    out = Path(__file__).parent / "results" / "refsim.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"spectrum": SPEC, "particle": "electron", "cpu_count": os.cpu_count(),
            "numpy": np.__version__, "note": "shared 2-core machine, timings under load"}  # fmt: skip
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
