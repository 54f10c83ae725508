"""Shower files: the CaloChallenge HDF5 layout (read, write, stream) and the CaloGAN layout.

The CaloChallenge layout, which every caloforge stage reads and writes:

* ``incident_energies``: float64, shape (N, 1), MeV (as in the official CaloChallenge files);
* ``showers``: float32, shape (N, V), voxel energies in MeV in the geometry's flat order;
* HDF5 attributes (ignored by the official tools): ``geometry``, ``particle``, ``producer``,
  ``caloforge_version``, ``seed`` and whatever else the producer adds.

The CaloGAN layout (``layer_0`` (N, 3, 96), ``layer_1`` (N, 12, 12), ``layer_2`` (N, 12, 6) in
MeV, ``energy`` (N, 1) in GeV, ``overflow`` (N, 3)) is read into the flat ``calogan`` geometry.

Every problem with a file raises :class:`~caloforge.errors.ShowerFileError` with one sentence
naming the file, the key and what was expected. Writes go to a temporary file that is renamed
onto the final name only when complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from caloforge import __version__, signals
from caloforge.errors import ShowerFileError
from caloforge.geometry import Geometry, resolve_geometry
from caloforge.outputs import atomic_file
from caloforge.validate import MAX_ENERGY_MEV

PathLike = str | os.PathLike
ENERGY_KEY = "incident_energies"
SHOWER_KEY = "showers"
CALOGAN_LAYERS = ("layer_0", "layer_1", "layer_2")
#: default memory budget of one streamed chunk, bytes
CHUNK_BYTES = 128 * 2**20


@dataclass
class Showers:
    """A block of showers held in memory.

    Attributes:
        incident_energies: shape (N,), MeV.
        showers: shape (N, V), voxel energies in MeV.
        attrs: file-level metadata (geometry name, particle, producer, seed ...).
        extras: other per-shower arrays with first dimension N (e.g. CaloGAN ``overflow``).
    """

    incident_energies: np.ndarray
    showers: np.ndarray
    attrs: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.incident_energies = np.asarray(self.incident_energies).reshape(-1)
        self.showers = np.asarray(self.showers)
        if self.showers.ndim != 2:
            raise ShowerFileError(f"showers must have shape (N, V), got {self.showers.shape}")
        if len(self.incident_energies) != len(self.showers):
            raise ShowerFileError(
                f"{len(self.incident_energies)} incident energies but {len(self.showers)} showers"
            )

    def __len__(self) -> int:
        return len(self.showers)

    @property
    def n_voxels(self) -> int:
        return self.showers.shape[1]

    def __getitem__(self, index) -> Showers:
        """Select showers by slice, index array or mask; metadata is kept."""
        return Showers(
            self.incident_energies[index],
            self.showers[index],
            dict(self.attrs),
            {k: v[index] for k, v in self.extras.items()},
        )


@dataclass(frozen=True)
class FileInfo:
    """What :func:`inspect_file` learns from a file's structure without reading the showers."""

    path: Path
    layout: str  # "calochallenge" or "calogan"
    n_showers: int
    n_voxels: int
    attrs: dict


# --------------------------------------------------------------------------- validation
def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise ShowerFileError(f"{path}: no such file")
    if path.is_dir():
        raise ShowerFileError(f"{path}: is a directory, expected an HDF5 shower file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        msg = str(exc).lower()
        if "truncated" in msg or "eof" in msg:
            raise ShowerFileError(
                f"{path}: the HDF5 file is truncated (incomplete download?)"
            ) from None
        raise ShowerFileError(f"{path}: not an HDF5 file (could not open it: {exc})") from None


def _attrs(f: h5py.File) -> dict:
    out = {}
    for k, v in f.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        out[k] = v
    return out


def _dataset(f: h5py.File, path: Path, key: str) -> h5py.Dataset:
    if key not in f:
        present = ", ".join(sorted(f.keys())) or "nothing"
        raise ShowerFileError(f"{path}: missing key {key!r} (the file holds {present})")
    ds = f[key]
    if not isinstance(ds, h5py.Dataset):
        raise ShowerFileError(f"{path}: {key!r} is a group, expected a dataset")
    return ds


def _structure(f: h5py.File, path: Path) -> FileInfo:
    if SHOWER_KEY not in f and all(k in f for k in CALOGAN_LAYERS):
        return _calogan_structure(f, path)
    e = _dataset(f, path, ENERGY_KEY)
    s = _dataset(f, path, SHOWER_KEY)
    if e.ndim not in (1, 2) or (e.ndim == 2 and e.shape[1] != 1):
        raise ShowerFileError(f"{path}: {ENERGY_KEY!r} has shape {e.shape}, expected (N, 1)")
    if s.ndim != 2:
        raise ShowerFileError(f"{path}: {SHOWER_KEY!r} has shape {s.shape}, expected (N, V)")
    for key, ds in ((ENERGY_KEY, e), (SHOWER_KEY, s)):
        if ds.dtype.kind not in "fiu":
            raise ShowerFileError(
                f"{path}: {key!r} holds {_dtype_name(ds)} values, expected numbers (float32, MeV)"
            )
    if e.shape[0] != s.shape[0]:
        raise ShowerFileError(
            f"{path}: {ENERGY_KEY!r} has {e.shape[0]} entries but {SHOWER_KEY!r} has "
            f"{s.shape[0]} showers; they must match"
        )
    return FileInfo(path, "calochallenge", int(s.shape[0]), int(s.shape[1]), _attrs(f))


def _dtype_name(ds: h5py.Dataset) -> str:
    kind = ds.dtype.kind
    return {"S": "string", "U": "string", "O": "string", "b": "boolean", "c": "complex"}.get(
        kind, f"{ds.dtype} (non-numeric)"
    )


def _calogan_structure(f: h5py.File, path: Path) -> FileInfo:
    layers = [_dataset(f, path, k) for k in CALOGAN_LAYERS]
    e = _dataset(f, path, "energy")
    for key, ds in (*zip(CALOGAN_LAYERS, layers, strict=True), ("energy", e)):
        if ds.dtype.kind not in "fiu":
            raise ShowerFileError(
                f"{path}: {key!r} holds {_dtype_name(ds)} values, expected numbers"
            )
    n = e.shape[0]
    expected = ((3, 96), (12, 12), (12, 6))
    for key, ds, shape in zip(CALOGAN_LAYERS, layers, expected, strict=True):
        if ds.shape[1:] != shape:
            raise ShowerFileError(
                f"{path}: {key!r} has shape {ds.shape}, expected (N, {shape[0]}, {shape[1]})"
            )
        if ds.shape[0] != n:
            raise ShowerFileError(f"{path}: {key!r} has {ds.shape[0]} showers but 'energy' has {n}")
    return FileInfo(path, "calogan", int(n), 504, _attrs(f))


def check_values(incident_energies: np.ndarray, showers: np.ndarray, where: str) -> None:
    """Raise :class:`ShowerFileError` on NaN/Inf, non-positive incident or negative voxel energies.

    ``where`` names the source in the message, e.g. ``"gen.h5 rows 0-999"``.
    """
    if not np.all(np.isfinite(incident_energies)):
        raise ShowerFileError(f"{where}: {ENERGY_KEY!r} contains NaN or Inf")
    if np.any(incident_energies <= 0):
        raise ShowerFileError(
            f"{where}: {ENERGY_KEY!r} must be > 0 MeV, found {incident_energies.min():g}"
        )
    if np.any(incident_energies > MAX_ENERGY_MEV):
        raise ShowerFileError(
            f"{where}: {ENERGY_KEY!r} must be <= {MAX_ENERGY_MEV:g} MeV, found "
            f"{incident_energies.max():g}"
        )
    if not np.all(np.isfinite(showers)):
        raise ShowerFileError(f"{where}: {SHOWER_KEY!r} contains NaN or Inf")
    if np.any(showers < 0):
        raise ShowerFileError(
            f"{where}: {SHOWER_KEY!r} has negative voxel energies (min {showers.min():g} MeV)"
        )


def inspect_file(path: PathLike, geometry: str | Geometry | None = None) -> FileInfo:
    """Check a shower file's structure (keys, shapes, N, voxel count) without reading showers."""
    path = Path(path)
    with _open(path) as f:
        info = _structure(f, path)
    if geometry is not None:
        geo = resolve_geometry(geometry)
        if info.n_voxels != geo.n_voxels:
            raise ShowerFileError(
                f"{path}: {SHOWER_KEY!r} has {info.n_voxels} voxels per shower but geometry "
                f"{geo.name!r} expects {geo.n_voxels}"
            )
    return info


# --------------------------------------------------------------------------- reading
def _read_block(
    f: h5py.File, info: FileInfo, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, dict]:
    if info.layout == "calogan":
        parts = [f[k][start:stop].reshape(stop - start, -1) for k in CALOGAN_LAYERS]
        showers = np.concatenate(parts, axis=1)
        energies = np.asarray(f["energy"][start:stop], dtype=np.float64).reshape(-1) * 1000.0
        extras = {"overflow": f["overflow"][start:stop]} if "overflow" in f else {}
        return energies, showers, extras
    e = f[ENERGY_KEY][start:stop].reshape(-1)
    return e, f[SHOWER_KEY][start:stop], {}


def iter_showers(
    paths: PathLike | Sequence[PathLike],
    *,
    geometry: str | Geometry | None = None,
    chunk_size: int | None = None,
    validate: bool = True,
    dtype: np.dtype | type = np.float32,
) -> Iterator[Showers]:
    """Stream showers from one or several files (read as one dataset) in chunks.

    Args:
        paths: one path or a list (e.g. the parts of dataset 3), read in order.
        geometry: if given, every file's voxel count must match it.
        chunk_size: showers per chunk; by default as many as fit in 128 MB.
        validate: check every chunk for NaN/Inf and negative energies.
        dtype: dtype of the yielded showers.

    Yields:
        :class:`Showers` blocks of at most ``chunk_size`` showers; memory use stays about one
        chunk whatever the file size.
    """
    paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not paths:
        raise ShowerFileError("no shower file given")
    infos = [inspect_file(p, geometry) for p in paths]
    if len({i.n_voxels for i in infos}) > 1:
        counts = ", ".join(f"{i.path.name}: {i.n_voxels}" for i in infos)
        raise ShowerFileError(
            f"files to read as one dataset have different voxel counts ({counts})"
        )
    for info in infos:
        rows = chunk_size or max(1, CHUNK_BYTES // (4 * max(info.n_voxels, 1)))
        with _open(info.path) as f:
            for start in range(0, info.n_showers, rows):
                stop = min(start + rows, info.n_showers)
                try:
                    energies, showers, extras = _read_block(f, info, start, stop)
                except OSError as exc:
                    raise ShowerFileError(
                        f"{info.path}: could not read showers {start}-{stop - 1} ({exc}); "
                        "the file is truncated or corrupt"
                    ) from None
                if validate:
                    check_values(energies, showers, f"{info.path} showers {start}-{stop - 1}")
                yield Showers(
                    energies.astype(np.float64),
                    showers.astype(dtype, copy=False),
                    info.attrs,
                    extras,
                )


def read_showers(
    paths: PathLike | Sequence[PathLike],
    *,
    geometry: str | Geometry | None = None,
    max_showers: int | None = None,
    validate: bool = True,
    dtype: np.dtype | type = np.float32,
) -> Showers:
    """Read whole files (or their first ``max_showers`` showers) into memory as one block."""
    if max_showers is not None and (isinstance(max_showers, bool) or int(max_showers) < 1):
        raise ShowerFileError(f"max_showers must be a positive integer, got {max_showers!r}")
    blocks, n = [], 0
    for block in iter_showers(paths, geometry=geometry, validate=validate, dtype=dtype):
        if max_showers is not None and n + len(block) > max_showers:
            block = block[: max_showers - n]
        blocks.append(block)
        n += len(block)
        if max_showers is not None and n >= max_showers:
            break
    if not blocks or n == 0:
        raise ShowerFileError(f"{paths}: the file holds no showers")
    extras = {k: np.concatenate([b.extras[k] for b in blocks]) for k in blocks[0].extras}
    return Showers(
        np.concatenate([b.incident_energies for b in blocks]),
        np.concatenate([b.showers for b in blocks]),
        dict(blocks[0].attrs),
        extras,
    )


# --------------------------------------------------------------------------- writing
def _clean_attrs(attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        if v is None:
            continue
        out[k] = v if isinstance(v, int | float | str | bool | np.generic) else str(v)
    return out


class AtomicH5:
    """An HDF5 file written under a temporary sibling, renamed into place only on success.

    The one mechanism behind every HDF5 output (:class:`ShowerWriter`, the hits writer): the
    file is claimed (:func:`caloforge.outputs.atomic_file`), HDF5 writes through a
    :class:`_GuardedFile`, and the temporary file is removed on every failure path (an
    exception, an interrupt, a write or close that fails on a full disk). The first failed
    write is raised as one ``OSError`` naming ``path``::

        with AtomicH5("out.h5") as f:
            f.create_dataset(...)
    """

    def __init__(self, path: PathLike, *, inputs: Sequence[PathLike | None] = ()) -> None:
        self.path = Path(path)
        self.inputs = tuple(inputs)
        self._ctx: AbstractContextManager[Path] | None = None
        self._file: h5py.File | None = None
        self._raw: _GuardedFile | None = None

    def __enter__(self) -> h5py.File:
        self._ctx = atomic_file(self.path, inputs=self.inputs)
        tmp = self._ctx.__enter__()
        try:
            self._raw = _GuardedFile(tmp)
            self._file = h5py.File(self._raw, "w")
        except BaseException as exc:
            self.close(exc)
            raise
        return self._file

    def raise_write_error(self) -> None:
        """Raise the first failed write of the file (full disk ...) as one OSError."""
        if self._raw is not None and self._raw.error is not None:
            e = self._raw.error
            raise OSError(e.errno, e.strerror or str(e), str(self.path)) from None

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)

    def close(self, exc: BaseException | None, *, refuse: Exception | None = None) -> None:
        """Close the HDF5 file, then rename it into place or remove it.

        It is removed when ``exc`` (the block's exception) is set, when closing or a write
        failed, or when ``refuse`` (a reason not to publish, checked after the disk's own
        errors) is given. A failure other than ``exc`` is raised; ``exc`` itself is left to
        propagate by the caller, never masked by a failing close.
        """
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        file, self._file = self._file, None
        failure: BaseException | None = exc
        try:
            if file is not None:
                file.close()  # writes after a failed one were dropped, so this cannot fail late
        except Exception as close_exc:  # noqa: BLE001 - HDF5 raises RuntimeError or OSError
            if failure is None:
                failure = ShowerFileError(
                    f"{self.path}: could not finish writing the file ({_first_line(close_exc)})"
                )
        finally:
            raw, self._raw = self._raw, None
            if raw is not None:
                raw.close()
        disk_error = raw.error if raw is not None else None
        if disk_error is not None and (failure is None or isinstance(failure, Exception)):
            # the disk's error, not HDF5's consequence of it (e.g. "filter returned failure")
            if not (isinstance(failure, OSError) and failure.errno == disk_error.errno):
                e = disk_error
                failure = OSError(e.errno, e.strerror or str(e), str(self.path))
        if failure is None:
            failure = refuse
        if failure is None:
            ctx.__exit__(None, None, None)  # fsync + rename; on failure it removes the file
            return
        try:
            ctx.__exit__(type(failure), failure, failure.__traceback__)
        finally:
            if failure is not exc:
                raise failure


class ShowerWriter:
    """Append showers chunk by chunk to a CaloChallenge-layout file, atomically.

    Use as a context manager; the file appears under its final name only when the block exits
    without an exception (:class:`AtomicH5`)::

        with ShowerWriter("ref.h5", n_voxels=6480, attrs={"geometry": "ds2"}) as w:
            for energies, showers in chunks:
                w.append(energies, showers)
    """

    def __init__(
        self,
        path: PathLike,
        n_voxels: int,
        *,
        attrs: dict | None = None,
        dtype: np.dtype | type = np.float32,
        compression_level: int = 4,
        validate: bool = True,
        inputs: Sequence[PathLike | None] = (),
    ) -> None:
        self.path = Path(path)
        self.n_voxels = int(n_voxels)
        self.attrs = {"caloforge_version": __version__, **(attrs or {})}
        self.dtype = np.dtype(dtype)
        self.compression_level = compression_level
        self.validate = validate
        self.n_written = 0
        self.inputs = tuple(inputs)
        self._h5: AtomicH5 | None = None
        self._file: h5py.File | None = None

    def __enter__(self) -> ShowerWriter:
        h5 = self._h5 = AtomicH5(self.path, inputs=self.inputs)
        self._file = f = h5.__enter__()
        try:
            rows = max(1, min(1024, 2**20 // max(self.n_voxels, 1)))
            gz = {"compression": "gzip", "compression_opts": self.compression_level}
            f.create_dataset(
                ENERGY_KEY, (0, 1), maxshape=(None, 1), dtype=np.float64, chunks=(4096, 1), **gz
            )
            f.create_dataset(
                SHOWER_KEY, (0, self.n_voxels), maxshape=(None, self.n_voxels),
                dtype=self.dtype, chunks=(rows, self.n_voxels), shuffle=True, **gz,
            )  # fmt: skip
            for k, v in _clean_attrs(self.attrs).items():
                f.attrs[k] = v
            h5.raise_write_error()
        except BaseException as exc:  # e.g. a full disk already: remove the temporary file
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def append(self, incident_energies: np.ndarray, showers: np.ndarray) -> None:
        """Append (N,) or (N, 1) incident energies (MeV) and (N, V) showers (MeV)."""
        if self._file is None or self._h5 is None:
            raise RuntimeError("ShowerWriter.append called outside its `with` block")
        signals.check()
        e = np.asarray(incident_energies, dtype=np.float64).reshape(-1)
        s = np.asarray(showers)
        if s.ndim != 2 or s.shape[1] != self.n_voxels:
            raise ShowerFileError(
                f"{self.path}: showers to write have shape {s.shape}, expected (N, {self.n_voxels})"
            )
        if len(e) != len(s):
            raise ShowerFileError(f"{self.path}: {len(e)} incident energies for {len(s)} showers")
        if self.validate:
            check_values(e, s, f"{self.path} (writing)")
        n0, n1 = self.n_written, self.n_written + len(s)
        for key, arr in ((ENERGY_KEY, e[:, None]), (SHOWER_KEY, s)):
            ds = self._file[key]
            ds.resize(n1, axis=0)
            ds[n0:n1] = arr.astype(ds.dtype, copy=False)
        self._h5.raise_write_error()
        self.n_written = n1

    def __exit__(self, exc_type, exc, tb) -> None:
        """Publish the file, or remove it on an exception, a failing disk or no showers."""
        h5, self._h5 = self._h5, None
        self._file = None
        if h5 is None:
            return
        empty = ShowerFileError(f"{self.path}: refusing to write a file with no showers")
        h5.close(exc, refuse=empty if self.n_written == 0 else None)


class _GuardedFile:
    """The binary file HDF5 writes through (h5py's ``fileobj`` driver).

    The first failing write (full disk, file-size limit) is recorded in ``error`` and every
    later write is dropped, so that HDF5 can still close the file cleanly; the writer then
    raises the error and removes the file. (HDF5 writing straight to a full disk leaves its
    library in a state that crashes the interpreter at exit.)
    """

    def __init__(self, path: Path) -> None:
        self._f = open(path, "w+b", buffering=0)  # noqa: SIM115 - closed by close()
        self.error: OSError | None = None

    # HDF5 calls these from C: an interrupt raised inside one would become an HDF5 error or be
    # dropped, so each runs shielded (the signal is delivered again right after; signals.py)

    def write(self, data) -> int:
        with signals.shielded():
            if self.error is None and not self._f.closed:
                try:
                    return self._f.write(data)
                except OSError as exc:
                    self.error = exc
            return len(memoryview(data))

    def truncate(self, size: int | None = None) -> int:
        with signals.shielded():
            if self.error is None and not self._f.closed:
                try:
                    return self._f.truncate(size)
                except OSError as exc:
                    self.error = exc
            return 0 if size is None else size

    # after close() (HDF5 may still flush an object it failed to close), reads see an empty
    # file and writes are dropped: the file is being removed anyway

    def read(self, size: int = -1) -> bytes:
        with signals.shielded():
            return b"" if self._f.closed else self._f.read(size)

    def readinto(self, buffer) -> int:
        with signals.shielded():
            return 0 if self._f.closed else self._f.readinto(buffer)

    def seek(self, offset: int, whence: int = 0) -> int:
        with signals.shielded():
            return offset if self._f.closed else self._f.seek(offset, whence)

    def tell(self) -> int:
        with signals.shielded():
            return 0 if self._f.closed else self._f.tell()

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self._f.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def write_showers(
    path: PathLike,
    incident_energies: np.ndarray,
    showers: np.ndarray,
    *,
    geometry: str | Geometry | None = None,
    attrs: dict | None = None,
    dtype: np.dtype | type = np.float32,
    compression_level: int = 4,
) -> Path:
    """Write showers in the CaloChallenge layout, atomically, and return the path.

    Args:
        incident_energies: (N,) or (N, 1), MeV.
        showers: (N, V), MeV; V must match ``geometry`` when one is given.
        attrs: metadata stored as HDF5 attributes (``particle``, ``producer``, ``seed`` ...).
    """
    showers = np.asarray(showers)
    attrs = dict(attrs or {})
    if geometry is not None:
        geo = resolve_geometry(geometry)
        if showers.ndim != 2 or showers.shape[1] != geo.n_voxels:
            raise ShowerFileError(
                f"{path}: showers to write have shape {showers.shape}, geometry {geo.name!r} "
                f"expects (N, {geo.n_voxels})"
            )
        attrs.setdefault("geometry", geo.name)
    n_voxels = showers.shape[1] if showers.ndim == 2 else -1
    if n_voxels < 0:
        raise ShowerFileError(
            f"{path}: showers to write have shape {showers.shape}, expected (N, V)"
        )
    with ShowerWriter(
        path, n_voxels, attrs=attrs, dtype=dtype, compression_level=compression_level
    ) as w:
        w.append(incident_energies, showers)
    return Path(path)


def convert_calogan(src: PathLike, dst: PathLike, *, chunk_size: int = 10_000) -> Path:
    """Convert a CaloGAN file to the CaloChallenge layout of the ``calogan`` geometry (MeV)."""
    info = inspect_file(src)
    if info.layout != "calogan":
        raise ShowerFileError(
            f"{src}: not a CaloGAN file (expected keys {', '.join(CALOGAN_LAYERS)}, energy)"
        )
    attrs = {**info.attrs, "geometry": "calogan", "producer": "caloforge convert (CaloGAN)"}
    with ShowerWriter(dst, 504, attrs=attrs, inputs=[src]) as w:
        for block in iter_showers(src, chunk_size=chunk_size):
            w.append(block.incident_energies, block.showers)
    return Path(dst)
