"""The runner: each query inside its own meter window, each record stored before the next query.

It orchestrates only: engines generate, ``grading`` grades, ``profilers`` measure, ``store`` keeps,
``efficiency`` computes. Warm-up queries (the first ``warmup`` queries of the set) run before the
measured ones and are not recorded. Grading happens outside the window, so only generation is
charged. A killed run is continued by :func:`resume`, which skips the ids already stored.
"""

from __future__ import annotations

import math
import os
import platform
import sys
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from ipw.errors import IpwError
from ipw.profilers.session import Measurement, Profiler
from ipw.store import IDLE, SUMMARY, RunStore, new_run_id
from ipw.workloads.engines import Engine, Generation, GenerationSettings, get_engine


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


def hardware_inventory(meters) -> dict:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = [m.describe().get("device") for m in meters if m.family in ("nvidia", "amd")]
    mem_gib = psutil.virtual_memory().total / 2**30
    cores = psutil.cpu_count(logical=True)
    summary = f"{cpu} x{cores}, {mem_gib:.0f} GiB" + (f", {', '.join(map(str, gpus))}" if gpus else "")
    return {"platform": platform.platform(), "cpu": cpu, "logical_cores": cores, "memory_gib": round(mem_gib, 1),
            "gpus": gpus, "summary": summary}  # fmt: skip


def _finite(x):
    return x if not isinstance(x, float) or math.isfinite(x) else None


def make_record(query, generation: Generation | None, grade, m: Measurement, session: int, error: str | None) -> dict:
    """The stored record of one query: answer, grade, timing and energy with its provenance."""
    top = [d for d in m.domains.values() if d.parent is None]
    e2e = generation.e2e_s if generation else m.duration_s
    return {
        "id": query.id,
        "domain": query.domain,
        "difficulty": query.difficulty,
        "grader": query.grader,
        "reference": query.answer,
        "output": generation.text if generation else None,
        "correct": grade.correct,
        "extracted": grade.extracted,
        "grade_method": grade.method,
        "grade_reason": grade.reason,
        **(generation.timing() if generation else {"e2e_s": e2e}),
        "energy_j": m.energy_j,
        "energy_above_idle_j": _finite(m.energy_above_idle_j) if m.energy_above_idle_j is not None else None,
        "power_w": m.energy_j / e2e if e2e > 0 else None,
        "energy_uncertainty_j": _finite(sum(d.uncertainty_j for d in top)),
        "window_s": m.duration_s,
        "measured": m.measured,
        "flags": list(m.flags),
        "domains": {
            d.domain: {"energy_j": d.energy_j, "source": d.source, "measured": d.measured,
                       "uncertainty_j": _finite(d.uncertainty_j), "parent": d.parent}
            for d in m.domains.values()
        },  # fmt: skip
        "engine_extra": generation.extra if generation else {},
        "session": session,
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "error": error,
    }


class _Progress:
    """tqdm bar showing queries done, running accuracy, energy per query and IPW."""

    def __init__(self, total: int, records: list[dict], enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=len(records), unit="q", disable=not enabled, dynamic_ncols=True)
        self.correct = self.scored = 0
        self.energy = self.power = 0.0
        self.n = 0
        for r in records:
            self.add(r, refresh=False)

    def add(self, r: dict, refresh: bool = True) -> None:
        self.n += 1
        self.energy += r["energy_j"]
        self.power += r["power_w"] or 0.0
        if r["correct"] is not None:
            self.scored += 1
            self.correct += bool(r["correct"])
        if refresh:
            self.bar.update(1)
        acc = self.correct / self.scored if self.scored else 0.0
        mean_p = self.power / self.n
        est = "" if r["measured"] else " (estimate)"
        self.bar.set_postfix_str(
            f"acc {acc:.1%}  {self.energy / self.n:.2f} J/q{est}  IPW {acc / mean_p if mean_p else 0:.4f}/W"
        )

    def close(self) -> None:
        self.bar.close()


def _session_entry() -> dict:
    return {"started": datetime.now(timezone.utc).isoformat(), "command": sys.argv, "pid": os.getpid(), "status": "running"}


def _measure(profiler: Profiler, engine: Engine, prompt: str, settings: GenerationSettings, name: str):
    with profiler.window(name) as w:
        try:
            generation, error = engine.generate(prompt, settings), None
        except IpwError as e:
            generation, error = None, str(e)
    return generation, error, w.result


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


def execute(store: RunStore, config: RunConfig, engine: Engine, progress: bool = True) -> RunStore:
    """Run every query of the set not yet in ``store``; the heart of profile and resume."""
    from ipw.profilers.discover import discover
    from ipw.workloads.grading import Grade, grade
    from ipw.workloads.querysets import render_prompt

    queries = load_queries(config)
    manifest = store.manifest
    if manifest.get("queryset", {}).get("sha256") not in (None, queries.sha256):
        raise IpwError(f"the query set {queries.path} changed since run {store.path.name} started; start a new run")
    todo_all = select(queries.queries, config.limit)
    records = store.records()
    done = {r["id"] for r in records}
    sessions = manifest.get("sessions", []) + [_session_entry()]
    session = len(sessions) - 1
    found = discover()
    profiler = Profiler(found.meters, sampler_hz=config.sampler_hz)
    store.update_manifest(
        sessions=sessions,
        queryset={"name": queries.name, "path": str(queries.path), "sha256": queries.sha256, "n": len(todo_all)},
        meters=[m.describe() for m in found.meters],
        absent=[asdict(a) for a in found.absent],
        hardware=hardware_inventory(found.meters),
    )
    status = "interrupted"
    bar = None
    judge = get_engine("openai", **config.judge) if config.judge else None
    try:
        if config.idle_s > 0:
            idle = profiler.measure_idle(config.idle_s)
            store.write_json(IDLE, store.read_json(IDLE, []) + [{"session": session, "power_w": idle.power_w, "duration_s": idle.duration_s}])
        for q in todo_all[: config.warmup]:
            engine.generate(render_prompt(q), config.settings)
        bar = _Progress(len(todo_all), records, progress)
        for q in (q for q in todo_all if q.id not in done):
            generation, error, m = _measure(profiler, engine, render_prompt(q), query_settings(config.settings, q), q.id)
            if generation is not None:
                g = grade(q, generation.text, judge=judge)
            else:
                g = Grade(False, None, "engine-error", f"no answer: {error}")
            record = make_record(q, generation, g, m, session, error)
            store.append(record)
            bar.add(record)
        status = "complete"
    finally:
        if bar is not None:
            bar.close()
        timeline = profiler.timeline()
        if not timeline.empty:
            timeline["session"] = session
        store.append_timeline(timeline)
        profiler.close()
        if judge is not None:
            judge.close()
        sessions[session] |= {"status": status, "ended": datetime.now(timezone.utc).isoformat()}
        store.update_manifest(sessions=sessions, status=status)
    write_summary(store)
    return store


def write_summary(store: RunStore) -> dict:
    from ipw.efficiency import summarize
    from ipw.store import load

    frame = load(store.path).queries
    if frame.empty:
        return {}
    summary = {
        "overall": summarize(frame).to_dict(orient="records")[0],
        "by_domain": summarize(frame, by="domain").to_dict(orient="records"),
    }
    store.write_json(SUMMARY, summary)
    return summary


def profile(config: RunConfig, engine: Engine | None = None, progress: bool = True) -> RunStore:
    """Start a new run. ``engine`` may be passed in (already loaded); else it is built from the config."""
    config = replace(config, engine=resolve_engine_name(config.engine))
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
        return execute(store, config, engine, progress)
    finally:
        if own:
            engine.close()


def resume(run: Path | str, engine: Engine | None = None, progress: bool = True) -> RunStore:
    """Continue a stopped run: same config, same query set (checked by hash), missing ids only."""
    store = RunStore.open(run)
    config = RunConfig.from_dict(store.manifest["config"])
    own = engine is None
    engine = engine or get_engine(config.engine, **config.engine_options)
    try:
        return execute(store, config, engine, progress)
    finally:
        if own:
            engine.close()


def _version() -> str:
    from ipw import __version__

    return __version__
