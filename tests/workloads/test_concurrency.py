"""The serving regime end to end: N requests in flight, per-query energy by attribution.

Real parts: the runner, the async client (``openai.AsyncOpenAI`` over real HTTP), the sampler, the
store, grading. Fakes only at the boundaries: the stub server on 127.0.0.1 (tests/workloads/openai_stub.py,
the ``stub`` fixture) that streams tokens on a known schedule (mode ``timed``; ``refuse`` refuses
concurrent streams, ``dropfirst`` and ``dropalways`` drop one mid-answer), and a meter (:class:`ClockMeter`, a real ``Meter`` subclass) whose cumulative energy
follows a known function of time, so that the rule's exact expectation can be computed
independently (a brute-force integral on a fine grid) and compared with what the run stored.
llama-cpp-python's own server is driven at concurrency 2 and 4 (skipped where not installed).
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from ipw.devices import discover as discover_module
from ipw.core.clock import now
from ipw.devices.base import DomainInfo, Meter
from ipw.store import load
from ipw.run import config as run_config, runner
from ipw.engines import GenerationSettings
from ipw.engines.openai import OpenAIEngine
from tests.workloads.openai_stub import PROMPT_TOKENS, TOKENS

N_QUERIES = 8
QUERIES = [{"id": f"q{i}", "prompt": f"What is {i} + {i}? Answer with the number only.", "answer": str(2 * i),
            "grader": "numeric", "domain": "arithmetic"} for i in range(N_QUERIES)]  # fmt: skip


# -- a meter with a known power trace -------------------------------------------------------------

def power_w(t):
    """The trace [W] at time t [s] after the meter opened."""
    return 40.0 + 25.0 * np.sin(2 * np.pi * t / 0.37) + 10.0 * np.sin(2 * np.pi * t / 0.05)


def energy_j(t):
    """Its integral [J] from 0 to t."""
    return (40.0 * t + 25.0 * 0.37 / (2 * np.pi) * (1 - np.cos(2 * np.pi * t / 0.37))
            + 10.0 * 0.05 / (2 * np.pi) * (1 - np.cos(2 * np.pi * t / 0.05)))  # fmt: skip


class ClockMeter(Meter):
    """A real ``Meter`` whose cumulative energy [J] of each domain is ``energy_at(t)``, ``t`` [s]
    since the meter opened (``infos``: its domains, with their update periods and resolutions)."""

    def __init__(self, infos: list[DomainInfo], energy_at, family: str = "trace") -> None:
        super().__init__(infos)
        self.family, self.energy_at = family, energy_at
        self.t0 = now()

    def _read_energy_j(self) -> dict[str, float]:
        return self.energy_at(now() - self.t0)


def only_meter(monkeypatch, meter: Meter) -> Meter:
    """Make ``meter`` the one meter discovery finds."""
    monkeypatch.setattr(discover_module, "discover", lambda *a, **k: discover_module.Discovery([meter], []))
    return meter


@pytest.fixture
def trace_meter(monkeypatch):
    """Cumulative energy = ``energy_j(t)``: an exact counter (no update period) at 1 uJ."""
    info = DomainInfo("gpu:0", "test.trace", True, 0.0, 1e-6, scope="accelerator")
    return only_meter(monkeypatch, ClockMeter([info], lambda t: {"gpu:0": float(energy_j(t))}))


def _frame(run):
    """The run's query frame with ``engine_extra`` and ``flags`` as Python objects."""
    q = run.queries.copy()
    for col in ("engine_extra", "flags", "domains"):
        q[col] = q[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    return q


def _run(tmp_path, queryset, url, concurrency=4, engine_options=None, **kw):
    engine = OpenAIEngine(url, "stub", api_key_env="IPW_TEST_NO_KEY", **(engine_options or {}))
    config = runner.RunConfig(engine="openai", queries=str(queryset), settings=GenerationSettings(max_tokens=TOKENS),
                              warmup=0, idle_s=0.0, sampler_hz=50.0, runs_dir=str(tmp_path / "runs"),
                              run_id=kw.pop("run_id", "c"), concurrency=concurrency, **kw)  # fmt: skip
    try:
        store = runner.profile(config, engine=engine)
    finally:
        engine.close()
    run = load(store.path)
    run.queries = _frame(run)
    return run


# -- an independent expectation of the rule -----------------------------------------------------------

def _attempts(q):
    """(start, end, first, last, n_in, n_out) of each attempt of a stored query, on the run's clock."""
    extra = q["engine_extra"]
    spans = extra["attribution"]["attempt_spans_s"]
    out = []
    for k, (a, b) in enumerate(spans):
        if k == len(spans) - 1 and not isinstance(q["error"], str):
            times = [extra["t_start_s"] + o for o in extra["token_offsets_s"]]
            out.append((a, b, times[0], times[-1], q["input_tokens"], q["output_tokens"]))
        else:  # a failed attempt's tokens are not stored: only whole-span prefill work (upper bound check below)
            out.append((a, b, None, None, None, None))
    return out


def brute_force(frame, t0, alpha=1.0, dt=2e-5):
    """Each query's energy under the rule, integrated on a fine grid against the true trace."""
    spans = {q["id"]: _attempts(q) for q in frame.to_dict("records")}
    lo = min(a for v in spans.values() for a, *_ in v)
    hi = max(b for v in spans.values() for _, b, *_ in v)
    t = np.arange(lo, hi, dt) + dt / 2
    rates, flight = {}, np.zeros_like(t)
    for key, attempts in spans.items():
        r = np.zeros_like(t)
        for a, b, first, last, n_in, n_out in attempts:
            flight += (t >= a) & (t < b)
            if first is None:
                continue
            r += np.where((t >= a) & (t < first), alpha * n_in / (first - a), 0.0)
            if n_out >= 2:
                r += np.where((t >= first) & (t < last), (n_out - 1) / (last - first), 0.0)
        rates[key] = r
    total = sum(rates.values())
    p = power_w(t - t0) * dt
    out = {}
    for key, attempts in spans.items():
        inside = sum(((t >= a) & (t < b)).astype(float) for a, b, *_ in attempts)
        share = np.where(total > 0, rates[key] / np.where(total > 0, total, 1), inside / np.maximum(flight, 1))
        out[key] = float((share * p).sum())
    return out


# -- tests --------------------------------------------------------------------------------------------

def test_four_in_flight_records_every_query_with_attributed_energy(tmp_path, queryset, stub, trace_meter):
    run = _run(tmp_path, queryset, f"{stub}/timed/v1", concurrency=4)
    q = run.queries.set_index("id")
    assert sorted(q.index) == sorted(x["id"] for x in QUERIES) and q["correct"].all() and q["error"].isna().all()
    assert (q["output_tokens"] == TOKENS).all() and (q["input_tokens"] == PROMPT_TOKENS).all()
    starts = q["engine_extra"].map(lambda e: e["t_start_s"])
    ends = starts + q["e2e_s"]
    overlapping = sum(1 for a in q.index for b in q.index if a < b and starts[a] < ends[b] and starts[b] < ends[a])
    assert overlapping >= 4  # they really were in flight together
    # prefill and decode split the accelerator energy; each has a finite bound
    assert np.allclose(q["prefill_energy_j"] + q["decode_energy_j"], q["accelerator_energy_j"], rtol=1e-9)
    assert (q["prefill_energy_j"] > 0).all() and (q["decode_energy_j"] > 0).all()
    assert q["engine_extra"].map(lambda e: math.isfinite(e["attribution"]["prefill_uncertainty_j"])).all()
    assert q["flags"].map(lambda f: "attributed:token-rate-share" in f).all()
    serving = run.manifest["serving"]
    assert serving["rule"]["name"] == "token-rate-share" and serving["rule"]["version"] == 2
    assert serving["level"] == 4 and serving["mode"] == "concurrency"


def test_energies_sum_to_the_active_energy_and_match_the_rule_on_the_true_trace(tmp_path, queryset, stub, trace_meter):
    run = _run(tmp_path, queryset, f"{stub}/timed/v1", concurrency=4)
    q = run.queries
    (session,) = run.manifest["serving"]["sessions"]
    # conservation, on the timeline the run measured: to the counter's resolution (1 uJ)
    assert abs(q["accelerator_energy_j"].sum() - session["active_energy_j"]["gpu:0"]) < 1e-6
    assert session["attributed_energy_j"]["gpu:0"] == pytest.approx(session["active_energy_j"]["gpu:0"], abs=1e-6)
    # the rule's exact expectation on the true trace, computed independently: within each bound
    expected = brute_force(q, trace_meter.t0)
    for r in q.to_dict("records"):
        got, bound = r["accelerator_energy_j"], r["energy_uncertainty_j"]
        assert abs(got - expected[r["id"]]) <= bound + 1e-3, (r["id"], got, expected[r["id"]], bound)
        # a 20 Hz wave read at up to 50 Hz (fewer on a busy machine): the bound above is the strict check
        assert abs(got - expected[r["id"]]) / expected[r["id"]] < 0.25
    # and the sum against the true trace over the union of the spans
    total_true = sum(expected.values())
    assert q["accelerator_energy_j"].sum() == pytest.approx(total_true, rel=0.01)


def test_a_server_that_refuses_concurrent_streams_gets_retries_and_loses_nothing(tmp_path, queryset, stub, trace_meter):
    run = _run(tmp_path, queryset, f"{stub}/refuse/v1", concurrency=3,
               engine_options={"tries": 30, "backoff_s": 0.02, "deadline_s": 60})  # fmt: skip
    q = run.queries
    assert len(q) == N_QUERIES and q["id"].is_unique
    assert q["error"].isna().all() and q["correct"].all()
    assert (q["attempts"] > 1).any()  # some streams were refused (429) and tried again
    (session,) = run.manifest["serving"]["sessions"]
    assert q["accelerator_energy_j"].sum() == pytest.approx(session["active_energy_j"]["gpu:0"], abs=1e-6)


def test_a_stream_dropped_mid_answer_is_retried_and_no_other_record_changes(tmp_path, queryset, stub, trace_meter):
    run = _run(tmp_path, queryset, f"{stub}/dropfirst/v1", concurrency=4, engine_options={"backoff_s": 0.01})
    q = run.queries.set_index("id")
    assert q.loc["q3", "attempts"] == 2 and q.loc["q3", "output"].startswith("6") and q.loc["q3", "correct"]
    assert (q.drop("q3")["attempts"] == 1).all() and q["correct"].all()
    spans = q.loc["q3", "engine_extra"]["attribution"]["attempt_spans_s"]
    assert len(spans) == 2 and spans[0][1] <= spans[1][0]  # the failed attempt is charged too


def test_a_stream_dropped_every_time_is_a_recorded_failure(tmp_path, queryset, stub, trace_meter):
    run = _run(tmp_path, queryset, f"{stub}/dropalways/v1", concurrency=4, engine_options={"tries": 2, "backoff_s": 0.01})
    q = run.queries.set_index("id")
    assert "broke off" in q.loc["q3", "error"] and q.loc["q3", "attempts"] == 2 and not q.loc["q3", "correct"]
    assert q.drop("q3")["error"].isna().all() and q.drop("q3")["correct"].all()
    assert q.loc["q3", "accelerator_energy_j"] > 0  # the server's work on the failed tries
    assert run.summary["overall"]["errors"] == 1 and run.summary["overall"]["scored"] == N_QUERIES - 1


def test_resume_at_concurrency_runs_only_the_missing_queries(tmp_path, queryset, stub, trace_meter):
    run = _run(tmp_path, queryset, f"{stub}/timed/v1", concurrency=2, limit=4)
    assert len(run.queries) == 4
    lines = (run.path / "queries.jsonl").read_text().splitlines()
    (run.path / "queries.jsonl").write_text("\n".join(lines[:2]) + "\n")  # two records lost
    engine = OpenAIEngine(f"{stub}/timed/v1", "stub", api_key_env="IPW_TEST_NO_KEY")
    runner.resume(run.path, engine=engine)
    again = load(run.path)
    again.queries = _frame(again)
    assert sorted(again.queries["id"]) == sorted(run.queries["id"]) and again.queries["id"].is_unique
    assert len(again.manifest["serving"]["sessions"]) == 2


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_concurrency_below_one_is_an_error(bad):
    with pytest.raises(run_config.ServingConfigError, match="concurrency must be an integer >= 1"):
        runner.RunConfig(engine="openai", concurrency=bad)
    with pytest.raises(run_config.ServingConfigError, match="not both"):
        runner.RunConfig(engine="openai", concurrency=2, batch_size=2)


def test_cli_concurrency_below_one_is_a_usage_error(tmp_path):
    from click.testing import CliRunner

    from ipw.cli import main

    result = CliRunner().invoke(main, ["profile", "--engine", "openai", "--base-url", "http://127.0.0.1:9/v1",
                                       "--concurrency", "0", "--runs-dir", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 2 and "--concurrency" in result.output
    result = CliRunner().invoke(main, ["profile", "--engine", "llamacpp", "--concurrency", "2", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--engine openai" in result.output
    assert not list(tmp_path.iterdir())  # nothing was started


def test_concurrency_with_a_local_engine_is_an_error(tmp_path, queryset, trace_meter):
    from tests.workloads.test_runner_fake import ScriptedEngine

    config = runner.RunConfig(engine="scripted", queries=str(queryset), warmup=0, idle_s=0.0,
                              runs_dir=str(tmp_path), run_id="x", concurrency=2)  # fmt: skip
    with pytest.raises(run_config.ServingConfigError, match="OpenAI-compatible server"):
        runner.profile(config, engine=ScriptedEngine())


# -- llama-cpp-python's server, for real ------------------------------------------------------------

from tests.workloads.engines.test_openai_engine import KEY_ENV, needs_server, run_llama_server  # noqa: E402


@pytest.fixture(scope="module")
def serial_llama_server(tmp_path_factory):
    """llama-cpp-python's server that queues concurrent requests (``--interrupt_requests False``:
    by default it cuts the streaming answer short when another request arrives)."""
    yield from run_llama_server(tmp_path_factory, "--interrupt_requests", "False")


@needs_server
@pytest.mark.slow
@pytest.mark.parametrize("level", [2, 4])
def test_real_llama_server_at_concurrency(tmp_path, queryset, serial_llama_server, monkeypatch, level):
    url, key = serial_llama_server
    monkeypatch.setenv(KEY_ENV, key)
    engine = OpenAIEngine(url, "smollm", api_key_env=KEY_ENV, timeout_s=60)
    config = runner.RunConfig(engine="openai", queries=str(queryset), settings=GenerationSettings(max_tokens=6),
                              warmup=1, idle_s=0.0, limit=6, runs_dir=str(tmp_path / "runs"), run_id=f"l{level}",
                              concurrency=level)  # fmt: skip
    run = load(runner.profile(config, engine=engine).path)
    run.queries = _frame(run)
    engine.close()
    q = run.queries
    assert len(q) == 6 and q["id"].is_unique and q["error"].isna().all()
    assert (q["output_tokens"] >= 1).all() and q["output"].map(bool).all()
    assert q["engine_extra"].map(lambda e: e["token_count_source"] == "streamed chunks").all()
    assert q["engine_extra"].map(lambda e: e["attribution"]["input_tokens_estimated"]).all()
    starts = q["engine_extra"].map(lambda e: e["t_start_s"]).to_numpy()
    ends = starts + q["e2e_s"].to_numpy()
    assert (starts[1:level] < ends[0]).all()  # the first `level` requests were sent together
    (session,) = run.manifest["serving"]["sessions"]
    basis = q["accelerator_energy_j"].fillna(q["energy_j"])
    top = sum(session["active_energy_j"].values())
    assert q["energy_j"].sum() == pytest.approx(top, rel=1e-9, abs=1e-6)
    assert (basis > 0).all()


# -- latency definitions (ipw.core.latency) --------------------------------------------------------

def test_latency_definitions():
    from ipw.core import latency as L

    times = [1.2, 1.3, 1.5, 1.6]  # start at 1.0, end at 2.0
    assert L.ttft_s(1.0, times) == pytest.approx(0.2)
    assert L.tpot_s(times) == pytest.approx(0.4 / 3)  # (t_last - t_first) / (n - 1)
    assert L.tpot_s(times, output_tokens=5) == pytest.approx(0.1)  # the server counted 5 tokens in 4 chunks
    assert L.tpot_vllm_s(1.0, 0.2, 4) == pytest.approx(0.8 / 3)  # (e2e - TTFT) / (n - 1)
    # they differ by the tail after the last token, spread over the tokens: (2.0 - 1.6) / 3
    assert L.tpot_vllm_s(1.0, 0.2, 4) - L.tpot_s(times) == pytest.approx(0.4 / 3)
    assert L.tpot_s([1.2]) is None and L.tpot_vllm_s(1.0, 0.2, 1) is None and L.ttft_s(1.0, []) is None
    assert L.inter_token_s(times).tolist() == pytest.approx([0.1, 0.2, 0.1])
    assert np.mean(L.inter_token_s(times)) == pytest.approx(L.tpot_s(times))  # ipw's TPOT is the mean ITL
    pooled = L.pooled_itl_s([times, [0.0, 0.5], [3.0]])
    assert sorted(pooled.tolist()) == pytest.approx([0.1, 0.1, 0.2, 0.5])
    assert L.percentiles([1, 2, 3, 4, 5]) == {"p50": 3.0, "p90": 4.6, "p99": pytest.approx(4.96)}
    assert all(math.isnan(v) for v in L.percentiles([]).values())
    with pytest.raises(L.LatencyError):
        L.ttft_s(2.0, [1.5, 2.5])
    with pytest.raises(L.LatencyError):
        L.inter_token_s([1.0, 0.5])
    with pytest.raises(L.LatencyError):
        L.tpot_vllm_s(0.1, 0.2, 3)


def test_records_follow_the_definitions(tmp_path, queryset, stub, trace_meter):
    from ipw.core import latency as L

    run = _run(tmp_path, queryset, f"{stub}/timed/v1", concurrency=2)
    for r in run.queries.to_dict("records"):
        t0, times = L.token_times_from_extra(r["engine_extra"])
        assert r["ttft_s"] == pytest.approx(L.ttft_s(t0, times), abs=2e-6)
        assert r["tpot_s"] == pytest.approx(L.tpot_s(times, r["output_tokens"]), abs=2e-6)
        assert L.tpot_vllm_s(r["e2e_s"], r["ttft_s"], r["output_tokens"]) >= r["tpot_s"]
        gaps = L.inter_token_s(times)
        # one stamp per chunk, in arrival order, inside the query's own span (no timing assumed: a busy
        # machine may deliver the stub's 20 ms chunks in bunches)
        assert len(gaps) == TOKENS - 1 and (gaps >= 0).all() and times[-1] - t0 <= r["e2e_s"] + 2e-6


# -- a GPU's monitor (the fake H200 NVML at the pynvml boundary) ----------------------------------------

def test_attribution_on_an_h200_like_monitor_timeline(tmp_path, queryset, stub, monkeypatch):
    """The monitored path: counter values every 100 ms on the driver's clock, read by the monitor
    thread; per-query energies inside their bounds against the trace, and conserved."""
    from ipw.devices.nvidia.meter import NvmlMeter
    from tests.fakes.nvml import FakeNvml, Trace, h200

    trace = Trace(base_w=300.0, amp_w=120.0, period_s=0.37)
    nvml = FakeNvml([h200(trace)], time.monotonic, cost="none")
    nvml.nvmlInit()
    meter = NvmlMeter(0, nvml=nvml, monitor="thread")
    assert meter.monitor is not None
    monkeypatch.setattr(discover_module, "discover", lambda *a, **k: discover_module.Discovery([meter], []))
    run = _run(tmp_path, queryset, f"{stub}/timed/v1", concurrency=4)
    q = run.queries
    assert q["error"].isna().all() and len(q) == N_QUERIES
    (session,) = run.manifest["serving"]["sessions"]
    assert q["accelerator_energy_j"].sum() == pytest.approx(session["active_energy_j"]["gpu:0"], abs=1e-6)
    # the H200's field changes with its counter: the bound covers every placement of each step's energy
    assert {e["attribution"]["bound"] for e in q["engine_extra"]} == {"monitor step placement"}
    spans = {r["id"]: _attempts(r) for r in q.to_dict("records")}
    lo = min(a for v in spans.values() for a, *_ in v)
    hi = max(b for v in spans.values() for _, b, *_ in v)
    t = np.arange(lo, hi, 2e-5) + 1e-5
    power = 300.0 + 120.0 * np.sin(2 * np.pi * t / 0.37)
    rates, flight = {}, np.zeros_like(t)
    for key, attempts in spans.items():
        (a, b, first, last, n_in, n_out), = attempts
        flight += (t >= a) & (t < b)
        rates[key] = (np.where((t >= a) & (t < first), n_in / (first - a), 0.0)
                      + np.where((t >= first) & (t < last), (n_out - 1) / (last - first), 0.0))  # fmt: skip
    total = sum(rates.values())
    for r in q.to_dict("records"):
        (a, b, *_), = spans[r["id"]]
        inside = ((t >= a) & (t < b)).astype(float)
        share = np.where(total > 0, rates[r["id"]] / np.where(total > 0, total, 1), inside / np.maximum(flight, 1))
        truth = float((share * power * 2e-5).sum())
        assert abs(r["accelerator_energy_j"] - truth) <= r["energy_uncertainty_j"] + 1e-3, (r["id"], truth)


from tests.workloads.engines.test_openai_engine import llama_server  # noqa: E402, F401 - the fixture


@needs_server
@pytest.mark.slow
def test_real_server_that_cuts_answers_short_loses_no_record(tmp_path, queryset, llama_server, monkeypatch):  # noqa: F811
    """llama-cpp-python's server as it starts by default cuts a streaming answer short when another
    request arrives (``interrupt_requests``): those attempts fail and are retried; every query ends
    with one record, either a finished answer or its error, and the energies still add up."""
    url, key = llama_server
    monkeypatch.setenv(KEY_ENV, key)
    engine = OpenAIEngine(url, "smollm", api_key_env=KEY_ENV, timeout_s=60, tries=3, backoff_s=0.2)
    config = runner.RunConfig(engine="openai", queries=str(queryset), settings=GenerationSettings(max_tokens=6),
                              warmup=0, idle_s=0.0, limit=4, runs_dir=str(tmp_path / "runs"), run_id="cut",
                              concurrency=2)  # fmt: skip
    run = load(runner.profile(config, engine=engine).path)
    run.queries = _frame(run)
    engine.close()
    q = run.queries
    assert len(q) == 4 and q["id"].is_unique
    assert (q["attempts"] > 1).any() or q["error"].notna().any()  # some answer was cut short
    done = q[q["error"].isna()]
    failed = q[q["error"].notna()]
    assert done["finish_reason"].isin(["stop", "length"]).all() and done["output"].map(bool).all()
    assert failed["error"].str.contains("ended before the answer was finished|broke off").all()
    assert (failed["attempts"] == 3).all()
    (session,) = run.manifest["serving"]["sessions"]
    assert q["energy_j"].sum() == pytest.approx(sum(session["active_energy_j"].values()), rel=1e-9, abs=1e-6)


def test_resume_with_retry_errors_reruns_the_failed_query_at_concurrency(tmp_path, queryset, stub, trace_meter):
    run = _run(tmp_path, queryset, f"{stub}/dropalways/v1", concurrency=4, engine_options={"tries": 1})
    assert run.queries.set_index("id").loc["q3", "error"]
    engine = OpenAIEngine(f"{stub}/timed/v1", "stub", api_key_env="IPW_TEST_NO_KEY")
    runner.resume(run.path, engine=engine, retry_errors=True)
    engine.close()
    again = load(run.path)
    again.queries = _frame(again)
    q = again.queries.drop_duplicates("id", keep="last").set_index("id")
    assert len(q) == N_QUERIES and q["error"].isna().all() and q.loc["q3", "correct"]
    assert q.loc["q3", "session"] == 1 and (q.drop("q3")["session"] == 0).all()
