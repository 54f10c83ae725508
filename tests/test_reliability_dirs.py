"""Directory outputs are replaced as a whole or not at all: export artifacts (a failure or an
interrupt during a re-export keeps the previous artifact; a failed export leaves nothing that
looks complete) and run directories (claimed before any work)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from caloforge.errors import ConfigError, OutputError
from caloforge.outputs import leftovers


def _digests(directory):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from caloforge.geometry import get_geometry
    from caloforge.models import model_class

    path = tmp_path_factory.mktemp("runs") / "vae"
    model_class("vae")(get_geometry("grid:2x3x3"), None).save(path)
    return path


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_interrupted_reexport_keeps_the_previous_artifact(tmp_path, run_dir, monkeypatch, failure):
    from caloforge.export import exporter

    out = tmp_path / "artifact"
    exporter.export_model(run_dir, out, fmt="torchscript", n_check=8)
    before = _digests(out)
    assert "artifact.json" in before

    def interrupted(*args, **kwargs):
        raise failure("stopped during the check")

    monkeypatch.setattr(exporter, "compare_showers", interrupted)
    with pytest.raises(failure):
        exporter.export_model(run_dir, out, fmt="onnx", n_check=8)
    assert _digests(out) == before
    assert leftovers(tmp_path) == []


def test_failed_first_export_leaves_no_artifact(tmp_path, run_dir, monkeypatch):
    from caloforge.export import exporter

    def broken(*args, **kwargs):
        raise ValueError("tracer failure")

    monkeypatch.setattr(exporter, "_export_torchscript", broken)
    out = tmp_path / "artifact"
    with pytest.raises(ConfigError, match="could not be exported"):
        exporter.export_model(run_dir, out, fmt="torchscript", n_check=8)
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_export_into_the_model_directory_is_refused(tmp_path, run_dir):
    from caloforge.export import exporter

    before = _digests(run_dir)
    with pytest.raises(OutputError, match="also an input"):
        exporter.export_model(run_dir, run_dir, fmt="torchscript", n_check=8)
    assert _digests(run_dir) == before


HOLDER = """
import sys
from caloforge.outputs import claim_output
with claim_output(sys.argv[1], kind="dir", replace=False):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_train_on_a_busy_run_directory_fails_before_reading_data(tmp_path):
    from caloforge.workflows import train

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        # the data file does not even exist: the run directory is claimed first
        with pytest.raises(OutputError, match="being written by another caloforge run"):
            train("vae", str(tmp_path / "missing.h5"), out, epochs=1)
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0


def test_cli_copies_of_the_export_names_agree():
    from caloforge.cli import export as cli_export
    from caloforge.export import artifact

    assert set(cli_export.FORMATS) == set(artifact.MODEL_FILES)
    assert set(cli_export.PRECISIONS) == set(artifact.PRECISIONS)
    assert cli_export.ARTIFACT_FILE == artifact.ARTIFACT_FILE
