"""Jobs and attempts in flight: what the producer threads and the finaliser share (one lock), and each attempt's events for the attribution rule."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from ipw.core import clock
from ipw.engines.attempts import Attempt, Tracker
from ipw.profilers import attribution


BYTES_PER_TOKEN = 4.0
"""Prompt tokens are estimated as UTF-8 bytes / 4 where a server reports no usage (OpenAI's rule of
thumb for English text); such records say ``input_tokens_estimated``."""


@dataclass
class Job:
    """One query of this session: its prompt, and what its attempts produced."""

    query: object
    prompt: str
    settings: object
    attempts: list = field(default_factory=list)
    generation: object = None
    error: BaseException | None = None


class Flight(Tracker):
    """Attempts in flight and ended, shared by the producer thread and the finaliser (one lock)."""

    def __init__(self, job: Job | None = None, shared: Flight | None = None) -> None:
        self.job = job
        self.shared = shared or self
        if shared is None:
            self.lock = threading.Lock()
            self.inflight: dict[int, float] = {}
            self.events: list[attribution.QueryEvents] = []  # every attempt of the session (its summary)
            self.recent: list[attribution.QueryEvents] = []  # those that may still overlap a query not yet final
            self.open: dict[int, float] = {}  # id(job) -> its first attempt's start, until it is final
            self.stop = threading.Event()
            self.fatal: BaseException | None = None

    def for_job(self, job: Job) -> Flight:
        return Flight(job, self)

    def begin(self):
        """Stamp and register a new attempt."""
        s = self.shared
        with s.lock:
            attempt = Attempt(clock.now())
            s.inflight[id(attempt)] = attempt.t_start_s
            if self.job is not None:
                s.open.setdefault(id(self.job), attempt.t_start_s)
        return attempt

    def end(self, attempt) -> None:
        s = self.shared
        if attempt.t_end_s is None:
            attempt.t_end_s = clock.now()
        ev = events_of(self.job, attempt)
        with s.lock:
            s.inflight.pop(id(attempt), None)
            self.job.attempts.append(attempt)
            s.events.append(ev)
            s.recent.append(ev)

    def earliest_inflight(self) -> float:
        with self.lock:
            return min(self.inflight.values(), default=math.inf)

    def snapshot(self, everything: bool = False) -> list[attribution.QueryEvents]:
        with self.lock:
            return list(self.events if everything else self.recent)

    def closed(self, jobs: list[Job]) -> None:
        """``jobs`` are final: drop from the working set the attempts that ended before every
        attempt of every job not yet final began (no such job can overlap them); the session's
        summary keeps them all."""
        with self.lock:
            for job in jobs:
                self.open.pop(id(job), None)
            cutoff = min(self.open.values(), default=math.inf)
            self.recent = [e for e in self.recent if e.t_end_s > cutoff]


def estimated_input_tokens(prompt: str) -> float:
    return max(1.0, round(len(prompt.encode("utf-8")) / BYTES_PER_TOKEN))


def served_at(attempt, t_first: float | None) -> float | None:
    """When the server began the attempt by its own account: the first token's arrival less the
    server's prefill time (llama.cpp's per-answer timings), never before the request was sent; None
    where the server gives no such time (the attribution rule then starts prefill at the request)."""
    prefill = getattr(attempt, "server_prefill_s", None)
    if prefill is None or t_first is None:
        return None
    return min(max(attempt.t_start_s, t_first - prefill), t_first)


def events_of(job: Job, attempt) -> attribution.QueryEvents:
    times = tuple(attempt.token_times_s)
    n_in = attempt.input_tokens if attempt.input_tokens is not None else estimated_input_tokens(job.prompt)
    first = times[0] if times else None
    return attribution.QueryEvents(job.query.id, attempt.t_start_s, max(attempt.t_end_s, times[-1] if times else attempt.t_start_s),
                         first, times[-1] if times else None, float(n_in),
                         int(attempt.output_tokens), times, served_at(attempt, first))  # fmt: skip
