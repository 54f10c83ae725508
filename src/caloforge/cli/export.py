"""Deployment verbs: ``export`` (TorchScript/ONNX, fp32/fp16/int8) and ``bench`` (timing table)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from caloforge.cli import app, check_run_dir

out = Console(emoji=False)
# copies of caloforge.export.artifact's names, so that bad options fail before torch is imported
# (tests/test_reliability_dirs.py checks they agree)
FORMATS = ("onnx", "torchscript")
PRECISIONS = ("fp32", "fp16", "int8")
ARTIFACT_FILE = "artifact.json"


@app.command()
def export(
    run: Path = typer.Argument(..., help="trained model directory (model.json + weights)"),
    output: Path = typer.Option(..., "--output", "-o", help="artifact directory to write"),
    fmt: str = typer.Option("onnx", "--format", "-f", help="onnx or torchscript"),
    precision: str = typer.Option("fp32", "--precision", "-p", help="fp32, fp16 or int8"),
    calibration: Path = typer.Option(
        None, "--calibration", help="shower file: int8 becomes static, calibrated on its energies"
    ),
    n_check: int = typer.Option(64, "--n-check", help="showers compared with the original"),
    tolerance: float = typer.Option(
        None, "--tolerance", help="replaces every checked error fraction (default per precision)"
    ),
    seed: int = typer.Option(0, "--seed", help="seed of the check and calibration inputs"),
) -> None:
    """Export a model's generator as a standalone artifact and check it against the original.

    Exits with status 1 when the export is outside tolerance (the artifact is kept to inspect).
    The artifact directory is written beside OUTPUT and swapped in only when complete.
    """
    from caloforge import validate as v
    from caloforge.errors import ConfigError
    from caloforge.outputs import claim_output

    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    v.integer(n_check, "--n-check", maximum=100_000, unit="showers")
    v.number(tolerance, "--tolerance", minimum=0.0)
    check_run_dir(run)
    if calibration is not None:
        from caloforge.io import inspect_file

        inspect_file(calibration)  # a missing or broken file fails before torch is imported
    with claim_output(
        output, kind="dir", inputs=[run, calibration], marker=ARTIFACT_FILE,
        what="artifact directory",
    ):  # fmt: skip
        from caloforge.export import export_model

        artifact = export_model(
            run,
            output,
            fmt=fmt,
            precision=precision,
            calibration=calibration,
            n_check=n_check,
            tolerance=tolerance,
            seed=seed,
        )
    size = artifact.file_size / 2**20
    out.print(
        f"wrote {escape(str(output))} ({artifact.label}, {artifact.model_path.name} {size:.2f} MiB)"
    )
    inputs = ", ".join(
        f"{s.name} (N, {', '.join(map(str, s.shape))}) {s.role}" for s in artifact.inputs
    )
    out.print(f"inputs: {inputs}; output: showers (N, {artifact.geometry.n_voxels}) MeV")
    check = artifact.check
    if check is None:  # export_model always records one; a missing check is a failure
        out.print("[bold red]the export recorded no check against the original model[/]")
        raise typer.Exit(1)
    colour = "green" if check.passed else "bold red"
    out.print(f"[{colour}]{escape(check.summary())}[/]", highlight=False)
    if not check.passed:
        raise typer.Exit(1)


def _ints(text: str, what: str) -> list[int]:
    from caloforge.errors import ConfigError

    try:
        values = [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"cannot read {what} {text!r}; give integers like 1,100,10000") from None
    if not values:
        raise ConfigError(f"no {what} given")
    return values


def _variants(text: str) -> list[tuple[str, str]]:
    from caloforge.errors import ConfigError

    pairs = []
    for item in text.split(","):
        runtime, _, precision = item.strip().partition(":")
        if runtime not in ("torch", "onnx") or precision not in ("fp32", "fp16", "int8"):
            raise ConfigError(
                f"cannot read variant {item!r}; use runtime:precision with runtime torch or onnx "
                "and precision fp32, fp16 or int8, e.g. torch:fp32,onnx:int8"
            )
        pairs.append((runtime, precision))
    return pairs


@app.command()
def bench(
    runs: list[Path] = typer.Argument(..., help="one or more trained model directories"),
    output: Path = typer.Option(
        Path("results"), "--output", "-o", help="directory for timing.json and timing.md"
    ),
    batch_sizes: str = typer.Option("1,100,10000", "--batch-sizes", help="comma-separated"),
    variants: str = typer.Option(
        "torch:fp32,onnx:fp32,onnx:int8,onnx:fp16", "--variants", help="runtime:precision list"
    ),
    threads: int = typer.Option(None, "--threads", help="intra-op threads (torch and ORT)"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda"),
    repeats: int = typer.Option(5, "--repeats", help="timed runs per measurement (median)"),
    warmup: int = typer.Option(1, "--warmup", help="untimed runs before timing"),
    energies: str = typer.Option(
        None, "--energies", help="incident-energy spectrum, e.g. loguniform:1e3:1e6 (MeV)"
    ),
    baseline_detector: str = typer.Option(
        None,
        "--baseline-detector",
        help="refsim preset[:particle] for the baseline (default from the geometry)",
    ),
    baseline_showers: int = typer.Option(20, "--baseline-showers", help="showers refsim times"),
    no_baseline: bool = typer.Option(False, "--no-baseline", help="do not time refsim"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Time per shower for each model, precision and batch size, with refsim as the baseline."""
    from caloforge import validate as v
    from caloforge.errors import ConfigError
    from caloforge.outputs import claim_output

    sizes = [v.batch(b, "--batch-sizes") for b in _ints(batch_sizes, "batch sizes")]
    pairs = _variants(variants)
    v.workers(threads, "--threads")
    v.integer(repeats, "--repeats", maximum=10_000)
    v.integer(warmup, "--warmup", minimum=0, maximum=10_000)
    v.integer(baseline_showers, "--baseline-showers", maximum=100_000, unit="showers")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; use cpu or cuda")
    for run in runs:
        check_run_dir(run)
    detector, _, particle = (baseline_detector or "").partition(":")
    if not no_baseline and detector:
        from caloforge.refsim import canonical_particle, detector_names

        if detector not in detector_names():
            raise ConfigError(
                f"unknown refsim detector {detector!r} for --baseline-detector; use one of "
                f"{', '.join(detector_names())} (optionally :particle)"
            )
        if particle:
            canonical_particle(particle)
    with claim_output(output, kind="dir", replace=False, inputs=runs, what="output directory"):
        _run_bench(
            runs, output, sizes, pairs, threads, device, repeats, warmup, energies,
            None if no_baseline else (detector or None, particle or None), baseline_showers,
            seed,
        )  # fmt: skip


def _run_bench(
    runs, output, sizes, pairs, threads, device, repeats, warmup, energies, baseline_spec,
    baseline_showers, seed,
) -> None:  # fmt: skip
    from caloforge.bench import bench as run_bench
    from caloforge.bench import refsim_baseline

    baseline = None if baseline_spec is None else refsim_baseline(*baseline_spec)
    result = run_bench(
        runs,
        batch_sizes=sizes,
        variants=pairs,
        device=device,
        threads=threads,
        repeats=repeats,
        warmup=warmup,
        seed=seed,
        energies=energies,
        baseline=baseline,
        baseline_showers=baseline_showers,
        progress=True,
    )
    from rich.markup import escape

    out.print(result.rich_table())
    notes = {f"{r.model} {r.precision} {r.runtime}": r.note for r in result.rows if r.note}
    for what, note in notes.items():
        out.print(f"[yellow]{escape(what)}:[/] {escape(note)}")
    json_path, md_path = result.write(output)
    out.print(f"wrote {escape(str(json_path))} and {escape(str(md_path))}")
