"""Joining a Ray cluster within a time limit, or saying in one line why not (``ipw launch --address``).

``ray.init(address="host:port")`` with no cluster there does not fail: Ray logs "Failed to connect
to GCS" every 30 s and waits on (over 300 s seen, with Ray 2.60). Here the connection is bounded
by ``timeout_s`` and fails with :class:`RayUnreachable`, naming the address and what to start:

1. For a ``host:port`` or ``ray://host:port`` address, a TCP connection to that port first (at most
   ``timeout_s``): nothing listening ("connection refused"), an unknown host or a port that does
   not answer are told at once, without starting Ray's client at all.
2. Then ``ray.init`` itself, in a helper thread joined for at most what is left of ``timeout_s``
   (a port that accepts but is no Ray head, or a head that does not answer). Ray cannot be
   interrupted inside its own connection loop, so a thread that is still waiting is left behind
   (daemonic: it does not keep the process alive) and this process should not call ``ray.init``
   again. Ray sets its SIGTERM handler only from the main thread; :func:`connect` sets the same one
   (exit with the signal's number, so that shutdown hooks run) and drops Ray's warning about it.

A local instance (no address, no ``RAY_ADDRESS``) is started in the calling thread with no limit:
starting Ray on a loaded machine may take longer than joining a running cluster should.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time

from ipw.core.errors import IpwError

START_HINT = "start one there with `ray start --head` (its port is 6379 unless given), or leave out --address to start one on this machine"  # fmt: skip


class RayUnreachable(IpwError):
    """No Ray cluster answered at the address within the time limit."""


def endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port``, ``ray://host:port`` or ``[v6]:port``; None for ``auto`` and other forms."""
    text = address.removeprefix("ray://").strip().rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def reachable(address: str, timeout_s: float) -> None:
    """Raise :class:`RayUnreachable` unless a TCP connection to ``address``'s port opens within ``timeout_s``."""
    target = endpoint(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout_s).close()
    except socket.timeout:
        raise RayUnreachable(f"no Ray cluster answers at {address}: no answer within {timeout_s:g} s "
                             f"(--connect-timeout); {START_HINT}") from None  # fmt: skip
    except OSError as e:
        raise RayUnreachable(f"no Ray cluster answers at {address} ({e.strerror or e}); {START_HINT}") from None


class _NoMainThreadWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def connect(ray, address: str | None, timeout_s: float, options: dict) -> None:
    """``ray.init(address, **options)``, bounded by ``timeout_s`` where it joins a cluster (see the module docstring)."""
    if ray.is_initialized():
        return
    remote = address not in (None, "local") or bool(os.environ.get("RAY_ADDRESS"))
    if not remote:
        ray.init(address=address, **options)
        return
    shown = address or os.environ.get("RAY_ADDRESS")
    t0 = time.monotonic()
    reachable(shown, timeout_s)
    outcome: list[BaseException | None] = []

    def join() -> None:
        try:
            ray.init(address=address, **options)
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            outcome.append(e)

    worker_log = logging.getLogger("ray._private.worker")
    quiet = _NoMainThreadWarning()
    worker_log.addFilter(quiet)
    try:
        thread = threading.Thread(target=join, name="ipw-ray-connect", daemon=True)
        thread.start()
        thread.join(max(timeout_s - (time.monotonic() - t0), 0.1))
    finally:
        worker_log.removeFilter(quiet)
    if not outcome:
        raise RayUnreachable(f"the Ray cluster at {shown} did not answer within {timeout_s:g} s (--connect-timeout): "
                             f"is a Ray head running there and reachable from this machine? {START_HINT}")  # fmt: skip
    if outcome[0] is not None:
        lines = str(outcome[0]).strip().splitlines()
        reason = lines[-1] if lines else type(outcome[0]).__name__
        raise RayUnreachable(f"could not join the Ray cluster at {shown}: {reason}; {START_HINT}")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))  # what ray.init sets from the main thread
