"""Stopping a run and still reporting: Ctrl-C (SIGINT) and SIGTERM end a session cleanly.

What a signal does while ``ipw profile`` runs (:func:`handle_signals`, installed by the command line):

- the first SIGINT (Ctrl-C) once queries are running: the query in flight finishes and is stored,
  no new one starts (at N in flight: no new request is sent, those in flight finish);
- a second SIGINT, a SIGTERM (a process manager's stop, which is followed by SIGKILL after a grace
  period, so it does not wait for a query that may take 25 s on a CPU), or a SIGINT before the
  queries start (model load, idle baseline, warm-up): the query in flight is dropped at once (it is
  not stored; ``--resume`` runs it again).

Either way the executor closes the session as ``interrupted`` in the manifest, writes
``summary.json`` of the queries stored and raises :class:`RunInterrupted` (a KeyboardInterrupt, so
that a library caller stops as Python users expect), which the command line turns into the printed
summary and exit status 130 (128 + SIGINT, the shell's convention for Ctrl-C).

Appending a record (journal line + fsync) is shielded: a signal that arrives inside it takes effect
when the record is whole, so a stop never leaves a cut record behind. While the session closes and
the summary is written, signals only note themselves (a SIGKILL still ends the process; the journal
stays whole and ``--resume`` continues).

Why our own handlers instead of click's: click turns KeyboardInterrupt into "Aborted!" after the
fact, when the session can no longer finish the query in flight or write its summary.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by a signal after its session was closed and its summary written."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"run {path} interrupted by {reason}")
        self.path, self.reason = Path(path), reason


class Stop:
    """Stop requests for the session that is running (one per process: signals are process-wide)."""

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        self.requested: str | None = None  # the signal's name once one arrived
        self.notify = notify or (lambda message: None)
        self._finishing = False  # queries are running: a first SIGINT lets the one in flight finish
        self._shield = 0
        self._pending = False
        self._closing = False

    def signal(self, name: str) -> None:
        """A stop request (called by the signal handler, in the main thread)."""
        first = self.requested is None
        self.requested = self.requested or name
        if self._closing:
            self.notify(f"{name}: writing the summary of what was done")
            return
        if first and name == "SIGINT" and self._finishing:
            self.notify("Ctrl-C: finishing the query in flight, then writing the summary (Ctrl-C again drops it)")
            return
        if self._shield:
            self._pending = True
            return
        raise KeyboardInterrupt(name)

    @contextmanager
    def finishing(self):
        """Queries are running: a first SIGINT asks the loop to stop after the query in flight."""
        self._finishing = True
        try:
            yield self
        finally:
            self._finishing = False

    @contextmanager
    def shielded(self):
        """A step a signal must not cut (a record's append): a drop waits until it ends."""
        self._shield += 1
        try:
            yield
        finally:
            self._shield -= 1
            if not self._shield and self._pending and not self._closing:
                self._pending = False
                raise KeyboardInterrupt(self.requested)

    @contextmanager
    def closing(self):
        """The session closes and the summary is written: signals are noted, never raised."""
        self._closing = True
        try:
            yield
        finally:
            self._closing = False


_active = Stop()


def current() -> Stop:
    """The process's stop requests (a fresh one for each :func:`handle_signals`)."""
    return _active


@contextmanager
def handle_signals(notify: Callable[[str], None] | None = None):
    """Route SIGINT and SIGTERM to a fresh :class:`Stop` for the duration (main thread only; the
    previous handlers come back after)."""
    global _active
    if threading.current_thread() is not threading.main_thread():
        yield _active
        return
    stop, before = Stop(notify), _active
    sigs = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}
    old = {s: signal.getsignal(s) for s in sigs}
    for s, name in sigs.items():
        signal.signal(s, lambda signum, frame, name=name: stop.signal(name))
    _active = stop
    try:
        yield stop
    finally:
        _active = before
        for s, handler in old.items():
            signal.signal(s, handler)
