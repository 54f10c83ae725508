"""The one output mechanism (caloforge.outputs): path checks, the advisory lock, atomic files and
directories, and the shower writer on a failing disk (fault injection at a chosen byte)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from caloforge import outputs
from caloforge.errors import OutputError, ShowerFileError
from caloforge.io import ShowerWriter, _GuardedFile, read_showers, write_showers
from caloforge.outputs import (
    atomic_dir,
    atomic_file,
    check_output,
    claim_output,
    leftovers,
    lock_path,
)


def _showers(n: int = 20, v: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(1e3, 1e4, n), rng.exponential(1.0, (n, v)).astype(np.float32)


# --------------------------------------------------------------------------- path checks
def test_parent_that_is_a_file_is_one_sentence(tmp_path):
    f = tmp_path / "plain.txt"
    f.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        check_output(f / "out.h5")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        check_output(f / "deeper" / "out.h5")


def test_existing_directory_where_a_file_is_expected(tmp_path):
    with pytest.raises(OutputError, match="is an existing directory"):
        check_output(tmp_path)


def test_existing_file_where_a_directory_is_expected(tmp_path):
    f = tmp_path / "report"
    f.write_text("x")
    with pytest.raises(OutputError, match="is an existing file"):
        check_output(f, kind="dir")


def test_non_empty_directory_without_marker_is_not_replaced(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "thesis.tex").write_text("precious")
    with pytest.raises(OutputError, match="not empty"):
        check_output(d, kind="dir", marker="metrics.json")
    (d / "metrics.json").write_text("{}")
    assert check_output(d, kind="dir", marker="metrics.json") == d
    (d / "metrics.json").unlink()
    # a directory written into (a run directory) is accepted whatever it holds
    assert check_output(d, kind="dir", replace=False) == d


def test_unwritable_places(tmp_path):
    """/proc refuses new files even to root; a read-only directory refuses them to others."""
    with pytest.raises(OutputError, match="not writable"):
        check_output("/proc/caloforge-test.h5")
    if os.geteuid() != 0:  # root ignores permission bits; the /proc case above covers it
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(OutputError, match="not writable"):
                check_output(ro / "x.h5")
        finally:
            ro.chmod(0o700)


def test_output_that_is_an_input_is_refused(tmp_path):
    src = tmp_path / "in.h5"
    src.write_bytes(b"data")
    link = tmp_path / "link.h5"
    link.symlink_to(src)
    hard = tmp_path / "hard.h5"
    os.link(src, hard)
    for out in (src, tmp_path / "." / "in.h5", link, hard):
        with pytest.raises(OutputError, match="also an input"):
            check_output(out, inputs=[src])
    # a directory output may not contain an input either
    with pytest.raises(OutputError, match="also an input"):
        check_output(tmp_path, kind="dir", inputs=[src], marker="in.h5")
    assert src.read_bytes() == b"data"


# --------------------------------------------------------------------------- atomic commits
def test_atomic_file_failure_keeps_old_content_and_leaves_nothing(tmp_path):
    final = tmp_path / "out.txt"
    final.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert final.read_text() == "old"
    assert leftovers(tmp_path) == []
    with atomic_file(final) as tmp:
        tmp.write_text("new")
    assert final.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert final.stat().st_mode & 0o777 == 0o666 & ~umask
    assert leftovers(tmp_path) == []


def test_atomic_file_removes_created_parents_on_failure(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic_file(tmp_path / "a" / "b" / "out.txt") as tmp:
        tmp.write_text("x")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exchange", [True, False])
def test_atomic_dir_swaps_as_a_whole(tmp_path, monkeypatch, exchange):
    if not exchange:  # the fallback when renameat2(RENAME_EXCHANGE) is not available
        monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    final = tmp_path / "report"
    with atomic_dir(final, marker="metrics.json") as tmp:
        (tmp / "metrics.json").write_text("1")
        (tmp / "old-only.png").write_text("1")
    # an interrupted second run leaves the first one exactly as it was
    with pytest.raises(KeyboardInterrupt), atomic_dir(final, marker="metrics.json") as tmp:
        (tmp / "metrics.json").write_text("2")
        raise KeyboardInterrupt
    assert sorted(p.name for p in final.iterdir()) == ["metrics.json", "old-only.png"]
    assert (final / "metrics.json").read_text() == "1"
    # a complete second run replaces it as a whole: no mix of old and new files
    with atomic_dir(final, marker="metrics.json") as tmp:
        (tmp / "metrics.json").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["metrics.json"]
    assert (final / "metrics.json").read_text() == "2"
    assert leftovers(tmp_path) == []


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    final = tmp_path / "a.h5"
    (tmp_path / ".a.h5.k1ll3d00.tmp").write_bytes(b"x" * 1000)
    (tmp_path / ".a.h5.k1ll3d01.old").mkdir()
    other = tmp_path / ".b.h5.k1ll3d00.tmp"
    other.write_bytes(b"y")
    with atomic_file(final) as tmp:
        tmp.write_text("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.h5.k1ll3d00.tmp", "a.h5"]


# --------------------------------------------------------------------------- the lock
HOLDER = """
import sys
from caloforge.outputs import claim_output
with claim_output(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_second_writer_of_one_path_gets_one_sentence(tmp_path):
    final = tmp_path / "shared.h5"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(final)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match="being written by another caloforge run"):
            with claim_output(final):
                pass
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0
    assert not lock_path(final).exists()
    with claim_output(final):  # free again
        pass


def test_claim_is_reentrant_in_one_process(tmp_path):
    final = tmp_path / "x.h5"
    with claim_output(final), atomic_file(final) as tmp:
        tmp.write_text("1")
    assert final.read_text() == "1"
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- a failing disk
def _fail_after(monkeypatch, limit: int, err: int = errno.ENOSPC) -> None:
    """Make the shower writer's file fail like a full disk once ``limit`` bytes are written."""
    real = _GuardedFile.write

    def write(self, data):
        written = getattr(self, "_bytes", 0)
        n = len(memoryview(data))
        if self.error is None and written + n > limit:
            self.error = OSError(err, os.strerror(err))
            return n
        self._bytes = written + n
        return real(self, data)

    monkeypatch.setattr(_GuardedFile, "write", write)


@pytest.mark.parametrize("limit", [0, 3000, 20_000, 60_000])
def test_full_disk_at_any_byte_leaves_old_file_and_no_temporary(tmp_path, monkeypatch, limit):
    e, s = _showers(200, 100)
    final = tmp_path / "out.h5"
    write_showers(final, e[:5], s[:5])
    before = final.read_bytes()
    _fail_after(monkeypatch, limit)
    with pytest.raises(OSError) as info:
        with ShowerWriter(final, 100) as w:
            for k in range(0, 200, 20):
                w.append(e[k : k + 20], s[k : k + 20])
    assert info.value.errno == errno.ENOSPC
    assert str(final) in str(info.value)
    assert final.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_close_failure_never_masks_the_block_error(tmp_path, monkeypatch):
    e, s = _showers()

    def broken_close(self):
        raise RuntimeError("Can't decrement id ref count (file write failed)")

    real_close = h5py.File.close
    monkeypatch.setattr(h5py.File, "close", broken_close)
    try:
        with pytest.raises(ValueError, match="the block's own error"):
            with ShowerWriter(tmp_path / "a.h5", 12) as w:
                w.append(e, s)
                raise ValueError("the block's own error")
        with pytest.raises(ShowerFileError, match="could not finish writing"):
            with ShowerWriter(tmp_path / "b.h5", 12) as w:
                w.append(e, s)
    finally:
        monkeypatch.setattr(h5py.File, "close", real_close)
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "b.h5").exists()
    assert leftovers(tmp_path) == []


def test_writer_round_trip_through_the_guarded_file(tmp_path):
    e, s = _showers(50, 30)
    write_showers(tmp_path / "ok.h5", e, s)
    back = read_showers(tmp_path / "ok.h5")
    np.testing.assert_array_equal(back.showers, s)
    np.testing.assert_allclose(back.incident_energies, e, rtol=1e-6)
    assert leftovers(tmp_path) == []
