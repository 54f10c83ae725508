"""Signals are handled once (caloforge.signals): SIGINT/SIGTERM raise Interrupted, an interrupt
that lands inside a finaliser is neither printed ("Exception ignored ...") nor lost, and the
previous handlers come back afterwards."""

from __future__ import annotations

import gc
import os
import signal
import time

import pytest

from caloforge import signals
from caloforge.errors import Interrupted


@pytest.fixture(autouse=True)
def _sigint_as_in_a_terminal():
    """Start every test with Python's own SIGINT handler, as in a foreground process. A test run
    started in the background of a non-interactive shell (`make test &`, some CI runners)
    inherits SIGINT as ignored, which caloforge keeps on purpose (last test below)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_raises_interrupted_with_its_exit_code(sig, code):
    before = signal.getsignal(sig)
    with pytest.raises(Interrupted) as info, signals.handled():
        os.kill(os.getpid(), sig)
        for _ in range(10**7):  # the handler runs at the next bytecode boundary
            pass
    assert info.value.exit_code == code
    assert signal.getsignal(sig) is before


class _SlowFinaliser:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10**6):  # the signal arrives while Python runs the finaliser
            pass


def test_interrupt_inside_a_finaliser_is_not_lost_nor_printed(capsys):
    """Python can only report an exception raised inside ``__del__``; caloforge delivers the
    signal again, so Interrupted comes right after the finaliser, not at the next check()."""
    reached = []
    with pytest.raises(Interrupted) as info, signals.handled():
        obj = _SlowFinaliser()
        del obj  # Interrupted is raised inside __del__, where Python can only report it
        gc.collect()
        deadline = time.monotonic() + 10  # delivered again after a few milliseconds
        while time.monotonic() < deadline:
            pass
        reached.append(True)
    assert info.value.exit_code == 130
    assert reached == []
    signals.check()  # raised once, not again
    assert "Exception ignored" not in capsys.readouterr().err


class _WrappingFinaliser:
    """As h5py's dealloc of a file on a Python file object: the interrupt raised in a callback
    comes out wrapped in another exception (seen in CI: SystemError from H5FD_fileobj_write)."""

    def __del__(self) -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10**6):
                pass
        except Interrupted as exc:
            raise SystemError("returned a result with an exception set") from exc


def test_an_interrupt_wrapped_inside_a_finaliser_is_not_lost_nor_printed(capsys):
    reached = []
    with pytest.raises(Interrupted) as info, signals.handled():
        obj = _WrappingFinaliser()
        del obj
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pass
        reached.append(True)
    assert info.value.exit_code == 130
    assert reached == []
    assert "Exception ignored" not in capsys.readouterr().err


def test_a_signal_inside_a_shielded_callback_is_raised_after_it():
    """h5py's file-object driver calls our file methods from C and turns an exception raised
    there into its own error, or drops it (seen in CI: "driver write request failed"); inside
    ``shielded`` the signal is not raised but delivered again once the callback has returned."""
    inside, after = [], []
    with pytest.raises(Interrupted) as info, signals.handled():
        with signals.shielded():
            os.kill(os.getpid(), signal.SIGINT)
            deadline = time.monotonic() + 0.2  # 40 re-delivery periods, all shielded
            while time.monotonic() < deadline:
                pass
            inside.append(True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pass
        after.append(True)
    assert inside == [True] and after == []
    assert info.value.exit_code == 130


def test_an_interrupt_swallowed_by_other_code_is_raised_at_the_next_check():
    """Code that catches the exception a signal raised (as C code that clears the error it is
    handed) leaves the handler believing the run unwinds, so later signals are ignored; the
    writers' check() between chunks still stops the run (seen once in CI: a Ctrl-C during
    `caloforge simulate` lost and the run finished with status 0)."""
    swallowed, went_on = [], []
    with pytest.raises(Interrupted) as info, signals.handled():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10**7):
                pass
        except Interrupted:
            swallowed.append(True)
        os.kill(os.getpid(), signal.SIGINT)  # ignored: the handler thinks the run unwinds
        for _ in range(10**6):
            pass
        went_on.append(True)
        signals.check()
        went_on.append(False)
    assert swallowed == [True] and went_on == [True]
    assert info.value.exit_code == 130
    signals.check()  # outside handled(): nothing to raise


def test_a_writer_stops_at_the_next_chunk_after_a_swallowed_interrupt(tmp_path):
    import numpy as np

    from caloforge.io import ShowerWriter

    out = tmp_path / "a.h5"
    with pytest.raises(Interrupted), signals.handled():
        with ShowerWriter(out, 4) as writer:
            writer.append(np.ones(2), np.ones((2, 4), np.float32))
            try:
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10**7):
                    pass
            except Interrupted:
                pass  # swallowed
            writer.append(np.ones(2), np.ones((2, 4), np.float32))
    assert list(tmp_path.iterdir()) == []  # the temporary file was removed, nothing published


def test_a_second_signal_does_not_cut_the_clean_up_short():
    cleaned = []
    with pytest.raises(Interrupted), signals.handled():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10**7):
                pass
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # ignored while unwinding
            for _ in range(10**6):
                pass
            cleaned.append(True)
    assert cleaned == [True]


def test_an_inherited_ignore_is_respected():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with signals.handled():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is signals._handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_signal_inside_a_deferred_section_is_raised_when_it_ends():
    done = []
    with pytest.raises(Interrupted) as info, signals.handled():
        with signals.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10**6):  # the handler runs here, at a bytecode boundary
                pass
            done.append("recorded")  # still runs: the section is not cut
        done.append("after")  # never runs: Interrupted comes at the end of the section
    assert done == ["recorded"]
    assert info.value.exit_code == 143


def test_claim_output_interrupted_while_taking_the_lock_leaves_no_lock_file(tmp_path, monkeypatch):
    """The race CI once hit: SIGTERM between creating ``.<name>.lock`` and registering it."""
    from caloforge import outputs

    real = outputs._acquire

    def acquire_then_signal(final, what):
        real(final, what)
        os.kill(os.getpid(), signal.SIGTERM)  # lands before claim_output records the lock
        for _ in range(10**6):
            pass

    monkeypatch.setattr(outputs, "_acquire", acquire_then_signal)
    with pytest.raises(Interrupted), signals.handled():
        with outputs.atomic_file(tmp_path / "g.h5") as tmp:
            tmp.write_bytes(b"x")
    assert outputs.leftovers(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_a_deferred_section_in_another_thread_does_not_hold_the_main_threads_signal():
    """A worker thread inside a deferred section (an atomic write from a thread pool) when the
    signal arrives: the main thread still gets Interrupted at once."""
    import threading

    inside, release = threading.Event(), threading.Event()

    def worker():
        with signals.deferred():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=worker)
    with pytest.raises(Interrupted), signals.handled():
        t.start()
        try:
            inside.wait(10)
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10**7):
                pass
        finally:
            release.set()
            t.join()
