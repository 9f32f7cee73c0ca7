"""Server-side timing (ipw/engines/server_timing.py): vLLM's /metrics around a level, llama.cpp's
per-answer timings, and the sweep's queueing column.

Parsing is checked on what a real vLLM 0.32 server answered (tests/data/vllm_0.32_metrics.txt), by
prometheus_client's parser and by ipw's own reader alike; the runs go through the real CLI against
the stub server (tests/workloads/openai_stub.py), whose ``vllm`` mode serves metrics with known
per-request times and whose ``llamacpp`` mode sends llama-server's ``timings``. The real vLLM server
is driven in test_vllm.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ipw.cli import main
from ipw.engines import server_timing
from ipw.run import sweep
from ipw.store import load
from tests.workloads.openai_stub import DECODE_MS_PER_TOKEN, PREFILL_S, QUEUE_S

REAL_METRICS = Path(__file__).resolve().parents[1] / "data" / "vllm_0.32_metrics.txt"
QUERIES = [{"id": f"q{i}", "prompt": f"Say. ECHO: {' '.join('w' * (j + 1) for j in range(i + 2))}", "answer": "w",
            "grader": "exact", "domain": "d"} for i in range(6)]  # fmt: skip


def test_both_parsers_read_a_real_vllm_answer_alike():
    text = REAL_METRICS.read_text()
    own, library = server_timing.parse_text(text), server_timing.parse(text)
    assert own.keys() == library.keys()
    assert all(own[k] == library[k] or (math.isnan(own[k]) and math.isnan(library[k])) for k in own)
    assert own["vllm:request_queue_time_seconds_count"] == 1.0  # one request had been served
    assert own["vllm:request_prefill_time_seconds_sum"] > 0 and own["vllm:num_requests_waiting"] == 0.0


NAMES = st.from_regex(r"[a-z_][a-z0-9_:]{0,20}", fullmatch=True)
LABELS = st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                         st.from_regex(r"[A-Za-z0-9 ._{}=,-]{0,12}", fullmatch=True), max_size=3)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(NAMES, LABELS, st.floats(-1e9, 1e9, allow_nan=False)), min_size=1, max_size=12))
def test_own_reader_agrees_with_prometheus_client(samples):
    lines = []
    for name, labels, value in samples:
        inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{name}{{{inner}}} {value!r}" if labels else f"{name} {value!r}")
    text = "# HELP x y\n" + "\n".join(lines) + "\n"
    expected, own = server_timing.parse(text), server_timing.parse_text(text)
    assert own.keys() == expected.keys() and all(own[k] == pytest.approx(expected[k]) for k in own)


def test_a_level_is_the_difference_of_two_scrapes():
    before = {"vllm:request_queue_time_seconds_count": 2.0, "vllm:request_queue_time_seconds_sum": 0.5,
              "vllm:request_prefill_time_seconds_count": 2.0, "vllm:request_prefill_time_seconds_sum": 0.1}  # fmt: skip
    after = {"vllm:request_queue_time_seconds_count": 6.0, "vllm:request_queue_time_seconds_sum": 2.5,
             "vllm:request_prefill_time_seconds_count": 6.0, "vllm:request_prefill_time_seconds_sum": 0.5}  # fmt: skip
    d = server_timing.level_delta(before, after)
    assert d["requests"] == 4 and d["queue_total_s"] == 2.0 and d["queue_mean_s"] == 0.5
    assert d["prefill_mean_s"] == pytest.approx(0.1) and d["decode_mean_s"] is None  # not exposed: unknown, not 0
    assert server_timing.metrics_url("http://h:8000/v1/") == "http://h:8000/metrics"


def test_not_prometheus_text_is_an_error_naming_the_line():
    with pytest.raises(server_timing.ServerMetricsError, match="not Prometheus text"):
        server_timing.parse_text("vllm:num_requests_running{a=\"b\"}\n")


def _run(server, queryset, tmp_path, mode: str, *extra: str, run_id: str = "r"):
    args = ["profile", "--engine", "openai", "--base-url", f"{server.url}/{mode}.{tmp_path.name}/v1", "--model", "stub",
            "--queries", str(queryset), "--idle", "0", "--quiet", "--runs-dir", str(tmp_path / "runs"),
            "--run-id", run_id, *extra]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    run = load(tmp_path / "runs" / run_id)
    run.output = result.output
    return run


def test_a_level_against_vllm_metrics_records_the_servers_queue_prefill_and_decode(server, queryset, tmp_path):
    run = _run(server, queryset, tmp_path, "vllm", "--concurrency", "3", "--warmup", "2")
    s = run.manifest["serving"]["sessions"][-1]["server"]
    assert s["available"] and s["url"].endswith(f"/vllm.{tmp_path.name}/metrics")
    assert s["requests"] == len(QUERIES)  # the warm-up ran before the first scrape
    assert s["queue_mean_s"] == pytest.approx(QUEUE_S) and s["prefill_mean_s"] == pytest.approx(PREFILL_S)
    assert s["queue_total_s"] == pytest.approx(QUEUE_S * len(QUERIES))
    assert 0 < s["decode_mean_s"] < max(run.queries["e2e_s"])
    assert s["scrapes"] >= 2 and 0 <= s["running_mean"] <= s["running_max"] <= 3
    row = sweep.level_row(run)
    assert row["server_requests"] == len(QUERIES) and row["queue_mean_s"] == pytest.approx(QUEUE_S)
    assert f"server ({len(QUERIES)} requests): mean queue 0.25 s, prefill 0.0125 s, decode" in run.output


def test_a_server_without_metrics_says_why_and_the_run_goes_on(server, queryset, tmp_path):
    run = _run(server, queryset, tmp_path, "paced", "--concurrency", "2", "--warmup", "0")
    s = run.manifest["serving"]["sessions"][-1]["server"]
    assert s["available"] is False and "404" in s["reason"]
    assert len(run.queries) == len(QUERIES) and "queue_mean_s" not in sweep.level_row(run)


@pytest.mark.parametrize("extra", [(), ("--concurrency", "2")], ids=["one-at-a-time", "concurrency-2"])
def test_llama_cpp_timings_are_kept_per_answer(server, queryset, tmp_path, extra):
    run = _run(server, queryset, tmp_path, "llamacpp", "--warmup", "0", *extra)
    timings = [json.loads(e)["server_timing"] if isinstance(e, str) else e["server_timing"] for e in run.queries["engine_extra"]]
    assert [t["prefill_s"] for t in timings] == [PREFILL_S] * len(QUERIES)
    assert [t["decode_s"] for t in timings] == pytest.approx([DECODE_MS_PER_TOKEN / 1e3 * n for n in run.queries["output_tokens"]])
    assert all(t["source"] == "llama.cpp timings" and t["prefill_tokens"] == 5 for t in timings)
    if extra:
        row = sweep.level_row(run)
        assert row["server_prefill_mean_s"] == pytest.approx(PREFILL_S) and "queue_mean_s" not in row
        # the attribution rule's queued phase: the first token's arrival less the server's prefill
        extras = [json.loads(e) if isinstance(e, str) else e for e in run.queries["engine_extra"]]
        for ttft, e in zip(run.queries["ttft_s"], extras):
            assert e["attribution"]["version"] == 2
            assert e["attribution"]["queued_s"] == pytest.approx(max(ttft - PREFILL_S, 0.0), abs=1e-6)


def test_the_sweep_shows_queueing_as_a_column(server, queryset, tmp_path):
    args = ["sweep", "--engine", "openai", "--base-url", f"{server.url}/vllm.{tmp_path.name}/v1", "--model", "stub",
            "--queries", str(queryset), "--idle", "0", "--warmup", "0", "--quiet", "--runs-dir", str(tmp_path / "runs"),
            "--run-id", "s", "--concurrency", "1,3", "--out", str(tmp_path / "sweep")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "queue_mean_s" in result.output
    table = sweep.load(tmp_path / "sweep").levels
    assert list(table["server_requests"]) == [len(QUERIES)] * 2
    assert list(table["queue_mean_s"]) == pytest.approx([QUEUE_S] * 2)
    html = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--extra", str(tmp_path / "sweep"), "-o", str(html)])
    assert result.exit_code == 0, result.output
    assert "queue_mean_s" in html.read_text()  # the report's sweep table shows it too
