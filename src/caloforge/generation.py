"""The generation path: a trained model's showers written to a file, serially or on Dask.

:func:`generate` checks its arguments (:func:`prepare_generation`), configures the model's
prior sampler and simulated device (:func:`configure_model`) and samples batch i of
``batch_size`` showers with seed :func:`batch_seed` (seed, i). With ``workers`` or
``scheduler`` the batches run on Dask (:func:`write_generation`, on
:func:`caloforge.parallel.dask_runner`): a task holds whole batches, every worker loads the
model from its run directory itself (:class:`ModelSpec`, :func:`worker_model`), and the file
is the same as the serial one. ``caloforge.workflows.generate`` is this function.
"""

from __future__ import annotations

import json
import os
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from caloforge.conditions import Conditions
from caloforge.errors import ConfigError
from caloforge.io import ShowerWriter, read_showers
from caloforge.parallel import DEFAULT_SCHEDULER, check_positive_int, check_scheduler, dask_runner

PathLike = str | os.PathLike


def batch_seed(seed: int, batch: int) -> int:
    """Seed of generation batch ``batch`` (of ``batch_size`` showers) in a run seeded ``seed``."""
    return int(seed) * 1_000_003 + int(batch)


def configure_model(
    model,
    sampler: str | None = None,
    sampler_options: dict[str, Any] | None = None,
    hardware: dict[str, Any] | None = None,
):
    """Apply the generation options to a loaded model: the prior sampler (QVAE) and the
    simulated device (quantum-circuit models). Returns the model to sample from."""
    if sampler_options and sampler is None:
        raise ConfigError("--sampler-options needs --sampler, the sampler they are for")
    if sampler is not None:
        model.set_sampler(sampler, **(sampler_options or {}))  # ConfigError without a prior
    if hardware:
        model = model.with_hardware(**hardware)  # ConfigError without a quantum device
    return model


def prepare_generation(
    run_dir: PathLike,
    *,
    n: int | None = None,
    energies: str | None = None,
    energies_from: PathLike | None = None,
    sampler: str | None = None,
    sampler_options: dict[str, Any] | None = None,
    hardware: dict[str, Any] | None = None,
    seed: int = 0,
    theta: float | None = None,
    phi: float | None = None,
    entry_mm: tuple[float, float] | None = None,
    device: str = "cpu",
) -> tuple[Any, Conditions, dict[str, Any]]:
    """Check the arguments of :func:`generate`: (configured model, the showers' conditions,
    output file attributes).

    The conditions are the incident energies plus the incidence angles (rad) and entry point
    (mm) that an ``energies_from`` file records (:meth:`Conditions.from_attrs`), replaced by
    ``theta``, ``phi``, ``entry_mm`` (x, y on the front face) where given. A model refuses a
    condition it does not support with one sentence, before anything is written. The model is
    moved to ``device`` (:meth:`~caloforge.models.base.Generator.to_device`), which is checked
    the same way."""
    from caloforge.energies import parse_energies
    from caloforge.validate import showers

    if (energies is None) == (energies_from is None):
        raise ConfigError("give exactly one of --energies SPEC (with --n) or --energies-from FILE")
    showers(n, "the number of showers n")
    file_attrs: dict[str, Any] = {}
    if energies_from is not None:
        source = read_showers(energies_from, validate=False, max_showers=n)
        e, file_attrs = source.incident_energies, source.attrs
        parse_energies(e, len(e))  # finite, > 0 and <= the maximum, or one sentence
    else:
        if n is None or energies is None:
            raise ConfigError("--energies needs --n, the number of showers")
        e = parse_energies(energies, n, seed=seed)
    given = Conditions.from_attrs(e, file_attrs)
    conditions = Conditions.uniform(
        e,
        theta=_first(theta, given.theta),
        phi=_first(phi, given.phi),
        entry=(entry_mm[0], entry_mm[1], 0.0) if entry_mm is not None else _row(given.entry),
    )
    from caloforge.models.base import load_generator

    model = load_generator(run_dir)
    try:
        model.check_conditions(conditions)
    except ConfigError as exc:
        if energies_from is None:
            raise
        raise ConfigError(f"{exc} (as {energies_from} records them)") from None
    model = configure_model(model, sampler, sampler_options, hardware)
    model.to_device(device)
    attrs = {
        "geometry": model.geometry.name,
        "producer": f"caloforge generate ({model.model_name})",
        "seed": seed,
        "model_dir": str(run_dir),
        "sampler": sampler or "",
        "sampler_options": json.dumps(sampler_options or {}),
        "hardware": json.dumps(hardware or {}),
        **_condition_attrs(conditions),
    }
    return model, conditions, attrs


def _first(value: float | None, given: np.ndarray | None) -> float | None:
    """An explicit value, else the (per-file constant) value a file records, else None."""
    return value if value is not None else None if given is None else float(given[0])


def _row(entry: np.ndarray | None) -> tuple[float, float, float] | None:
    return None if entry is None else (float(entry[0, 0]), float(entry[0, 1]), float(entry[0, 2]))


def _condition_attrs(c: Conditions) -> dict[str, float]:
    """The file attributes ``caloforge simulate`` uses for the conditions given."""
    out: dict[str, float] = {}
    if c.theta is not None:
        out["theta"] = float(c.theta[0])
    if c.phi is not None:
        out["phi"] = float(c.phi[0])
    if c.entry is not None:
        out["offset_x_mm"], out["offset_y_mm"] = float(c.entry[0, 0]), float(c.entry[0, 1])
    return out


def generate(
    run_dir: PathLike,
    output: PathLike,
    *,
    n: int | None = None,
    energies: str | None = None,
    energies_from: PathLike | None = None,
    sampler: str | None = None,
    sampler_options: dict[str, Any] | None = None,
    hardware: dict[str, Any] | None = None,
    seed: int = 0,
    batch_size: int = 1024,
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
    theta: float | None = None,
    phi: float | None = None,
    entry_mm: tuple[float, float] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Generate showers with a trained model into ``output`` (CaloChallenge layout, atomic).

    Incident energies come either from a spectrum spec (``energies`` with ``n``) or from the
    ``incident_energies`` of an existing file (``energies_from``, optionally the first ``n``).
    ``hardware`` (quantum-circuit models) runs the trained circuit on a different simulated
    device, e.g. ``{"depolarizing": 0.01, "shots": 1000}``. Batch i of ``batch_size`` showers is
    sampled with seed :func:`batch_seed` (seed, i); with ``workers`` or ``scheduler`` (``threads``,
    ``processes``, or a ``tcp://host:port`` dask.distributed address) the batches run in parallel
    on Dask (:func:`write_generation`) and the file is the same. ``device`` (``cpu``, ``cuda``,
    ``auto`` ...) is where a serial run samples; Dask workers sample on their CPUs.
    Returns a dict with the number of showers and the generation wall time in seconds.
    """
    from caloforge.models.training import progress_bar
    from caloforge.validate import batch

    batch(batch_size, "batch_size")
    if (workers is not None or scheduler is not None) and device != "cpu":
        raise ConfigError("--device applies to serial generation; Dask workers use their CPUs")
    model, e, attrs = prepare_generation(
        run_dir, n=n, energies=energies, energies_from=energies_from, sampler=sampler,
        sampler_options=sampler_options, hardware=hardware, seed=seed, theta=theta, phi=phi,
        entry_mm=entry_mm, device=device,
    )  # fmt: skip
    t0 = time.perf_counter()
    if workers is not None or scheduler is not None:
        spec = ModelSpec.of(run_dir, sampler, sampler_options, hardware)
        n_voxels = model.geometry.n_voxels
        del model  # every worker loads its own
        write_generation(
            output, spec, e, attrs, n_voxels, seed=seed, batch_size=batch_size, workers=workers,
            scheduler=scheduler or DEFAULT_SCHEDULER, progress=progress,
        )  # fmt: skip
        return {"n": int(len(e)), "seconds": time.perf_counter() - t0, "output": str(output)}
    with (
        ShowerWriter(
            output, model.geometry.n_voxels, attrs=attrs, inputs=[energies_from, run_dir]
        ) as w,
        progress_bar(progress) as bar,
    ):
        task = bar.add_task("generate", total=len(e), info="")
        for i, start in enumerate(range(0, len(e), batch_size)):
            chunk = e[start : start + batch_size]
            showers = model.sample(chunk, seed=batch_seed(seed, i), batch_size=batch_size)
            w.append(chunk.energy, showers)
            bar.update(task, advance=len(chunk))
    return {"n": int(len(e)), "seconds": time.perf_counter() - t0, "output": str(output)}


# --------------------------------------------------------------------------- on Dask
@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to rebuild a model: its run directory and generation options.

    The model itself never travels; every worker loads it from ``run_dir`` (a path that must be
    readable at the same place on every machine).
    """

    run_dir: str
    sampler: str | None = None
    sampler_options: str = "{}"  # JSON
    hardware: str = "{}"  # JSON

    @classmethod
    def of(
        cls,
        run_dir: PathLike,
        sampler: str | None = None,
        sampler_options: dict[str, Any] | None = None,
        hardware: dict[str, Any] | None = None,
    ) -> ModelSpec:
        """The spec of a run directory and the options of ``generate``."""
        return cls(
            str(run_dir), sampler, json.dumps(sampler_options or {}), json.dumps(hardware or {})
        )

    def build(self):
        """Load the model and apply the sampler and hardware options as ``generate``
        does (:func:`configure_model`)."""
        from caloforge.models.base import load_generator

        return configure_model(
            load_generator(self.run_dir),
            self.sampler,
            json.loads(self.sampler_options),
            json.loads(self.hardware),
        )


_WORKER_MODEL = threading.local()


def _stamp(run_dir: str) -> tuple:
    """Modification times and sizes of a run directory's files (a retrained model reloads)."""
    files = sorted(Path(run_dir).glob("model.*"))
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)


def worker_model(spec: ModelSpec):
    """The model of ``spec``, loaded once per worker thread and kept while ``spec`` is unchanged."""
    key = (spec, _stamp(spec.run_dir))
    cached = getattr(_WORKER_MODEL, "entry", None)
    if cached is None or cached[0] != key:
        _WORKER_MODEL.entry = None  # free the old model before loading the new one
        _WORKER_MODEL.entry = (key, spec.build())
    return _WORKER_MODEL.entry[1]


def _generate_chunk(
    spec: ModelSpec, energies: Conditions, first_batch: int, seed: int, batch_size: int
) -> np.ndarray:
    """One task: showers (N, V) float32 MeV for the conditions of N showers (whole batches).

    Batch j of the task is batch ``first_batch + j`` of the serial run and gets its seed.
    """
    model = worker_model(spec)
    out = []
    for j, start in enumerate(range(0, len(energies), batch_size)):
        batch = energies[start : start + batch_size]
        out.append(
            model.sample(batch, seed=batch_seed(seed, first_batch + j), batch_size=batch_size)
        )
    return np.concatenate(out)


def write_generation(
    output: PathLike,
    spec: ModelSpec,
    energies: np.ndarray | Conditions,
    attrs: dict[str, Any],
    n_voxels: int,
    *,
    seed: int = 0,
    batch_size: int = 1024,
    batches_per_task: int = 1,
    workers: int | None = None,
    scheduler: str | None = DEFAULT_SCHEDULER,
    progress: bool = False,
) -> None:
    """Sample batches of ``batch_size`` showers for ``energies`` (N,) MeV on Dask and write them
    in order into ``output`` (what ``generate(..., workers=, scheduler=)`` does).

    ``batches_per_task`` whole batches make one task; batch i gets seed
    :func:`batch_seed` (seed, i) wherever it runs, so the file (incident
    energies (N, 1) MeV, showers (N, V) float32 MeV; ``n_voxels`` = V) is the same as the serial
    one. Every worker loads the model of ``spec`` itself.
    """
    from caloforge.models.training import progress_bar

    scheduler, workers = check_scheduler(scheduler, workers)
    check_positive_int(batch_size, "batch_size")
    check_positive_int(batches_per_task, "batches_per_task")
    step = batch_size * batches_per_task
    energies = Conditions.of(energies)
    calls = (
        (
            _generate_chunk,
            (spec, energies[start : start + step], start // batch_size, seed, batch_size),
        )
        for start in range(0, len(energies), step)
    )
    with (
        dask_runner(scheduler, workers) as run,
        progress_bar(progress) as bar,
        ShowerWriter(output, n_voxels, attrs=attrs) as writer,
    ):
        task = bar.add_task(f"generate ({scheduler})", total=len(energies), info="")
        done = 0
        with closing(run(calls)) as chunks:
            for showers in chunks:
                for start in range(0, len(showers), batch_size):  # one append per batch
                    rows = slice(done + start, done + start + batch_size)
                    writer.append(energies[rows].energy, showers[start : start + batch_size])
                done += len(showers)
                bar.advance(task, len(showers))
