"""Token timing that does not depend on how a server counts: TPOT and inter-token latencies from the
chunks received and their own count, the server's ``usage`` kept beside them, and a flag where the
two disagree (ipw/engines/token_counts.py).

Against the stub server (tests/workloads/openai_stub.py), whose ``eos`` mode counts one token more in
``usage`` than it streams, as vLLM does, and ``paced`` mode, whose count agrees; and against
llama-cpp-python's real server, which sends no usage. The real vLLM server is in test_vllm.py.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.engines import GenerationSettings
from ipw.engines.openai import OpenAIEngine
from ipw.engines.token_counts import MISMATCH, streamed_counts
from ipw.store import load
from tests.workloads.engines.test_openai_engine import needs_server, run_llama_server

QUERIES = [{"id": f"q{i}", "prompt": f"Count. ECHO: {' '.join(str(j) for j in range(i + 3))}", "answer": "0",
            "grader": "exact", "domain": "count"} for i in range(4)]  # fmt: skip


def test_the_count_is_the_chunks_and_a_disagreeing_server_is_flagged():
    usage = SimpleNamespace(prompt_tokens=7, completion_tokens=10)
    assert streamed_counts(9, usage) == (7, 9, {"token_count_source": "streamed chunks", "streamed_chunks": 9,
                                                "server_output_tokens": 10, "token_count_mismatch": 1,
                                                "flags": [MISMATCH]})  # fmt: skip
    assert streamed_counts(10, usage)[2] == {"token_count_source": "streamed chunks", "streamed_chunks": 10,
                                            "server_output_tokens": 10}  # fmt: skip
    assert streamed_counts(4, None) == (None, 4, {"token_count_source": "streamed chunks", "streamed_chunks": 4})
    assert streamed_counts(3, SimpleNamespace(prompt_tokens=2, completion_tokens=12))[2]["token_count_mismatch"] == 9


@pytest.mark.parametrize("mode, server_extra", [("eos", 1), ("paced", 0)])
def test_tpot_divides_the_streamed_span_by_its_own_chunks(server, mode, server_extra):
    engine = OpenAIEngine(f"{server.url}/{mode}/v1", "stub", api_key_env="IPW_TEST_NO_KEY")
    g = engine.generate("Count. ECHO: a b c d e f", GenerationSettings())
    engine.close()
    assert g.text == "a b c d e f" and g.output_tokens == 6 == g.extra["streamed_chunks"]
    assert g.extra["server_output_tokens"] == 6 + server_extra
    assert g.tpot_s == (g.t_last_token_s - g.t_first_token_s) / 5
    assert (MISMATCH in g.extra.get("flags", ())) == bool(server_extra)


def _profile(server, queryset, tmp_path, mode: str, run_id: str, *extra: str):
    args = ["profile", "--engine", "openai", "--base-url", f"{server.url}/{mode}/v1", "--model", "stub",
            "--queries", str(queryset), "--idle", "0", "--warmup", "0", "--quiet",
            "--runs-dir", str(tmp_path / "runs"), "--run-id", run_id, *extra]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return load(tmp_path / "runs" / run_id).queries


def _extras(q) -> list[dict]:
    return [json.loads(e) if isinstance(e, str) else e for e in q["engine_extra"]]


def _mean_gap_s(extra: dict) -> float:
    return float(np.mean(np.diff(extra["token_offsets_s"])))


@pytest.mark.parametrize("extra", [(), ("--concurrency", "2")], ids=["one-at-a-time", "concurrency-2"])
def test_records_keep_the_server_count_beside_the_chunks_and_carry_the_flag(server, queryset, tmp_path, extra):
    q = _profile(server, queryset, tmp_path, "eos", "r", *extra)
    q = q.sort_values("id").reset_index(drop=True)  # stored as they become final, not in the set's order
    words = [len(x["prompt"].split("ECHO:")[1].split()) for x in QUERIES]
    assert list(q["output_tokens"]) == words
    assert [e["server_output_tokens"] for e in _extras(q)] == [w + 1 for w in words]
    assert all(MISMATCH in f for f in q["flags"])
    if extra:  # the serving records keep every chunk's time: TPOT is exactly their mean gap
        for tpot, e in zip(q["tpot_s"], _extras(q)):
            assert len(e["token_offsets_s"]) == e["streamed_chunks"]
            assert tpot == pytest.approx(_mean_gap_s(e), abs=2e-6)  # offsets are stored to the microsecond


def test_a_server_whose_count_agrees_gets_no_flag(server, queryset, tmp_path):
    q = _profile(server, queryset, tmp_path, "paced", "r", "--concurrency", "2")
    assert not any(MISMATCH in f for f in q["flags"])
    assert [e["server_output_tokens"] for e in _extras(q)] == list(q["output_tokens"])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    # one request at a time, queued rather than interrupted (docs/serving.md)
    yield from run_llama_server(tmp_path_factory, "--interrupt_requests", "False")


@needs_server
@pytest.mark.slow
def test_against_llama_cpp_server_tpot_is_the_mean_gap_of_the_chunks(llama_server, tmp_path, monkeypatch):
    url, key = llama_server
    monkeypatch.setenv("IPW_TEST_LLAMA_KEY", key)
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q | {"prompt": f"Count from 1 to {i + 5}."}) + "\n" for i, q in enumerate(QUERIES)))
    args = ["profile", "--engine", "openai", "--base-url", url, "--model", "smollm", "--api-key-env",
            "IPW_TEST_LLAMA_KEY", "--queries", str(path), "--idle", "0", "--warmup", "0", "--quiet", "--max-tokens",
            "12", "--concurrency", "2", "--runs-dir", str(tmp_path / "runs"), "--run-id", "r"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    q = load(tmp_path / "runs" / "r").queries
    assert q["error"].isna().all() and (q["output_tokens"] >= 2).all()
    for tpot, n, e in zip(q["tpot_s"], q["output_tokens"], _extras(q)):
        assert n == e["streamed_chunks"] == len(e["token_offsets_s"])
        assert tpot == pytest.approx(_mean_gap_s(e), abs=2e-6)
        assert e.get("server_output_tokens") is None or e["server_output_tokens"] == n  # no usage, or the same count
