"""The serial executor: each query inside its own meter window, each record stored before the next query.

Warm-up queries (the first ``warmup`` queries of the set) run before the measured ones and are not
recorded. Grading happens outside the window, so only generation is charged."""

from __future__ import annotations

import logging

from ipw.core import clock
from ipw.core.errors import IpwError, MeterReadError
from ipw.engines import Engine, GenerationSettings
from ipw.engines.retry import AuthError
from ipw.profilers.measurement import Measurement
from ipw.profilers.windows import Profiler
from ipw.queries.prompts import render_prompt
from ipw.run.config import RunConfig, query_settings
from ipw.run.record import grade_answer, make_record, redact_record
from ipw.run import stop as stops
from ipw.run.session import RunObserver, RunSession
from ipw.store import RunStore
from ipw.run.session import write_summary

log = logging.getLogger(__name__)


def _generate(engine: Engine, prompt: str, settings: GenerationSettings):
    """(generation, None), or (None, error) for an engine error; :class:`AuthError` stops the run."""
    try:
        return engine.generate(prompt, settings), None
    except AuthError:
        raise
    except IpwError as e:
        return None, e


def _measure(profiler: Profiler, engine: Engine, prompt: str, settings: GenerationSettings, name: str):
    """(generation, error, measurement) of one query; the measurement is a function, called once the
    answer is graded: a monitored GPU's window resolves when its counter has moved past the window's
    end (up to one update period), and the wait then overlaps grading instead of adding to it.

    A meter that fails to read at either edge leaves a gap (:func:`_meter_gap`): the query still
    runs and is graded, its record is flagged and carries an error (no energy: kept out of accuracy,
    IPW and IPJ alike), and the run goes on."""
    t0, gap = clock.now(), None
    try:
        window = profiler.start(name)
    except MeterReadError as e:
        window, gap = None, e
    try:
        generation, error = _generate(engine, prompt, settings)
    finally:
        if window is not None:
            try:
                window.stop(wait=False)
            except MeterReadError as e:
                window, gap = None, e

    def measurement() -> Measurement:
        nonlocal gap
        if window is not None and gap is None:
            try:
                return window.result
            except MeterReadError as e:
                gap = e
        return _meter_gap(profiler, name, t0, gap)

    if gap is not None:
        error = error or IpwError(f"energy not measured (meter gap): {gap}")
    return generation, error, measurement


def _meter_gap(profiler: Profiler, name: str, t0: float, e: MeterReadError) -> Measurement:
    """An empty measurement flagged ``meter-gap:<domain>`` for each domain of the meter family that
    failed (its message starts with the family: "rapl: ...", "nvidia: ..."), or ``meter-gap:unknown``."""
    family = str(e).split(":", 1)[0].strip()
    domains = [d for m in profiler.meters if m.family == family for d in m.infos] or ["unknown"]
    log.warning("energy of query %s not measured: %s", name, e)
    return Measurement(name, t0, clock.now(), {}, 0, tuple(f"meter-gap:{d}" for d in domains))


def _warm_up(engine: Engine, queries: list, settings: GenerationSettings) -> None:
    """Run the warm-up queries; one that fails after the engine's retries is logged, not fatal
    (only :class:`AuthError` stops the run)."""
    for q in queries:
        try:
            engine.generate(render_prompt(q), settings)
        except AuthError:
            raise
        except IpwError as e:
            log.warning("warm-up query %s failed (the run goes on): %s", q.id, e)


def execute(store: RunStore, config: RunConfig, engine: Engine, observer: RunObserver | None = None, queries=None,
            retry_errors: bool = False) -> RunStore:  # fmt: skip
    """Run ``queries`` not yet in ``store`` one at a time, each in its own window (see
    :func:`ipw.run.runner.execute`, which hands a run here). A stop (:mod:`ipw.run.stop`) ends the
    session as ``interrupted``, with its summary written, and raises :class:`~ipw.run.stop.RunInterrupted`."""
    observer = observer or RunObserver()
    stop = stops.current()
    run = RunSession(store, config, engine, queries, retry_errors, config.sampler_hz)
    status, started = "interrupted", False
    try:
        run.measure_idle()
        _warm_up(engine, run.todo[: config.warmup], config.settings)
        observer.start(len(run.todo), run.records)
        started = True
        with stop.finishing():
            for q in (q for q in run.todo if q.id not in run.done):
                if stop.requested:
                    break
                generation, error, m = _measure(run.profiler, engine, render_prompt(q),
                                                query_settings(config.settings, q, config.answer_stops), q.id)  # fmt: skip
                grade = grade_answer(q, generation, error, run.judge, run.redact)  # of the answer as given
                record = redact_record(make_record(q, generation, grade, m(), run.index, error, run.shard), run.redact)
                with stop.shielded():
                    store.append(record)
                    observer.record(record)
        status = "interrupted" if stop.requested else "complete"
    except AuthError as e:
        status = "failed"
        run.sessions[run.index]["error"] = str(e)
        raise
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        with stop.closing():
            if started:
                observer.close()
            run.close(status)
    with stop.closing():
        write_summary(store)
    if status == "interrupted":
        raise stops.RunInterrupted(store.path, stop.requested or "KeyboardInterrupt")
    return store
