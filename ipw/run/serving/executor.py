"""The serving regime: N queries in flight against a server, or batches on a local engine.

``ipw profile --concurrency N`` (an OpenAI-compatible server) keeps N requests streaming at once;
``--batch-size N`` (the transformers engine) generates N queries per batched ``generate``. The
runner hands a run to :func:`execute` when either is set (``RunConfig.concurrency`` /
``batch_size``; 1 is allowed and measures batch 1 the same way, for sweeps).

What stays as at batch 1: the query set and its hash, warm-up, grading (outside any measurement),
one :class:`~ipw.core.records.QueryRecord` per query appended as it is final, the manifest's sessions,
``--resume`` (missing ids only) and ``--retry-errors``, and ``summary.json``.

What changes is energy. Windows would overlap, so no query reads its own window: a background
timeline (the sampler at ``sampler_hz``, 20 Hz unless set, or a GPU's monitor) records cumulative
energy, every attempt of every query records its events (start, first and last token, end, token
counts), and each query's energy is its share under :mod:`ipw.profilers.attribution`'s rule, split at its
first token into prefill and decode energy, each with its worst-case bound. A query is final once
every query that overlaps it has ended and the timeline covers its end; its record is then stored.
A run killed at any point loses the queries in flight and those finished but not yet final (at
most about 2N); ``--resume`` runs them again.

A failed attempt (a server that refuses a concurrent stream, drops one mid-answer, answers 429 or
5xx) is tried again by the engine's retry policy; the server's work on it is charged to its query.
A query that fails after its tries is recorded with its error (not scored), as at batch 1; no other
query's record changes. An :class:`~ipw.engines.retry.AuthError` stops the run after the queries
in flight end; those the server also refused are not stored (as at batch 1), so ``--resume`` with
the right key runs them.

The manifest's ``serving`` entry records the rule (name, version, prefill weight), the level, and
per session: active time, the energy over it per domain, the sum of the queries' energies
(conservation: they agree to rounding, on the same timeline), the steady-state figures
(:func:`ipw.profilers.steady.steady_state`) and, against a server (``--concurrency``), what the
server says of its own timing over the session's queries (``server``: vLLM's mean queue, prefill and
decode times and its running and waiting requests, :mod:`ipw.engines.server_timing`; where the
server has no such metrics, ``available`` false and the reason). Warm-up queries run before it, apart.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from ipw.engines import server_timing
from ipw.engines.openai import OpenAIEngine
from ipw.engines.retry import AuthError
from ipw.queries.prompts import render_prompt
from ipw.run.config import ServingConfigError, check_levels, load_queries, query_settings, rule_for
from ipw.run import stop as stops
from ipw.run.serving.finaliser import Finaliser
from ipw.run.serving.flight import Flight, Job
from ipw.run.serving.producers import produce_async, produce_batches
from ipw.run.session import RunObserver, RunSession, write_summary

log = logging.getLogger(__name__)


DEFAULT_HZ = 20.0
"""Timeline rate when the run sets none (the profiler's default)."""


COVER_TIMEOUT_S = 5.0
"""How long the last queries wait for the timeline to cover their end before they are stored with
an unbounded (infinite) uncertainty."""


def execute(store, config, engine, observer=None, queries=None, retry_errors: bool = False):
    """Run the queries of the set not yet in ``store`` at ``config``'s concurrency or batch size."""
    check_levels(config.concurrency, config.batch_size)
    level = config.concurrency or config.batch_size
    if config.concurrency is not None:
        if not isinstance(engine, OpenAIEngine):
            raise ServingConfigError(f"--concurrency needs an OpenAI-compatible server (--engine openai), not the "
                                     f"{getattr(engine, 'name', type(engine).__name__)} engine; local transformers "
                                     "models batch with --batch-size")  # fmt: skip
        produce = produce_async
    else:
        if not callable(getattr(engine, "generate_batch", None)):
            raise ServingConfigError(f"--batch-size needs an engine that generates batches (--engine transformers), "
                                     f"not the {getattr(engine, 'name', type(engine).__name__)} engine; servers take "
                                     "--concurrency")  # fmt: skip
        produce = produce_batches
    observer = observer or RunObserver()
    hz = config.sampler_hz or DEFAULT_HZ
    rule = rule_for(config)
    prior = store.manifest.get("serving", {})
    serving = prior | {
        "mode": "concurrency" if config.concurrency is not None else "batch_size", "level": level,
        "rule": rule.to_dict(), "timeline_hz": hz, "sessions": prior.get("sessions", []),
    }  # fmt: skip
    run = RunSession(store, config, engine, queries or load_queries(config), retry_errors, hz, serving=serving)
    todo_all, records, done, session, profiler, judge = run.todo, run.records, run.done, run.index, run.profiler, run.judge
    jobs = [Job(q, render_prompt(q), query_settings(config.settings, q, config.answer_stops)) for q in todo_all if q.id not in done]
    warmup = [Job(q, render_prompt(q), config.settings) for q in todo_all[: config.warmup]] if jobs else []
    flight = Flight()
    out: queue.Queue = queue.Queue()
    fin = Finaliser(store, config, profiler, observer, session, judge, run.redact)
    status, started = "interrupted", False
    thread = watch = None
    stop = stops.current()
    try:
        run.measure_idle()
        observer.start(len(todo_all), records)
        started = True
        _warm_up(produce, engine, warmup, level)
        watch = server_timing.watch(engine.base_url, engine.api_key_env) if config.concurrency is not None else None
        thread = threading.Thread(target=produce, args=(engine, jobs, [], level, flight, out),
                                  name="ipw-serving", daemon=True)  # fmt: skip
        thread.start()
        with stop.finishing():
            _finalise_loop(fin, flight, out, thread, stop)
        if flight.fatal is not None:
            raise flight.fatal
        status = "interrupted" if stop.requested else "complete"
    except AuthError as e:
        status = "failed"
        run.sessions[session]["error"] = str(e)
        raise
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        with stop.closing():
            flight.stop.set()
            if thread is not None:
                thread.join(timeout=COVER_TIMEOUT_S)
            if started:
                observer.close()
            server = watch.stop() if watch is not None else None
            try:
                serving["sessions"] = serving["sessions"] + [fin.summary(flight, level) | ({"server": server} if server else {})]
            except Exception as e:  # noqa: BLE001 - the records are stored; a summary failure must not mask the run's error
                log.warning("serving summary of session %d not computed: %s", session, e)
                serving["sessions"] = serving["sessions"] + [{"session": session, "level": level, "error": repr(e)}]
            run.close(status, serving=serving)
    with stop.closing():
        write_summary(store)
    if status == "interrupted":
        raise stops.RunInterrupted(store.path, stop.requested or "KeyboardInterrupt")
    return store


def _warm_up(produce, engine, warmup: list[Job], level: int) -> None:
    """The warm-up queries, before the level's queries and before the server's metrics are first read
    (so the level's server-side figures are its own queries'); a fatal error (refused key) is raised."""
    if not warmup:
        return
    flight = Flight()
    produce(engine, [], warmup, level, flight, queue.Queue())
    if flight.fatal is not None:
        raise flight.fatal


def _finalise_loop(fin: Finaliser, flight: Flight, out: queue.Queue, thread: threading.Thread, stop) -> None:
    """Store each finished job once it is final; after the producer ends, wait for the timeline to
    cover the last ones (at most :data:`COVER_TIMEOUT_S`), then store the rest as they are. A stop
    request (:mod:`ipw.run.stop`) tells the producer to send no new query; those in flight finish."""
    pending: list[Job] = []
    ended_at = None
    while True:
        if stop.requested:
            flight.stop.set()
        try:
            pending.append(out.get(timeout=0.02))
            while True:
                pending.append(out.get_nowait())
        except queue.Empty:
            pass
        ready = [j for j in pending if fin.ready(j, flight)]
        if ready:
            pending = [j for j in pending if j not in ready]
            with stop.shielded():
                fin.store_all(ready, flight)
            flight.closed(ready)
        if not thread.is_alive() and out.empty():
            if not pending:
                return
            ended_at = ended_at or time.monotonic()
            if time.monotonic() - ended_at > COVER_TIMEOUT_S:
                with stop.shielded():
                    fin.store_all(pending, flight)
                return
