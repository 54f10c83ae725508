"""Data verbs: ``geometries``, ``info``, ``convert``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from caloforge.cli import app

out = Console(emoji=False)


@app.command()
def geometries() -> None:
    """List the built-in readout geometries with their voxel counts."""
    from caloforge.geometry import get_geometry

    table = Table(title="built-in geometries")
    for col in ("name", "kind", "layers", "voxels", "layout"):
        table.add_column(col)
    for name in ("ds1-photons", "ds1-pions", "ds2", "ds3", "calogan", "grid:25x25x25"):
        g = get_geometry(name)
        layout = " + ".join(dict.fromkeys("x".join(map(str, lay.shape)) for lay in g.layers))
        table.add_row(name, g.kind, str(g.n_layers), str(g.n_voxels), layout)
    out.print(table)
    out.print("Any regular grid: grid:LxXxY[:cell_mm], e.g. grid:30x30x30:5 or grid:48x25x25:30.")


@app.command()
def info(
    file: Path = typer.Argument(..., help="shower file (CaloChallenge or CaloGAN HDF5 layout)"),
    geometry: str = typer.Option(None, "--geometry", "-g", help="geometry to check against"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Summarise a shower file: N, energies, voxels, response, sparsity, matching geometry."""
    from caloforge.summary import summarize

    s = summarize(file, geometry)
    if as_json:
        out.print_json(json.dumps(s.to_dict(), default=str))
        return
    table = Table(title=escape(str(file)), show_header=False)
    rows = [
        ("layout", s.layout),
        ("showers", f"{s.n_showers}"),
        ("voxels per shower", f"{s.n_voxels}"),
        ("geometry", s.geometry or "unknown (pass --geometry)"),
        ("built-ins with this voxel count", ", ".join(s.matching_geometries) or "none"),
        ("incident energy", f"{s.e_inc_min:.4g} - {s.e_inc_max:.4g} MeV"),
        ("response E_tot/E_inc", f"{s.response_mean:.4f} +- {s.response_std:.4f} (mean +- std)"),
        ("sparsity (voxels at 0)", f"{s.sparsity_mean:.3f}"),
    ]
    for k in ("particle", "producer", "seed", "caloforge_version"):
        if k in s.attrs:
            rows.append((k, str(s.attrs[k])))
    for k, v in rows:
        table.add_row(escape(k), escape(v))
    out.print(table)


@app.command()
def convert(
    src: Path = typer.Argument(..., help="CaloGAN HDF5 file (layer_0, layer_1, layer_2, energy)"),
    output: Path = typer.Option(..., "--output", "-o", help="CaloChallenge-layout file to write"),
) -> None:
    """Convert a CaloGAN file to the CaloChallenge layout (calogan geometry, MeV)."""
    from caloforge.outputs import claim_output

    with claim_output(output, inputs=[src]):
        from caloforge.io import convert_calogan

        convert_calogan(src, output)
    out.print(f"wrote {escape(str(output))}")
