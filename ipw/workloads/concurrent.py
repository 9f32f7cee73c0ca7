"""The serving regime: N queries in flight against a server, or batches on a local engine.

``ipw profile --concurrency N`` (an OpenAI-compatible server) keeps N requests streaming at once;
``--batch-size N`` (the transformers engine) generates N queries per batched ``generate``. The
runner hands a run to :func:`execute` when either is set (``RunConfig.concurrency`` /
``batch_size``; 1 is allowed and measures batch 1 the same way, for sweeps).

What stays as at batch 1: the query set and its hash, warm-up, grading (outside any measurement),
one :class:`~ipw.records.QueryRecord` per query appended as it is final, the manifest's sessions,
``--resume`` (missing ids only) and ``--retry-errors``, and ``summary.json``.

What changes is energy. Windows would overlap, so no query reads its own window: a background
timeline (the sampler at ``sampler_hz``, 20 Hz unless set, or a GPU's monitor) records cumulative
energy, every attempt of every query records its events (start, first and last token, end, token
counts), and each query's energy is its share under :mod:`ipw.attribution`'s rule, split at its
first token into prefill and decode energy, each with its worst-case bound. A query is final once
every query that overlaps it has ended and the timeline covers its end; its record is then stored.
A run killed at any point loses the queries in flight and those finished but not yet final (at
most about 2N); ``--resume`` runs them again.

A failed attempt (a server that refuses a concurrent stream, drops one mid-answer, answers 429 or
5xx) is tried again by the engine's retry policy; the server's work on it is charged to its query.
A query that fails after its tries is recorded with its error (not scored), as at batch 1; no other
query's record changes. An :class:`~ipw.workloads.retry.AuthError` stops the run after the queries
in flight end and are stored.

The manifest's ``serving`` entry records the rule (name, version, prefill weight), the level, and
per session: active time, the energy over it per domain, the sum of the queries' energies
(conservation: they agree to rounding, on the same timeline) and the steady-state figures
(:func:`ipw.attribution.steady_state`).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ipw import attribution as A
from ipw.errors import IpwError
from ipw.profilers import base as clock
from ipw.records import finite
from ipw.workloads.engines.attempts import Attempt, Tracker

log = logging.getLogger(__name__)

DEFAULT_HZ = 20.0
"""Timeline rate when the run sets none (the profiler's default)."""
READ_ERR_S = 0.005
"""Half-width [s] of a timeline reading's time: the sampler keeps no read duration, and the slowest
counter read seen (NVML on an H200) takes 3.9 ms."""
COVER_TIMEOUT_S = 5.0
"""How long the last queries wait for the timeline to cover their end before they are stored with
an unbounded (infinite) uncertainty."""
BYTES_PER_TOKEN = 4.0
"""Prompt tokens are estimated as UTF-8 bytes / 4 where a server reports no usage (OpenAI's rule of
thumb for English text); such records say ``input_tokens_estimated``."""


class ServingConfigError(IpwError, ValueError):
    """A concurrency or batch size that cannot run (below 1, both at once, or the wrong engine)."""


def check_levels(concurrency, batch_size) -> None:
    """Concurrency and batch size are None or integers >= 1, and not both set."""
    for name, value in (("concurrency", concurrency), ("batch_size", batch_size)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ServingConfigError(f"{name} must be an integer >= 1, got {value!r}")
    if concurrency is not None and batch_size is not None:
        raise ServingConfigError("set concurrency (an OpenAI-compatible server) or batch_size (the transformers "
                                 "engine), not both")  # fmt: skip


def applies(config) -> bool:
    """Whether a run goes through this executor."""
    return getattr(config, "concurrency", None) is not None or getattr(config, "batch_size", None) is not None


def rule_for(config) -> A.Rule:
    return A.Rule(prefill_weight=float(getattr(config, "prefill_weight", 1.0) or 1.0))


# -- attempts and jobs --------------------------------------------------------------------------

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
            self.events: list[A.QueryEvents] = []  # every attempt of the session (its summary)
            self.recent: list[A.QueryEvents] = []  # those that may still overlap a query not yet final
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

    def snapshot(self, everything: bool = False) -> list[A.QueryEvents]:
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


def events_of(job: Job, attempt) -> A.QueryEvents:
    times = tuple(attempt.token_times_s)
    n_in = attempt.input_tokens if attempt.input_tokens is not None else estimated_input_tokens(job.prompt)
    return A.QueryEvents(job.query.id, attempt.t_start_s, max(attempt.t_end_s, times[-1] if times else attempt.t_start_s),
                         times[0] if times else None, times[-1] if times else None, float(n_in),
                         int(attempt.output_tokens), times)  # fmt: skip


# -- producers ----------------------------------------------------------------------------------

def _produce_async(engine, jobs: list[Job], warmup: list[Job], n: int, flight: Flight, out: queue.Queue) -> None:
    """Thread body: an event loop keeping ``n`` requests in flight; finished jobs go to ``out``."""
    from ipw.workloads.engines.openai_async import AsyncOpenAIClient
    from ipw.workloads.retry import AuthError

    async def run(todo: list[Job], report: bool) -> None:
        client = AsyncOpenAIClient(engine, n)
        pending = list(reversed(todo))

        async def worker() -> None:
            while pending and not flight.stop.is_set():
                job = pending.pop()
                try:
                    job.generation = await client.generate(job.prompt, job.settings, flight.for_job(job) if report else None)
                except AuthError as e:
                    flight.fatal = e
                    flight.stop.set()
                    job.error = e
                except IpwError as e:
                    job.error = e
                if report:
                    out.put(job)

        try:
            await asyncio.gather(*(worker() for _ in range(min(n, max(len(todo), 1)))))
        finally:
            await client.aclose()

    try:
        if warmup:
            asyncio.run(run(warmup, report=False))
            if flight.fatal is not None:
                return
        asyncio.run(run(jobs, report=True))
    except BaseException as e:  # noqa: BLE001 - handed to the main thread, which raises it
        flight.fatal = flight.fatal or e
        flight.stop.set()


def _produce_batches(engine, jobs: list[Job], warmup: list[Job], n: int, flight: Flight, out: queue.Queue) -> None:
    """Thread body: batches of ``n`` through ``engine.generate_batch``; finished jobs go to ``out``."""
    try:
        if warmup:
            prompts = [warmup[i % len(warmup)].prompt for i in range(n)]
            try:
                engine.generate_batch(prompts, warmup[0].settings)
            except IpwError as e:
                log.warning("warm-up batch failed (the run goes on): %s", e)
        for i in range(0, len(jobs), n):
            if flight.stop.is_set():
                return
            batch = jobs[i:i + n]
            tracks = [flight.for_job(j) for j in batch]
            attempts = [t.begin() for t in tracks]
            try:
                generations = engine.generate_batch([j.prompt for j in batch], batch[0].settings)
            except IpwError as e:
                for job, track, attempt in zip(batch, tracks, attempts):
                    attempt.error = e
                    track.end(attempt)
                    job.error = e
                    out.put(job)
                continue
            for job, track, attempt, g in zip(batch, tracks, attempts, generations):
                attempt.t_start_s = min(attempt.t_start_s, g.t_start_s)
                attempt.t_end_s = g.t_end_s
                attempt.token_times_s = list(g.extra.get("token_times_s", ()))
                attempt.input_tokens, attempt.output_tokens = g.input_tokens, g.output_tokens
                track.end(attempt)
                job.generation = g
                out.put(job)
    except BaseException as e:  # noqa: BLE001 - handed to the main thread
        flight.fatal = flight.fatal or e
        flight.stop.set()


# -- timeline curves ----------------------------------------------------------------------------

class Curves:
    """Per-domain :class:`ipw.attribution.Curve` slices from the profiler's timeline: the sampler's
    readings for edge-read meters, the monitor's counter values for monitored ones."""

    def __init__(self, profiler) -> None:
        self.profiler = profiler
        self.infos = {d: i for m in profiler.meters for d, i in m.infos.items()}
        self.monitored = {next(iter(m.infos)): m.monitor for m in profiler.meters if m.monitor is not None}
        self._t: dict[str, list[float]] = {}
        self._e: dict[str, list[float]] = {}
        self._seen = 0

    def _pull(self) -> None:
        sampler = self.profiler.sampler
        if sampler is None:
            return
        samples = sampler.samples
        n = len(samples)
        for s in samples[self._seen:n]:
            ts, es = self._t.setdefault(s.domain, []), self._e.setdefault(s.domain, [])
            if not ts or s.t_s > ts[-1]:
                ts.append(s.t_s)
                es.append(s.energy_j)
        self._seen = n

    def domains(self) -> list[str]:
        self._pull()
        return [d for d in self.infos if d in self._t or d in self.monitored]

    def get(self, lo: float = -math.inf, hi: float = math.inf) -> dict[str, A.Curve]:
        """Curves covering ``[lo, hi]`` (one reading beyond each end, where there is one)."""
        self._pull()
        out = {}
        for d, info in self.infos.items():
            if d in self.monitored:
                out[d] = _monitor_curve(self.monitored[d])
                continue
            ts, es = self._t.get(d), self._e.get(d)
            if not ts:
                continue
            pad = info.update_period_s + READ_ERR_S
            i = max(bisect.bisect_left(ts, lo - pad) - 1, 0) if lo > -math.inf else 0
            j = min(bisect.bisect_right(ts, hi + pad) + 1, len(ts)) if hi < math.inf else len(ts)
            out[d] = A.Curve.from_samples(ts[i:j], es[i:j], info.update_period_s, READ_ERR_S, info.resolution_j)
        return out

    def covers(self, lo: float, hi: float) -> bool:
        """Whether every domain's timeline knows ``[lo, hi]`` (cheap: no curve is built). True when
        there is no domain at all (nothing to wait for)."""
        self._pull()
        for d, info in self.infos.items():
            if d in self.monitored:
                monitor = self.monitored[d]
                off = monitor.clock.offset()
                err = off[1] if off else math.inf
                ct = monitor.timeline.ct
                if not ct or ct[0] + err > lo or ct[-1] - err < hi:
                    return False
                continue
            ts = self._t.get(d)
            if ts is None:  # not read yet (a meter whose every read fails waits for the end's timeout)
                return False
            if ts[0] + READ_ERR_S > lo or ts[-1] - info.update_period_s - READ_ERR_S < hi:
                return False
        return True


def _monitor_curve(monitor) -> A.Curve:
    """The monitor's counter values, exact at their driver timestamps (kept on the monotonic clock,
    give or take the clock offset's error); the estimate between them follows the monitor's
    rebuilt power curve (``NvmlMonitor.energy_between``)."""
    with monitor._lock:
        off = monitor.clock.offset()
        ct, ce = np.array(monitor.timeline.ct, dtype=float), np.array(monitor.timeline.ce, dtype=float)
    err = off[1] if off else math.inf
    t0 = float(ct[0]) if len(ct) else 0.0

    def spans(t: np.ndarray) -> list:
        return [monitor.energy_between(t0, float(x)) for x in np.ravel(t)]

    def estimate(t: np.ndarray) -> np.ndarray:
        return np.array([s.energy_j for s in spans(t)]).reshape(np.shape(t))

    def edge_error(t: np.ndarray) -> np.ndarray:
        return np.array([s.uncertainty_j for s in spans(t)]).reshape(np.shape(t))

    return A.Curve(ct - err, ct + err, ce, 1e-3, estimate, edge_error)


# -- the executor -------------------------------------------------------------------------------

class _Session:
    """One session's finaliser: turns finished jobs into stored records."""

    def __init__(self, store, config, profiler, observer, session: int, judge) -> None:
        from ipw.profilers.base import scope_of

        self.store, self.config, self.profiler = store, config, profiler
        self.observer, self.session, self.judge = observer, session, judge
        self.rule = rule_for(config)
        self.curves = Curves(profiler)
        self.scope_of = scope_of
        self.attributed: dict[str, float] = {}
        self.final: list[str] = []

    def ready(self, job: Job, flight: Flight) -> bool:
        if not job.attempts:
            return True
        lo = min(a.t_start_s for a in job.attempts)
        hi = max(a.t_end_s for a in job.attempts)
        return flight.earliest_inflight() >= hi and self.curves.covers(lo, hi)

    def finalize(self, job: Job, flight: Flight):
        """The record of a finished job (None for one that never started)."""
        from ipw.profilers.session import DomainEnergy, Measurement
        from ipw.workloads.runner import grade_answer, make_record

        q, g = job.query, job.generation
        if g is not None:
            g = _apply_stops(g, job.settings)
        if job.attempts:
            lo = min(a.t_start_s for a in job.attempts)
            hi = max(a.t_end_s for a in job.attempts)
            neighbours = [e for e in flight.snapshot() if e.t_start_s < hi and e.t_end_s > lo]
            curves = self.curves.get(lo, hi)
            found = A.attribute(neighbours, curves, self.rule, keys=[q.id])
            qe = found[0] if found else None
        else:  # never started (the run stopped first): not recorded
            return None
        infos = self.curves.infos
        idle = self.profiler.idle.power_w if self.profiler.idle else {}
        domains, flags = {}, [f"attributed:{self.rule.name}"]
        for d, c in curves.items():
            info = infos[d]
            e = qe.energy_j.get(d, 0.0) if qe else 0.0
            bound = qe.uncertainty_j.get(d, math.inf) if qe else math.inf
            if not math.isfinite(bound):
                flags.append(f"unbounded:{d}")
            domains[d] = DomainEnergy(d, e, hi - lo, e / (hi - lo) if hi > lo else 0.0, None, bound, info.source,
                                      info.measured, info.update_period_s, info.parent, idle.get(d),
                                      self.scope_of(info, infos))  # fmt: skip
            if info.parent is None:
                self.attributed[d] = self.attributed.get(d, 0.0) + e
        if any(not d.measured for d in domains.values()):
            flags.append("estimate")
        m = Measurement(q.id, lo, hi, domains, sum(len(c) for c in curves.values()), tuple(flags))
        record = make_record(q, g, grade_answer(q, g, job.error, self.judge), m, self.session, job.error)
        return replace(record, **self._energy_fields(job, g, qe, domains, idle))

    def store_all(self, jobs: list[Job], flight: Flight) -> None:
        """Finalise ``jobs`` and append their records in one durable write (one fsync)."""
        records = [r for r in (self.finalize(j, flight) for j in jobs) if r is not None]
        if not records:
            return
        self.store.append_many(records)
        for r in records:
            self.observer.record(r)
            self.final.append(r.id)

    def _energy_fields(self, job: Job, g, qe, domains, idle) -> dict:
        top = [d for d in domains.values() if d.parent is None]
        acc = [d for d in top if d.scope == "accelerator"]
        basis = acc or top
        pre = sum(qe.prefill_j.get(d.domain, 0.0) for d in basis) if qe else None
        dec = sum(qe.decode_j.get(d.domain, 0.0) for d in basis) if qe else None
        pre_u = sum(qe.prefill_uncertainty_j.get(d.domain, math.inf) for d in basis) if qe else None
        dec_u = sum(qe.decode_uncertainty_j.get(d.domain, math.inf) for d in basis) if qe else None
        above = None
        if qe and top and all(d.domain in idle for d in top):
            above = sum(qe.energy_j.get(d.domain, 0.0) - idle[d.domain] * qe.share_s for d in top)
        extra = dict(g.extra) if g is not None else {}
        times = extra.pop("token_times_s", None)
        last = job.attempts[-1]
        if times is None:
            times = last.token_times_s
        t0 = g.t_start_s if g is not None else last.t_start_s
        estimated = any(a.input_tokens is None for a in job.attempts)
        monitors = [self.curves.monitored[d.domain] for d in basis if d.domain in self.curves.monitored]
        bound = "counter-step worst case" if not monitors else (  # what the monitor's bound rests on (ipw.profilers.curve)
            "monitor power shape" if all(m.field_inside_steps for m in monitors) else "monitor step placement")
        extra |= {
            "t_start_s": t0,
            "token_offsets_s": [round(t - t0, 6) for t in times],
            "attribution": {"rule": self.rule.name, "version": self.rule.version, "scope": "accelerator" if acc else "system",
                            "bound": bound,
                            "prefill_uncertainty_j": finite(pre_u), "decode_uncertainty_j": finite(dec_u),
                            "share_s": qe.share_s if qe else None, "input_tokens_estimated": estimated,
                            "attempt_spans_s": [[a.t_start_s, a.t_end_s] for a in job.attempts]},
        }  # fmt: skip
        return {"prefill_energy_j": pre, "decode_energy_j": dec, "energy_above_idle_j": above,
                "attempts": max(len(job.attempts), 1), "engine_extra": extra}  # fmt: skip

    def summary(self, flight: Flight, level: int) -> dict:
        """Active time and energy, the queries' sum (conservation) and the steady state."""
        events = flight.snapshot(everything=True)
        curves = self.curves.get()
        infos = self.curves.infos
        top = {d: c for d, c in curves.items() if infos[d].parent is None}
        acc = [d for d in top if self.scope_of(infos[d], infos) == "accelerator"]
        active_s, active = A.active_energy(events, top)
        stored = {e.key for e in events} <= set(self.final)
        ok = [e for e in events if e.t_first_s is not None]
        steady = A.steady_state(ok, top, level)
        if steady is not None:  # the figures on the basis IPW uses: accelerator energy, else system
            basis = acc or list(top)
            e = sum(steady["domains"][d]["energy_j"] for d in basis)
            steady["basis"] = {"scope": "accelerator" if acc else "system", "domains": basis, "energy_j": e,
                               "uncertainty_j": sum(steady["domains"][d]["uncertainty_j"] for d in basis),
                               "power_w": e / steady["duration_s"],
                               "j_per_token": e / steady["output_tokens"] if steady["output_tokens"] else None}  # fmt: skip
        return {
            "session": self.session,
            "level": level,
            "queries": len(self.final),
            "attempts": len(events),
            "active_s": active_s,
            "active_energy_j": active,
            "attributed_energy_j": dict(self.attributed),
            "complete": stored,
            "steady_state": finite(steady),
            "total_output_tokens": float(sum(e.output_tokens for e in ok)),
        }


def _apply_stops(g, settings):
    """Cut the text at the first of the query's own stop strings (lm-eval ``until``) that a batched
    engine could not apply per row."""
    stops = [s for s in getattr(settings, "stop", ()) if s and s in g.text]
    if not stops:
        return g
    return replace(g, text=g.text[: min(g.text.index(s) for s in stops)], finish_reason="stop")


def execute(store, config, engine, observer=None, queries=None, retry_errors: bool = False):
    """Run the queries of the set not yet in ``store`` at ``config``'s concurrency or batch size."""
    from ipw.workloads import runner
    from ipw.workloads.prompts import render_prompt
    from ipw.workloads.retry import AuthError

    check_levels(config.concurrency, config.batch_size)
    level = config.concurrency or config.batch_size
    if config.concurrency is not None:
        from ipw.workloads.engines.openai import OpenAIEngine

        if not isinstance(engine, OpenAIEngine):
            raise ServingConfigError(f"--concurrency needs an OpenAI-compatible server (--engine openai), not the "
                                     f"{getattr(engine, 'name', type(engine).__name__)} engine; local transformers "
                                     "models batch with --batch-size")  # fmt: skip
        produce = _produce_async
    else:
        if not callable(getattr(engine, "generate_batch", None)):
            raise ServingConfigError(f"--batch-size needs an engine that generates batches (--engine transformers), "
                                     f"not the {getattr(engine, 'name', type(engine).__name__)} engine; servers take "
                                     "--concurrency")  # fmt: skip
        produce = _produce_batches
    observer = observer or runner.RunObserver()
    hz = config.sampler_hz or DEFAULT_HZ
    rule = rule_for(config)
    prior = store.manifest.get("serving", {})
    serving = prior | {
        "mode": "concurrency" if config.concurrency is not None else "batch_size", "level": level,
        "rule": rule.to_dict(), "timeline_hz": hz, "sessions": prior.get("sessions", []),
    }  # fmt: skip
    run = runner.RunSession(store, config, engine, queries or runner.load_queries(config), retry_errors, hz, serving=serving)
    todo_all, records, done, session, profiler, judge = run.todo, run.records, run.done, run.index, run.profiler, run.judge
    jobs = [Job(q, render_prompt(q), runner.query_settings(config.settings, q)) for q in todo_all if q.id not in done]
    warmup = [Job(q, render_prompt(q), config.settings) for q in todo_all[: config.warmup]] if jobs else []
    flight = Flight()
    out: queue.Queue = queue.Queue()
    fin = _Session(store, config, profiler, observer, session, judge)
    status, started = "interrupted", False
    thread = None
    try:
        run.measure_idle()
        observer.start(len(todo_all), records)
        started = True
        thread = threading.Thread(target=produce, args=(engine, jobs, warmup, level, flight, out),
                                  name="ipw-serving", daemon=True)  # fmt: skip
        thread.start()
        _finalise_loop(fin, flight, out, thread)
        if flight.fatal is not None:
            raise flight.fatal
        status = "complete"
    except AuthError as e:
        status = "failed"
        run.sessions[session]["error"] = str(e)
        raise
    finally:
        flight.stop.set()
        if thread is not None:
            thread.join(timeout=COVER_TIMEOUT_S)
        if started:
            observer.close()
        try:
            serving["sessions"] = serving["sessions"] + [fin.summary(flight, level)]
        except Exception as e:  # noqa: BLE001 - the records are stored; a summary failure must not mask the run's error
            log.warning("serving summary of session %d not computed: %s", session, e)
            serving["sessions"] = serving["sessions"] + [{"session": session, "level": level, "error": repr(e)}]
        run.close(status, serving=serving)
    runner.write_summary(store)
    return store


def _finalise_loop(fin: _Session, flight: Flight, out: queue.Queue, thread: threading.Thread) -> None:
    """Store each finished job once it is final; after the producer ends, wait for the timeline to
    cover the last ones (at most :data:`COVER_TIMEOUT_S`), then store the rest as they are."""
    pending: list[Job] = []
    ended_at = None
    while True:
        try:
            pending.append(out.get(timeout=0.02))
            while True:
                pending.append(out.get_nowait())
        except queue.Empty:
            pass
        ready = [j for j in pending if fin.ready(j, flight)]
        if ready:
            pending = [j for j in pending if j not in ready]
            fin.store_all(ready, flight)
            flight.closed(ready)
        if not thread.is_alive() and out.empty():
            if not pending:
                return
            ended_at = ended_at or time.monotonic()
            if time.monotonic() - ended_at > COVER_TIMEOUT_S:
                fin.store_all(pending, flight)
                return
