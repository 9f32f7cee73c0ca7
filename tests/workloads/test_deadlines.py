"""The per-query deadline is kept by the clock, not by the arrival of the next chunk.

A stub server on 127.0.0.1 (tests/workloads/openai_stub.py, mode ``trickle-1000``) sends one chunk
every 1 s and would take about 18 s to answer; with ``--deadline 1.5`` each query must end as an
error at the deadline, one at a time and at ``--concurrency 3``, not be scored, and be run again by
``--resume --retry-errors``. A deadline looked at only when a chunk arrives would end each query at
the second chunk (2 s, "after 2 chunks"); by the clock it ends before it. The recorded
end-to-end time is held to the deadline plus 1 s (the promise), a seventh of the server's time.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.engines import GenerationSettings
from ipw.engines.openai import EngineError, OpenAIEngine
from ipw.engines.openai_async import AsyncOpenAIClient
from ipw.store import load
from tests.workloads import openai_stub

DEADLINE_S = 1.5
GAP_S = 1.0  # between chunks: shorter than the deadline, so no read timeout ends a try
SERVER_S = (openai_stub.TRICKLE_CHUNKS + 3) * GAP_S  # what the trickling server would take
QUERIES = [
    {"id": "a", "prompt": "Say four. ECHO: 4", "answer": "4", "grader": "numeric", "domain": "arithmetic"},
    {"id": "b", "prompt": "Say Paris. ECHO: Paris", "answer": "Paris", "grader": "exact", "domain": "facts"},
    {"id": "c", "prompt": "Say five. ECHO: 5", "answer": "5", "grader": "numeric", "domain": "arithmetic"},
]


def profile(server, queryset, tmp_path, mode: str, *extra: str):
    args = ["profile", "--engine", "openai", "--base-url", f"{server.url}/{mode}.{tmp_path.name}/v1", "--model", "stub",
            "--queries", str(queryset), "--idle", "0", "--warmup", "0", "--quiet", "--retry-backoff", "0.01",
            "--deadline", str(DEADLINE_S), "--runs-dir", str(tmp_path / "runs"), "--run-id", "r", *extra]  # fmt: skip
    return CliRunner().invoke(main, args)


def test_the_trickling_server_is_slow_enough_to_tell():
    assert SERVER_S >= 10 * DEADLINE_S and GAP_S < DEADLINE_S < 2 * GAP_S


@pytest.mark.parametrize("level", [(), ("--concurrency", "3")], ids=["sequential", "concurrency-3"])
def test_a_query_past_its_deadline_is_cut_off_as_an_error_and_rerun_by_retry_errors(server, queryset, tmp_path, level):
    result = profile(server, queryset, tmp_path, f"trickleonce-{GAP_S * 1e3:.0f}", "--retries", "2", *level)
    assert result.exit_code == 0, result.output
    q = load(tmp_path / "runs" / "r").queries
    assert len(q) == 3 and q["correct"].isna().all()
    assert q["error"].str.contains(r"not finished within 1\.5 s \(deadline_s\) after [01] chunks").all(), list(q["error"])
    assert (q["e2e_s"] < DEADLINE_S + 1.0).all(), list(q["e2e_s"])  # the server would take SERVER_S
    assert (q["attempts"] == 1).all()  # the deadline spends the query's time: no retry after it
    assert "scored 0, 3 errors not scored" in result.output
    again = CliRunner().invoke(main, ["profile", "--resume", str(tmp_path / "runs" / "r"), "--retry-errors", "--quiet"])
    assert again.exit_code == 0, again.output
    q = load(tmp_path / "runs" / "r").queries
    assert q["error"].isna().all() and list(q["correct"]) == [True, True, True]


def test_the_engines_end_a_trickling_answer_at_the_deadline(server):
    engine = OpenAIEngine(f"{server.url}/trickle-{GAP_S * 1e3:.0f}/v1", "stub", deadline_s=DEADLINE_S, tries=3, backoff_s=0.01)
    settings = GenerationSettings(max_tokens=8)
    with pytest.raises(EngineError, match=r"deadline_s\) after [01] chunks") as e:
        engine.generate("hello", settings)
    assert e.value.attempts == 1 and e.value.transient is False

    async def four():
        client = AsyncOpenAIClient(engine, 4)
        try:
            return await asyncio.gather(*(client.generate(f"hello {i}", settings) for i in range(4)), return_exceptions=True)
        finally:
            await client.aclose()

    results = asyncio.run(four())
    assert all(isinstance(r, EngineError) and re.search(r"deadline_s\) after [01] chunks", str(r)) for r in results), results
    engine.close()
