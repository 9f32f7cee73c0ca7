"""RetryPolicy: backoff bounds, jittered delays, and which failures are transient or fatal."""

from __future__ import annotations

import random
import socket

import pytest

from ipw.core.errors import IpwError
from ipw.engines.retry import AuthError, RetryPolicy, is_fatal, is_transient, status_of


class Status(Exception):
    def __init__(self, code):
        self.status_code = code


class Response:
    def __init__(self, code):
        self.status_code = code


class WithResponse(Exception):  # httpx.HTTPStatusError's shape
    def __init__(self, code):
        self.response = Response(code)


class RemoteProtocolError(Exception):  # named like httpx's broken-stream error
    pass


def test_defaults_are_the_documented_ones():
    p = RetryPolicy()
    assert (p.tries, p.backoff_s, p.multiplier, p.backoff_max_s, p.jitter) == (3, 1.0, 2.0, 30.0, 0.5)
    assert (p.read_timeout_s, p.deadline_s) == (60.0, 300.0)


def test_delays_are_exponential_within_jitter_bounds_and_capped():
    p = RetryPolicy(tries=8, backoff_s=0.5, multiplier=3.0, backoff_max_s=20.0, jitter=0.25)
    bounds = [p.delay_bounds(k) for k in range(1, 8)]
    assert [hi for _, hi in bounds] == [0.5, 1.5, 4.5, 13.5, 20.0, 20.0, 20.0]
    assert all(lo == pytest.approx(0.75 * hi) for lo, hi in bounds)
    for seed in range(20):
        delays = list(p.delays(random.Random(seed)))
        assert len(delays) == 7
        assert all(lo <= d <= hi for d, (lo, hi) in zip(delays, bounds))
    assert list(p.delays(random.Random(3))) == list(p.delays(random.Random(3)))  # seeded: repeatable
    assert list(RetryPolicy(tries=1).delays()) == []


def test_zero_jitter_gives_exact_delays():
    assert list(RetryPolicy(tries=4, backoff_s=1.0, jitter=0.0).delays()) == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    "kw", [{"tries": 0}, {"tries": 1.5}, {"backoff_s": -1}, {"backoff_s": float("nan")}, {"jitter": 2},
           {"read_timeout_s": 0}, {"deadline_s": float("inf")}, {"multiplier": 0.5}],
)  # fmt: skip
def test_invalid_policies_are_refused(kw):
    with pytest.raises(IpwError, match="invalid retry policy"):
        RetryPolicy(**kw)


@pytest.mark.parametrize("code", [408, 409, 425, 429, 500, 502, 503, 504, 599])
def test_transient_statuses(code):
    assert is_transient(Status(code)) and is_transient(WithResponse(code)) and not is_fatal(Status(code))


@pytest.mark.parametrize("code", [400, 404, 422])
def test_client_errors_are_neither_transient_nor_fatal(code):
    assert not is_transient(Status(code)) and not is_fatal(Status(code))


@pytest.mark.parametrize("code", [401, 403])
def test_auth_statuses_are_fatal(code):
    assert is_fatal(Status(code)) and not is_transient(Status(code)) and status_of(WithResponse(code)) == code
    assert is_fatal(AuthError("no")) and isinstance(AuthError("no"), IpwError)


def test_transport_failures_are_transient_through_causes():
    assert is_transient(TimeoutError()) and is_transient(socket.timeout())
    assert is_transient(ConnectionRefusedError()) and is_transient(ConnectionResetError())
    assert is_transient(RemoteProtocolError("peer closed connection"))
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(ValueError("bad prompt"))


def test_an_error_may_decide_for_itself():
    e = IpwError("stream ended early")
    e.transient = True
    assert is_transient(e)
    s = Status(503)
    s.transient = False
    assert not is_transient(s)
