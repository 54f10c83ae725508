"""Reference-simulator verbs: ``simulate`` and ``detectors``."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from caloforge.cli import app

out = Console(emoji=False)


@app.command()
def simulate(
    detector: str = typer.Option(
        "ds2", "--detector", "-d", help="detector preset (see `detectors`)"
    ),
    particle: str = typer.Option(
        "electron", "--particle", "-p", help="electron, positron, photon, pion"
    ),
    n: int = typer.Option(1000, "--n", "-n", help="number of showers"),
    energies: str = typer.Option(
        "loguniform:1e3:1e6",
        "--energies",
        "-e",
        help="incident energies, MeV: loguniform:LO:HI, uniform:LO:HI, fixed:E1,E2, ds1 or a number",
    ),
    seed: int = typer.Option(0, "--seed", help="random seed; the same seed gives the same file"),
    output: Path = typer.Option(
        ..., "--output", "-o", help="HDF5 file to write (CaloChallenge layout)"
    ),
    theta: float = typer.Option(0.0, "--theta", help="incidence angle from the z axis, rad"),
    phi: float = typer.Option(0.0, "--phi", help="azimuth of the incidence direction, rad"),
    offset_x: float = typer.Option(0.0, "--offset-x", help="x of the entry point, mm"),
    offset_y: float = typer.Option(0.0, "--offset-y", help="y of the entry point, mm"),
    noise: float = typer.Option(0.0, "--noise", help="Gaussian noise per voxel, MeV"),
    chunk_size: int = typer.Option(1000, "--chunk-size", help="showers per written chunk"),
    workers: int = typer.Option(
        None,
        "--workers",
        help="simulate chunks on Dask with N parallel workers (default: serial, no Dask)",
    ),
    scheduler: str = typer.Option(
        None,
        "--scheduler",
        help="Dask scheduler: processes (default), threads, synchronous or tcp://HOST:PORT of a "
        "dask.distributed cluster",
    ),
    hits: Path = typer.Option(
        None,
        "--hits",
        help="also write every shower's energy spots as a point cloud (x, y, z mm; energy MeV) "
        "to this HDF5 file (ragged layout, docs/refsim.md); serial, no --noise",
    ),
) -> None:
    """Simulate showers with the reference simulator and write them atomically, in chunks."""
    from caloforge import validate as v
    from caloforge.outputs import claim_output

    v.showers(n)
    v.batch(chunk_size, "--chunk-size")
    v.chunks(n, chunk_size)
    v.workers(workers)
    for value, option, unit in (
        (theta, "--theta", "rad"), (phi, "--phi", "rad"), (offset_x, "--offset-x", "mm"),
        (offset_y, "--offset-y", "mm"),
    ):  # fmt: skip
        v.number(value, option, unit=unit)
    v.number(noise, "--noise", minimum=0.0, unit="MeV")
    with contextlib.ExitStack() as claims:
        claims.enter_context(claim_output(output))
        if hits is not None:
            claims.enter_context(claim_output(hits, inputs=[output], what="hits output"))
        from caloforge.refsim import simulate_to_file

        path = simulate_to_file(
            output, detector, particle, energies, n=n, seed=seed, chunk_size=chunk_size,
            theta=theta, phi=phi, offset_mm=(offset_x, offset_y), noise_mev=noise, progress=True,
            workers=workers, scheduler=scheduler, hits_path=hits,
        )  # fmt: skip
    out.print(f"wrote {n} {escape(particle)} showers in {escape(detector)} to {escape(str(path))}")
    if hits is not None:
        out.print(f"wrote their hits to {escape(str(hits))}")


@app.command()
def detectors() -> None:
    """List the reference-simulator detector presets and their materials."""
    from caloforge.refsim import detector_names, get_detector

    table = Table(title="reference-simulator detectors")
    for col in ("name", "geometry", "voxels", "layers: stack", "X0 / lambda_I", "R_M mm", "c_S"):
        table.add_column(col)
    for name in detector_names():
        d = get_detector(name)
        runs: list[list] = []  # consecutive layers of one stack: [count, stack]
        for section in d.sections:
            if runs and runs[-1][1] == section.stack:
                runs[-1][0] += section.n_layers
            else:
                runs.append([section.n_layers, section.stack])
        stacks = ", ".join(f"{count}x {stack.describe()}" for count, stack in runs)
        table.add_row(
            name, d.geo.name, str(d.geo.n_voxels), stacks,
            f"{d.total_x0:.1f} / {d.total_lambda:.2f}",
            f"{d.em_stack.moliere_radius_mm:.1f}", f"{d.em_stack.c_s:.3f}",
        )  # fmt: skip
    out.print(table)
