"""Evaluation verbs: ``evaluate`` (CaloChallenge metrics and an HTML report) and ``compare``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from caloforge.cli import app
from caloforge.outputs import claims

out = Console(emoji=False)


@app.command()
@claims(
    "output", kind="dir", inputs=("generated", "reference"), marker="metrics.json", what="report"
)
def evaluate(
    generated: Path = typer.Argument(..., help="generated shower file (CaloChallenge layout)"),
    reference: Path = typer.Option(..., "--reference", "-r", help="reference shower file"),
    output: Path = typer.Option(..., "--output", "-o", help="report directory to write"),
    geometry: str = typer.Option(
        None, "--geometry", "-g", help="geometry (default: the files' attribute or voxel count)"
    ),
    protocol: str = typer.Option(
        "calochallenge",
        "--protocol",
        help="calochallenge (the official classifier, FPD and KPD; a GPU-sized job) or fast "
        "(caloforge's cheaper CPU classifier and distance batches)",
    ),
    binning: str = typer.Option(
        "official",
        "--binning",
        help="official (the official histograms and separation powers) or caloforge "
        "(caloforge's data-driven ranges)",
    ),
    seed: int = typer.Option(0, "--seed", help="seed of subsampling, classifier and FPD/KPD"),
    threshold: float = typer.Option(
        None,
        "--threshold",
        help="voxel threshold in MeV (default, as official: 1 for ds1, 0.5e-3/0.033 for ds2/3)",
    ),
    classifier: list[str] = typer.Option(
        ["high", "low"],
        "--classifier",
        "-c",
        help="classifier inputs: low, low-normed, high, resnet (the official 3D ResNet; ds2/ds3, "
        "calochallenge protocol)",
    ),
    no_classifier: bool = typer.Option(False, "--no-classifier", help="skip the classifier"),
    no_plots: bool = typer.Option(False, "--no-plots", help="skip the figures"),
    no_distances: bool = typer.Option(False, "--no-distances", help="skip FPD and KPD"),
    prdc: bool = typer.Option(
        False, "--prdc", help="also compute precision, recall, density, coverage (official prdc)"
    ),
    prdc_k: int = typer.Option(5, "--prdc-k", help="nearest neighbours for --prdc"),
    strict_sizes: bool = typer.Option(
        False, "--strict-sizes", help="fail instead of subsampling when the sample sizes differ"
    ),
    summary: bool = typer.Option(
        False, "--summary", help="draw only the first screen's figures (quick); all metrics kept"
    ),
    pass_spec: str = typer.Option(
        None,
        "--pass",
        help="pass/fail thresholds, comma-separated, e.g. 'cls-high.auc<0.6,fpd<0.05'",
    ),
    pass_file: Path = typer.Option(
        None, "--pass-file", help='thresholds as JSON: ["cls-high.auc<0.6"] or {"fpd": "<0.05"}'
    ),
    cls_epochs: int = typer.Option(
        None,
        "--cls-epochs",
        help="classifier training epochs instead of the protocol's (official 50; the official "
        "script's --cls_n_epochs), recorded in metrics.json",
    ),
    seconds_per_shower: float = typer.Option(
        None,
        "--seconds-per-shower",
        help="generation time per shower of GENERATED, recorded for `caloforge compare`",
    ),
) -> None:
    """Compare GENERATED with a reference file: metrics.json and a self-contained index.html."""
    from caloforge.validate import number

    number(threshold, "--threshold", minimum=0.0, unit="MeV")
    number(seconds_per_shower, "--seconds-per-shower", positive=True, unit="s")
    number(cls_epochs, "--cls-epochs", minimum=1)
    import dataclasses

    from caloforge.evaluate.classifier import Protocol, get_protocol

    proto: str | Protocol = protocol
    if cls_epochs is not None:
        proto = dataclasses.replace(get_protocol(protocol), max_epochs=int(cls_epochs))
    from caloforge.evaluate import evaluate as run_evaluation
    from caloforge.evaluate.verdict import load_thresholds, parse_thresholds

    limits = parse_thresholds(pass_spec) if pass_spec else []
    if pass_file is not None:
        limits += load_thresholds(pass_file)

    metrics = run_evaluation(
        generated,
        reference,
        out_dir=output,
        geometry=geometry,
        protocol=proto,
        seed=seed,
        threshold=threshold,
        binning=binning,
        classifiers=() if no_classifier else tuple(classifier),
        plots=not no_plots,
        distances=not no_distances,
        prdc_k=prdc_k if prdc else None,
        on_size_mismatch="raise" if strict_sizes else "subsample",
        progress=True,
        summary=summary,
        thresholds=limits,
        seconds_per_shower=seconds_per_shower,
    )
    title = (
        f"{generated} vs {reference} ({metrics['protocol']['name']} protocol, "
        f"{metrics['binning_scheme']} binning)"
    )
    table = Table(title=escape(title))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for mode, c in metrics["classifier"].items():
        table.add_row(f"AUC ({mode})", f"{c['auc']:.4f} ± {c['auc_null_sigma']:.4f}")
        table.add_row(f"JSD ({mode})", f"{c['jsd']:.4f}")
    for key in ("fpd", "kpd"):
        if key in metrics:
            table.add_row(key.upper(), f"{metrics[key]['value']:.4g} ± {metrics[key]['error']:.2g}")
    prdc_values: dict[str, float] | None = metrics.get("prdc")
    if prdc_values is not None:
        for key in ("precision", "recall", "density", "coverage"):
            table.add_row(key, f"{prdc_values[key]:.4f}")
    sep_summary = metrics["separation_power_summary"]
    mean_s = sep_summary["all"]["mean"]
    table.add_row("separation power (mean)", "–" if mean_s is None else f"{mean_s:.4f}")
    resp = metrics["separation_power"].get("response")
    table.add_row("separation power (response)", "–" if resp is None else f"{resp:.4f}")
    out.print(table)
    for note in metrics["notes"]:
        out.print(f"note: {escape(note)}")
    verdict = metrics["verdict"]
    if verdict["checks"]:
        failed = [c for c in verdict["checks"] if c["passed"] is not True]
        detail = "; ".join(
            f"{c['metric']} = {'not computed' if c['value'] is None else format(c['value'], '.4g')}"
            f" (needs {c['op']} {c['limit']:g})"
            for c in failed
        )
        out.print(
            f"verdict: {verdict['status'].upper()}" + (f" -- {escape(detail)}" if detail else "")
        )
    out.print(
        f"wrote {escape(str(output / 'index.html'))} and {escape(str(output / 'metrics.json'))}"
    )


@app.command()
def compare(
    runs: list[Path] = typer.Argument(..., help="report directories written by evaluate"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    markdown: Path = typer.Option(None, "--markdown", help="also write the table as Markdown"),
    pareto: Path = typer.Option(
        None, "--pareto", help="draw the fidelity against time-per-shower plane to this PNG"
    ),
    metric: str = typer.Option(
        "cls-high.auc", "--metric", help="fidelity axis of the plane, e.g. cls-high.auc, fpd"
    ),
    timing: Path = typer.Option(
        None,
        "--timing",
        help='JSON of seconds per shower by run name ({"RUN": s} or a bench rows file)',
    ),
) -> None:
    """Put the headline metrics of several evaluated runs in one table and, with --pareto,
    draw the CaloChallenge fidelity against time-per-shower plane."""
    from caloforge.evaluate import compare as compare_runs
    from caloforge.evaluate.pareto import load_timings
    from caloforge.ioutil import atomic_path

    if pareto is not None and pareto.suffix.lower() != ".png":
        from caloforge.errors import ConfigError

        raise ConfigError(f"--pareto must name a .png file, got {pareto}")
    timings = load_timings(timing) if timing is not None else None
    result = compare_runs(runs, metric=metric, timings=timings, pareto_png=pareto)
    if markdown is not None:
        with atomic_path(markdown) as tmp:
            tmp.write_text(result.to_markdown() + "\n")
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    table = Table(title="evaluated runs")
    for col in result.columns:
        table.add_column(col, justify="left" if col in ("run", "geometry", "protocol") else "right")
    for row in result.rows:
        table.add_row(
            *("–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row)
        )
    out.print(table)
    for note in result.notes:
        out.print(f"note: {escape(note)}")
    if pareto is not None:
        out.print(f"wrote {escape(str(pareto))} ({len(result.pareto)} runs on the plane)")


@app.command()
def multiclass(
    generated: list[Path] = typer.Argument(..., help="two or more generated shower files"),
    reference: Path = typer.Option(..., "--reference", "-r", help="reference shower file"),
    output: Path = typer.Option(None, "--output", "-o", help="also write the result as JSON"),
    geometry: str = typer.Option(
        None, "--geometry", "-g", help="geometry (default: the files' attribute or voxel count)"
    ),
    seed: int = typer.Option(0, "--seed", help="seed of subsampling, split and training"),
    max_epochs: int = typer.Option(50, "--max-epochs", help="training epochs at most"),
) -> None:
    """One classifier over the reference and several generated samples (official high-level
    vector): confusion matrix and each sample's AUC against the reference."""
    from caloforge import validate as v

    v.integer(max_epochs, "--max-epochs", maximum=100_000)
    if output is not None:
        from caloforge.outputs import check_output

        check_output(output, inputs=[reference, *generated])
    from caloforge.evaluate import multiclass_test, resolve_geometries, stream_features
    from caloforge.ioutil import atomic_path

    geo = resolve_geometries(generated[0], reference, geometry)
    for path in generated[1:]:
        resolve_geometries(path, reference, geo)
    vectors = [
        stream_features(p, geo).features.high_level_vector() for p in (reference, *generated)
    ]
    result = multiclass_test(
        vectors[0], vectors[1:], labels=[p.name for p in generated], seed=seed,
        max_epochs=max_epochs,
    )  # fmt: skip
    table = Table(title=f"multi-class comparison, {result.n_per_class} showers per sample")
    table.add_column("true \\ predicted")
    for name in result.labels:
        table.add_column(escape(name), justify="right")
    table.add_column("AUC vs reference", justify="right")
    for name, row in zip(result.labels, result.confusion, strict=True):
        auc = result.auc_vs_reference.get(name)
        table.add_row(
            escape(name),
            *(f"{v:.3f}" for v in row),
            "–" if auc is None else f"{auc:.4f} ± {result.auc_null_sigma:.4f}",
        )
    out.print(table)
    out.print(f"accuracy {result.accuracy:.4f} (chance {1 / len(result.labels):.4f})")
    if output is not None:
        with atomic_path(output) as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2))
        out.print(f"wrote {escape(str(output))}")
