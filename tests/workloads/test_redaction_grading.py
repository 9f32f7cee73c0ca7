"""Redaction never changes what is graded: real ``ipw profile --engine openai`` runs against the stub
server on 127.0.0.1 (tests/workloads/openai_stub.py).

- A placeholder key ("x") and a short key ("5") are no secrets: answers that contain them ("Mexico
  City", "5") are graded and stored as sent (100%, as without a key), and the run says once why the
  key is not redacted (a warning line and a note in the manifest's session entry), never the key.
- A real key that the server echoes is graded as sent (a regex on the key's prefix matches) and is
  in no file of the run folder and in nothing printed, through the concurrent executor as well
  (tests/workloads/test_secrets.py covers the one-at-a-time one)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from ipw.store import load

QUERIES = [
    {"id": "city", "prompt": "ECHO: Mexico City", "answer": "Mexico City", "grader": "exact", "domain": "geo"},
    {"id": "five", "prompt": "ECHO: 5", "answer": "5", "grader": "numeric", "domain": "math"},
    {"id": "word", "prompt": "ECHO: the answer is 5 x 1", "answer": "5", "grader": "numeric", "domain": "math"},
]


def profile(server, tmp_path, mode: str, run_id: str, key: str, queries: list[dict], *options: str):
    path = tmp_path / f"{run_id}.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in queries))
    env = os.environ | {"IPW_REDACT_KEY": key}
    done = subprocess.run(
        [sys.executable, "-m", "ipw", "profile", "--engine", "openai", "--base-url", f"{server.url}/{mode}/v1",
         "--model", "stub", "--api-key-env", "IPW_REDACT_KEY", "--queries", str(path), "--idle", "0",
         "--warmup", "0", "--runs-dir", str(tmp_path / "runs"), "--run-id", run_id, *options],
        capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = tmp_path / "runs" / run_id
    records = [json.loads(line) for line in (run / "queries.jsonl").read_text().splitlines()]
    return done, run, records


@pytest.mark.parametrize(("key", "options", "why"), [
    ("x", (), "a common placeholder value"),
    ("5", ("--concurrency", "2"), "shorter than 8 characters"),
])  # fmt: skip
def test_a_short_or_placeholder_key_changes_no_answer_and_no_grade(server, tmp_path, key, options, why):
    done, run, records = profile(server, tmp_path, "ok", "r", key, QUERIES, *options)
    by_id = {r["id"]: r for r in records}
    assert by_id["city"]["output"] == "Mexico City" and by_id["five"]["output"] == "5"
    assert by_id["word"]["output"] == "the answer is 5 x 1"
    assert all(r["correct"] is True and "redacted" not in r["engine_extra"] for r in records)
    assert json.loads((run / "summary.json").read_text())["overall"]["accuracy"] == 1.0
    warnings = [line for line in done.stderr.splitlines() if "is not redacted" in line]
    assert len(warnings) == 1 and why in warnings[0] and "$IPW_REDACT_KEY" in warnings[0]
    notes = json.loads((run / "manifest.json").read_text())["sessions"][-1]["redaction"]
    assert len(notes) == 1 and why in notes[0] and key not in notes[0]


def test_a_real_key_is_graded_as_sent_and_stored_nowhere(server, tmp_path):
    key = "sk-ipw-grade-" + secrets.token_hex(16)
    queries = [{"id": "h", "prompt": "Repeat your headers.", "answer": "x", "grader": "regex",
                "pattern": "Bearer sk-ipw-grade-[0-9a-f]{32}", "domain": "leak"}]  # fmt: skip
    done, run, records = profile(server, tmp_path, "echo", "real", key, queries, "--concurrency", "2")
    (r,) = records
    assert r["correct"] is True  # the regex saw the key: the answer was graded as the server sent it
    assert "Bearer [redacted]" in r["output"] and r["engine_extra"]["redacted"] is True
    assert "is not redacted" not in done.stderr and "redaction" not in json.loads((run / "manifest.json").read_text())["sessions"][-1]
    for path in (p for p in run.rglob("*") if p.is_file()):
        assert key.encode() not in path.read_bytes(), f"the key leaked into {path}"
    assert key not in done.stdout + done.stderr
    assert key not in load(run).queries.astype(str).to_string()  # Parquet segments are compressed: read back too


def test_a_judge_is_sent_the_redacted_answer_and_other_graders_the_raw_one():
    from ipw.engines.base import Generation
    from ipw.engines.secrets import redact, secret_keys
    from ipw.queries.querysets import Query
    from ipw.run.record import grade_answer
    from tests.workloads.test_grading import FakeJudge

    key = "sk-ipw-judge-" + secrets.token_hex(8)
    hide = (lambda value: redact(value, secret_keys([key])))
    answer = Generation(f"Paris (you sent {key})", 3, 4, 0.0, 1.0)
    judge = FakeJudge("CORRECT")
    query = Query(id="j", prompt="Capital of France?", answer="Paris", grader="judge", domain="d")
    assert grade_answer(query, answer, None, judge, hide).correct is True
    assert key not in judge.prompts[0] and "[redacted]" in judge.prompts[0]
    regex = Query(id="r", prompt="p", answer="x", grader="regex", domain="d", pattern="sk-ipw-judge-[0-9a-f]{16}")
    assert grade_answer(regex, answer, None, judge, hide).correct is True  # graded as sent
