"""Scale-out on Dask: serial vs the processes scheduler, for simulation and for generation.

Simulates one job (by default 20 000 ds2 electrons, log-uniform 1 GeV - 1 TeV, seed 1, chunks of
1000) with :func:`caloforge.refsim.simulate_to_file` serially (the baseline, timed before and
after the Dask runs, so a change of machine load shows) and with ``workers=w,
scheduler="processes"`` at 1 and 2 workers; checks that every file holds the same showers as the serial one; and reports showers/s
and the speed-up over the mean serial time. Worker start-up (spawned processes importing
caloforge) is included in the Dask times.

Two more numbers explain the result: the writer alone (the serial file's showers compressed and
written again with ShowerWriter, in the calling process, which is what every Dask run must also
do) and the cores this benchmark can actually get (two busy-looping processes for 1 s: the CPU
seconds they obtained). The machine's load average is recorded before and after.

    python benchmarks/bench_scaleout.py            # 20 000 showers, workers 1 and 2
    python benchmarks/bench_scaleout.py --quick    # 2 000 showers
    python benchmarks/bench_scaleout.py --run runs/fidelity-ds2/qvae --sampler sa

With ``--run`` it also times generation with that trained model (``--n-generate`` showers,
``--sampler``), serially and on Dask: the case where each shower costs much more than writing it.

Results: a table on stdout and ``benchmarks/results/scaleout.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the worker processes

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from caloforge.io import ShowerWriter, iter_showers  # noqa: E402
from caloforge.ioutil import atomic_path  # noqa: E402
from caloforge.refsim import simulate_to_file  # noqa: E402
from caloforge.workflows import generate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "scaleout.json"
JOB = {"detector": "ds2", "particle": "electron", "energies": "loguniform:1e3:1e6", "seed": 1}


def _spin(seconds: float) -> float:
    """Busy-loop for ``seconds`` of wall time; return the CPU seconds obtained."""
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        pass
    return time.process_time() - c0


def available_cores(seconds: float = 1.0) -> float:
    """CPU seconds per second that two busy processes obtain together (2.0 on an idle 2-core box)."""
    with ProcessPoolExecutor(2) as pool:
        pool.submit(_spin, 0.01).result()  # start-up outside the measurement
        return sum(pool.map(_spin, [seconds] * 2)) / seconds


def same_showers(a: Path, b: Path) -> bool:
    """True when both files hold identical datasets and attributes."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        if dict(fa.attrs) != dict(fb.attrs) or set(fa) != set(fb):
            return False
        return all(np.array_equal(fa[k][()], fb[k][()]) for k in fa)


def time_serial(path: Path, n: int, chunk_size: int) -> float:
    t0 = time.perf_counter()
    simulate_to_file(path, **JOB, n=n, chunk_size=chunk_size, progress=False)
    return time.perf_counter() - t0


def time_dask(path: Path, n: int, chunk_size: int, workers: int) -> float:
    t0 = time.perf_counter()
    simulate_to_file(
        path, **JOB, n=n, chunk_size=chunk_size, workers=workers, scheduler="processes",
        progress=False,
    )  # fmt: skip
    return time.perf_counter() - t0


def time_generation(run: str, sampler: str, n: int, tmp: Path, workers: list[int]) -> dict:
    """Serial ``generate`` against ``workers=w, scheduler="processes"``; batches of 512."""
    common = dict(n=n, energies="loguniform:1e3:1e6", sampler=sampler, seed=1, batch_size=512)
    t0 = time.perf_counter()
    generate(run, tmp / "gen_serial.h5", **common, progress=False)
    out = {"run": run, "sampler": sampler, "n": n, "serial_seconds": time.perf_counter() - t0}
    out["dask_processes"] = []
    for w in workers:
        path = tmp / f"gen_dask_{w}.h5"
        t0 = time.perf_counter()
        generate(run, path, **common, workers=w, scheduler="processes", progress=False)
        seconds = time.perf_counter() - t0
        out["dask_processes"].append(
            {
                "workers": w,
                "seconds": seconds,
                "speedup": out["serial_seconds"] / seconds,
                "identical": same_showers(tmp / "gen_serial.h5", path),
            }
        )
    return out


def time_writer(src: Path, dst: Path, chunk_size: int) -> float:
    """Seconds to validate, compress and write the showers of ``src`` again (read excluded)."""
    blocks = list(iter_showers(src, chunk_size=chunk_size, validate=False))
    t0 = time.perf_counter()
    with ShowerWriter(dst, blocks[0].n_voxels) as writer:
        for block in blocks:
            writer.append(block.incident_energies, block.showers)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="showers to simulate")
    parser.add_argument("--chunk-size", type=int, default=1000, help="showers per chunk")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="2 000 showers")
    parser.add_argument("--run", help="a trained model directory: also time generation")
    parser.add_argument("--sampler", default=None, help="prior sampler for --run (qvae)")
    parser.add_argument("--n-generate", type=int, default=4096, help="showers to generate")
    args = parser.parse_args()
    n = 2000 if args.quick else args.n

    load_before = os.getloadavg()
    cores = available_cores()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_scaleout_") as tmp:
        serial = Path(tmp) / "serial.h5"
        serial_s = [time_serial(serial, n, args.chunk_size)]
        writer_s = time_writer(serial, Path(tmp) / "rewrite.h5", args.chunk_size)
        for w in args.workers:
            out = Path(tmp) / f"dask_{w}.h5"
            seconds = time_dask(out, n, args.chunk_size, w)
            rows.append({"workers": w, "seconds": seconds, "identical": same_showers(serial, out)})
        serial_s.append(time_serial(Path(tmp) / "serial_again.h5", n, args.chunk_size))
        gen = None
        if args.run:
            gen = time_generation(args.run, args.sampler, args.n_generate, Path(tmp), args.workers)
    load_after = os.getloadavg()
    cores_after = available_cores()

    base = float(np.mean(serial_s))
    print(f"{n} {JOB['detector']} {JOB['particle']}s, {JOB['energies']} MeV, chunks of "
          f"{args.chunk_size}; {os.cpu_count()} CPUs, load average {load_before[0]:.2f} -> "
          f"{load_after[0]:.2f}, cores available {cores:.2f} -> {cores_after:.2f}")  # fmt: skip
    print(f"{'run':<24}{'seconds':>9}{'showers/s':>11}{'speed-up':>10}  identical")
    print(f"{'serial (mean of 2)':<24}{base:9.2f}{n / base:11.0f}{1.0:10.2f}  -")
    for row in rows:
        row |= {"showers_per_s": n / row["seconds"], "speedup": base / row["seconds"]}
        label = f"dask processes x{row['workers']}"
        print(f"{label:<24}{row['seconds']:9.2f}{row['showers_per_s']:11.0f}"
              f"{row['speedup']:10.2f}  {'yes' if row['identical'] else 'NO'}")  # fmt: skip
    print(f"{'writer alone':<24}{writer_s:9.2f}{n / writer_s:11.0f}  (the ceiling of any Dask run)")
    if gen is not None:
        print(f"generation: {gen['n']} showers with {gen['run']} (sampler {gen['sampler']})")
        print(f"{'serial':<24}{gen['serial_seconds']:9.2f}{gen['n'] / gen['serial_seconds']:11.1f}")
        for row in gen["dask_processes"]:
            label = f"dask processes x{row['workers']}"
            print(f"{label:<24}{row['seconds']:9.2f}{gen['n'] / row['seconds']:11.1f}"
                  f"{row['speedup']:10.2f}  {'yes' if row['identical'] else 'NO'}")  # fmt: skip

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "scaleout",
        "command": "python benchmarks/bench_scaleout.py" + (" --quick" if args.quick else ""),
        "job": {**JOB, "n": n, "chunk_size": args.chunk_size},
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "available_cores_before": cores,
            "available_cores_after": cores_after,
        },
        "serial_seconds": serial_s,
        "serial_showers_per_s": n / base,
        "writer_seconds": writer_s,
        "writer_showers_per_s": n / writer_s,
        "dask_processes": rows,
        "generation": gen,
    }
    with atomic_path(RESULTS) as tmp_path:
        tmp_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
