"""The ``caloforge`` command. Thin: every verb is a call into the library.

Each verb group lives in its own module below and registers itself on :data:`app`; heavy
libraries (torch, pennylane ...) are imported inside the commands so ``--help`` stays fast.
Bad input raises :class:`~caloforge.errors.CaloforgeError`; :func:`main` prints its one
sentence and exits with status 2.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

app = typer.Typer(
    name="caloforge",
    help="Fast calorimeter shower simulation: data, reference simulator, quantum-assisted and "
    "classical generative models, CaloChallenge validation. Units: MeV, mm, rad.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)

# Modules that add verbs to `app`; each is imported once below.
_COMMAND_MODULES = ("data", "models", "simulate", "evaluate", "export")


def main() -> None:
    """Console-script entry point."""
    from caloforge.errors import CaloforgeError

    try:
        app()
    except CaloforgeError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted; no partial output was left under a final name")
        sys.exit(130)


for _module in _COMMAND_MODULES:
    importlib.import_module(f"caloforge.cli.{_module}")
