"""`ipw profile` end to end on the real default model: records, manifest, kill -9 and --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from ipw.queries.querysets import load_queryset
from ipw.store import decode_json, load
from ipw.run import config as run_config
from ipw.run import runner
from ipw.engines import GenerationSettings, get_engine

pytestmark = pytest.mark.slow

QUERIES = [
    {"id": "add", "prompt": "What is 2 + 2? Answer with the number only.", "answer": "4", "grader": "numeric", "domain": "arithmetic"},
    {"id": "cap", "prompt": "What is the capital of France? Answer in one word.", "answer": "Paris", "grader": "exact", "domain": "facts"},
    {"id": "mc", "prompt": "Which is a colour?", "answer": "B", "grader": "mc", "domain": "reasoning", "choices": ["Dog", "Red", "Seven"]},
    {"id": "mul", "prompt": "What is 12 * 12? Answer with the number only.", "answer": "144", "grader": "numeric", "domain": "arithmetic"},
    {"id": "km", "prompt": "How many metres are in 3 kilometres? Answer with the number only.", "answer": "3000", "grader": "numeric", "domain": "units"},
    {"id": "sky", "prompt": "What colour is a clear daytime sky? One word.", "answer": "blue", "grader": "exact", "domain": "facts"},
]


@pytest.fixture(scope="module")
def engine():
    e = get_engine("transformers", model="default")
    yield e
    e.close()


def config(tmp_path, queryset, **kw):
    base = dict(engine="transformers", queries=str(queryset), settings=GenerationSettings(max_tokens=8),
                warmup=1, idle_s=0.2, runs_dir=str(tmp_path / "runs"), run_id="r")  # fmt: skip
    return runner.RunConfig(**(base | kw))


def test_profile_records_every_query(tmp_path, queryset, engine):
    store = runner.profile(config(tmp_path, queryset), engine=engine)
    run = load(store.path)
    q = run.queries
    expected = run_config.select(load_queryset(str(queryset)).queries, None, "interleaved")  # the default order
    assert list(q["id"]) == [x.id for x in expected]  # warm-up ran but was not recorded
    assert (q["energy_j"] > 0).all() and (q["output_tokens"] >= 1).all()
    assert q["correct"].notna().all() and q["grade_reason"].map(bool).all()
    assert not q["measured"].any() and q["flags"].map(lambda f: "estimate" in f).all()
    assert (q["energy_above_idle_j"].notna()).all()
    # an engine in this process: the estimate charges this process tree's CPU time (ipw.run.cpu_scope)
    assert decode_json(q["domains"]).map(lambda d: d["cpu"]["source"]).eq("estimate.cpu_util_tdp.process_tree").all()
    m = run.manifest
    assert m["status"] == "complete" and len(m["queryset"]["sha256"]) == 64
    assert m["engine"]["engine"] == "transformers" and m["config"]["settings"]["max_tokens"] == 8
    assert m["meters"][0]["family"] == "estimate" and m["hardware"]["logical_cores"] >= 1
    assert run.idle and "cpu" in run.idle[0]["power_w"]
    assert run.summary["overall"]["n"] == len(QUERIES)


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path, queryset, engine):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "ipw", "profile", "--engine", "transformers", "--queries", str(queryset),
           "--max-tokens", "8", "--warmup", "0", "--idle", "0", "--runs-dir", str(runs), "--run-id", "k", "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = runs / "k" / "queries.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if records.is_file() and records.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = records.read_text().count("\n")
    assert 2 <= before < len(QUERIES)
    runner.resume(runs / "k", engine=engine)
    ids = Counter(load(runs / "k").queries["id"])
    assert set(ids) == {q["id"] for q in QUERIES}
    assert max(ids.values()) == 1
    sessions = json.loads((runs / "k" / "manifest.json").read_text())["sessions"]
    assert [s["status"] for s in sessions] == ["running", "complete"]  # the killed one never closed


def test_changed_query_set_refuses_to_resume(tmp_path, queryset, engine):
    store = runner.profile(config(tmp_path, queryset, limit=1), engine=engine)
    queryset.write_text(queryset.read_text() + json.dumps(QUERIES[0] | {"id": "new"}) + "\n")
    with pytest.raises(Exception, match="changed"):
        runner.resume(store.path, engine=engine)


def test_limit_takes_queries_round_robin_across_domains():
    from ipw.queries.querysets import load_queryset

    qs = load_queryset("default")
    picked = run_config.select(qs.queries, 12)
    assert len(picked) == 12 and len({q.id for q in picked}) == 12
    assert {q.domain for q in picked} == set(qs.domains())
    assert run_config.select(qs.queries, None) == list(qs.queries)


def test_lm_eval_until_strings_become_stop_strings():
    from ipw.queries.querysets import parse_query

    q = parse_query(json.dumps(QUERIES[0] | {"meta": {"until": ["\n\n", "Q:"]}}))
    s = run_config.query_settings(GenerationSettings(stop=("Q:",)), q)
    assert s.stop == ("Q:", "\n\n")
    assert run_config.query_settings(GenerationSettings(), parse_query(json.dumps(QUERIES[0]))).stop == ()
