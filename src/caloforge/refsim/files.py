"""Writing simulations to files: :func:`simulate_to_file` (serial, with hits, or on Dask).

The showers come from :mod:`caloforge.refsim.simulate` (the physics and the chunk plan); this
module only writes them. Chunk k of a plan is ``simulate(..., seed=chunk_seed(seed, k))`` in
every path, so the serial file, the file written with hits and the file written on Dask
(:func:`write_simulation`, chunks run by :func:`caloforge.parallel.dask_runner`) are the same.
An interrupted run leaves no file under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import numpy as np

from caloforge.errors import ConfigError
from caloforge.io import ShowerWriter
from caloforge.parallel import DEFAULT_SCHEDULER, check_scheduler, dask_runner
from caloforge.refsim.detectors import Detector
from caloforge.refsim.hits import HitsWriter
from caloforge.refsim.simulate import (
    SimulationPlan,
    plan_simulation,
    simulate,
    simulation_progress,
)

PathLike = str | os.PathLike


def simulate_to_file(
    path: str | os.PathLike,
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
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
    hits_path: str | os.PathLike | None = None,
) -> Path:
    """Simulate showers chunk by chunk into a CaloChallenge-layout file, atomically.

    The chunks are those of :func:`plan_simulation`. With ``workers`` or ``scheduler``
    (``threads``, ``processes``, or a ``tcp://host:port`` dask.distributed address) they run in
    parallel on Dask (:func:`write_simulation`) and the file is the same. It
    appears under ``path`` only when complete; re-running with the same arguments rebuilds it
    identically. With ``hits_path``, the energy spots of every shower are also written there as
    a point cloud (:mod:`caloforge.refsim.hits` layout; serial only, and the showers are then
    the binning of those hits). Returns ``path``.
    """
    plan = plan_simulation(
        detector, particle, energies, n=n, seed=seed, chunk_size=chunk_size, theta=theta,
        phi=phi, offset_mm=offset_mm, noise_mev=noise_mev,
    )  # fmt: skip
    if hits_path is not None:
        if workers is not None or scheduler is not None:
            raise ConfigError("hits are written serially: drop workers/scheduler to write hits")
        if noise_mev > 0:
            raise ConfigError("hits cannot be written with noise: noise has no position")
        if Path(hits_path).resolve() == Path(path).resolve():
            raise ConfigError(f"the hits file must differ from the shower file {path}")
        return _write_with_hits(path, hits_path, plan, progress)
    if workers is not None or scheduler is not None:
        return write_simulation(
            path, plan, workers=workers, scheduler=scheduler or DEFAULT_SCHEDULER,
            progress=progress,
        )  # fmt: skip
    det, kind = plan.detector, plan.particle
    bar = simulation_progress(
        progress, plan.total, f"simulating {kind} in {det.name} -> {Path(path).name}"
    )
    with bar, ShowerWriter(path, det.geo.n_voxels, attrs=plan.attrs) as writer:
        task = bar.add_task("showers", total=plan.total) if progress else None
        for chunk in plan.chunks:
            block = simulate(det, kind, **chunk)
            writer.append(block.incident_energies, block.showers)
            if task is not None:
                bar.advance(task, chunk["n"])
    return Path(path)


def _write_with_hits(path, hits_path, plan: SimulationPlan, progress: bool) -> Path:
    det, kind = plan.detector, plan.particle
    bar = simulation_progress(
        progress, plan.total, f"simulating {kind} in {det.name} -> {Path(path).name}"
    )
    with (
        bar,
        ShowerWriter(path, det.geo.n_voxels, attrs=plan.attrs) as writer,
        HitsWriter(hits_path, attrs=plan.attrs) as hit_writer,
    ):
        task = bar.add_task("showers", total=plan.total) if progress else None
        for chunk in plan.chunks:
            block, hits = simulate(det, kind, **chunk, return_hits=True)
            writer.append(block.incident_energies, block.showers)
            hit_writer.append(block.incident_energies, hits)
            if task is not None:
                bar.advance(task, chunk["n"])
    return Path(path)


def _simulate_chunk(
    detector: Detector, particle: str, chunk: dict
) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of a :func:`~caloforge.refsim.plan_simulation` plan (a task): incident energies
    (size,) MeV and showers (size, V) float32 MeV."""
    block = simulate(detector, particle, **chunk)
    return block.incident_energies, block.showers


def write_simulation(
    path: PathLike,
    plan: SimulationPlan,
    *,
    workers: int | None = None,
    scheduler: str | None = DEFAULT_SCHEDULER,
    progress: bool = False,
) -> Path:
    """Run the chunks of a :func:`~caloforge.refsim.plan_simulation` plan on Dask and write them
    in order into ``path`` (what ``simulate_to_file(..., workers=, scheduler=)`` does).

    The file (incident energies (N, 1), showers (N, V) float32 MeV, attributes) is the same as
    the serial one, whatever the scheduler and number of workers. Returns ``path``.
    """
    from caloforge.models.training import progress_bar

    scheduler, workers = check_scheduler(scheduler, workers)
    det, kind = plan.detector, plan.particle
    calls = ((_simulate_chunk, (det, kind, chunk)) for chunk in plan.chunks)
    label = f"simulating {kind} in {det.name} -> {Path(path).name} ({scheduler})"
    with (
        dask_runner(scheduler, workers) as run,
        progress_bar(progress) as bar,
        ShowerWriter(path, det.geo.n_voxels, attrs=plan.attrs) as writer,
    ):
        task = bar.add_task(label, total=plan.total, info="")
        # closing(): if writing fails, stop the workers now rather than at garbage collection
        with closing(run(calls)) as chunks:
            for e_k, showers_k in chunks:
                writer.append(e_k, showers_k)
                bar.advance(task, len(showers_k))
    return Path(path)
