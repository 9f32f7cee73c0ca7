"""The runner with a fake engine at the engine boundary: orchestration without a model.

The engine is the only fake: the query set, grading, the meters this machine has (the labelled
CPU estimate here), the store and the summary are the real ones.
"""

from __future__ import annotations

import json

import pytest

from ipw.core.errors import IpwError
from ipw.core.clock import now
from ipw.core.records import QueryRecord
from ipw.store import load
from ipw.run import runner
from ipw.engines import Engine, Generation, GenerationSettings
from ipw.engines.openai import EngineError

QUERIES = [
    {"id": "add", "prompt": "2 + 2?", "answer": "4", "grader": "numeric", "domain": "arithmetic"},
    {"id": "cap", "prompt": "Capital of France?", "answer": "Paris", "grader": "exact", "domain": "facts"},
    {"id": "mul", "prompt": "12 * 12?", "answer": "144", "grader": "numeric", "domain": "arithmetic"},
    {"id": "sky", "prompt": "Colour of the sky?", "answer": "blue", "grader": "exact", "domain": "facts"},
]
ANSWERS = {"2 + 2?": "4", "Capital of France?": "Paris", "12 * 12?": "145", "Colour of the sky?": "blue"}


class ScriptedEngine(Engine):
    """Answers from a table, stamping token times on ipw's clock; fails on prompts in ``fail``."""

    name = "scripted"

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.fail = fail
        self.prompts: list[str] = []

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        self.prompts.append(prompt)
        t0 = now()
        if prompt in self.fail:
            raise EngineError("HTTP 500 from the scripted server", status_code=500)
        text = ANSWERS[prompt]
        t1 = now()
        return Generation(text, 5, 2, t0, now(), t1, now(), "stop")

    def describe(self) -> dict:
        return {"engine": self.name, "model": "scripted"}


class Recorder(runner.RunObserver):
    def __init__(self) -> None:
        self.started: list[tuple[int, int]] = []
        self.records: list[QueryRecord] = []
        self.closed = 0

    def start(self, total, done):
        self.started.append((total, len(done)))

    def record(self, record):
        self.records.append(record)

    def close(self):
        self.closed += 1


def config(tmp_path, queryset, **kw):
    base = dict(engine="scripted", queries=str(queryset), settings=GenerationSettings(max_tokens=4),
                warmup=1, idle_s=0.0, runs_dir=str(tmp_path / "runs"), run_id="r")  # fmt: skip
    return runner.RunConfig(**(base | kw))


def test_records_reach_the_store_and_the_observer(tmp_path, queryset):
    engine, seen = ScriptedEngine(), Recorder()
    store = runner.profile(config(tmp_path, queryset), engine=engine, observer=seen)
    assert engine.prompts[0] == "2 + 2?" and len(engine.prompts) == 1 + len(QUERIES)  # one warm-up first
    assert seen.started == [(4, 0)] and seen.closed == 1
    assert [r.id for r in seen.records] == [q["id"] for q in QUERIES]
    assert store.records() == seen.records  # what was stored is what was observed
    q = load(store.path).queries
    assert list(q["correct"]) == [True, True, False, True]
    assert (q["window_s"] >= q["e2e_s"]).all()  # the window brackets the engine's own time
    summary = json.loads((store.path / "summary.json").read_text())
    assert summary["overall"]["accuracy"] == 0.75 and summary["overall"]["n_boot"] > 0


def test_an_engine_error_is_recorded_and_not_scored(tmp_path, queryset):
    store = runner.profile(config(tmp_path, queryset, warmup=0), engine=ScriptedEngine(fail=("12 * 12?",)))
    rec = {r.id: r for r in store.records()}
    assert "HTTP 500" in rec["mul"].error and rec["mul"].correct is None and rec["mul"].output is None
    overall = json.loads((store.path / "summary.json").read_text())["overall"]
    assert overall["errors"] == 1 and overall["scored"] == 3 and overall["accuracy"] == 1.0


def test_a_bad_query_file_fails_before_a_run_folder_exists(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "prompt": "p"}\n')
    engine = ScriptedEngine()
    with pytest.raises(IpwError, match="bad.jsonl:1"):
        runner.profile(config(tmp_path, bad), engine=engine)
    assert not (tmp_path / "runs" / "r").exists() and engine.prompts == []


def test_resume_runs_only_the_missing_ids(tmp_path, queryset):
    store = runner.profile(config(tmp_path, queryset, limit=2, warmup=0), engine=ScriptedEngine())
    assert [r.id for r in store.records()] == ["add", "cap"]
    manifest = json.loads((store.path / "manifest.json").read_text())
    manifest["config"]["limit"] = None
    (store.path / "manifest.json").write_text(json.dumps(manifest))
    engine, seen = ScriptedEngine(), Recorder()
    runner.resume(store.path, engine=engine, observer=seen)
    assert seen.started == [(4, 2)] and [r.id for r in seen.records] == ["mul", "sky"]
    assert sorted(load(store.path).queries["id"]) == sorted(q["id"] for q in QUERIES)
