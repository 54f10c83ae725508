"""Optional extras: a missing heavy dependency is one sentence naming the extra, exit 2.

The packages are installed here, so a missing one is simulated the way Python itself sees it:
``sys.modules[name] = None`` makes ``import name`` raise ModuleNotFoundError.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from caloforge._optional import EXTRAS, require
from caloforge.errors import CaloforgeError, MissingExtraError


def _forget(monkeypatch, *names: str) -> None:
    """Drop ``names`` and their submodules from the import cache for this test (re-imported on
    the next import, then restored)."""
    for name in list(sys.modules):
        if any(name == n or name.startswith(n + ".") for n in names):
            monkeypatch.delitem(sys.modules, name)


def _hide(monkeypatch, *names: str) -> None:
    """Make the packages ``names`` unimportable for this test, as if not installed."""
    _forget(monkeypatch, *names)
    for n in names:
        monkeypatch.setitem(sys.modules, n, None)


@pytest.mark.parametrize(("module", "extra"), [(m, e) for m, (e, _) in EXTRAS.items()])
def test_require_names_the_extra(monkeypatch, module, extra):
    _hide(monkeypatch, module)
    with pytest.raises(MissingExtraError) as info:
        require(module)
    text = str(info.value)
    assert isinstance(info.value, CaloforgeError)
    assert f"{module} is not installed" in text
    assert f"pip install 'caloforge[{extra}]'" in text
    assert "\n" not in text


def test_require_returns_the_module():
    assert require("json") is importlib.import_module("json")


def test_a_broken_dependency_of_an_installed_package_is_not_hidden(monkeypatch, tmp_path):
    # a package that is there but imports a missing module: its own error, not an extra
    (tmp_path / "caloforge_fake_pkg.py").write_text("import caloforge_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="caloforge_absent_dependency"):
        require("caloforge_fake_pkg", extra="quantum")


@pytest.mark.parametrize(
    ("module", "hidden", "extra"),
    [
        ("caloforge.quantum.circuits", "pennylane", "quantum"),
        ("caloforge.export.onnx_export", "onnx", "export"),
        ("caloforge.export.quantize", "onnx", "export"),
    ],
)
def test_modules_that_need_an_extra_name_it(monkeypatch, module, hidden, extra):
    _forget(monkeypatch, "caloforge.quantum", "caloforge.export")
    _hide(monkeypatch, hidden)
    with pytest.raises(MissingExtraError, match=rf"caloforge\[{extra}\]"):
        importlib.import_module(module)


def test_parallel_runs_without_dask_name_the_cluster_extra(monkeypatch):
    from caloforge.parallel import dask_runner

    _hide(monkeypatch, "dask")
    with (
        pytest.raises(MissingExtraError, match=r"caloforge\[cluster\]"),
        dask_runner("threads", 1),
    ):
        pass


def test_core_imports_need_no_extra():
    """The CLI, the QVAE and the generation path load without any extra installed (a fresh
    interpreter: re-importing caloforge in this one would duplicate its exception classes)."""
    hidden = ["pennylane", "onnx", "onnxruntime", "dask", "distributed", "matplotlib", "mplhep"]
    code = (
        "import sys\n"
        f"for name in {hidden!r}: sys.modules[name] = None\n"
        "import caloforge.cli, caloforge.models.qvae, caloforge.generation, caloforge.evaluate\n"
        "from caloforge.models.base import model_class\n"
        "model_class('qvae')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


def test_cli_says_which_extra_to_install(monkeypatch, capsys, tmp_path):
    """A QGAN without PennyLane: one line naming the extra, exit 2, no traceback."""
    from caloforge.cli import main
    from caloforge.models import base

    # as in a fresh process: the QGAN module not yet imported (other test files import it)
    for name in ("qgan", "qgan-dist"):
        monkeypatch.delitem(base.MODELS.entries, name, raising=False)
    _forget(monkeypatch, "caloforge.models.qgan", "caloforge.quantum")
    _hide(monkeypatch, "pennylane")
    data = tmp_path / "d.h5"
    monkeypatch.setattr(
        sys, "argv", ["caloforge", "train", "qgan", "--data", str(data), "-o", str(tmp_path / "r")]
    )
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "pip install 'caloforge[quantum]'" in err
    assert "Traceback" not in err
