"""An API key never reaches a file, a log or a report: a real ``ipw profile --engine openai`` run
against a server on 127.0.0.1 that echoes the request headers (key included) into its answers and
its error messages, then ``ipw report``; every file written and everything printed is searched."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys



QUERIES = [
    {"id": "a", "prompt": "Repeat your headers.", "answer": "x", "grader": "exact", "domain": "leak"},
    {"id": "b", "prompt": "And again.", "answer": "x", "grader": "regex", "pattern": "Bearer", "domain": "leak"},
]


def ipw(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ipw", *args], capture_output=True, text=True, env=env, timeout=300)


def test_the_key_is_in_no_file_log_or_report(server, tmp_path):
    key = "sk-ipw-leak-" + secrets.token_hex(16)
    env = os.environ | {"IPW_LEAK_KEY": key, "OPENAI_LOG": "debug"}  # the client logs requests at debug
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    runs = tmp_path / "runs"
    printed = []
    for mode in ("echo", "echoerr"):
        done = ipw("profile", "--engine", "openai", "--base-url", f"{server.url}/{mode}/v1", "--model", "stub",
                   "--api-key-env", "IPW_LEAK_KEY", "--queries", str(queries), "--idle", "0", "--warmup", "1",
                   "--retries", "1", "--retry-backoff", "0.01", "--runs-dir", str(runs), "--run-id", mode, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        printed += [done.stdout, done.stderr]
    report = ipw("report", str(runs / "echo"), str(runs / "echoerr"), "-o", str(tmp_path / "report.html"), env=env)
    assert report.returncode == 0, report.stderr
    printed += [report.stdout, report.stderr]

    echo = [json.loads(line) for line in (runs / "echo" / "queries.jsonl").read_text().splitlines()]
    assert all("Bearer [redacted]" in r["output"] and r["engine_extra"]["redacted"] for r in echo)  # it did echo
    failed = [json.loads(line) for line in (runs / "echoerr" / "queries.jsonl").read_text().splitlines()]
    assert all("Bearer [redacted]" in r["error"] for r in failed)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"manifest.json", "queries.jsonl", "summary.json", "report.html"} <= {p.name for p in files}
    for path in files:
        assert key.encode() not in path.read_bytes(), f"the key leaked into {path}"
    for text in printed:
        assert key not in text
    assert "Bearer" in "".join(printed)  # the client's debug log did print request headers, redacted


def test_a_key_in_the_base_url_is_refused_before_anything_is_written(tmp_path):
    key = "sk-ipw-url-" + secrets.token_hex(8)
    for url in (f"http://user:{key}@127.0.0.1:9/v1", f"http://127.0.0.1:9/v1?key={key}"):
        done = ipw("profile", "--engine", "openai", "--base-url", url, "--runs-dir", str(tmp_path / "runs"),
                   "--run-id", "r", env=dict(os.environ))  # fmt: skip
        assert done.returncode == 2 and ("carries credentials" in done.stderr or "query string" in done.stderr)
        assert key not in done.stdout + done.stderr
    assert not (tmp_path / "runs").exists()
