"""Ctrl-C and SIGTERM, handled once for every command.

:func:`handled` (around every CLI command) makes SIGINT and SIGTERM raise
:class:`~caloforge.errors.Interrupted` in the main thread. Because that is a BaseException,
``with`` blocks unwind on the way out: temporary outputs are removed
(:mod:`caloforge.outputs`), Dask worker processes are terminated (:mod:`caloforge.parallel`),
and the CLI prints one line, ``interrupted``, and exits with 128 + the signal number (130 for
Ctrl-C, 143 for SIGTERM).

An exception raised by a signal handler is lost when the signal arrives while Python runs a
finaliser (``__del__``, a weakref callback): Python prints "Exception ignored ..." and carries
on (also when the exception comes wrapped, as h5py reports an error of its Python file-object
callbacks during a dealloc). The hook installed here drops that message and delivers the
signal to the main thread once more (``_thread.interrupt_main`` from a timer thread a few
milliseconds later), so :class:`Interrupted` is raised outside the finaliser, whatever the
command is doing. Python callbacks of C code are worse: h5py's file-object driver turns an
exception raised inside one into its own error, or drops it, so those callbacks run
:func:`shielded`, where a signal is not raised but delivered again in the same way. The
writers' loops also call :func:`check` between chunks, which raises for any signal received
while the work goes on (an exception swallowed somewhere included).

Further signals while the run is already unwinding are ignored, so a second Ctrl-C cannot cut
the clean-up short (SIGKILL still can; see ``caloforge.parallel`` for the workers in that case).
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

from caloforge.errors import Interrupted

_state: dict = {
    "signum": None,
    "lost": False,
    "installed": False,
    "deferring": 0,
    "pending": False,
    "shielded": 0,
}


def _handler(signum, frame) -> None:
    if _state["signum"] is not None and not _state["lost"]:
        return  # already unwinding: let the clean-up finish
    if _state["signum"] is None:
        _state["signum"] = signum
    _state["lost"] = False  # a re-delivery of a signal lost in a finaliser ends here
    signum = _state["signum"]
    if _state["shielded"]:  # inside a callback from C code that would swallow the exception
        _lose()
        return
    if _state["deferring"]:
        _state["pending"] = True  # raised when the critical section ends (see deferred)
        return
    raise Interrupted(signum)


#: delay before a signal lost in a finaliser is delivered again: long enough for the main thread
#: to leave the finaliser (if it has not, the signal is lost and delivered again once more)
_REDELIVER_S = 0.005


def _redeliver() -> None:
    """From a timer thread: make the main thread run the handler again, if still needed."""
    if _state["installed"] and _state["lost"] and _state["signum"] is not None:
        _thread.interrupt_main(_state["signum"])


def _carries_interrupt(exc: BaseException | None) -> bool:
    """Whether ``exc`` is an interrupt or was raised from one: a C extension that calls back
    into Python (h5py's file-object driver in a dealloc) reports it wrapped in a SystemError."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Interrupted | KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _lose() -> None:
    """Record the signal as not yet raised and deliver it again a few milliseconds later."""
    _state["lost"] = True
    threading.Timer(_REDELIVER_S, _redeliver).start()


def _unraisable(hook):
    def quiet(unraisable) -> None:
        if _carries_interrupt(unraisable.exc_value):
            if _state["signum"] is not None:  # ours, raised inside a finaliser: deliver again
                _lose()
            return
        hook(unraisable)

    return quiet


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Route SIGINT and SIGTERM to :class:`Interrupted` inside the block (main thread only);
    the previous handlers are restored afterwards (the CLI runs inside pytest too)."""
    if _state["installed"] or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook
    _state.update(signum=None, lost=False, installed=True, deferring=0, pending=False, shielded=0)
    for sig, handler in previous.items():
        if handler is not signal.SIG_IGN:  # ignored by the caller (nohup, `cmd &`): keep it so
            signal.signal(sig, _handler)
    sys.unraisablehook = _unraisable(hook)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = hook
        _state["installed"] = False


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A critical section: a signal arriving inside the block is held and raised as
    :class:`Interrupted` when the outermost such block ends.

    For the few statements that create something on disk and record that they did (a lock file
    and its registration, a temporary file and the name its clean-up removes): an interrupt
    between the two would leave the file behind.

    Only the main thread defers (Python runs signal handlers there): a section in another thread
    (figures written by a thread pool) must not swallow the main thread's interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state["deferring"] += 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
        if not _state["deferring"] and _state["pending"]:
            _state["pending"] = False
            raise Interrupted(_state["signum"])


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """For Python code that C code calls back (h5py's file-object driver): a signal arriving
    inside is not raised there, where the C caller would turn it into its own error or drop
    it, but delivered again a few milliseconds later, outside (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state["shielded"] += 1
    try:
        yield
    finally:
        _state["shielded"] -= 1


def check() -> None:
    """Raise :class:`Interrupted` if a signal arrived and the work still goes on: its exception
    was lost in a finaliser, or swallowed by code that caught it (C code that clears the error
    it was handed), after which later signals are ignored as if the run were unwinding. The
    writers call this between chunks, never during the clean-up, so a run that got a signal
    stops at the next chunk at the latest instead of finishing as if never interrupted."""
    if _state["installed"] and _state["signum"] is not None:
        _state["lost"] = False
        raise Interrupted(_state["signum"])


def interrupted() -> int | None:
    """The signal number received so far, or None."""
    return _state["signum"]


def ignore_in_worker() -> None:
    """For worker processes: ignore Ctrl-C (the parent stops them) and restore SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
