"""The ``caloforge`` command. Thin: every verb is a call into the library.

Each verb group lives in its own module below and registers itself on :data:`app`; heavy
libraries (torch, pennylane ...) are imported inside the commands so ``--help`` stays fast.
Bad input raises :class:`~caloforge.errors.CaloforgeError`; :func:`main` prints its one
sentence and exits with status 2.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

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
err = Console(stderr=True, emoji=False, highlight=False)

# Modules that add verbs to `app`; each is imported once below.
_COMMAND_MODULES = ("data", "models", "simulate", "evaluate", "export")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: MESSAGE`` as one line on stderr (never read as markup) and exit."""
    from rich.text import Text

    one_line = " ".join(message.strip().splitlines())  # keeps the message's own spacing
    err.print(Text.assemble(("error:", "bold red"), " ", one_line), soft_wrap=True)
    sys.exit(code)


def _os_error(exc: OSError) -> str:
    """One sentence for an operating-system error (full disk, permissions, read-only ...)."""
    import errno

    reason = exc.strerror or str(exc) or type(exc).__name__
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"{where}{reason}; the output was not written and its temporary file was removed"
    return f"{where}{reason}"


def main() -> None:
    """Console-script entry point.

    Exit status: 0 on success; 2 with one ``error:`` line for bad input, a bad output path or
    a failing disk; 130 (Ctrl-C) or 143 (SIGTERM) with the one line ``interrupted`` after the
    temporary outputs were removed and the workers stopped.
    """
    try:  # typer >= 0.20 vendors click
        from typer._click import exceptions as click_exc
    except ImportError:  # pragma: no cover - older typer on the real click
        # Same module under its original name; mypy sees two imports of one name.
        from click import exceptions as click_exc  # type: ignore[no-redef]

    from caloforge import signals
    from caloforge.errors import CaloforgeError, Interrupted
    from caloforge.outputs import disk_error

    with signals.handled():
        try:
            rv = app(standalone_mode=False)
        except CaloforgeError as exc:
            fail(str(exc))
        except Interrupted as exc:
            _interrupted(exc.exit_code)
        except (KeyboardInterrupt, typer.Abort):
            _interrupted(130)
        except click_exc.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(0)
        except click_exc.ClickException as exc:
            fail(
                exc.format_message().rstrip(".") + " (see `caloforge COMMAND --help`)",
                exc.exit_code,
            )
        except ModuleNotFoundError as exc:
            missing = _missing_extra(exc)
            if missing is None:
                raise  # not an optional package: a broken install, keep the traceback
            fail(missing)
        except OSError as exc:
            fail(_os_error(exc))
        except MemoryError:
            fail("out of memory; ask for fewer showers or a smaller batch size")
        except Exception as exc:
            disk = disk_error(exc)
            if disk is None:
                raise  # a bug: keep the traceback
            fail(_os_error(disk))
        sys.exit(rv if isinstance(rv, int) else 0)


def _missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The sentence naming the extra that installs the missing module, if it is optional."""
    from caloforge._optional import extra_for, missing_message

    known = extra_for(exc.name)
    if exc.name is None or known is None:
        return None
    return missing_message(exc.name.split(".")[0], *known)


def check_run_dir(run) -> None:
    """Fail fast (before torch is imported) when ``run`` is not a trained-model directory."""
    from pathlib import Path

    from caloforge.errors import CheckpointError

    p = Path(run)
    if not p.is_dir() or not (p / "model.json").is_file():
        raise CheckpointError(
            f"{p}: not a model directory (expected model.json and model.safetensors)"
        )


def _interrupted(code: int) -> NoReturn:
    err.print("interrupted", soft_wrap=True)
    sys.exit(code)


for _module in _COMMAND_MODULES:
    importlib.import_module(f"caloforge.cli.{_module}")
