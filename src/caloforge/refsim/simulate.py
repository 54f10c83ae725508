"""Entry points: :func:`simulate` (showers in memory) and :func:`simulate_to_file` (chunked).

Reproducibility: ``simulate(..., seed=s)`` draws the incident energies (for a spectrum spec)
from ``seed`` and the showers from an independent stream derived from it, processing showers in
batches whose size depends only on the geometry, so the same call gives the same numbers.
:func:`simulate_to_file` writes chunk k as ``simulate(..., seed=chunk_seed(seed, k))``; an
interrupted run leaves no file under the final name, and running it again with the same
arguments reproduces the same file chunk by chunk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np

from caloforge.energies import parse_energies
from caloforge.errors import ConfigError
from caloforge.geometry import CylindricalLayer
from caloforge.io import Showers
from caloforge.refsim.deposit import MAX_SPOTS, Incidence, deposit
from caloforge.refsim.detectors import Detector, get_detector
from caloforge.refsim.em import em_deposits
from caloforge.refsim.hadronic import pion_deposits
from caloforge.refsim.hits import Hits, HitSink, bin_hits, keep_lit
from caloforge.refsim.version import REFSIM_VERSION

PRODUCER = "caloforge refsim"
_PARTICLES = {
    "electron": "electron", "e-": "electron", "e": "electron",
    "positron": "positron", "e+": "positron",
    "photon": "photon", "gamma": "photon",
    "pion": "pion", "pi+": "pion", "pi-": "pion", "pi": "pion", "pion+": "pion", "pion-": "pion",
}  # fmt: skip
#: voxels (showers x voxels per shower) held in memory per internal batch
_BATCH_VOXELS = 4_000_000


def canonical_particle(particle: str) -> str:
    """``electron``, ``positron``, ``photon`` or ``pion`` for any accepted spelling."""
    try:
        return _PARTICLES[str(particle).strip().lower()]
    except KeyError:
        raise ConfigError(
            f"unknown particle {particle!r}; use electron, positron, photon or pion (pi+/pi-)"
        ) from None


def chunk_seed(seed: int, chunk: int) -> int:
    """The seed of chunk ``chunk`` of a file written with ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, chunk]).generate_state(1, np.uint64)[0] >> 1)


def batch_size(detector: Detector) -> int:
    """Showers simulated at once (fixed per geometry, so results do not depend on N)."""
    return max(1, _BATCH_VOXELS // detector.geo.n_voxels)


def _readout_extent(detector: Detector) -> float:
    """Largest distance from the z axis (mm) still read out in every layer."""
    extents = []
    for layer in detector.geo.layers:
        if isinstance(layer, CylindricalLayer):
            extents.append(float(layer.r_edges[-1]))
        else:
            extents.append(min(layer.nx * layer.dx, layer.ny * layer.dy) / 2)
    return min(extents)


def _check_incidence(detector: Detector, theta, phi, offset_mm) -> Incidence:
    values = [theta, phi, *np.ravel(offset_mm)]
    if np.size(offset_mm) != 2 or not all(np.isfinite(float(v)) for v in values):
        raise ConfigError(
            "theta, phi (rad) and the offset (x, y in mm) must be finite numbers, "
            f"got theta={theta}, phi={phi}, offset={offset_mm}"
        )
    theta, phi = float(theta), float(phi)
    x0, y0 = (float(v) for v in np.ravel(offset_mm))
    if not 0.0 <= theta < math.pi / 2:
        raise ConfigError(
            f"theta={theta:g} rad is outside [0, pi/2): the particle must enter the front face"
        )
    inc = Incidence(theta, phi, x0, y0)
    extent = _readout_extent(detector)
    mid = float(detector.bounds_mm[1][-1]) / 2
    for where, (x, y) in (
        ("at the front face", (x0, y0)),
        (f"at z={mid:.0f} mm", inc.axis_at(mid)),
    ):
        outside = (
            math.hypot(x, y) >= extent
            if isinstance(detector.geo.layers[0], CylindricalLayer)
            else max(abs(x), abs(y)) >= extent
        )
        if outside:
            raise ConfigError(
                f"the shower axis (theta={theta:g} rad, phi={phi:g} rad, offset=({x0:g}, {y0:g}) "
                f"mm) is outside detector {detector.name!r} {where}: (x, y)=({x:.1f}, {y:.1f}) mm, "
                f"readout extent {extent:g} mm"
            )
    return inc


def _incident_energies(energies, n: int | None, seed: int) -> np.ndarray:
    if isinstance(energies, str):
        if n is None:
            raise ConfigError(f"give the number of showers n for the energy spectrum {energies!r}")
        return parse_energies(energies, n, seed=seed)
    values = np.asarray(energies, dtype=float).reshape(-1)
    if values.size == 0:
        raise ConfigError("no incident energies given")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        bad = values[~np.isfinite(values) | (values <= 0)][0]
        raise ConfigError(f"incident energies must be finite and > 0 MeV, got {bad:g}")
    return parse_energies(values, values.size if n is None else n, seed=seed)


@overload
def simulate(
    detector: str | Detector,
    particle: str,
    energies: str | float | Sequence[float] | np.ndarray,
    *,
    n: int | None = None,
    seed: int = 0,
    theta: float = 0.0,
    phi: float = 0.0,
    offset_mm: tuple[float, float] = (0.0, 0.0),
    noise_mev: float = 0.0,
    progress: bool = False,
    max_spots: int = MAX_SPOTS,
    return_hits: Literal[False] = False,
) -> Showers: ...


@overload
def simulate(
    detector: str | Detector,
    particle: str,
    energies: str | float | Sequence[float] | np.ndarray,
    *,
    n: int | None = None,
    seed: int = 0,
    theta: float = 0.0,
    phi: float = 0.0,
    offset_mm: tuple[float, float] = (0.0, 0.0),
    noise_mev: float = 0.0,
    progress: bool = False,
    max_spots: int = MAX_SPOTS,
    return_hits: Literal[True],
) -> tuple[Showers, Hits]: ...


def simulate(
    detector: str | Detector,
    particle: str,
    energies: str | float | Sequence[float] | np.ndarray,
    *,
    n: int | None = None,
    seed: int = 0,
    theta: float = 0.0,
    phi: float = 0.0,
    offset_mm: tuple[float, float] = (0.0, 0.0),
    noise_mev: float = 0.0,
    progress: bool = False,
    max_spots: int = MAX_SPOTS,
    return_hits: bool = False,
) -> Showers | tuple[Showers, Hits]:
    """Simulate showers of ``particle`` in a detector preset.

    Args:
        detector: preset name (see :func:`detector_names`) or a :class:`Detector`.
        particle: electron, positron, photon or pion (pi+/pi-).
        energies: incident energies in MeV, shape (N,), or a spectrum spec such as
            ``"loguniform:1e3:1e6"``, ``"ds1"``, ``"fixed:1e4"`` (then ``n`` is required).
        n: number of showers (default: the length of ``energies``).
        seed: the same seed gives the same showers.
        theta, phi: direction of the incident particle, rad (theta from the z axis).
        offset_mm: (x, y) where the particle hits the front face, mm.
        noise_mev: Gaussian electronic noise per voxel, MeV (added before the threshold).
        progress: show a progress bar.
        max_spots: cap on spots per shower and layer on the spot path (see deposit).
        return_hits: also return the spots as a point cloud (:class:`~caloforge.refsim.hits.Hits`,
            positions in mm, energies in MeV). Every spot is then drawn one by one (slower;
            uncapped where the voxel path would use the exact multinomial binning), the voxel
            showers are the binning of the hits, and hits in voxels removed by the threshold
            are dropped. Not with ``noise_mev`` (noise has no position).

    Returns:
        :class:`~caloforge.io.Showers`: incident energies (N,) MeV and showers (N, V) float32 MeV
        (visible energy divided by the file normalisation) in the preset's geometry; with
        ``return_hits``, the pair (showers, hits).
    """
    det = get_detector(detector)
    kind = canonical_particle(particle)
    if n is not None and (not isinstance(n, int | np.integer) or n <= 0):
        raise ConfigError(f"the number of showers n must be a positive integer, got {n!r}")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not (np.isfinite(noise_mev) and noise_mev >= 0):
        raise ConfigError(f"noise_mev must be a finite number >= 0 MeV, got {noise_mev!r}")
    if return_hits and noise_mev > 0:
        raise ConfigError("return_hits cannot be combined with noise_mev: noise has no position")
    incidence = _check_incidence(det, theta, phi, offset_mm)
    e_inc = _incident_energies(energies, n, int(seed))
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1,)))

    geo = det.geo
    mid = 0.5 * (det.bounds_mm[0] + det.bounds_mm[1])
    out = np.empty((len(e_inc), geo.n_voxels), dtype=np.float32)
    step = batch_size(det)
    starts = range(0, len(e_inc), step)
    hit_blocks: list[Hits] = []
    exact = isinstance(geo.layers[0], CylindricalLayer) and incidence.on_axis
    cap = 2**62 if (return_hits and exact) else max_spots
    bar = simulation_progress(progress, len(e_inc), f"simulating {kind} in {det.name}")
    with bar:
        task = bar.add_task("showers", total=len(e_inc)) if progress else None
        for start in starts:
            e = e_inc[start : start + step]
            if kind == "pion":
                deposits = pion_deposits(det, e, incidence, rng)
            else:
                deposits = em_deposits(det, e, kind, incidence, rng)
            sink = HitSink(len(e)) if return_hits else None
            voxels = deposit(
                geo, deposits, mid, incidence, rng,
                max_spots=cap, sink=sink, spot_shape=det.tune.spot_shape,
            )  # fmt: skip
            if sink is not None:
                hits = sink.hits()
                voxels = bin_hits(geo, hits)
            if noise_mev > 0:
                voxels += rng.normal(0.0, noise_mev, voxels.shape)
            voxels[voxels < max(det.threshold_mev, 0.0)] = 0.0
            out[start : start + len(e)] = voxels
            if sink is not None:
                hit_blocks.append(keep_lit(geo, hits, voxels))
            if task is not None:
                bar.advance(task, len(e))
    attrs = {
        "geometry": geo.name,
        "detector": det.name,
        "particle": kind,
        "producer": PRODUCER,
        "seed": int(seed),
        "theta": incidence.theta,
        "phi": incidence.phi,
        "offset_x_mm": incidence.x0,
        "offset_y_mm": incidence.y0,
        "noise_mev": float(noise_mev),
        "threshold_mev": float(det.threshold_mev),
        "refsim_version": REFSIM_VERSION,
    }
    showers = Showers(e_inc, out, attrs)
    if return_hits:
        hits = Hits.concatenate(hit_blocks)
        hits.attrs = dict(attrs)
        return showers, hits
    return showers


@dataclass(frozen=True)
class SimulationPlan:
    """A chunked simulation job: what :func:`simulate_to_file` runs and writes, chunk by chunk.

    Attributes:
        detector, particle: the checked detector and canonical particle name.
        total: number of showers N.
        attrs: the output file's attributes.
        chunks: per chunk, the keyword arguments of :func:`simulate` (energies: the spectrum
            spec or the chunk's slice of the energy array in MeV; n; seed = chunk_seed(seed, k);
            incidence and noise). Running them in any order, anywhere, gives the same showers.
    """

    detector: Detector
    particle: str
    total: int
    attrs: dict
    chunks: tuple[dict, ...]


def plan_simulation(
    detector: str | Detector,
    particle: str,
    energies: str | float | Sequence[float] | np.ndarray,
    *,
    n: int | None = None,
    seed: int = 0,
    chunk_size: int = 1000,
    theta: float = 0.0,
    phi: float = 0.0,
    offset_mm: tuple[float, float] = (0.0, 0.0),
    noise_mev: float = 0.0,
) -> SimulationPlan:
    """Check the arguments of :func:`simulate_to_file` and split the job into chunks.

    Chunk k holds showers k*chunk_size ... and is ``simulate(..., seed=chunk_seed(seed, k))``
    (for an energy array, its slice; for a spec, energies drawn from the chunk seed).
    """
    det = get_detector(detector)
    kind = canonical_particle(particle)
    if not isinstance(chunk_size, int | np.integer) or chunk_size <= 0:
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    _check_incidence(det, theta, phi, offset_mm)
    if isinstance(energies, str):
        if n is None:
            raise ConfigError(f"give the number of showers n for the energy spectrum {energies!r}")
        if not isinstance(n, int | np.integer) or n <= 0:
            raise ConfigError(f"the number of showers n must be a positive integer, got {n!r}")
        parse_energies(energies, 1, seed=0)  # fail early on a bad spec
        spectrum, total, all_e = energies, int(n), None
    else:
        spectrum = None
        all_e = _incident_energies(energies, n, int(seed))
        total = len(all_e)
    attrs = {
        "geometry": det.geo.name,
        "detector": det.name,
        "particle": kind,
        "producer": PRODUCER,
        "seed": int(seed),
        "chunk_size": int(chunk_size),
        "energies": spectrum if spectrum is not None else "array",
        "theta": float(theta),
        "phi": float(phi),
        "offset_x_mm": float(offset_mm[0]),
        "offset_y_mm": float(offset_mm[1]),
        "noise_mev": float(noise_mev),
        "threshold_mev": float(det.threshold_mev),
        "refsim_version": REFSIM_VERSION,
    }
    chunks = []
    for k, start in enumerate(range(0, total, chunk_size)):
        size = min(chunk_size, total - start)
        chunks.append(
            {
                "energies": spectrum if all_e is None else all_e[start : start + size],
                "n": size,
                "seed": chunk_seed(int(seed), k),
                "theta": theta,
                "phi": phi,
                "offset_mm": tuple(offset_mm),
                "noise_mev": noise_mev,
            }
        )
    return SimulationPlan(det, kind, total, attrs, tuple(chunks))


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, *args, **kwargs) -> None:
        return None

    def advance(self, *args, **kwargs) -> None:
        return None


def simulation_progress(enabled: bool, total: int, label: str):
    if not enabled:
        return _NoProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=False,
    )
