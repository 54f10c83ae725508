"""Optional dependencies: import one where it is used, or say which extra installs it.

The heavy packages are optional extras of caloforge (see ``pyproject.toml``)::

    quantum   pennylane               the quantum-circuit models (qgan, distribution-qgan)
    export    onnx, onnxruntime       ONNX/TorchScript export, quantization, the ONNX timing
    cluster   dask, distributed       --workers/--scheduler: simulation and generation on Dask
    plots     matplotlib, mplhep      the plots of the evaluation report and of diagnostics
    qpu       dwave-system            the D-Wave QPU sampler

The annealer stack (dimod, dwave-samplers, dwave-graphs) stays a core dependency: the default
QVAE (a Pegasus-topology Boltzmann prior) needs it to be built at all.

    >>> from caloforge._optional import require
    >>> np = require("numpy", extra="core")  # the module, or MissingExtraError naming the extra
"""

from __future__ import annotations

import importlib
from types import ModuleType

from caloforge.errors import MissingExtraError

#: top-level package -> (extra that installs it, what needs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "pennylane": ("quantum", "the quantum-circuit models"),
    "onnx": ("export", "model export"),
    "onnxruntime": ("export", "ONNX export and inference"),
    "dask": ("cluster", "parallel runs (--workers/--scheduler)"),
    "distributed": ("cluster", "a dask.distributed cluster"),
    "matplotlib": ("plots", "plots"),
    "mplhep": ("plots", "plots"),
}


def missing_message(module: str, extra: str, purpose: str) -> str:
    """The one sentence for a missing optional ``module``."""
    return (
        f"{module} is not installed (used for {purpose}); install the {extra!r} extra: "
        f"pip install 'caloforge[{extra}]'"
    )


def extra_for(module: str | None) -> tuple[str, str] | None:
    """(extra, purpose) for a module of an optional package, or None for any other module."""
    if not module:
        return None
    return EXTRAS.get(module.split(".")[0])


def require(module: str, *, extra: str | None = None, purpose: str | None = None) -> ModuleType:
    """Import ``module``; if its package is not installed, raise :class:`MissingExtraError`
    whose one sentence names the extra to install.

    A package that is installed but fails to import for another reason (a broken install)
    raises its own ImportError unchanged.
    """
    known = extra_for(module)
    extra = extra or (known[0] if known else "all")
    purpose = purpose or (known[1] if known else module)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if exc.name is None or exc.name.split(".")[0] != top:
            raise  # the package is there; one of its own dependencies is missing
        raise MissingExtraError(missing_message(top, extra, purpose)) from None
