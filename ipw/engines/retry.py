"""When and how often a failed request to a model server is tried again (sync and async alike).

A :class:`RetryPolicy` holds numbers only; the engine that owns the request loop asks it three
things and does its own sleeping (``time.sleep`` or ``await asyncio.sleep``):

- :meth:`RetryPolicy.delays`: the waits [s] before each retry, exponential with jitter;
- :func:`is_transient`: whether a failure is worth another try;
- :func:`is_fatal`: whether it must stop the whole run (:class:`AuthError`).

Defaults (``ipw profile --retries 2 --retry-backoff 1 --timeout 60 --deadline 300``):

- ``tries=3``: the first try and up to two retries.
- ``backoff_s=1.0``, ``multiplier=2.0``, ``backoff_max_s=30.0``: the k-th retry (k = 1, 2, ...)
  waits a time drawn uniformly from ``[(1 - jitter) * d_k, d_k]`` with
  ``d_k = min(backoff_max_s, backoff_s * multiplier ** (k - 1))`` and ``jitter=0.5``, so 0.5-1 s,
  then 1-2 s. Jitter spreads clients that failed together (full jitter would allow a zero wait).
- ``read_timeout_s=60.0``: the longest wait for any one read (connection, first byte, each chunk).
- ``deadline_s=300.0``: the longest one query may take, every try and every wait included. A
  server that trickles a chunk every 20 s never trips the read timeout, but trips this: the clock
  ends a try still streaming at the deadline (:mod:`ipw.engines.deadline`), not the next chunk,
  and a query its deadline ended is not tried again (its time is spent).

Transient (tried again): timeouts, HTTP 408, 409, 425, 429 and every 5xx, a refused, reset or
aborted connection, and a stream that breaks off or ends unfinished. Fatal for the run: HTTP 401
and 403 (no later query can succeed with the same key). Anything else (400, 404, 422, a model
that refuses the prompt) fails that query at once: trying again would get the same answer.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from ipw.core.errors import IpwError

TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
"""HTTP statuses below 500 that are worth another try (timeout, conflict, too early, rate limit)."""
FATAL_STATUS = frozenset({401, 403})
"""HTTP statuses that stop the run: the server refuses the credentials."""

_TRANSIENT_NAMES = (
    "Timeout", "ConnectError", "ConnectionError", "RemoteProtocolError", "ReadError", "WriteError",
    "IncompleteRead", "ChunkedEncodingError", "ServerDisconnected", "ClientPayloadError", "BrokenStream",
)  # fmt: skip
"""Exception class names (any HTTP library: httpx, aiohttp, requests, urllib3) that are transient."""


class AuthError(IpwError):
    """The server refused the credentials (HTTP 401/403): the run stops at this query, with the reason."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


def status_of(error: BaseException) -> int | None:
    """The HTTP status an error carries (``status_code``, or ``response.status_code``), else None."""
    for holder in (error, getattr(error, "response", None)):
        code = getattr(holder, "status_code", None) if holder is not None else None
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return None


def is_fatal(error: BaseException) -> bool:
    """True for an :class:`AuthError` or any error with HTTP status 401/403."""
    return isinstance(error, AuthError) or status_of(error) in FATAL_STATUS


def is_transient(error: BaseException) -> bool:
    """True when the same request may succeed if tried again (see the module docstring).

    An error may decide for itself with a boolean ``transient`` attribute (the engines' own errors
    do); else its HTTP status decides; else its type, its cause and its context are looked at:
    timeouts, connection errors and broken streams are transient.
    """
    if is_fatal(error):
        return False
    flag = getattr(error, "transient", None)
    if isinstance(flag, bool):
        return flag
    status = status_of(error)
    if status is not None:
        return status in TRANSIENT_STATUS or 500 <= status <= 599
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (TimeoutError, ConnectionError, EOFError)):
            return True
        if any(name in cls.__name__ for cls in type(e).__mro__ for name in _TRANSIENT_NAMES):
            return True
        e = e.__cause__ or e.__context__
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries, how long between them, and how long one read and one query may take.

    ``tries`` counts the first try (1: never retry). Times are seconds. See the module docstring
    for the defaults and the backoff formula.
    """

    tries: int = 3
    backoff_s: float = 1.0
    multiplier: float = 2.0
    backoff_max_s: float = 30.0
    jitter: float = 0.5
    read_timeout_s: float = 60.0
    deadline_s: float = 300.0

    def __post_init__(self) -> None:
        checks = {
            "tries": self.tries >= 1 and not isinstance(self.tries, bool) and float(self.tries).is_integer(),
            "backoff_s": _finite(self.backoff_s) and self.backoff_s >= 0,
            "multiplier": _finite(self.multiplier) and self.multiplier >= 1,
            "backoff_max_s": _finite(self.backoff_max_s) and self.backoff_max_s >= 0,
            "jitter": _finite(self.jitter) and 0 <= self.jitter <= 1,
            "read_timeout_s": _finite(self.read_timeout_s) and self.read_timeout_s > 0,
            "deadline_s": _finite(self.deadline_s) and self.deadline_s > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in bad)
            raise IpwError(f"invalid retry policy: {shown} (tries >= 1; times finite and >= 0, "
                           f"timeouts > 0; multiplier >= 1; 0 <= jitter <= 1)")  # fmt: skip

    def delay_bounds(self, retry: int) -> tuple[float, float]:
        """(shortest, longest) wait [s] before retry number ``retry`` (1 = the first retry)."""
        if retry < 1:
            raise ValueError("retry counts from 1")
        d = min(self.backoff_max_s, self.backoff_s * self.multiplier ** (retry - 1))
        return (1.0 - self.jitter) * d, d

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits [s] before each retry: ``tries - 1`` of them, each drawn in :meth:`delay_bounds`.

        A pure generator (no sleeping, no clock): pass a seeded ``random.Random`` for repeatable draws.
        """
        rng = rng or random.Random()
        for retry in range(1, self.tries):
            lo, hi = self.delay_bounds(retry)
            yield rng.uniform(lo, hi)

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
