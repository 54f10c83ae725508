"""The one output mechanism of every writing command: check, claim, stage, commit.

Every caloforge output (a shower file, a report directory, an export artifact, a run
directory, timing tables) goes through three steps:

1. :func:`check_output` before any work: the nearest existing parent is a writable directory,
   the output is not a directory where a file is expected (or a file where a directory is),
   it is not one of the run's own inputs (same resolved path or same inode), and an existing
   directory is only replaced when it holds what the command itself writes (its ``marker``).
2. :func:`claim_output` holds an advisory lock (``fcntl.flock`` on a hidden sibling
   ``.<name>.lock``) for the whole run, so a second caloforge run writing the same path fails at
   once with one sentence instead of silently overwriting the first one's result. The lock is
   re-entrant within one process and its file is removed when released.
3. :func:`atomic_file` / :func:`atomic_dir` write into a temporary sibling (``.<name>.<random>
   .tmp``), flush it to disk (fsync) and only then rename it onto the final name (directories
   are exchanged with ``renameat2(RENAME_EXCHANGE)`` where the kernel offers it, else the old
   one is renamed away first); the previous output is removed only after the new one is in
   place. The temporary sibling is removed on every exit path: an exception, Ctrl-C or SIGTERM
   (see :mod:`caloforge.signals`), a full disk.

Every problem raises :class:`~caloforge.errors.OutputError` with one sentence. This module uses
the standard library only (and :mod:`caloforge.signals`, which does too), so the CLI can run the
checks before importing torch or h5py. Creating a lock or temporary file and recording it for
clean-up happen in one :func:`caloforge.signals.deferred` section, so an interrupt cannot fall
between the two.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import inspect
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from caloforge import signals
from caloforge.errors import OutputError

PathLike = str | os.PathLike

_HELD: dict[Path, list] = {}  # final path -> [fd, lock path, depth]
_HELD_LOCK = threading.Lock()


# --------------------------------------------------------------------------- checks
def _describe_oserror(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and not p.is_symlink():
        if p.parent == p:
            break
        p = p.parent
    return p


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _inside(child: Path, parent: Path) -> bool:
    c, p = os.path.realpath(child), os.path.realpath(parent)
    return c == p or c.startswith(p.rstrip(os.sep) + os.sep)


def check_output(
    path: PathLike,
    *,
    kind: str = "file",
    inputs: Iterable[PathLike | None] = (),
    marker: str | None = None,
    replace: bool = True,
    what: str = "output",
) -> Path:
    """Check that ``path`` can be written as a ``kind`` ("file" or "dir") output; return it.

    Args:
        path: the final output path.
        kind: ``"file"`` (an existing file is replaced) or ``"dir"`` (an existing directory is
            replaced as a whole, so it must be empty or hold ``marker``).
        inputs: the run's input files and directories; the output may not be one of them (nor,
            for a directory output, contain one).
        marker: for a directory output, the file whose presence shows an existing directory
            was written by the same command (e.g. ``artifact.json``); None: only empty or
            missing directories are replaced.
        replace: for a directory output, False when the command writes files into the
            directory (a run directory, timing tables) instead of replacing it as a whole;
            then any existing directory is accepted.
        what: how the message names the output (``"output"``, ``"report directory"`` ...).

    Raises:
        OutputError: one sentence naming the path and what is wrong.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}")
    text = os.fspath(path)
    if not text or text.endswith(os.sep) and kind == "file":
        raise OutputError(f"{what} {text!r} is not a file name")
    p = Path(text)
    if p.name in ("", ".", ".."):
        raise OutputError(f"{what} {text!r} must name a new or replaceable {kind}, not {p.name!r}")
    for item in inputs:
        if item is None:
            continue
        src = Path(item)
        if not src.exists():
            continue
        if (p.exists() and _same_file(p, src)) or (kind == "dir" and replace and _inside(src, p)):
            raise OutputError(
                f"{what} {p} is also an input of this run ({src}); writing it would destroy "
                "the input, choose another output path"
            )
    if p.is_dir():
        if kind == "file":
            raise OutputError(f"{what} {p} is an existing directory; give a file name")
        entries = [e for e in os.listdir(p) if not e.startswith(".")]
        if replace and entries and (marker is None or not (p / marker).exists()):
            hint = f" (it holds no {marker})" if marker else ""
            raise OutputError(
                f"{what} directory {p} exists and is not empty{hint}; it would be replaced as a "
                "whole, so choose a new directory or remove it"
            )
    elif p.exists() and kind == "dir":
        raise OutputError(f"{what} {p} is an existing file; give a directory name")
    parent = p.parent
    base = _nearest_existing(parent)
    if not base.is_dir():
        raise OutputError(f"cannot write {what} {p}: {base} is a file, not a directory")
    _probe_writable(base, p, what)
    return p


def _probe_writable(directory: Path, target: Path, what: str) -> None:
    """Create and remove a hidden file in ``directory``: the only reliable writability test
    (permissions, read-only mounts, /proc, running as root)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=directory)
    except OSError as exc:
        raise OutputError(
            f"cannot write {what} {target}: directory {directory} is not writable "
            f"({_describe_oserror(exc)})"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


# --------------------------------------------------------------------------- locking
def _make_parents(parent: Path) -> list[Path]:
    """Create the missing parents of an output; return those created (outermost first)."""
    missing = []
    p = parent
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    created = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot create directory {d} ({_describe_oserror(exc)})") from None
        created.append(d)
    return created


def _remove_empty(dirs: list[Path]) -> None:
    for d in reversed(dirs):
        with contextlib.suppress(OSError):
            d.rmdir()


def lock_path(path: PathLike) -> Path:
    """The hidden sibling file whose ``flock`` marks ``path`` as being written."""
    p = Path(path)
    return p.parent / f".{p.name}.lock"


def _acquire(final: Path, what: str) -> None:
    lp = lock_path(final)
    while True:
        try:
            fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(
                f"cannot write {what} {final}: cannot create its lock file "
                f"({_describe_oserror(exc)})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(
                    f"{what} {final} is being written by another caloforge run; wait for it to "
                    "finish or choose another output path"
                ) from None
            raise OutputError(f"cannot lock {what} {final} ({_describe_oserror(exc)})") from None
        # the holder before us may have removed the file after we opened it: retry on a new one
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lp))
        except FileNotFoundError:
            same = False
        if same:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            _HELD[final] = [fd, lp, 1]
            return
        os.close(fd)


def _release(final: Path) -> None:
    entry = _HELD.get(final)
    if entry is None:
        return
    entry[2] -= 1
    if entry[2] > 0:
        return
    del _HELD[final]
    fd, lp, _ = entry
    with contextlib.suppress(OSError):
        os.unlink(lp)  # while still locked: a waiting run then retries on a fresh file
    os.close(fd)


def _key(path: PathLike) -> Path:
    return Path(os.path.abspath(os.fspath(path)))


@contextlib.contextmanager
def claim_output(
    path: PathLike,
    *,
    kind: str = "file",
    inputs: Iterable[PathLike | None] = (),
    marker: str | None = None,
    replace: bool = True,
    what: str = "output",
) -> Iterator[Path]:
    """Check ``path`` (:func:`check_output`), create its missing parents and hold its lock for
    the block. Re-entrant in one process (an inner claim of the same path only re-checks).

    Parents created here are removed again if the block fails and they are still empty.
    """
    final = _key(path)
    with _HELD_LOCK:
        if final in _HELD:
            _HELD[final][2] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield Path(path)
        finally:
            with signals.deferred(), _HELD_LOCK:
                _release(final)
        return
    check_output(path, kind=kind, inputs=inputs, marker=marker, replace=replace, what=what)
    created = _make_parents(final.parent)
    if kind == "dir" and not final.exists():
        created.append(final)  # made by the block; removed again if it fails leaving it empty
    acquired = ok = False
    try:
        with signals.deferred():  # the lock file exists only while `acquired` says so
            with _HELD_LOCK:
                _acquire(final, what)
            acquired = True
        _remove_stale(final)
        yield Path(path)
        ok = True
    finally:
        if acquired:
            with signals.deferred(), _HELD_LOCK:
                _release(final)
        if not ok:
            _remove_empty(created)


def _remove_stale(final: Path) -> None:
    """Remove temporary siblings of ``final`` left by a run that was killed (SIGKILL, power
    loss): we hold the output's lock, so no live run is writing them."""
    pattern = re.compile(rf"^\.{re.escape(final.name)}\.[A-Za-z0-9_]{{8}}\.(tmp|old|probe)$")
    try:
        names = os.listdir(final.parent)
    except OSError:
        return
    for name in names:
        if pattern.match(name):
            stale = final.parent / name
            with contextlib.suppress(OSError):
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale)
                else:
                    stale.unlink()


# --------------------------------------------------------------------------- committing
def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.EROFS):
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for f in files:
            _fsync_path(Path(dirpath) / f)
        _fsync_path(Path(dirpath))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(
    path: PathLike,
    *,
    inputs: Iterable[PathLike | None] = (),
    what: str = "output",
) -> Iterator[Path]:
    """Yield a temporary sibling of file ``path`` to write; on success fsync it and rename it
    onto ``path``. Any exception (an interrupt or a full disk included) removes it instead.

    The output is claimed (:func:`claim_output`) for the block.
    """
    final = Path(path)
    with claim_output(final, kind="file", inputs=inputs, what=what):
        tmp_path: Path | None = None
        try:
            with signals.deferred():  # the file exists only once tmp_path names it
                fd, tmp = tempfile.mkstemp(
                    prefix=f".{final.name}.", suffix=".tmp", dir=final.parent
                )
                os.close(fd)
                tmp_path = Path(tmp)
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; use the usual mode
            yield tmp_path
            _fsync_path(tmp_path)
            os.replace(tmp_path, final)
            _fsync_path(final.parent)
        except BaseException as exc:
            if tmp_path is not None:
                with contextlib.suppress(OSError):
                    tmp_path.unlink()
            _raise_naming(exc, final, tmp_path or final)
            raise


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2 RENAME_EXCHANGE); False if the
    kernel or filesystem cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def commit_dir(tmp: Path, final: Path) -> None:
    """Put the finished directory ``tmp`` in place of ``final`` (which may exist)."""
    _fsync_tree(tmp)
    if not final.exists():
        os.rename(tmp, final)
    elif _exchange(tmp, final):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old output
    else:
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        os.rename(final, old / "x")
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    _fsync_path(final.parent)


@contextlib.contextmanager
def atomic_dir(
    path: PathLike,
    *,
    inputs: Iterable[PathLike | None] = (),
    marker: str | None = None,
    what: str = "output directory",
) -> Iterator[Path]:
    """Yield an empty temporary sibling directory of ``path`` to fill; on success it replaces
    ``path`` as a whole (the old directory disappears only once the new one is in place); on
    any exception it is removed and ``path`` is untouched."""
    final = Path(path)
    with claim_output(final, kind="dir", inputs=inputs, marker=marker, what=what):
        tmp: Path | None = None
        try:
            with signals.deferred():  # the directory exists only once tmp names it
                tmp = Path(
                    tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
                )
            os.chmod(tmp, 0o777 & ~_umask())
            yield tmp
            commit_dir(tmp, final)
        except BaseException as exc:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            _raise_naming(exc, final, tmp or final)
            raise


def leftovers(directory: PathLike) -> list[Path]:
    """Hidden temporary or lock files caloforge left in ``directory`` (for tests and tools)."""
    d = Path(directory)
    suffixes = (".tmp", ".lock", ".old", ".probe")
    return sorted(p for p in d.iterdir() if p.name.startswith(".") and p.name.endswith(suffixes))


def writes_dir(
    param: str,
    *,
    marker: str | None = None,
    inputs: tuple[str, ...] = (),
    what: str = "output directory",
):
    """Decorate a function that writes the directory named by its argument ``param``: the
    function writes into a temporary sibling (:func:`atomic_dir`) that replaces the directory
    only when the function returns; ``inputs`` names arguments that are input paths."""

    def decorate(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            srcs = [bound.arguments.get(name) for name in inputs]
            srcs = [s for s in srcs if isinstance(s, str | os.PathLike)]
            with atomic_dir(bound.arguments[param], inputs=srcs, marker=marker, what=what) as tmp:
                bound.arguments[param] = tmp
                return fn(*bound.args, **bound.kwargs)

        return wrapper

    return decorate


def claims(
    param: str,
    *,
    kind: str = "file",
    inputs: tuple[str, ...] = (),
    marker: str | None = None,
    replace: bool = True,
    what: str = "output",
):
    """Decorate a command whose argument ``param`` is an output path: the path is checked and
    claimed (:func:`claim_output`) before the command body runs and held until it returns;
    ``inputs`` names arguments that are input paths (or lists of them)."""

    def decorate(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            srcs: list = []
            for name in inputs:
                value = bound.arguments.get(name)
                srcs += list(value) if isinstance(value, list | tuple) else [value]
            with claim_output(
                bound.arguments[param], kind=kind, inputs=srcs, marker=marker, replace=replace,
                what=what,
            ):  # fmt: skip
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def disk_error(exc: BaseException) -> OSError | None:
    """The full-disk ``OSError`` (ENOSPC, EDQUOT, EFBIG) behind ``exc`` or its causes, or None.

    Libraries wrap it in their own exceptions (torch and HDF5 in a RuntimeError, safetensors
    in a SafetensorError), sometimes as text only; this finds it in either form.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL:
            return current
        text = str(current)
        for code, phrase in ((errno.ENOSPC, "No space left"), (errno.EFBIG, "File too large")):
            if phrase in text:
                return OSError(code, os.strerror(code))
        current = current.__cause__ or current.__context__
    return None


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _raise_naming(exc: BaseException, final: Path, tmp: Path) -> None:
    """If ``exc`` is a full disk that names no file or only the temporary one, raise it again
    as an ``OSError`` naming the output ``final`` (the temporary is gone by now)."""
    full = disk_error(exc) if isinstance(exc, Exception) else None
    if full is not None and (full.filename is None or str(tmp) in str(full.filename)):
        raise OSError(full.errno, full.strerror, str(final)) from exc
