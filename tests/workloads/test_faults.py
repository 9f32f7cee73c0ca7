"""``ipw profile --engine openai`` end to end against a misbehaving server on 127.0.0.1.

The real engine, runner, store, graders and summary; the only stand-in is the HTTP server
(tests/workloads/openai_stub.py). Retries, the per-query deadline, a refused key, runs where every
query fails, ``--resume --retry-errors``, and a meter that fails mid-run.
"""

from __future__ import annotations

import json
import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.store import load
from tests.workloads.openai_stub import StubServer

QUERIES = [
    {"id": "a", "prompt": "Say four. ECHO: 4", "answer": "4", "grader": "numeric", "domain": "arithmetic"},
    {"id": "b", "prompt": "Say Paris. ECHO: Paris", "answer": "Paris", "grader": "exact", "domain": "facts"},
    {"id": "c", "prompt": "Say five. ECHO: 6", "answer": "5", "grader": "numeric", "domain": "arithmetic"},
]


@pytest.fixture(scope="module")
def server():
    s = StubServer().start()
    yield s
    s.stop()


@pytest.fixture
def queryset(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    return path


def profile(server, queryset, tmp_path, mode: str, *extra: str, run_id: str = "r"):
    mode = f"{mode}.{tmp_path.name}"  # this test's own request counts
    args = ["profile", "--engine", "openai", "--base-url", f"{server.url}/{mode}/v1", "--model", "stub",
            "--queries", str(queryset), "--idle", "0", "--warmup", "0", "--quiet", "--retry-backoff", "0.01",
            "--runs-dir", str(tmp_path / "runs"), "--run-id", run_id, *extra]  # fmt: skip
    return CliRunner().invoke(main, args)


def sent(server, mode: str, tmp_path) -> int:
    return sum(m == f"{mode}.{tmp_path.name}" for m, _ in server.requests)


def test_a_transient_503_is_retried_and_scored_on_its_answer(server, queryset, tmp_path):
    result = profile(server, queryset, tmp_path, "flaky", "--warmup", "1")
    assert result.exit_code == 0, result.output
    q = load(tmp_path / "runs" / "r").queries
    assert q["error"].isna().all()
    # the warm-up (query a) met a's 503 and was retried, not fatal; b and c met theirs when measured
    assert list(q["attempts"]) == [1, 2, 2]
    assert [p for m, p in server.requests if m == f"flaky.{tmp_path.name}"].count(QUERIES[0]["prompt"]) == 3
    assert list(q["correct"]) == [True, True, False]
    assert "accuracy: 66.7%" in result.output


def test_a_refused_key_stops_the_run_at_the_first_query_with_the_reason(server, queryset, tmp_path):
    before = sent(server, "auth", tmp_path)
    result = profile(server, queryset, tmp_path, "auth", "--retries", "5")
    assert result.exit_code == 1 and sent(server, "auth", tmp_path) - before == 1
    assert "Error:" in result.output and "answered 401" in result.output and "refused the credentials" in result.output
    manifest = json.loads((tmp_path / "runs" / "r" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "401" in manifest["sessions"][-1]["error"]
    assert (tmp_path / "runs" / "r" / "queries.jsonl").read_text() == ""


@pytest.mark.parametrize(
    "mode, extra, reason",
    [("malformed", (), "malformed stream"), ("unfinished", (), "no finish_reason"),
     ("html", (), "HTML page"), ("hang", ("--deadline", "0.3"), "deadline")],
)  # fmt: skip
def test_when_every_query_fails_the_run_ends_with_a_summary(server, queryset, tmp_path, mode, extra, reason):
    result = profile(server, queryset, tmp_path, mode, "--retries", "1", *extra)
    assert result.exit_code == 0, result.output
    assert result.exception is None
    q = load(tmp_path / "runs" / "r").queries
    assert len(q) == 3 and q["error"].str.contains(reason).all() and q["correct"].isna().all()
    assert "scored 0, 3 errors not scored" in result.output and "nothing was scored" in result.output
    assert "--retry-errors" in result.output
    summary = json.loads((tmp_path / "runs" / "r" / "summary.json").read_text())
    assert summary["overall"]["errors"] == 3 and summary["overall"]["scored"] == 0


def test_resume_retry_errors_runs_failed_queries_again_and_keeps_one_row_per_id(server, queryset, tmp_path):
    result = profile(server, queryset, tmp_path, "flaky", "--retries", "0")  # every first try fails
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "r"
    assert load(run).queries["error"].notna().all()
    plain = CliRunner().invoke(main, ["profile", "--resume", str(run), "--quiet"])
    assert plain.exit_code == 0 and len(load(run).queries) == 3  # nothing missing: nothing run
    again = CliRunner().invoke(main, ["profile", "--resume", str(run), "--retry-errors", "--quiet"])
    assert again.exit_code == 0, again.output
    latest = load(run).queries.drop_duplicates("id", keep="last").set_index("id")
    assert latest["error"].isna().all() and list(latest["correct"]) == [True, True, False]
    assert "accuracy: 66.7%" in again.output


def test_after_retry_errors_the_frame_and_summary_have_one_row_per_id(server, queryset, tmp_path):
    """The store keeps the latest record of an id: the re-run supersedes the error record."""
    profile(server, queryset, tmp_path, "flaky", "--retries", "0")
    run = tmp_path / "runs" / "r"
    CliRunner().invoke(main, ["profile", "--resume", str(run), "--retry-errors", "--quiet"])
    q = load(run).queries
    assert sorted(q["id"]) == ["a", "b", "c"] and q["error"].isna().all()
    assert json.loads((run / "summary.json").read_text())["overall"]["n"] == 3


def test_retry_errors_needs_resume(server, queryset, tmp_path):
    result = profile(server, queryset, tmp_path, "ok", "--retry-errors")
    assert result.exit_code == 2 and "--retry-errors goes with --resume" in result.output
