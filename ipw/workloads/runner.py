"""The runner: each query inside its own meter window, each record stored before the next query.

It orchestrates only: engines generate, ``grading`` grades, ``profilers`` measure, ``store`` keeps,
``efficiency`` computes. Each finished :class:`~ipw.records.QueryRecord` is handed to the caller's
:class:`RunObserver` (the command line draws its progress bar from it). Warm-up queries (the
first ``warmup`` queries of the set) run before the measured ones and are not recorded. Grading
happens outside the window, so only generation is charged. A killed run is continued by
:func:`resume`, which skips the ids already stored.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from ipw.errors import IpwError, MeterReadError
from ipw.profilers import base as clock
from ipw.profilers.inventory import hardware_inventory
from ipw.profilers.session import Measurement, Profiler
from ipw.records import QueryRecord
from ipw.store import IDLE, SUMMARY, RunStore, new_run_id
from ipw.workloads import shards
from ipw.workloads.engines import Engine, Generation, GenerationSettings, get_engine
from ipw.workloads.retry import AuthError

log = logging.getLogger(__name__)


class RunObserver:
    """What a caller may watch: the run's size before its first query, then each record stored.
    The default observes nothing; the command line's progress bar is one."""

    def start(self, total: int, done: list[QueryRecord]) -> None:
        """``total`` queries in this run, of which ``done`` were stored by earlier sessions."""

    def record(self, record: QueryRecord) -> None:
        """One query finished and stored."""

    def close(self) -> None:
        """The session ended (completed, failed or interrupted)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; stored in the manifest, so that --resume rebuilds it."""

    engine: str = "auto"
    engine_options: dict = field(default_factory=dict)
    queries: str = "default"
    settings: GenerationSettings = GenerationSettings(max_tokens=64)
    warmup: int = 2
    limit: int | None = None
    idle_s: float = 5.0
    sampler_hz: float | None = None
    runs_dir: str = "runs"
    run_id: str | None = None
    lm_eval: dict | None = None
    judge: dict | None = None  # options of an OpenAI-compatible engine grading "judge" queries
    # serving regime (ipw.workloads.concurrent): N requests in flight, or batches of N; None: one at a time
    concurrency: int | None = None
    batch_size: int | None = None
    prefill_weight: float = 1.0  # the attribution rule's weight of a prompt token (ipw.attribution)
    shard: str | None = None  # "i/n": this run's part of the query set (ipw.workloads.shards)
    gpus: tuple | None = None  # CUDA indices or UUIDs to measure (None: every visible GPU)
    cpu_scope: str | None = None  # the CPU estimate's scope: "machine" or "process-tree" (None: machine)

    def __post_init__(self) -> None:
        from ipw.workloads.concurrent import check_levels

        check_levels(self.concurrency, self.batch_size)
        shards.parse(self.shard)

    def to_dict(self) -> dict:
        return asdict(self) | {"settings": self.settings.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        s = dict(d["settings"])
        s["stop"] = tuple(s.get("stop", ()))
        return cls(**(d | {"settings": GenerationSettings(**s)}))


def resolve_engine_name(name: str) -> str:
    """``auto``: llama.cpp when llama-cpp-python is installed (about 7x faster decoding on CPU), else transformers."""
    if name != "auto":
        return name
    import importlib.util

    return "llamacpp" if importlib.util.find_spec("llama_cpp") else "transformers"


def load_queries(config: RunConfig):
    from ipw.workloads import querysets

    if config.lm_eval:
        qs = querysets.load_lm_eval_task(**config.lm_eval)
    else:
        qs = querysets.load_queryset(config.queries)
    return qs


def make_record(query, generation: Generation | None, grade, m: Measurement, session: int, error: str | BaseException | None) -> QueryRecord:
    """The stored record of one query: answer, grade, timing and energy by scope with its provenance.
    ``error`` (a message, or the engine's exception) marks an engine error; ``attempts`` is the
    engine's count of tries (``Generation.extra["attempts"]``, or the exception's ``attempts``)."""
    attempts = (generation.extra.get("attempts") if generation else getattr(error, "attempts", None)) or 1
    error = None if error is None else str(error)
    top = [d for d in m.domains.values() if d.parent is None]
    acc_j, acc_measured = m.scope_energy_j("accelerator"), m.scope_measured("accelerator")
    host_j, host_measured = m.scope_energy_j("host"), m.scope_measured("host")
    basis_j = m.energy_j if acc_j is None else acc_j
    timing = generation.timing() if generation else {"e2e_s": m.duration_s}
    record = QueryRecord(
        id=query.id, domain=query.domain, difficulty=query.difficulty, grader=query.grader,
        reference=query.answer, output=generation.text if generation else None,
        correct=grade.correct, extracted=grade.extracted, grade_method=grade.method, grade_reason=grade.reason,
        **timing,
        energy_j=m.energy_j, energy_above_idle_j=m.energy_above_idle_j,
        accelerator_energy_j=acc_j, accelerator_measured=acc_measured,
        host_energy_j=host_j, host_measured=host_measured,
        power_w=basis_j / m.duration_s if m.duration_s > 0 else None,
        energy_uncertainty_j=sum(d.uncertainty_j for d in top),
        window_s=m.duration_s, measured=m.measured, flags=tuple(m.flags),
        domains={
            d.domain: {"energy_j": d.energy_j, "source": d.source, "measured": d.measured,
                       "uncertainty_j": d.uncertainty_j if d.uncertainty_j != float("inf") else None,
                       "parent": d.parent, "scope": d.scope, "bound_basis": d.bound_basis}
            for d in m.domains.values()
        },
        engine_extra=generation.extra if generation else {},
        session=session, attempts=attempts, finished_at=datetime.now(timezone.utc).isoformat(), error=error,
    )  # fmt: skip
    if not m.domains:  # a meter gap: no energy figure at all, not 0 J
        record = replace(record, energy_j=None, power_w=None, energy_uncertainty_j=None)
    return record


def grade_answer(query, generation: Generation | None, error, judge):
    """The query's grade; a query the engine gave no answer for is not scored (``correct`` None:
    the rule of ipw.efficiency), whichever executor ran it."""
    from ipw.workloads.grading import Grade, grade

    if generation is None:
        return Grade(None, None, "engine-error", f"no answer: {error}")
    return grade(query, generation.text, judge=judge)


def _session_entry() -> dict:
    return {"started": datetime.now(timezone.utc).isoformat(), "command": sys.argv, "pid": os.getpid(), "status": "running",
            "node": shards.node()}


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
    from ipw.workloads.prompts import render_prompt

    for q in queries:
        try:
            engine.generate(render_prompt(q), settings)
        except AuthError:
            raise
        except IpwError as e:
            log.warning("warm-up query %s failed (the run goes on): %s", q.id, e)


def select(queries, limit: int | None) -> list:
    """All queries, or ``limit`` of them taken round-robin across domains in file order, so that a
    short run still covers every domain."""
    queries = list(queries)
    if not limit or limit >= len(queries):
        return queries
    by_domain: dict[str, list] = {}
    for q in queries:
        by_domain.setdefault(q.domain, []).append(q)
    picked, rank = [], 0
    while len(picked) < limit:
        picked += [qs[rank] for qs in by_domain.values() if rank < len(qs)][: limit - len(picked)]
        rank += 1
    return picked


def query_settings(settings: GenerationSettings, query) -> GenerationSettings:
    """The settings for one query: an lm-eval task's ``until`` strings become stop strings."""
    until = tuple(query.meta.get("until", ()) or ())
    return replace(settings, stop=tuple(dict.fromkeys(settings.stop + until))) if until else settings


def execute(store: RunStore, config: RunConfig, engine: Engine, observer: RunObserver | None = None, queries=None,
            retry_errors: bool = False) -> RunStore:  # fmt: skip
    """Run every query of the set not yet in ``store``; the heart of profile and resume. With
    ``retry_errors``, queries whose latest record is an engine error (or a meter gap) run again;
    the new record supersedes the old one (the store keeps the latest record of an id)."""
    from ipw.workloads import concurrent

    queries = shards.restrict(store, queries or load_queries(config), config.shard)
    if concurrent.applies(config):  # N in flight or batches of N: per-query energy by attribution
        return concurrent.execute(store, config, engine, observer, queries, retry_errors=retry_errors)
    from ipw.workloads.prompts import render_prompt

    observer = observer or RunObserver()
    run = RunSession(store, config, engine, queries, retry_errors, config.sampler_hz)
    status, started = "interrupted", False
    try:
        run.measure_idle()
        _warm_up(engine, run.todo[: config.warmup], config.settings)
        observer.start(len(run.todo), run.records)
        started = True
        for q in (q for q in run.todo if q.id not in run.done):
            generation, error, m = _measure(run.profiler, engine, render_prompt(q), query_settings(config.settings, q), q.id)
            record = make_record(q, generation, grade_answer(q, generation, error, run.judge), m(), run.index, error)
            store.append(record)
            observer.record(record)
        status = "complete"
    except AuthError as e:
        status = "failed"
        run.sessions[run.index]["error"] = str(e)
        raise
    finally:
        if started:
            observer.close()
        run.close(status)
    write_summary(store)
    return store


class RunSession:
    """One session of a run, as both executors (one at a time, and ``ipw.workloads.concurrent``)
    open and close it: the queries still to do, the latest stored records, a session entry in the
    manifest, the meters (discovered with the run's GPU and CPU-scope options, windows synchronising
    CUDA when the engine runs on it), the judge, the idle baseline, and at the end the timeline and
    the session's status."""

    def __init__(self, store: RunStore, config: RunConfig, engine: Engine, queries, retry_errors: bool,
                 sampler_hz: float | None, **manifest) -> None:  # fmt: skip
        from ipw.profilers.discover import DiscoverConfig, discover

        prior = store.manifest
        if prior.get("queryset", {}).get("sha256") not in (None, queries.sha256):
            raise IpwError(f"the query set {queries.path} changed since run {store.path.name} started; start a new run")
        self.store, self.config = store, config
        self.todo = select(queries.queries, config.limit)
        self.records = _latest(store.records(), retry_errors)
        self.done = {r.id for r in self.records}
        self.sessions = prior.get("sessions", []) + [_session_entry()]
        self.index = len(self.sessions) - 1
        gpus = tuple(config.gpus) if config.gpus else None
        found = discover(DiscoverConfig(gpus=gpus, cpu_scope=config.cpu_scope))
        self.profiler = Profiler(found.meters, sampler_hz=sampler_hz, sync_cuda=bool(getattr(engine, "sync_cuda", False)))
        store.update_manifest(
            sessions=self.sessions,
            queryset={"name": queries.name, "path": str(queries.path), "sha256": queries.sha256, "n": len(self.todo)},
            meters=[m.describe() for m in found.meters],
            absent=[asdict(a) for a in found.absent],
            hardware=hardware_inventory(found.meters),
            **manifest,
        )
        self.judge = get_engine("openai", **config.judge) if config.judge else None

    def measure_idle(self) -> None:
        if self.config.idle_s > 0:
            idle = self.profiler.measure_idle(self.config.idle_s)
            entry = {"session": self.index, "power_w": idle.power_w, "duration_s": idle.duration_s}
            self.store.write_json(IDLE, self.store.read_json(IDLE, []) + [entry])

    def close(self, status: str, **manifest) -> None:
        """Store the session's timeline, release the meters and the judge, and close the session entry."""
        try:
            timeline = self.profiler.timeline()
            if not timeline.empty:
                timeline["session"] = self.index
            self.store.append_timeline(timeline)
        finally:
            self.profiler.close()
            if self.judge is not None:
                self.judge.close()
            self.sessions[self.index] |= {"status": status, "ended": datetime.now(timezone.utc).isoformat()}
            self.store.update_manifest(sessions=self.sessions, status=status, **manifest)


def _latest(records: list[QueryRecord], drop_errors: bool) -> list[QueryRecord]:
    """The latest record of each id, in order; without the ones that failed when ``drop_errors``."""
    latest = {r.id: r for r in records}
    return [r for r in latest.values() if not (drop_errors and r.error is not None)]


def write_summary(store: RunStore) -> dict:
    """``summary.json``: :func:`ipw.efficiency.run_summary` of every record, the figures ``ipw
    profile`` prints at the end (one computation, one resample count, recorded in it)."""
    from ipw.efficiency import run_summary
    from ipw.store import load

    summary = run_summary(load(store.path).queries)
    if summary:
        store.write_json(SUMMARY, summary)
    return summary


def profile(config: RunConfig, engine: Engine | None = None, observer: RunObserver | None = None) -> RunStore:
    """Start a new run. ``engine`` may be passed in (already loaded); else it is built from the config.

    The query set is read first, so that a bad file is reported before a model loads or a run
    folder is made."""
    config = replace(config, engine=resolve_engine_name(config.engine))
    queries = load_queries(config)
    own = engine is None
    engine = engine or get_engine(config.engine, **config.engine_options)
    try:
        label = Path(str(config.engine_options.get("model", "default"))).stem
        run_id = config.run_id or new_run_id(f"{config.engine}-{label}")
        manifest = {
            "ipw_version": _version(),
            "created": datetime.now(timezone.utc).isoformat(),
            "config": config.to_dict(),
            "engine": engine.describe(),
            "python": sys.version.split()[0],
        }
        store = RunStore.create(config.runs_dir, run_id, manifest)
        return execute(store, config, engine, observer, queries)
    finally:
        if own:
            engine.close()


def resume(run: Path | str, engine: Engine | None = None, observer: RunObserver | None = None,
           retry_errors: bool = False) -> RunStore:  # fmt: skip
    """Continue a stopped run: same config, same query set (checked by hash), missing ids only
    (and, with ``retry_errors``, the ids whose latest record is an engine error)."""
    store = RunStore.open(run)
    config = RunConfig.from_dict(store.manifest["config"])
    queries = load_queries(config)
    own = engine is None
    engine = engine or get_engine(config.engine, **config.engine_options)
    try:
        return execute(store, config, engine, observer, queries, retry_errors=retry_errors)
    finally:
        if own:
            engine.close()


def _version() -> str:
    from ipw import __version__

    return __version__
