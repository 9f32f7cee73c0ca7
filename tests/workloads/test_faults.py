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

QUERIES = [
    {"id": "a", "prompt": "Say four. ECHO: 4", "answer": "4", "grader": "numeric", "domain": "arithmetic"},
    {"id": "b", "prompt": "Say Paris. ECHO: Paris", "answer": "Paris", "grader": "exact", "domain": "facts"},
    {"id": "c", "prompt": "Say five. ECHO: 6", "answer": "5", "grader": "numeric", "domain": "arithmetic"},
]


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


def test_a_meter_that_fails_mid_run_leaves_a_flagged_gap_and_the_run_goes_on(server, queryset, tmp_path, monkeypatch, capsys):
    """A RAPL counter (a powercap tree on disk) turns unreadable for one query: that query is answered,
    graded, flagged ``meter-gap:<domain>`` and kept out of the metrics; the others are measured."""
    from ipw.cli.profile import print_summary
    from ipw.devices import discover as discovery
    from ipw.run import runner
    from ipw.engines import GenerationSettings
    from tests.fakes.powercap import PowercapTree

    tree = PowercapTree(tmp_path / "powercap", {"intel-rapl:0": "package-0"})
    real = discovery.discover
    monkeypatch.setattr(discovery, "discover", lambda cfg=None: real(discovery.DiscoverConfig(rapl_root=tree.root, probe_s=0)))

    class BreakSecond(runner.RunObserver):
        def record(self, record):  # between queries: break the counter after the first, mend it after the second
            n = len((tmp_path / "runs" / "gap" / "queries.jsonl").read_text().splitlines())
            tree.energy_file("intel-rapl:0").write_text("not a number\n" if n == 1 else "5000000\n")

    config = runner.RunConfig(
        engine="openai", engine_options={"base_url": f"{server.url}/ok/v1", "model": "stub", "backoff_s": 0.01},
        queries=str(queryset), settings=GenerationSettings(max_tokens=8), warmup=0, idle_s=0,
        runs_dir=str(tmp_path / "runs"), run_id="gap",
    )  # fmt: skip
    store = runner.profile(config, observer=BreakSecond())
    run = load(store.path)
    q = run.queries.set_index("id")
    assert run.manifest["status"] == "complete" and list(q.index) == ["a", "b", "c"]
    assert list(q.loc["b", "flags"]) == ["meter-gap:cpu-package:0"] and "meter gap" in q.loc["b", "error"]
    assert q.loc["b", "output"] == "Paris" and bool(q.loc["b", "correct"]) is True  # answered and graded
    assert q.loc["b", "energy_j"] is None or q.loc["b", "energy_j"] != q.loc["b", "energy_j"]  # no figure, not 0 J
    assert q.loc[["a", "c"], "error"].isna().all() and q.loc[["a", "c"], "energy_j"].notna().all()
    assert run.summary["overall"]["errors"] == 1 and run.summary["overall"]["scored"] == 2
    print_summary(store.path)
    out = capsys.readouterr().out
    assert "meter gaps: 1 queries have no energy" in out and "scored 2, 1 errors not scored" in out


def test_a_refused_key_at_concurrency_stores_no_query_in_flight_and_resume_with_the_key_runs_them(
        server, queryset, tmp_path, monkeypatch):  # fmt: skip
    """Every query in flight meets the 401; none is stored as an error, so a plain --resume with the
    right key runs all of them, as after a 401 at concurrency 1."""
    from tests.workloads.openai_stub import RIGHT_KEY

    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    result = profile(server, queryset, tmp_path, "key", "--concurrency", "4")
    assert result.exit_code == 1 and "refused the credentials" in result.output, result.output
    run = tmp_path / "runs" / "r"
    assert sent(server, "key", tmp_path) >= 1 and (run / "queries.jsonl").read_text() == ""
    monkeypatch.setenv("OPENAI_API_KEY", RIGHT_KEY)
    again = CliRunner().invoke(main, ["profile", "--resume", str(run), "--quiet"])
    assert again.exit_code == 0, again.output
    q = load(run).queries
    q = q.set_index("id").sort_index()  # stored in the order they finished
    assert list(q.index) == ["a", "b", "c"] and q["error"].isna().all() and list(q["correct"]) == [True, True, False]
