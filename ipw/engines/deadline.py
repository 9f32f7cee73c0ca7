"""A query's deadline, enforced by the clock rather than by the arrival of the next chunk.

A read timeout bounds each wait for data, not a whole answer: a server that sends a chunk every
20 s never trips a 60 s read timeout, and a deadline looked at only when a chunk arrives is passed
by up to one chunk's gap (``--deadline 25`` against such a server let a query run 40 s). Here the
clock ends the try at the deadline itself:

- **sync** (:class:`Watchdog`): a timer thread, armed for the time left when the stream opens,
  shuts the stream's socket down at the deadline (``socket.shutdown``, which wakes a ``recv``
  blocked in another thread on Linux, macOS and Windows alike; closing the socket would not wake
  it on Linux). The read in progress then fails at once and the engine reports the deadline, not
  the broken connection. Where the HTTP library exposes no socket (a proxy, HTTP/2), the response
  is closed instead, which ends the read at the next chunk at the latest.
- **async** (:func:`within`): the try is a task cancelled at the deadline (``asyncio.wait_for``);
  the stream's ``async with`` closes the connection as the cancellation unwinds it.

Before the stream opens (connecting, waiting for the first byte) the read timeout already is at
most the time left (``OpenAIEngine.read_timeout``), so a try ends within about a second of its
deadline in every phase (the timer thread's own latency is well under a millisecond; arming and
cancelling it costs about 0.13 ms of CPU per try, measured on the project's 2-core VM).

Why our own timer rather than the HTTP library's: httpx (and httpcore) take one read timeout per
request and apply it to each read; they have no timeout over a whole streamed response.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time


class Watchdog:
    """Shut ``stream``'s connection down at ``deadline`` (``time.monotonic()`` seconds) unless the
    ``with`` block ends first; ``fired`` says whether it did."""

    def __init__(self, stream, deadline: float) -> None:
        self.stream, self.deadline = stream, deadline
        self.fired = False
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Watchdog:
        self._timer = threading.Timer(max(self.deadline - time.monotonic(), 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self) -> None:
        self.fired = True
        sock = _socket_of(self.stream)
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            else:
                self.stream.response.close()
        except (OSError, AttributeError, RuntimeError):
            pass  # the connection ended on its own meanwhile


def _socket_of(stream):
    """The socket under an openai stream's HTTP response (httpx/httpcore ``network_stream``), or None."""
    response = getattr(stream, "response", None)
    network = (getattr(response, "extensions", None) or {}).get("network_stream")
    get = getattr(network, "get_extra_info", None)
    try:
        sock = get("socket") if get is not None else None
    except Exception:  # noqa: BLE001 - a transport without that extra: fall back to closing the response
        return None
    return sock if isinstance(sock, socket.socket) else None


class PastDeadline(Exception):
    """Raised by :func:`within` when the deadline ended the awaited work."""


async def within(deadline: float, awaitable):
    """Await ``awaitable`` until ``deadline`` (``time.monotonic()`` seconds): its result, or
    :class:`PastDeadline` once the deadline passed (the work is cancelled)."""
    try:
        return await asyncio.wait_for(awaitable, timeout=max(deadline - time.monotonic(), 0.0))
    except asyncio.TimeoutError:
        if time.monotonic() + 1e-3 < deadline:  # a timeout of the work's own, not the deadline
            raise
        raise PastDeadline() from None
