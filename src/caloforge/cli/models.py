"""Model verbs: ``models``, ``train``, ``generate``, ``describe``, ``demo``."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from caloforge.cli import app, check_run_dir

out = Console(emoji=False)


@app.command("models")
def list_models() -> None:
    """List the registered generative models."""
    from caloforge.models import available_models, model_class

    for name in available_models():
        doc = (model_class(name).__doc__ or "").strip().splitlines()[0]
        out.print(f"[bold]{name}[/]  {doc}")


@app.command()
def train(
    model: str = typer.Argument(
        ..., help="model name (see `caloforge models`), e.g. qvae, vae, gan3d, wgan, qgan"
    ),
    data: list[Path] = typer.Option(
        ..., "--data", "-d", help="training shower file(s); repeat for several parts"
    ),
    output: Path = typer.Option(..., "--output", "-o", help="run directory for checkpoints"),
    geometry: str = typer.Option(
        None, "--geometry", "-g", help="geometry name or binning XML (default: from the file)"
    ),
    val: Path = typer.Option(None, "--val", help="validation shower file"),
    epochs: int = typer.Option(
        None, "--epochs", help="number of epochs (default: the model's config)"
    ),
    config: str = typer.Option(
        None, "--config", help="JSON file or inline JSON object of model options"
    ),
    seed: int = typer.Option(0, "--seed", help="random seed"),
    resume: bool = typer.Option(False, "--resume", help="continue from the checkpoint in --output"),
    max_showers: int = typer.Option(
        None, "--max-showers", help="use only the first N training showers"
    ),
    max_minutes: float = typer.Option(
        None, "--max-minutes", help="wall-clock budget: stop after the step that passes it"
    ),
    device: str = typer.Option(
        "cpu", "--device", help="where to train: cpu, cuda, cuda:N, mps or auto (best available)"
    ),
) -> None:
    """Train a model on shower files; checkpoints (safetensors + JSON) go to --output each epoch."""
    from caloforge import validate as v

    v.integer(epochs, "--epochs", maximum=1_000_000)
    v.integer(max_showers, "--max-showers")
    from caloforge.workflows import load_config
    from caloforge.workflows import train as run_train

    m = run_train(
        model, [str(p) for p in data], output, geometry=geometry, val=val, config=load_config(config),
        epochs=epochs, seed=seed, resume=resume, max_showers=max_showers, max_minutes=max_minutes,
        device=device,
    )  # fmt: skip
    out.print(f"trained {m.model_name} ({m.n_parameters()} parameters) -> {escape(str(output))}")


@app.command()
def generate(
    run: Path = typer.Argument(..., help="trained model directory"),
    output: Path = typer.Option(..., "--output", "-o", help="shower file to write"),
    n: int = typer.Option(None, "--n", help="number of showers"),
    energies: str = typer.Option(
        None, "--energies", help="incident-energy spectrum in MeV, e.g. loguniform:1e3:1e6"
    ),
    energies_from: Path = typer.Option(
        None, "--energies-from", help="take incident energies from this shower file"
    ),
    sampler: str = typer.Option(
        None, "--sampler", help="prior sampler for the QVAE: gibbs | sa | sqa | qpu"
    ),
    sampler_options: str = typer.Option(
        None,
        "--sampler-options",
        help='options of --sampler, JSON, e.g. \'{"beta_eff": 0.8, "num_sweeps": 500}\'',
    ),
    hardware: str = typer.Option(
        None,
        "--hardware",
        help="simulated device for quantum-circuit models, JSON: "
        '\'{"depolarizing": 0.01, "amplitude_damping": 0.01, "shots": 1000}\'',
    ),
    theta: float = typer.Option(
        None,
        "--theta",
        help="polar angle of incidence, rad, for every shower (default: what --energies-from "
        "records, else none); a model conditioned on energy alone refuses theta > 0",
    ),
    phi: float = typer.Option(None, "--phi", help="azimuthal angle of incidence, rad"),
    entry_x: float = typer.Option(None, "--entry-x", help="x of the entry point, mm"),
    entry_y: float = typer.Option(None, "--entry-y", help="y of the entry point, mm"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
    batch_size: int = typer.Option(1024, "--batch-size", help="showers per model call"),
    workers: int = typer.Option(
        None,
        "--workers",
        help="generate batches on Dask with N parallel workers (default: serial, no Dask)",
    ),
    scheduler: str = typer.Option(
        None,
        "--scheduler",
        help="Dask scheduler: processes (default), threads, synchronous or tcp://HOST:PORT of a "
        "dask.distributed cluster",
    ),
    device: str = typer.Option(
        "cpu", "--device", help="where to sample (serial runs): cpu, cuda, cuda:N, mps or auto"
    ),
) -> None:
    """Generate showers with a trained model, in the CaloChallenge file layout."""
    from caloforge import validate as v
    from caloforge.outputs import claim_output

    v.showers(n)
    v.batch(batch_size, "--batch-size")
    v.workers(workers)
    v.number(theta, "--theta", minimum=0.0, maximum=math.pi, unit="rad")
    v.number(phi, "--phi", unit="rad")
    v.number(entry_x, "--entry-x", unit="mm")
    v.number(entry_y, "--entry-y", unit="mm")
    entry = None if entry_x is None and entry_y is None else (entry_x or 0.0, entry_y or 0.0)
    check_run_dir(run)
    with claim_output(output, inputs=[energies_from, run]):
        from caloforge.workflows import generate as run_generate
        from caloforge.workflows import load_config

        r = run_generate(
            run, output, n=n, energies=energies, energies_from=energies_from, sampler=sampler,
            sampler_options=load_config(sampler_options), hardware=load_config(hardware),
            seed=seed, batch_size=batch_size, workers=workers, scheduler=scheduler,
            theta=theta, phi=phi, entry_mm=entry, device=device,
        )  # fmt: skip
    out.print(f"wrote {r['n']} showers to {escape(str(output))} in {r['seconds']:.2f} s")


@app.command()
def describe(
    run: Path = typer.Argument(..., help="trained model directory"),
    prior: bool = typer.Option(
        False,
        "--prior",
        help="also measure the Boltzmann prior: couplings, KL(prior || product of marginals), "
        "Gibbs autocorrelation times and the sweeps needed (QVAE only)",
    ),
    seed: int = typer.Option(0, "--seed", help="random seed of the --prior measurement"),
) -> None:
    """Describe a trained model: architecture, options, parameters (circuits for quantum models)."""
    check_run_dir(run)
    from caloforge.errors import ConfigError
    from caloforge.models.base import load_generator

    model = load_generator(run)
    describe_prior = getattr(model, "describe_prior", None)
    if prior and (describe_prior is None or getattr(model, "prior", None) is None):
        raise ConfigError(f"model {model.model_name!r} has no Boltzmann prior to describe")
    out.print(model.describe(), highlight=False, markup=False)
    if prior and describe_prior is not None:
        out.print(describe_prior(seed=seed), highlight=False, markup=False)


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("runs/demo"), "--out", help="directory for every artifact"),
    seed: int = typer.Option(1, "--seed", help="random seed"),
    minutes: float = typer.Option(4.0, "--minutes", help="training wall time for the QVAE"),
    n_train: int = typer.Option(8000, "--n-train", help="reference showers to train on"),
) -> None:
    """The main job end to end: simulate ds2 showers, train the QVAE, generate, evaluate, report."""
    from caloforge import validate as v

    v.number(minutes, "--minutes", positive=True, maximum=10_000, unit="minutes")
    v.showers(n_train, "--n-train")
    from caloforge.outputs import claim_output

    with claim_output(out_dir, kind="dir", replace=False, what="demo directory"):
        from caloforge.workflows import demo as run_demo

        run_demo(out_dir, seed=seed, minutes=minutes, n_train=n_train)
