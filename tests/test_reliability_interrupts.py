"""Ctrl-C and SIGTERM for every long command, as a user sends them to ``python -m caloforge``:
exit 130 / 143 and the one line ``interrupted``, no temporary file or directory left, and the
previous output (a report, a shower file) or the last complete checkpoint set untouched.

Signals are sent once the run has provably reached the state under test (its temporary output
exists, or its first checkpoint is written), found by polling, so the tests hold under load.
(`simulate` and its workers are covered in tests/test_reliability_cli.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from caloforge.io import write_showers
from caloforge.models.base import load_generator, read_meta
from caloforge.outputs import leftovers
from test_reliability_cli import POLL_LIMIT_S, digest, poll
from test_reliability_cli import _start as start_cli

SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
TINY_QVAE = (
    '{"units_per_partition": 4, "hidden": 8, "batch_size": 8, "gibbs_sweeps_sample": 2,'
    ' "gibbs_sweeps_train": 1}'
)


#: one torch thread in the child: many times faster under load for these small models
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return start_cli(args, cwd, env=ONE_THREAD)


def _interrupt(proc: subprocess.Popen, sig: int, ready, what: str) -> str:
    try:
        poll(lambda: ready() or proc.poll() is not None, what)
        assert proc.poll() is None, f"the run ended before {what}: {proc.stderr.read()}"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=POLL_LIMIT_S)
    finally:
        proc.kill()
    return err


def _hidden_temporaries(directory: Path, name: str) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(f".{name}.")]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("interrupts")
    rng = np.random.default_rng(0)
    out = {}
    for name, n in (("a", 400), ("b", 400)):
        out[name] = write_showers(
            d / f"{name}.h5",
            rng.uniform(1e3, 1e5, n),
            rng.exponential(10.0, (n, 368)).astype(np.float32),
            geometry="ds1-photons",
        )
    return out


@pytest.mark.parametrize(("sig", "code"), SIGNALS)
def test_interrupted_train_keeps_the_last_complete_checkpoint(tmp_path, files, sig, code):
    run = tmp_path / "run"
    args = ["train", "qvae", "-d", str(files["a"]), "-o", "run", "--epochs", "100000",
            "--config", TINY_QVAE]  # fmt: skip
    proc = _start(args, tmp_path)
    err = _interrupt(proc, sig, lambda: (run / "model.json").exists(), "the first checkpoint")
    assert proc.returncode == code, err
    assert err == "interrupted\n"
    assert read_meta(run)["model"] == "qvae"  # a complete set: it loads
    load_generator(run)
    assert _hidden_temporaries(tmp_path, "run") == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize(("sig", "code"), SIGNALS)
def test_interrupted_evaluate_keeps_the_previous_report(tmp_path, files, sig, code):
    report = tmp_path / "report"
    base = ["evaluate", str(files["a"]), "-r", str(files["b"]), "-o", "report", "--no-distances"]
    done = subprocess.run(
        [sys.executable, "-m", "caloforge", *base, "--no-classifier", "--no-plots"],
        cwd=tmp_path, capture_output=True, text=True, timeout=POLL_LIMIT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    before = {p.name: digest(p) for p in report.rglob("*") if p.is_file()}
    proc = _start(base, tmp_path)  # with the classifier and the figures
    err = _interrupt(
        proc, sig, lambda: bool(_hidden_temporaries(tmp_path, "report")), "the staging directory"
    )
    assert proc.returncode == code, err
    assert err == "interrupted\n"
    assert {p.name: digest(p) for p in report.rglob("*") if p.is_file()} == before
    assert _hidden_temporaries(tmp_path, "report") == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize(("sig", "code"), SIGNALS)
def test_interrupted_generate_leaves_nothing(tmp_path, files, sig, code):
    run = tmp_path / "run"
    trained = subprocess.run(
        [sys.executable, "-m", "caloforge", "train", "qvae", "-d", str(files["a"]), "-o", "run",
         "--epochs", "1", "--config", TINY_QVAE],
        cwd=tmp_path, capture_output=True, text=True, timeout=POLL_LIMIT_S,
        env=ONE_THREAD,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    proc = _start(
        ["generate", str(run), "-o", "g.h5", "--n", "2000000", "--energies", "1e4"], tmp_path
    )
    err = _interrupt(
        proc, sig, lambda: bool(_hidden_temporaries(tmp_path, "g.h5")), "the temporary file"
    )
    assert proc.returncode == code, err
    assert err == "interrupted\n"
    assert not (tmp_path / "g.h5").exists()
    assert _hidden_temporaries(tmp_path, "g.h5") == [] and leftovers(tmp_path) == []
