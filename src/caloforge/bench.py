"""The timing table: time per shower for each model, precision and batch size.

For every model directory and every variant (``torch fp32`` -- the model's own module in
eager PyTorch -- and ONNX Runtime in fp32, int8 and fp16), at every batch size, the full
generation of a batch is timed: the latent inputs (noise, prior samples) drawn by the model
plus the network. The time per shower is the median over ``repeats`` timed runs after
``warmup`` untimed ones. The reference simulator, timed in the same run on the same incident
energies, is the baseline of the speed-up column, as in the CaloChallenge timing tables.

The baseline is a parameter: any callable ``(geometry, energies, seed) -> anything`` that
simulates ``len(energies)`` showers. :func:`refsim_baseline` builds the default one from
:func:`caloforge.refsim.simulate`; when that cannot run, the column says why instead of
showing a number.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from caloforge.errors import CaloforgeError, ConfigError
from caloforge.geometry import Geometry
from caloforge.ioutil import atomic_path

#: (format, precision) pairs timed by default; ``torch`` is the model's module, uncompiled
DEFAULT_VARIANTS: tuple[tuple[str, str], ...] = (
    ("torch", "fp32"),
    ("onnx", "fp32"),
    ("onnx", "int8"),
    ("onnx", "fp16"),
)
#: default particle of a refsim detector preset (others: electron)
REFSIM_PARTICLES: dict[str, str] = {
    "ds1-photons": "photon",
    "ds1-pions": "pion",
    "ild-ahcal": "pion",
}

Baseline = Callable[[Geometry, np.ndarray, int], Any]


class BaselineUnavailable(CaloforgeError):
    """The baseline cannot run for this geometry (no refsim, no detector preset ...)."""


@dataclass
class TimingRow:
    """One line of the table.

    Attributes:
        model: the model name (and run directory name when they differ).
        precision: ``fp32``, ``fp16``, ``int8`` or ``-`` for the baseline.
        runtime: ``torch``, ``onnxruntime`` or ``refsim``.
        device: ``cpu`` or ``cuda``.
        batch_size: showers generated per call.
        ms_per_shower: median wall time per shower of the whole generation, ms.
        network_ms_per_shower: the share of the network alone (latent inputs excluded), ms.
        speedup: baseline time per shower / ``ms_per_shower``; None when no baseline.
        note: why a value is missing, or what was special.
    """

    model: str
    precision: str
    runtime: str
    device: str
    batch_size: int
    ms_per_shower: float | None
    network_ms_per_shower: float | None = None
    speedup: float | None = None
    note: str = ""


@dataclass
class BenchResult:
    """The rows of the table plus how they were measured."""

    rows: list[TimingRow]
    settings: dict[str, Any]
    machine: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "machine": self.machine,
            "rows": [asdict(r) for r in self.rows],
        }

    def to_markdown(self) -> str:
        """The table in Markdown, with the machine and settings below it."""
        head = "| model | precision | runtime | device | batch size | time per shower (ms) | network (ms) | speed-up vs refsim |"
        lines = [head, "|" + "---|" * 8]
        for r in self.rows:
            lines.append(
                f"| {r.model} | {r.precision} | {r.runtime} | {r.device} | {r.batch_size} | "
                f"{_fmt(r.ms_per_shower, r.note)} | {_fmt(r.network_ms_per_shower)} | "
                f"{_fmt_speedup(r)} |"
            )
        notes = [f"- {r.model} {r.precision} {r.runtime}: {r.note}" for r in self.rows if r.note]
        lines += ["", f"Machine: {self.machine.get('summary', '')}.", ""]
        lines.append("Settings: " + ", ".join(f"{k}={v}" for k, v in self.settings.items()) + ".")
        if notes:
            lines += ["", "Notes:", *dict.fromkeys(notes)]
        return "\n".join(lines) + "\n"

    def rich_table(self):
        """A :class:`rich.table.Table` of the rows."""
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="time per shower (median)")
        for col in (
            "model",
            "precision",
            "runtime",
            "device",
            "batch",
            "ms/shower",
            "network ms",
            "speed-up vs refsim",
        ):
            table.add_column(col, justify="right" if col not in ("model", "runtime") else "left")
        for r in self.rows:
            table.add_row(
                escape(r.model),
                r.precision,
                r.runtime,
                r.device,
                str(r.batch_size),
                _fmt(r.ms_per_shower, r.note),
                _fmt(r.network_ms_per_shower),
                _fmt_speedup(r),
            )
        return table

    def write(self, out_dir: str | os.PathLike, stem: str = "timing") -> tuple[Path, Path]:
        """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir`` (atomically each)."""
        out_dir = Path(out_dir)
        json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
        with atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2))
        with atomic_path(md_path) as tmp:
            tmp.write_text(self.to_markdown())
        return json_path, md_path


def _fmt(value: float | None, note: str = "") -> str:
    if value is None:
        return "missing" if note else "-"
    return f"{value:.4g}"


def _fmt_speedup(row: TimingRow) -> str:
    if row.runtime == "refsim":
        return "1 (baseline)" if row.ms_per_shower is not None else "missing"
    return "missing" if row.speedup is None else f"{row.speedup:.3g}x"


# --------------------------------------------------------------------------- timing
def wall_times(fn: Callable[[], Any], *, repeats: int, warmup: int) -> list[float]:
    """Wall times of ``repeats`` runs of ``fn()`` in seconds, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median_time(fn: Callable[[], Any], *, repeats: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    return statistics.median(wall_times(fn, repeats=repeats, warmup=warmup))


def machine_info(threads: int | None, device: str) -> dict[str, Any]:
    """CPU model, core count, library versions: what the numbers were measured on."""
    import torch

    from caloforge._optional import require

    onnxruntime = require("onnxruntime", extra="export", purpose="the ONNX timing")

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads or torch.get_num_threads(),
        "device": device,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    info["summary"] = (
        f"{info.get('gpu', cpu)}, {info['cores']} cores, threads: {info['threads']}, "
        f"torch {info['torch']}, onnxruntime {info['onnxruntime']}"
    )
    return info


def refsim_baseline(detector: str | None = None, particle: str | None = None) -> Baseline:
    """The reference simulator as a baseline: ``refsim.simulate(detector, particle, energies)``.

    Args:
        detector, particle: the refsim preset and particle; by default the preset whose
            geometry is the model's (``pbwo4`` for ``grid:25x25x25:22`` ...) and its particle
            in :data:`REFSIM_PARTICLES`.
    """

    def run(geometry: Geometry, energies: np.ndarray, seed: int):
        from caloforge.refsim import simulate
        from caloforge.refsim.detectors import detector_names, get_detector

        det = detector
        if det is None:
            matches = [n for n in detector_names() if get_detector(n).geo.name == geometry.name]
            if not matches:
                raise BaselineUnavailable(
                    f"no refsim detector has geometry {geometry.name!r}; pass "
                    "--baseline-detector NAME[:PARTICLE]"
                )
            det = matches[0]
        part = particle or REFSIM_PARTICLES.get(det, "electron")
        return simulate(det, part, energies, n=len(energies), seed=seed)

    return run


def _variant_runner(model, fmt: str, precision: str, workdir: Path, threads, device):
    """A callable ``inputs -> showers`` for one variant."""
    if fmt == "torch":
        import torch

        from caloforge.export.source import generator_parts

        if precision != "fp32":
            raise ConfigError("the torch runtime is timed in fp32 only; use onnx for fp16/int8")
        module, _ = generator_parts(model)
        module = module.to(device)

        def run(inputs):
            with torch.inference_mode():
                out = module(*(t.to(device) for t in inputs))
            if device == "cuda":
                torch.cuda.synchronize()
            return out

        return run, ""
    if fmt != "onnx":
        raise ConfigError(f"unknown runtime {fmt!r} in a variant; use torch or onnx")
    from caloforge.export import export_model, load_artifact

    out = workdir / f"{model.model_name}-{id(model)}-{precision}"
    artifact = export_model(model, out, fmt="onnx", precision=precision, n_check=16)
    artifact = load_artifact(out, threads=threads, device=device)
    check = artifact.check  # export_model always records one (n_check >= 1)
    if check is None:
        note = "export recorded no check"
    else:
        note = "" if check.passed else f"export check failed: {check.summary()}"
    return (lambda inputs: artifact.run(*inputs)), note


def _precision_label(fmt: str, precision: str) -> str:
    if fmt == "onnx" and precision == "int8":
        return "int8 dynamic"
    if fmt == "onnx" and precision == "fp16":
        return "fp16 mixed"
    return precision


def bench(
    run_dirs: Sequence[str | os.PathLike],
    *,
    batch_sizes: Sequence[int] = (1, 100, 10000),
    variants: Sequence[tuple[str, str]] = DEFAULT_VARIANTS,
    device: str = "cpu",
    threads: int | None = None,
    repeats: int = 5,
    warmup: int = 1,
    seed: int = 0,
    energies: str | None = None,
    baseline: Baseline | None = None,
    baseline_showers: int = 20,
    progress: bool = False,
) -> BenchResult:
    """Time every model in ``run_dirs`` for every variant and batch size (see module doc).

    Args:
        batch_sizes: showers per generation call.
        variants: (runtime, precision) pairs, runtime ``torch`` or ``onnx``.
        device: ``cpu`` or ``cuda`` (the latter needs torch/onnxruntime with CUDA).
        threads: intra-op threads for torch and ONNX Runtime (default: library default).
        repeats, warmup: timed and untimed runs per measurement.
        energies: incident-energy spectrum spec (default per geometry, see
            :func:`caloforge.export.source.default_energies`).
        baseline: the baseline simulator; ``None`` means no baseline (column missing). Use
            :func:`refsim_baseline` for the reference simulator.
        baseline_showers: showers simulated per baseline timing (its time per shower does not
            depend on a batch size, so it is measured once per geometry).
    """
    import torch

    from caloforge.energies import parse_energies
    from caloforge.export.source import default_energies
    from caloforge.models import load_generator

    if not run_dirs:
        raise ConfigError("give at least one model directory to time")
    if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be >= 1, got {list(batch_sizes)}")
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; use cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device")
    if threads:
        torch.set_num_threads(int(threads))

    models = [(Path(d), load_generator(d)) for d in run_dirs]
    n_steps = len(models) * (1 + len(variants) * len(batch_sizes))
    rows: list[TimingRow] = []
    baselines: dict[str, tuple[float | None, str]] = {}

    def draw(model, n: int, k: int) -> np.ndarray:
        if energies is not None:
            return parse_energies(energies, n, seed=seed + k)
        return default_energies(model.geometry, n, seed + k)

    with tempfile.TemporaryDirectory() as work, _progress(progress, n_steps) as advance:
        for run_dir, model in models:
            label = (
                model.model_name
                if run_dir.name == model.model_name
                else (f"{model.model_name} ({run_dir.name})")
            )
            geo = model.geometry
            if geo.name not in baselines:
                baselines[geo.name] = _time_baseline(
                    baseline, geo, draw(model, baseline_showers, 0), seed, repeats, warmup
                )
                base_ms, base_note = baselines[geo.name]
                rows.append(
                    TimingRow(
                        f"refsim [{geo.name}]",
                        "-",
                        "refsim",
                        "cpu",
                        baseline_showers,
                        base_ms,
                        None,
                        None,
                        base_note,
                    )
                )
            advance()
            base_ms = baselines[geo.name][0]
            for fmt, precision in variants:
                try:
                    runner, note = _variant_runner(
                        model, fmt, precision, Path(work), threads, device
                    )
                except CaloforgeError:
                    raise
                except Exception as exc:  # noqa: BLE001 - e.g. a kernel missing in this runtime
                    runner, note = None, f"does not run here ({str(exc).splitlines()[0][:120]})"
                runtime = "torch" if fmt == "torch" else "onnxruntime"
                label_p = _precision_label(fmt, precision)
                for b in batch_sizes:
                    advance()
                    if runner is None:
                        rows.append(
                            TimingRow(label, label_p, runtime, device, int(b), None, note=note)
                        )
                        continue
                    total, net = _time_generation(
                        model, runner, draw(model, int(b), 1), seed, repeats, warmup
                    )
                    ms = 1e3 * total / b
                    rows.append(
                        TimingRow(
                            label,
                            label_p,
                            runtime,
                            device,
                            int(b),
                            ms,
                            1e3 * net / b,
                            None if base_ms is None else base_ms / ms,
                            note,
                        )
                    )
    settings = {
        "batch_sizes": list(map(int, batch_sizes)),
        "repeats": repeats,
        "warmup": warmup,
        "seed": seed,
        "energies": energies or "default per geometry",
        "baseline_showers": baseline_showers,
    }
    return BenchResult(rows, settings, machine_info(threads, device))


def _time_generation(model, runner, energies, seed, repeats, warmup) -> tuple[float, float]:
    """Median seconds of one batch: (latent inputs + network, network alone)."""
    from caloforge.export.source import draw_latents

    latents = draw_latents(model, energies, seed)
    total = median_time(
        lambda: runner(draw_latents(model, energies, seed)), repeats=repeats, warmup=warmup
    )
    net = median_time(lambda: runner(latents), repeats=repeats, warmup=0)
    return total, net


def _time_baseline(baseline, geometry, energies, seed, repeats, warmup):
    """(ms per shower or None, note) for the baseline on ``energies``."""
    if baseline is None:
        return None, "no baseline simulator was given"
    try:
        seconds = median_time(
            lambda: baseline(geometry, energies, seed),
            repeats=max(1, min(repeats, 3)),
            warmup=min(warmup, 1),
        )
    except BaselineUnavailable as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a failing baseline must not lose the model timings
        return None, f"baseline failed: {str(exc).splitlines()[0][:160]}"
    return 1e3 * seconds / len(energies), ""


class _progress:
    """A rich progress bar (or nothing) whose ``__enter__`` returns an advance callable.

    When stderr is not a terminal (a log file, CI), a rich bar would show nothing; one plain
    line per finished measurement goes to stderr instead (``timing k/N (t s)``).
    """

    def __init__(self, show: bool, total: int) -> None:
        self.show, self.total, self.bar = show, total, None

    def __enter__(self):
        if not self.show:
            return lambda: None
        if not sys.stderr.isatty():
            return self._plain()
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.__enter__()
        task = self.bar.add_task("timing", total=self.total)
        return lambda: self.bar.advance(task)

    def _plain(self):
        t0, done = time.perf_counter(), [0]

        def advance() -> None:
            done[0] += 1
            elapsed = time.perf_counter() - t0
            print(f"timing {done[0]}/{self.total} ({elapsed:.0f} s)", file=sys.stderr, flush=True)

        return advance

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False
