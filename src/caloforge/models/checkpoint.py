"""Checkpoint files, written as one set.

A run directory holds ``model.json`` (model name, config, geometry, training state, format
version), ``model.safetensors`` (the weights) and, while training, ``optimizer.safetensors``
(optimizer moments and other tensors needed to resume). :func:`commit_set` writes the files of
one epoch into a temporary sibling directory and then swaps it with the run directory (an
atomic exchange where the kernel offers one, otherwise two renames), so the files on disk are
always all from the same epoch: an interrupt leaves the previous set, never a mix of two. Other
files a user put into the run directory are carried over (hard links) into the new set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from caloforge.errors import CheckpointError
from caloforge.outputs import disk_error

WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
OPTIMIZER_FILE = "optimizer.safetensors"
#: the files that make up one checkpoint set; a new set replaces all of them
SET_FILES = (WEIGHTS_FILE, META_FILE, OPTIMIZER_FILE)
#: version of the model.json layout this code writes; 1 is the layout without a "format" field
FORMAT_VERSION = 2

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = fn(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_sets(directory: Path) -> None:
    """Remove temporary sets beside ``directory`` left by processes that no longer run.

    A previous set moved aside by the two-rename fallback (``...-old``) is moved back when the
    interrupt came before the new set took its place.
    """
    for p in sorted(directory.parent.glob(f".{directory.name}.ckpt-*")):
        parts = p.name[len(f".{directory.name}.ckpt-") :].split("-")
        if not (parts and parts[0].isdigit()) or _pid_alive(int(parts[0])):
            continue
        if p.name.endswith("-old") and not directory.exists():
            os.rename(p, directory)
        else:
            shutil.rmtree(p, ignore_errors=True)


def _link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _carry_over(old: Path, new: Path) -> None:
    """Hard-link (or copy) the entries of ``old`` that are not checkpoint files into ``new``."""
    for entry in old.iterdir():
        if entry.name in SET_FILES or (new / entry.name).exists():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, new / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, new / entry.name)


def commit_set(directory: str | os.PathLike, writers: Mapping[str, Callable[[Path], None]]) -> Path:
    """Write a checkpoint set into ``directory`` atomically as a whole.

    Args:
        directory: the run directory (created if missing).
        writers: file name (one of :data:`SET_FILES`) -> function writing that file at the
            path it is given. Set files not named here are removed by the commit.

    Returns:
        ``directory`` as a Path.
    """
    final = Path(directory)
    if final.is_symlink():  # swap the directory it points to, not the link
        final = final.resolve()
    if final.exists() and not final.is_dir():
        raise CheckpointError(f"{final}: exists and is not a directory; cannot write a model there")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(
            f"{final.parent}: cannot create the directory ({exc.strerror})"
        ) from None
    remove_stale_sets(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.ckpt-{os.getpid()}-", dir=final.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        for name, write in writers.items():
            if name not in SET_FILES:
                raise ValueError(f"{name} is not a checkpoint file")
            try:
                write(tmp / name)
            except Exception as exc:  # a full disk, maybe wrapped: name the run's file
                full = disk_error(exc)
                if full is None:
                    raise
                raise OSError(full.errno, full.strerror, str(final / name)) from exc
        if not final.exists():
            os.rename(tmp, final)
            return final
        _carry_over(final, tmp)
        if not _exchange(tmp, final):
            old = tmp.with_name(tmp.name + "-old")
            os.rename(final, old)
            os.rename(tmp, final)
            tmp = old
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``model.json`` of a checkpoint directory, checked for the keys every model writes."""
    path = Path(directory) / META_FILE
    if not Path(directory).is_dir():
        raise CheckpointError(
            f"{directory}: not a model directory (expected {META_FILE} and {WEIGHTS_FILE})"
        )
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: missing; is {directory} a trained model directory?"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt model description ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: not a model description (expected a JSON object)")
    missing = {"model", "config", "geometry"} - set(meta)
    if missing:
        raise CheckpointError(f"{path}: missing field(s) {', '.join(sorted(missing))}")
    version = meta.get("format", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: unknown format {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format {version} was written by a newer caloforge "
            f"({meta.get('caloforge_version', '?')}); this one reads up to {FORMAT_VERSION}"
        )
    if not isinstance(meta["config"], dict):
        raise CheckpointError(f"{path}: 'config' must be a JSON object of option: value")
    return meta
