"""Streaming read rate and peak memory for dataset-3-sized shower files (40 500 voxels).

Writes synthetic dataset-3-shaped files with :class:`caloforge.io.ShowerWriter` (timed), then
scans each with :func:`caloforge.io.iter_showers` in a fresh process (so that the peak resident
memory belongs to the scan alone) and reports showers/s, MB/s of uncompressed float32 data and
peak memory. Two file sizes show that the peak memory is set by the chunk size, not by N; a
sweep over ``CHUNK_BYTES`` on the larger file looks for the best default.

While the consumer holds one block the generator reads the next, so the scan peaks at about two
chunks plus the validation masks, whatever N is.

The showers are sparse and shaped like real ones (a longitudinal gamma profile, an exponential
radial fall-off, log-normal fluctuations, a readout threshold), so gzip compresses them about
as well as real data.

    python benchmarks/bench_io_streaming.py              # 5 000 and 20 000 showers
    python benchmarks/bench_io_streaming.py --quick      # 500 and 2 000 showers
    python benchmarks/bench_io_streaming.py --n 100000   # the full dataset-3 size (16 GB raw)

Results: a table on stdout and ``benchmarks/results/io_streaming.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_LAYERS, N_ALPHA, N_RADIAL = 45, 50, 18
N_VOXELS = N_LAYERS * N_ALPHA * N_RADIAL  # 40 500, the dataset-3 binning
BYTES_PER_SHOWER = 4 * N_VOXELS  # float32
MB = 1e6
THRESHOLD_MEV = 15.15e-3  # the dataset-3 readout threshold
RADIAL_FALLOFF_BINS = 1.2  # exponential radial fall-off, in radial bins
VOXEL_SIGMA = 1.5  # log-normal voxel-to-voxel fluctuation; about 70 % of the voxels end at 0
RESULTS = Path(__file__).resolve().parent / "results" / "io_streaming.json"


# --------------------------------------------------------------------------- synthetic data
def mean_profile() -> np.ndarray:
    """Mean fraction of the incident energy per voxel, shape (40500,), summing to about 0.6."""
    layer = np.arange(N_LAYERS) + 0.5
    longitudinal = layer**2.5 * np.exp(-layer / 4.0)  # gamma-like, maximum near layer 10
    radius = np.arange(N_RADIAL) + 0.5
    radial = np.exp(-radius / RADIAL_FALLOFF_BINS)
    profile = longitudinal[:, None, None] * np.ones(N_ALPHA)[None, :, None] * radial[None, None, :]
    return (0.6 * profile / profile.sum()).reshape(-1)


def synthetic_chunk(rng: np.random.Generator, n: int, profile: np.ndarray):
    """(incident energies (n,) MeV, showers (n, 40500) float32 MeV), sparse like dataset 3."""
    e_inc = np.exp(rng.uniform(np.log(1e3), np.log(1e6), n))
    showers = (e_inc[:, None] * profile[None, :]).astype(np.float32)
    sigma = VOXEL_SIGMA  # log-normal fluctuation with mean 1, so the response stays about 0.6
    showers *= rng.lognormal(-0.5 * sigma**2, sigma, showers.shape).astype(np.float32)
    showers[showers < THRESHOLD_MEV] = 0.0
    return e_inc, showers


# --------------------------------------------------------------------------- workers
def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def worker_write(path: Path, n: int, seed: int, block: int = 500) -> dict:
    """Write ``n`` synthetic showers to ``path``; time only the writer."""
    from caloforge.io import ShowerWriter

    rng = np.random.default_rng(seed)
    profile = mean_profile()
    generate_s, zeros = 0.0, 0
    start_time = time.perf_counter()
    with ShowerWriter(path, N_VOXELS, attrs={"geometry": "ds3", "seed": seed}) as writer:
        for start in range(0, n, block):
            t0 = time.perf_counter()
            e_inc, showers = synthetic_chunk(rng, min(block, n - start), profile)
            zeros += int((showers == 0).sum())
            generate_s += time.perf_counter() - t0
            writer.append(e_inc, showers)
    # validation, compression, the final flush and the rename; not the data generation
    write_s = time.perf_counter() - start_time - generate_s
    return {
        "n_showers": n,
        "write_s": write_s,
        "write_showers_per_s": n / write_s,
        "write_mb_per_s": n * BYTES_PER_SHOWER / MB / write_s,
        "file_mb": path.stat().st_size / MB,
        "raw_mb": n * BYTES_PER_SHOWER / MB,
        "sparsity": zeros / (n * N_VOXELS),
        "peak_rss_mb": peak_rss_mb(),
    }


def worker_stream(path: Path, chunk_mb: float) -> dict:
    """Scan ``path`` once with iter_showers (validation on), touching every value."""
    import tracemalloc

    import caloforge.io as cio

    cio.CHUNK_BYTES = int(chunk_mb * 2**20)
    baseline_rss = peak_rss_mb()
    tracemalloc.start()
    n, total, chunks = 0, 0.0, 0
    t0 = time.perf_counter()
    for block in cio.iter_showers(path, geometry="ds3"):
        total += float(block.showers.sum(dtype=np.float64))
        n += len(block)
        chunks += 1
    seconds = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "n_showers": n,
        "chunk_mb": chunk_mb,
        "rows_per_chunk": max(1, cio.CHUNK_BYTES // BYTES_PER_SHOWER),
        "chunks": chunks,
        "read_s": seconds,
        "read_showers_per_s": n / seconds,
        "read_mb_per_s": n * BYTES_PER_SHOWER / MB / seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_imports_mb": baseline_rss,
        "tracemalloc_peak_mb": traced_peak / MB,
        "energy_sum_mev": total,
    }


def run_worker(*args: str) -> dict:
    """Run this script as a worker in a fresh process and return its JSON result."""
    cmd = [sys.executable, __file__, "--worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"worker {' '.join(args)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- driver
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="showers in the larger file")
    parser.add_argument("--quick", action="store_true", help="500 and 2 000 showers, short sweep")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="where to put the files")
    parser.add_argument(
        "--chunk-mb",
        type=float,
        nargs="*",
        default=None,
        help="CHUNK_BYTES values (MiB) to sweep on the larger file",
    )
    parser.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, *rest = args.worker
        if kind == "write":
            result = worker_write(Path(rest[0]), int(rest[1]), int(rest[2]))
        else:
            result = worker_stream(Path(rest[0]), float(rest[1]))
        print(json.dumps(result))
        return

    n_large = 2_000 if args.quick else args.n
    sizes = [max(1, n_large // 4), n_large]
    sweep = args.chunk_mb or ([16, 32, 128] if args.quick else [16, 32, 64, 128, 256])
    # both files must span several chunks for the size comparison to mean anything
    compare_mb = 32 if args.quick else 128
    workdir = Path(tempfile.mkdtemp(prefix="caloforge-bench-", dir=args.workdir))
    print(f"files in {workdir}; {N_VOXELS} voxels per shower ({BYTES_PER_SHOWER / MB:.3f} MB)")
    writes, streams, chunk_sweep = [], [], []
    try:
        for n in sizes:
            path = workdir / f"ds3_{n}.h5"
            writes.append(run_worker("write", str(path), str(n), str(args.seed)))
            print(f"wrote {n} showers: {writes[-1]['file_mb']:.0f} MB on disk", flush=True)
            streams.append(run_worker("stream", str(path), str(compare_mb)))
            print(f"scanned {n} showers at {compare_mb} MiB chunks", flush=True)
        large = workdir / f"ds3_{n_large}.h5"
        for chunk_mb in sweep:
            chunk_sweep.append(run_worker("stream", str(large), str(chunk_mb)))
            print(f"scanned {n_large} showers at {chunk_mb:g} MiB chunks", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print("writing (ShowerWriter, gzip level 4, shuffle, float32)")
    print(f"{'N':>8} {'raw MB':>9} {'file MB':>8} {'ratio':>6} {'sparsity':>8} {'showers/s':>10} {'MB/s':>8} {'peak RSS MB':>11}")  # fmt: skip
    for w in writes:
        print(
            f"{w['n_showers']:>8} {w['raw_mb']:>9.0f} {w['file_mb']:>8.0f} "
            f"{w['raw_mb'] / w['file_mb']:>6.1f} {w['sparsity']:>8.3f} "
            f"{w['write_showers_per_s']:>10.0f} {w['write_mb_per_s']:>8.1f} {w['peak_rss_mb']:>11.0f}"
        )
    print()
    print("streaming (iter_showers, validation on; MB/s of uncompressed float32)")
    header = f"{'N':>8} {'chunk MiB':>9} {'rows':>6} {'showers/s':>10} {'MB/s':>8} {'peak RSS MB':>11} {'traced MB':>9}"  # fmt: skip
    print(header)
    for s in [*streams, *chunk_sweep]:
        print(
            f"{s['n_showers']:>8} {s['chunk_mb']:>9g} {s['rows_per_chunk']:>6} "
            f"{s['read_showers_per_s']:>10.0f} {s['read_mb_per_s']:>8.1f} "
            f"{s['peak_rss_mb']:>11.0f} {s['tracemalloc_peak_mb']:>9.0f}"
        )
    growth = streams[-1]["peak_rss_mb"] - streams[0]["peak_rss_mb"]
    print(
        f"\npeak RSS grows by {growth:+.0f} MB from N={sizes[0]} to N={sizes[-1]} "
        f"(x{sizes[-1] / sizes[0]:.0f} showers) at {compare_mb} MiB chunks"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "io_streaming",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "n_voxels": N_VOXELS,
        "sizes": sizes,
        "compare_chunk_mb": compare_mb,
        "write": writes,
        "stream": streams,
        "chunk_sweep": chunk_sweep,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()),
        },
        "note": "files were in the OS page cache when read (no cache drop); timings on a shared machine",
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
