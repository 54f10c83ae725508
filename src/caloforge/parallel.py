"""A generic parallel runner on Dask: ``fn(*args)`` for a stream of calls, results in order.

It knows nothing of showers; the two bulk jobs build on it --
:func:`caloforge.refsim.files.write_simulation` and
:func:`caloforge.generation.write_generation` -- and write the results in order into one file,
the same file as the serial run::

    >>> from caloforge.parallel import dask_runner
    >>> with dask_runner("threads", 2) as run:
    ...     results = list(run((pow, (k, 2)) for k in range(5)))
    >>> results
    [0, 1, 4, 9, 16]

Memory stays bounded whatever the number of calls: they are submitted in a sliding window of
``CHUNKS_PER_WORKER * workers`` (local schedulers: one window computed while the previous one
is consumed, so at most two windows of results are held). A failing call raises its exception
in the caller.

``scheduler`` is ``"threads"``, ``"processes"`` or ``"synchronous"`` (Dask's local schedulers)
or the address of a running ``dask.distributed`` scheduler, e.g. ``"tcp://10.0.0.1:8786"`` (needs
the optional ``distributed`` package: ``pip install 'caloforge[cluster]'``). ``fn`` and ``args``
must pickle for the processes scheduler and for a cluster.
"""

from __future__ import annotations

import gc
import itertools
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from functools import partial
from typing import Any

import numpy as np

from caloforge._optional import require
from caloforge.errors import ConfigError

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
#: the results of a stream of calls, in order; close() it to stop the workers early
Results = Generator[Any, None, None]


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
        check_positive_int(workers, "the number of workers")
    if workers is None and not is_cluster_address(name):
        workers = os.cpu_count() or 1
    return name, None if workers is None else int(workers)


def check_positive_int(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")


@contextmanager
def dask_runner(
    scheduler: str | None, workers: int | None
) -> Iterator[Callable[[Iterable[Call]], Results]]:
    """Set up a scheduler for one job and yield ``run``: ``run(calls)`` runs ``fn(*args)`` for
    every (fn, args) of ``calls`` on Dask and yields the results in order.

    Setting up connects to the cluster (or starts the local pool of workers) before any output
    is opened, so a bad address fails first. ``calls`` is consumed lazily: a window of
    ``CHUNKS_PER_WORKER * workers`` calls is in flight. ``fn`` and ``args`` must pickle for the
    processes scheduler and for a cluster. Leaving the block stops the workers.
    """
    scheduler, workers = check_scheduler(scheduler, workers)
    require("dask", extra="cluster", purpose="parallel runs (--workers/--scheduler)")
    if is_cluster_address(scheduler):
        client = _connect(scheduler)
        try:
            n_threads = sum(client.nthreads().values())
            window = CHUNKS_PER_WORKER * (workers or max(1, n_threads))
            yield partial(_cluster_results, client=client, window=window)
        finally:
            client.close()
    else:
        n_workers = workers if workers is not None else os.cpu_count() or 1  # set by the check
        with _local_pool(scheduler, n_workers) as pool:
            yield partial(_local_results, scheduler=scheduler, workers=n_workers, pool=pool)


def ordered_results(calls: Iterable[Call], scheduler: str, workers: int | None) -> Results:
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
) -> Results:
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


def _cluster_results(calls: Iterable[Call], *, client, window: int) -> Results:
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
