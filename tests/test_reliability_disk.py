"""Every writing command on a disk that fills up: exit 2 and one sentence naming the output, no
traceback, no crash, no output under its final name, no temporary file left taking the space.

The disk is a real one where the machine allows it: a small tmpfs, mounted for the test and
filled so that only ``FREE_KB`` stay free (the kernel then fails writes with ENOSPC, as on a full
disk). Where mounting is not allowed (no root, no CAP_SYS_ADMIN) the same cases run with the
child's file-size limit (RLIMIT_FSIZE), which makes the kernel fail writes past ``FREE_KB`` with
EFBIG; the byte-exact fault injection of the writers is in tests/test_reliability_outputs.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from caloforge import workflows
from caloforge.io import write_showers
from caloforge.outputs import leftovers
from test_reliability_cli import _file_size_limit, assert_one_error, cli

#: space left on the full disk: more than the smallest header a writer puts down first, far less
#: than any output of these cases (each is at least several hundred kB)
FREE_KB = 96
#: the qvae used for generate/export: small, so that training it takes a second
TINY_QVAE = {
    "units_per_partition": 4, "hidden": 8, "batch_size": 8, "gibbs_sweeps_sample": 2,
    "gibbs_sweeps_train": 1,
}  # fmt: skip


@dataclass
class FullDisk:
    """A directory on a disk with about ``FREE_KB`` free, and how to run a command on it."""

    root: Path
    kind: str  # "tmpfs" or "fsize-limit"
    preexec: Callable[[], None] | None

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def run(self, *args: str, cwd: Path) -> tuple[int, str, str]:
        one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}  # fast under load
        return cli(*args, cwd=cwd, preexec=self.preexec, timeout=600, env=one_thread)


def _mount_tmpfs(where: Path, size_kb: int) -> bool:
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return False
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
        capture_output=True,
    )
    return proc.returncode == 0


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[FullDisk]:
    root = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    if _mount_tmpfs(root, 2048):
        try:
            fill = root / "fill"
            with open(fill, "wb") as f:  # fill all but FREE_KB (tmpfs counts 4 kB pages)
                f.write(b"\0" * ((2048 - FREE_KB) * 1024))
            yield FullDisk(root, "tmpfs", None)
        finally:
            subprocess.run(["umount", "-l", str(root)], check=False)
    else:
        yield FullDisk(root, "fsize-limit", _file_size_limit(FREE_KB * 1024))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Two small ds1-photons files and a trained tiny qvae, on a disk with room."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    files = {}
    for name in ("a", "b"):
        files[name] = write_showers(
            d / f"{name}.h5",
            rng.uniform(1e3, 1e5, 200),
            rng.exponential(10.0, (200, 368)).astype(np.float32),
            geometry="ds1-photons",
        )
    run = d / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is many times faster under load
    try:
        workflows.train("qvae", files["a"], run, config=TINY_QVAE, epochs=1, progress=False)
    finally:
        torch.set_num_threads(threads)
    return {**files, "run": run}


def _assert_clean_failure(disk: FullDisk, rc: int, err: str, output: Path, free_before: int):
    line = assert_one_error(rc, err, str(output))  # not 139 (the old segmentation fault)
    reason = "No space left" if disk.kind == "tmpfs" else "File too large"
    assert reason in line, line
    assert not output.exists(), f"{output} exists after a failed write"
    assert leftovers(output.parent) == [], leftovers(output.parent)
    with contextlib.suppress(FileNotFoundError):
        assert not any(output.parent.glob(f".{output.name}*")), list(output.parent.iterdir())
    if disk.kind == "tmpfs":  # the space is given back: nothing hidden still holds it
        assert disk.free_bytes() == free_before


CASES = {
    "simulate --hits": lambda inp, out: [
        "simulate", "-d", "ds1-photons", "-p", "photon", "-e", "ds1", "-n", "500",
        "-o", str(out.with_name("showers.h5")), "--hits", str(out),
    ],
    "train": lambda inp, out: [
        "train", "qvae", "-d", str(inp["a"]), "-o", str(out), "--epochs", "1",
        "--config", '{"units_per_partition": 4, "hidden": 8, "batch_size": 8}',
    ],
    "generate": lambda inp, out: [
        "generate", str(inp["run"]), "-o", str(out), "--energies-from", str(inp["a"]),
    ],
    "evaluate": lambda inp, out: [
        "evaluate", str(inp["a"]), "-r", str(inp["b"]), "-o", str(out), "--summary",
        "--no-classifier", "--no-distances",
    ],
    "export": lambda inp, out: ["export", str(inp["run"]), "-o", str(out)],
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_writer_on_a_full_disk_is_one_sentence_and_leaves_nothing(
    case, full_disk, inputs, tmp_path
):
    out = full_disk.root / "out" / ("result.h5" if case == "generate" else "result")
    if case == "simulate --hits":
        out = full_disk.root / "out" / "hits.h5"
    out.parent.mkdir()
    free_before = full_disk.free_bytes()
    rc, _, err = full_disk.run(*CASES[case](inputs, out), cwd=tmp_path)
    if case == "simulate --hits":  # the showers file fails first or the hits file does
        failed = err.split(":", 2)[1].strip()
        assert failed in (str(out), str(out.with_name("showers.h5"))), err
        assert not out.with_name("showers.h5").exists()
        out = Path(failed)
    _assert_clean_failure(full_disk, rc, err, out, free_before)


def test_a_full_disk_never_touches_the_previous_output(full_disk, tmp_path):
    old = full_disk.root / "a.h5"
    old.write_bytes(b"previous result")
    free_before = full_disk.free_bytes()
    rc, _, err = full_disk.run(
        "simulate", "-d", "ds2", "-n", "600", "--chunk-size", "100", "-o", str(old), cwd=tmp_path
    )
    assert_one_error(rc, err, str(old), "temporary file was removed")
    assert old.read_bytes() == b"previous result"
    assert leftovers(full_disk.root) == []
    if full_disk.kind == "tmpfs":
        assert full_disk.free_bytes() == free_before
