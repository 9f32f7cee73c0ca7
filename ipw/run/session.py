"""One session of a run, as both executors open and close it, what a caller may watch of it, and the run's ``summary.json``."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import asdict
from datetime import datetime, timezone

from ipw.core.errors import IpwError
from ipw.core.records import QueryRecord
from ipw.devices import discover as discovery
from ipw.devices.inventory import hardware_inventory
from ipw.engines import Engine, get_engine
from ipw.profilers.windows import Profiler
from ipw.queries import shards
from ipw.run import cpu_scope
from ipw.run.config import RunConfig, order_entry, select
from ipw.science.intelligence.metrics import run_summary
from ipw.store import IDLE, SUMMARY, RunStore, load

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


class RunSession:
    """One session of a run, as both executors (one at a time, and ``ipw.run.serving``)
    open and close it: the queries still to do, the latest stored records, a session entry in the
    manifest, the meters (discovered with the run's GPU and CPU-scope options, windows synchronising
    CUDA when the engine runs on it), the judge, the redaction of records (:meth:`redact`: the
    engine's and the judge's keys, where they are secrets; a key that is not is named in a warning
    and in the session entry's ``redaction`` notes, never its value), the idle baseline, and at the
    end the timeline and the session's status."""

    def __init__(self, store: RunStore, config: RunConfig, engine: Engine, queries, retry_errors: bool,
                 sampler_hz: float | None, **manifest) -> None:  # fmt: skip
        prior = store.manifest
        if prior.get("queryset", {}).get("sha256") not in (None, queries.sha256):
            raise IpwError(f"the query set {queries.path} changed since run {store.path.name} started; start a new run")
        self.store, self.config = store, config
        self.shard = shards.tag(config.shard)  # every record of a sharded run carries it
        self.todo = select(queries.queries, config.limit, config.order, config.order_seed)
        self.records = _latest(store.records(), retry_errors)
        self.done = {r.id for r in self.records}
        self.sessions = prior.get("sessions", []) + [_session_entry()]
        self.index = len(self.sessions) - 1
        gpus = tuple(config.gpus) if config.gpus else None
        scope = cpu_scope.choose(config.cpu_scope, config.server_pid, engine)
        found = discovery.discover(discovery.DiscoverConfig(gpus=gpus, cpu_scope=scope.scope, server_pid=scope.server_pid))
        self.cpu_scope = cpu_scope.describe(scope, found.meters)
        self.sessions[self.index]["cpu_scope"] = self.cpu_scope
        self.profiler = Profiler(found.meters, sampler_hz=sampler_hz, sync_cuda=bool(getattr(engine, "sync_cuda", False)))
        self.judge = get_engine("openai", **config.judge) if config.judge else None
        self._engines = [e for e in (engine, self.judge) if e is not None]
        notes = list(dict.fromkeys(n for n in (e.redaction_note() for e in self._engines) if n))
        for note in notes:
            log.warning("note: %s", note)
        if notes:
            self.sessions[self.index]["redaction"] = notes
        store.update_manifest(
            sessions=self.sessions,
            queryset={"name": queries.name, "path": str(queries.path), "sha256": queries.sha256, "n": len(self.todo),
                      "order": order_entry(self.todo, config.order, config.order_seed)},
            meters=[m.describe() for m in found.meters],
            absent=[asdict(a) for a in found.absent],
            hardware=hardware_inventory(found.meters),
            **shards.manifest_fields(config.shard, queries.queries),
            cpu_scope=self.cpu_scope,
            **manifest,
        )

    def redact(self, value):
        """``value`` with the engine's and the judge's secret keys replaced by ``[redacted]``."""
        for engine in self._engines:
            value = engine.redact(value)
        return value

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


def _session_entry() -> dict:
    return {"started": datetime.now(timezone.utc).isoformat(), "command": sys.argv, "pid": os.getpid(), "status": "running",
            "node": shards.node()}


def _latest(records: list[QueryRecord], drop_errors: bool) -> list[QueryRecord]:
    """The latest record of each id, in order; without the ones that failed when ``drop_errors``."""
    latest = {r.id: r for r in records}
    return [r for r in latest.values() if not (drop_errors and r.error is not None)]


def write_summary(store: RunStore) -> dict:
    """``summary.json``: :func:`ipw.science.intelligence.metrics.run_summary` of every record, the figures ``ipw
    profile`` prints at the end (one computation, one resample count, recorded in it)."""
    run = load(store.path)
    summary = run_summary(run.queries, serving=run.manifest.get("serving"))
    if summary:
        store.write_json(SUMMARY, summary)
    return summary
