"""Deployment verbs: ``export`` (TorchScript/ONNX, fp32/fp16/int8) and ``bench`` (timing table)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from caloforge.cli import app

out = Console()


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
    """
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
    out.print(f"wrote {output} ({artifact.label}, {artifact.model_path.name} {size:.2f} MiB)")
    inputs = ", ".join(
        f"{s.name} (N, {', '.join(map(str, s.shape))}) {s.role}" for s in artifact.inputs
    )
    out.print(f"inputs: {inputs}; output: showers (N, {artifact.geometry.n_voxels}) MeV")
    check = artifact.check
    colour = "green" if check.passed else "bold red"
    out.print(f"[{colour}]{check.summary()}[/]", highlight=False)
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
    from caloforge.bench import bench as run_bench
    from caloforge.bench import refsim_baseline

    baseline = None
    if not no_baseline:
        detector, _, particle = (baseline_detector or "").partition(":")
        baseline = refsim_baseline(detector or None, particle or None)
    result = run_bench(
        runs,
        batch_sizes=_ints(batch_sizes, "batch sizes"),
        variants=_variants(variants),
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
    out.print(f"wrote {json_path} and {md_path}")
