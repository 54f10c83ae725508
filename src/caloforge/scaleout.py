"""Scale-out of the two bulk jobs on Dask: reference simulation and generation with a model.

Both entry points take ``workers`` and ``scheduler`` and come here when one is given::

    >>> from caloforge.refsim import simulate_to_file
    >>> simulate_to_file("ref.h5", "ds2", "electron", "loguniform:1e3:1e6", n=20_000, seed=1,
    ...                  workers=2, scheduler="processes")
    >>> from caloforge.workflows import generate
    >>> generate("runs/qvae", "gen.h5", n=100_000, energies="loguniform:1e3:1e6", seed=1,
    ...          scheduler="tcp://10.0.0.1:8786")

A job is split into the chunks of the serial job, with the same seeds; Dask runs the chunk
tasks (on local threads or processes, or on the workers of a ``dask.distributed`` cluster), and
the calling process writes their results **in order** into one file with
:class:`~caloforge.io.ShowerWriter` (temporary file, renamed only when complete). So:

* :func:`write_simulation` gives the same file as the serial ``simulate_to_file``: it runs the
  chunks of :func:`~caloforge.refsim.plan_simulation`, chunk k seeded ``chunk_seed(seed, k)``;
* :func:`write_generation` gives the same file as the serial ``workflows.generate``: batch i (of
  ``batch_size`` showers) is sampled with seed ``batch_seed(seed, i)`` wherever it runs; a task
  holds whole batches, and every worker loads the model from its run directory itself.

Memory stays bounded whatever the number of showers: the chunks are submitted in a sliding
window of ``CHUNKS_PER_WORKER * workers`` (local schedulers: one window computed while the
previous one is written, so at most two windows of results are held). A failing task raises its
exception here and leaves no file under the final name.

``scheduler`` is ``"threads"``, ``"processes"`` or ``"synchronous"`` (Dask's local schedulers)
or the address of a running ``dask.distributed`` scheduler, e.g. ``"tcp://10.0.0.1:8786"`` (needs
the optional ``distributed`` package: ``pip install 'caloforge[cluster]'``). Workers of a cluster
need caloforge installed and, for generation, the model directory at the same path (a shared
filesystem); the output file and ``energies_from`` are only touched by the calling process.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from caloforge.errors import ConfigError
from caloforge.io import ShowerWriter
from caloforge.refsim.detectors import Detector
from caloforge.refsim.simulate import SimulationPlan, simulate

PathLike = str | os.PathLike
#: Dask's local schedulers; anything of the form ``scheme://host:port`` is a cluster address
LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")
DEFAULT_SCHEDULER = "processes"
#: chunks kept in flight per worker (the sliding window is this times the number of workers)
CHUNKS_PER_WORKER = 2
#: seconds to wait for a dask.distributed scheduler to answer
CONNECT_TIMEOUT_S = 10.0
#: seconds between a worker process's checks that its parent is still alive
WATCHDOG_S = 0.5

_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")
Call = tuple[Callable[..., Any], tuple[Any, ...]]


# --------------------------------------------------------------------------- scheduling
def is_cluster_address(scheduler: str) -> bool:
    """True for the address of a ``dask.distributed`` scheduler such as ``tcp://host:8786``."""
    return bool(_ADDRESS.match(str(scheduler).strip()))


def check_scheduler(scheduler: str | None, workers: int | None) -> tuple[str, int | None]:
    """Validate ``scheduler`` and ``workers``; return (scheduler, workers or None).

    ``workers`` None means: the number of CPU cores for a local scheduler, the number of worker
    threads of the cluster for an address.
    """
    name = DEFAULT_SCHEDULER if scheduler is None else str(scheduler).strip()
    if name not in LOCAL_SCHEDULERS and not is_cluster_address(name):
        raise ConfigError(
            f"unknown scheduler {scheduler!r}; use threads, processes, synchronous or the address "
            "of a dask.distributed scheduler such as tcp://host:8786"
        )
    if workers is not None:
        _check_positive_int(workers, "the number of workers")
    if workers is None and not is_cluster_address(name):
        workers = os.cpu_count() or 1
    return name, None if workers is None else int(workers)


def _check_positive_int(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")


@contextmanager
def dask_runner(
    scheduler: str | None, workers: int | None
) -> Iterator[Callable[[Iterable[Call]], Iterator[Any]]]:
    """Set up a scheduler for one job and yield ``run``: ``run(calls)`` runs ``fn(*args)`` for
    every (fn, args) of ``calls`` on Dask and yields the results in order.

    Setting up connects to the cluster (or starts the local pool of workers) before any output
    is opened, so a bad address fails first. ``calls`` is consumed lazily: a window of
    ``CHUNKS_PER_WORKER * workers`` calls is in flight. ``fn`` and ``args`` must pickle for the
    processes scheduler and for a cluster. Leaving the block stops the workers.
    """
    scheduler, workers = check_scheduler(scheduler, workers)
    if is_cluster_address(scheduler):
        client = _connect(scheduler)
        try:
            n_threads = sum(client.nthreads().values())
            window = CHUNKS_PER_WORKER * (workers or max(1, n_threads))
            yield partial(_cluster_results, client=client, window=window)
        finally:
            client.close()
    else:
        with _local_pool(scheduler, workers) as pool:
            yield partial(_local_results, scheduler=scheduler, workers=workers, pool=pool)


def ordered_results(calls: Iterable[Call], scheduler: str, workers: int | None) -> Iterator[Any]:
    """``fn(*args)`` for every (fn, args) of ``calls``, run on Dask, in order (see dask_runner)."""
    with dask_runner(scheduler, workers) as run, closing(run(calls)) as results:
        yield from results


@contextmanager
def _local_pool(scheduler: str, workers: int) -> Iterator[Executor | None]:
    """One pool for the whole job (Dask would otherwise start new processes for every window)."""
    if scheduler == "synchronous":
        yield None
        return
    if scheduler == "threads":
        pool: Executor = ThreadPoolExecutor(workers, thread_name_prefix="caloforge-worker")
    else:
        from dask.multiprocessing import get_context

        pool = ProcessPoolExecutor(
            workers, mp_context=get_context(), initializer=_init_worker, initargs=(os.getpid(),)
        )
    ok = False
    try:
        if isinstance(pool, ProcessPoolExecutor):
            # start every worker from this (the main) thread: a worker's death signal is tied
            # to the thread that started it, and Dask would start them from a helper thread
            for f in [pool.submit(int) for _ in range(workers)]:
                f.result()
        yield pool
        ok = True
    finally:
        if not ok:
            terminate_workers(pool)  # an error or an interrupt: do not wait for running chunks
        pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(parent_pid: int) -> None:
    """Set up a worker process: Dask's per-process initialisation, Ctrl-C left to the parent
    (which terminates the workers), and an end to the worker when the parent is gone (killed
    with SIGKILL, so that it could not stop them): the kernel's parent-death signal on Linux,
    a watchdog thread polling the parent elsewhere."""
    from dask.multiprocessing import initialize_worker_process

    from caloforge.signals import ignore_in_worker

    initialize_worker_process()
    ignore_in_worker()
    with suppress(Exception):  # Linux: the kernel kills the worker when its parent dies
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the death signal was set
        os._exit(1)

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(WATCHDOG_S)

    threading.Thread(target=watch, name="caloforge-parent-watchdog", daemon=True).start()


def terminate_workers(pool: Executor | None) -> None:
    """Terminate the worker processes of a process pool at once (no-op for threads)."""
    processes = getattr(pool, "_processes", None) or {}
    for proc in list(processes.values()):
        with suppress(Exception):
            proc.terminate()
    for proc in list(processes.values()):
        with suppress(Exception):
            proc.join(timeout=5)


def _local_results(
    calls: Iterable[Call], *, scheduler: str, workers: int, pool: Executor | None
) -> Iterator[Any]:
    """Windows of ``CHUNKS_PER_WORKER * workers`` calls, each one ``dask.compute``.

    The next window is computed (in a helper thread) while the caller consumes the current one,
    so writing overlaps computing; at most two windows of results are held.
    """
    import dask

    window = CHUNKS_PER_WORKER * workers
    todo = iter(calls)
    options: dict[str, Any] = {"scheduler": scheduler, "num_workers": workers}
    if pool is not None:
        options |= {"pool": pool, "chunksize": 1}  # chunksize 1: one task per worker call
    with ThreadPoolExecutor(1, thread_name_prefix="caloforge-dask") as runner:
        try:
            yield from _windows(runner, todo, window, options, dask)
        except BaseException:
            # stopped early (error, interrupt): the window being computed is abandoned; stop
            # process workers now instead of waiting for their chunks
            terminate_workers(pool)
            raise


def _windows(runner, todo, window, options, dask) -> Iterator[Any]:
    """Consecutive ``dask.compute`` windows; the next runs in ``runner`` meanwhile."""

    def launch():
        batch = list(itertools.islice(todo, window))
        if not batch:
            return None
        tasks = [dask.delayed(fn, pure=False)(*args) for fn, args in batch]
        return runner.submit(dask.compute, *tasks, **options)

    pending = launch()
    while pending is not None:
        results = pending.result()
        pending = launch()
        yield from results


def _connect(address: str):
    """A ``dask.distributed`` client of the scheduler at ``address``, or one clear ConfigError."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ConfigError(
            f"scheduler address {address} needs the dask.distributed package, which is not "
            "installed; install it with `pip install 'caloforge[cluster]'` or use a local "
            "scheduler (threads or processes)"
        ) from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # Raised outside the except block and after a collection: the half-built Client must be
    # freed now, while its event loop runs; otherwise its __del__ stalls the exit by 20 s.
    gc.collect()
    raise ConfigError(
        f"could not reach the Dask scheduler at {address} ({reason}); start one with "
        "`dask scheduler` and check the address"
    )


def _cluster_results(calls: Iterable[Call], *, client, window: int) -> Iterator[Any]:
    """A sliding window of futures on a ``dask.distributed`` cluster."""
    futures: deque = deque()
    try:
        for fn, args in calls:
            futures.append(client.submit(fn, *args, pure=False))
            if len(futures) >= window:
                yield futures.popleft().result()
        while futures:
            yield futures.popleft().result()
    finally:
        for future in futures:
            future.cancel()


# --------------------------------------------------------------------------- simulation
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


# --------------------------------------------------------------------------- generation
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
        """The spec of a run directory and the options of ``workflows.generate``."""
        return cls(
            str(run_dir), sampler, json.dumps(sampler_options or {}), json.dumps(hardware or {})
        )

    def build(self):
        """Load the model and apply the sampler and hardware options as ``workflows.generate``
        does (:func:`~caloforge.workflows.configure_model`)."""
        from caloforge.models.base import load_generator
        from caloforge.workflows import configure_model

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
    spec: ModelSpec, energies: np.ndarray, first_batch: int, seed: int, batch_size: int
) -> np.ndarray:
    """One task: showers (N, V) float32 MeV for energies (N,) MeV holding whole batches.

    Batch j of the task is batch ``first_batch + j`` of the serial run and gets its seed.
    """
    from caloforge.workflows import batch_seed

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
    energies: np.ndarray,
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
    in order into ``output`` (what ``workflows.generate(..., workers=, scheduler=)`` does).

    ``batches_per_task`` whole batches make one task; batch i gets seed
    :func:`~caloforge.workflows.batch_seed` (seed, i) wherever it runs, so the file (incident
    energies (N, 1) MeV, showers (N, V) float32 MeV; ``n_voxels`` = V) is the same as the serial
    one. Every worker loads the model of ``spec`` itself.
    """
    from caloforge.models.training import progress_bar

    scheduler, workers = check_scheduler(scheduler, workers)
    _check_positive_int(batch_size, "batch_size")
    _check_positive_int(batches_per_task, "batches_per_task")
    step = batch_size * batches_per_task
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
                    writer.append(energies[rows], showers[start : start + batch_size])
                done += len(showers)
                bar.advance(task, len(showers))
