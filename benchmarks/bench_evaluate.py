"""Benchmark: high-level features and histograms of ds2 showers, streamed from a file.

Writes a synthetic ds2 file (sparse, exponential voxel energies, ~30% of voxels filled) in a
temporary directory, in a child process so that the parent's peak memory is the evaluation's
alone, then times

* baseline: reading the file chunk by chunk and nothing else (the I/O floor);
* features: :func:`caloforge.evaluate.stream_features` (threshold, per-layer moments, sparsity,
  voxel-energy spectrum, mean shower);
* histograms: the reference binning of every feature, both samples' histograms and all
  separation powers (the generated sample is the same features with a 5% energy shift).

Usage::

    python benchmarks/bench_evaluate.py            # 100 000 showers (the issue's target)
    python benchmarks/bench_evaluate.py --quick    # 10 000 showers

Prints a table and writes benchmarks/results/evaluate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "evaluate.json"


def write_synthetic(path: str, n: int, seed: int = 0) -> None:
    """A ds2 file of ``n`` sparse synthetic showers, written in chunks of 5 000."""
    from caloforge.geometry import get_geometry
    from caloforge.io import ShowerWriter

    geo = get_geometry("ds2")
    rng = np.random.default_rng(seed)
    with ShowerWriter(path, geo.n_voxels, attrs={"geometry": "ds2"}, compression_level=1) as w:
        for start in range(0, n, 5000):
            m = min(5000, n - start)
            e_inc = np.exp(rng.uniform(np.log(1e3), np.log(1e6), m))
            x = rng.exponential(1.0, (m, geo.n_voxels)).astype(np.float32)
            x *= rng.random((m, geo.n_voxels), dtype=np.float32) < 0.3
            x *= (e_inc / x.sum(1))[:, None].astype(np.float32)
            w.append(e_inc, x)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 000 showers instead of 100 000")
    parser.add_argument("--n", type=int, default=None, help="number of showers")
    parser.add_argument("--write-only", nargs=2, metavar=("PATH", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_only:
        write_synthetic(args.write_only[0], int(args.write_only[1]))
        return

    from caloforge.evaluate import feature_binnings, separation_powers, stream_features
    from caloforge.evaluate.histograms import histogram_pairs
    from caloforge.geometry import get_geometry
    from caloforge.io import iter_showers

    n = args.n or (10_000 if args.quick else 100_000)
    geo = get_geometry("ds2")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "ds2.h5")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--write-only", path, str(n)], check=True)
        t_write = time.perf_counter() - t0
        size_mib = Path(path).stat().st_size / 2**20
        rss_start = peak_rss_mib()

        t0, c0 = time.perf_counter(), time.process_time()
        n_read = sum(len(block) for block in iter_showers(path, geometry=geo))
        t_read, c_read = time.perf_counter() - t0, time.process_time() - c0
        assert n_read == n

        t0, c0 = time.perf_counter(), time.process_time()
        sample = stream_features(path, geo)
        t_features, c_features = time.perf_counter() - t0, time.process_time() - c0

        t0, c0 = time.perf_counter(), time.process_time()
        ref = sample.features
        gen = ref[:]
        gen.e_tot = gen.e_tot * 1.05
        gen.e_layer = gen.e_layer * 1.05
        binnings = feature_binnings(ref, geo, 0.01515)
        pairs = histogram_pairs(ref, gen, binnings)
        seps = separation_powers(ref, gen, binnings, pairs)
        edges = sample.voxel_spectrum.edges_for(50)
        sample.voxel_spectrum.rebinned(edges)
        t_hist, c_hist = time.perf_counter() - t0, time.process_time() - c0
        rss_peak = peak_rss_mib()

    rows = [
        ("baseline: read only", t_read, c_read),
        ("features (streamed)", t_features, c_features),
        ("histograms + separation powers", t_hist, c_hist),
        ("features + histograms", t_features + t_hist, c_features + c_hist),
    ]
    print(f"ds2, {n} showers, file {size_mib:.0f} MiB (gzip 1), written in {t_write:.1f} s")
    print(f"{'step':34s} {'wall s':>8s} {'CPU s':>8s} {'showers/s':>10s}")
    for name, secs, cpu in rows:
        print(f"{name:34s} {secs:8.2f} {cpu:8.2f} {n / secs:10.0f}")
    print(f"features per shower: {ref.n_features}; separation powers: {len(seps)}")
    print(f"load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"peak RSS: {rss_peak:.0f} MiB (before evaluation {rss_start:.0f} MiB)")
    result = {
        "benchmark": "evaluate",
        "geometry": "ds2",
        "n_showers": n,
        "file_mib": round(size_mib, 1),
        "wall_seconds": {name: round(secs, 3) for name, secs, _ in rows},
        "cpu_seconds": {name: round(cpu, 3) for name, _, cpu in rows},
        "showers_per_second": {name: round(n / secs, 1) for name, secs, _ in rows},
        "load_average_1min": round(os.getloadavg()[0], 2),
        "peak_rss_mib": round(rss_peak, 1),
        "n_features": ref.n_features,
        "machine": platform.platform(),
        "python": platform.python_version(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
