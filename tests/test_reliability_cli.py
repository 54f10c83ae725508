"""The CLI as a user runs it (``python -m caloforge`` subprocesses): every failure is exit 2 and
one ``error:`` line, no traceback, no partial output, no leftover temporary file, no overwritten
input; interrupts exit 130 (SIGINT) or 143 (SIGTERM) with the one line ``interrupted``.

Interrupts are sent once the run has provably started writing (its temporary file exists), by
polling rather than sleeping a fixed time, so the tests hold under load.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from caloforge.io import write_showers
from caloforge.outputs import leftovers
from conftest import calogan_arrays, write_raw_h5

#: generous bound for a run to reach a state we poll for; only reached when something is broken
POLL_LIMIT_S = 120.0


def cli(*args: str, cwd: Path | None = None, preexec=None, timeout: float = 300, env=None):
    proc = subprocess.run(
        [sys.executable, "-m", "caloforge", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        preexec_fn=preexec,
        env=env,
    )
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_error(rc: int, err: str, *fragments: str) -> str:
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def poll(condition, what: str) -> None:
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > POLL_LIMIT_S:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def temp_of(directory: Path, name: str) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(f".{name}.")]


@pytest.fixture
def small_file(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    return write_showers(
        tmp_path / "v.h5",
        rng.uniform(1e3, 1e4, 8),
        rng.exponential(1.0, (8, 368)).astype(np.float32),
        geometry="ds1-photons",
    )


# --------------------------------------------------------------------------- own input
def test_convert_onto_its_own_input_is_refused(tmp_path):
    src = write_raw_h5(tmp_path / "f.h5", **calogan_arrays(5))
    before = digest(src)
    rc, out, err = cli("convert", str(src), "-o", str(src))
    assert_one_error(rc, err, "also an input")
    assert digest(src) == before
    assert leftovers(tmp_path) == []


def test_generate_onto_its_energies_file_is_refused(tmp_path, small_file):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.json").write_text("{}")  # refused before the model is read
    before = digest(small_file)
    link = tmp_path / "alias.h5"
    link.symlink_to(small_file)
    for target in (small_file, link):
        rc, _, err = cli(
            "generate", str(run), "--energies-from", str(small_file), "-o", str(target)
        )
        assert_one_error(rc, err, "also an input")
    assert digest(small_file) == before
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- output paths
def test_bad_output_paths_fail_before_any_work(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    cases = {
        str(plain / "a.h5"): "is a file, not a directory",
        str(tmp_path): "is an existing directory",
        "/proc/caloforge.h5": "not writable",
    }
    for output, fragment in cases.items():
        # 10**6 ds2 showers would take hours: failing at all shows the check ran first
        rc, out, err = cli("simulate", "-d", "ds2", "--n", "1000000", "-o", output)
        assert_one_error(rc, err, fragment)
        assert out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_evaluate_report_path_that_is_a_file(tmp_path, small_file):
    report = tmp_path / "report"
    report.write_text("not a directory")
    rc, _, err = cli("evaluate", str(small_file), "-r", str(small_file), "-o", str(report))
    assert_one_error(rc, err, "is an existing file")
    assert report.read_text() == "not a directory"


# --------------------------------------------------------------------------- bad files
def test_zero_showers_and_string_energies_are_one_sentence(tmp_path):
    empty = write_raw_h5(
        tmp_path / "empty.h5",
        incident_energies=np.zeros((0, 1), np.float32),
        showers=np.zeros((0, 368), np.float32),
    )
    rc, _, err = cli("info", str(empty))
    assert_one_error(rc, err, "holds no showers")
    strings = tmp_path / "strings.h5"
    with h5py.File(strings, "w") as f:
        f["incident_energies"] = np.array([[b"1000"], [b"2000"]])
        f["showers"] = np.ones((2, 368), np.float32)
    rc, _, err = cli("info", str(strings))
    assert_one_error(rc, err, "string values")


# --------------------------------------------------------------------------- markup
@pytest.mark.parametrize("name", ["x[/bold].h5", "data[red].h5", "e:-1:.h5"])
def test_names_are_never_read_as_markup(tmp_path, name):
    rc, _, err = cli("info", str(tmp_path / name))
    line = assert_one_error(rc, err)
    assert name in line


# --------------------------------------------------------------------------- full disk
def _file_size_limit(limit_bytes: int):
    def apply() -> None:  # in the child: writes past the limit fail like a full disk (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_full_disk_simulate_is_one_sentence_not_a_crash(tmp_path):
    old = tmp_path / "a.h5"
    old.write_bytes(b"previous result")
    rc, _, err = cli(
        "simulate", "-d", "ds2", "--n", "600", "--chunk-size", "100", "-o", str(old),
        cwd=tmp_path, preexec=_file_size_limit(200_000),
    )  # fmt: skip
    assert rc == 2, err  # not 139 (segmentation fault)
    assert_one_error(rc, err, "File too large", "temporary file was removed")
    assert old.read_bytes() == b"previous result"
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- interrupts
def _as_started_from_a_terminal() -> None:
    """Run in the child before exec: SIGINT at its default, as for a command a user starts in
    the foreground of a shell. A test run started in the background of a non-interactive
    shell (`make test &`, some CI runners) inherits SIGINT as ignored, and caloforge rightly
    keeps an inherited ignore (tests/test_reliability_signals.py), so without this the
    Ctrl-C cases would test nothing there."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: list[str], cwd: Path, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "caloforge", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        preexec_fn=_as_started_from_a_terminal,
        env=env,
    )


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_simulate_stops_with_one_line_and_leaves_nothing(tmp_path, sig, code):
    proc = _start(["simulate", "-d", "ds2", "--n", "100000", "-o", "a.h5"], tmp_path)
    try:
        poll(lambda: any(p.suffix == ".tmp" for p in temp_of(tmp_path, "a.h5")), "the temp file")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=POLL_LIMIT_S)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert err == "interrupted\n"
    assert list(tmp_path.iterdir()) == []


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_workers_end_with_their_parent(tmp_path, sig):
    """Ctrl-C terminates the Dask worker processes; so does SIGKILL of the parent (which
    cannot clean up): the workers end by themselves instead of computing on for minutes."""
    args = ["simulate", "-d", "ds2", "--n", "100000", "--workers", "2", "-o", "a.h5"]
    proc = _start(args, tmp_path)
    try:
        # the writer opens only after every worker process has started
        poll(lambda: any(p.suffix == ".tmp" for p in temp_of(tmp_path, "a.h5")), "the temp file")
        workers = [k for k in _children(proc.pid) if "spawn_main" in _cmdline(k)]
        assert len(workers) == 2
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=POLL_LIMIT_S)
        poll(lambda: not any(_running(k) for k in workers), "the workers to end")
    finally:
        proc.kill()
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and err.strip() == "interrupted", err
        assert list(tmp_path.iterdir()) == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_two_runs_on_one_output(tmp_path):
    first = _start(["simulate", "-d", "ds2", "--n", "100000", "-o", "a.h5"], tmp_path)
    try:
        poll(lambda: any(p.suffix == ".tmp" for p in temp_of(tmp_path, "a.h5")), "the temp file")
        rc, _, err = cli("simulate", "-d", "ds1-photons", "--n", "5", "-o", "a.h5", cwd=tmp_path)
        assert_one_error(rc, err, "being written by another caloforge run")
        first.send_signal(signal.SIGTERM)
        _, err1 = first.communicate(timeout=POLL_LIMIT_S)
    finally:
        first.kill()
    assert first.returncode == 143, err1
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- directories
def test_failed_evaluate_keeps_the_previous_report(tmp_path, small_file, monkeypatch):
    """In-process with an injected failure at the last step: nothing of the new report shows."""
    from caloforge.evaluate import report

    out = tmp_path / "report"
    report.evaluate(
        small_file, small_file, out_dir=out, classifiers=(), distances=False, plots=False
    )
    before = {p.name: digest(p) for p in out.rglob("*") if p.is_file()}

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "render_html", boom)
    with pytest.raises(KeyboardInterrupt):
        report.evaluate(
            small_file, small_file, out_dir=out, classifiers=(), distances=False, plots=False
        )
    assert {p.name: digest(p) for p in out.rglob("*") if p.is_file()} == before
    assert json.loads((out / "metrics.json").read_text())["geometry"] == "ds1-photons"
    assert leftovers(tmp_path) == []


def test_env_has_no_stray_caloforge_processes():
    """Guard for the tests above: nothing they started is left running."""
    me = os.getpid()
    assert all("caloforge" not in _cmdline(k) for k in _children(me) if _running(k))


HEAVY_PROBE = """
import sys
from caloforge.cli import main
sys.argv = ["caloforge", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    heavy = sorted(m for m in ("torch", "pennylane", "onnxruntime") if m in sys.modules)
    print(exc.code, ",".join(heavy) or "none")
"""


def test_bad_arguments_fail_before_heavy_imports(tmp_path, small_file):
    """Errors that the arguments alone show come before torch/pennylane are imported (that
    import is what made them take 13-17 s)."""
    fake = tmp_path / "run"
    fake.mkdir()
    (fake / "model.json").write_text("{}")
    cases = [
        ["generate", str(tmp_path / "nope"), "-o", "x.h5", "--n", "5", "--energies", "1e3"],
        ["generate", str(fake), "-o", "x.h5", "--n", "5", "--batch-size", "0", "--energies", "1"],
        ["generate", str(fake), "--energies-from", str(small_file), "-o", str(small_file)],
        ["describe", str(tmp_path / "nope")],
        ["export", str(fake), "-o", "art", "--format", "tflite"],
        ["export", str(fake), "-o", "art", "--n-check", "1000000000"],
        ["bench", str(fake), "--baseline-detector", "ds9"],
        ["train", "vae", "-d", str(small_file), "-o", "run2", "--epochs", "0"],
    ]
    for args in cases:
        proc = subprocess.run(
            [sys.executable, "-c", HEAVY_PROBE, *args],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert proc.stdout.split() == ["2", "none"], (args, proc.stdout, proc.stderr)
        assert_one_error(2, proc.stderr)
