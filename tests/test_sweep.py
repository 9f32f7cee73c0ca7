"""The serving sweep (ipw.run.sweep, ipw sweep, the report's serving section).

Real parts: the runner at each level, the async client over HTTP to the stub server on 127.0.0.1
(tests/workloads/openai_stub.py, mode ``timed``: a known token schedule), the store, the efficiency metrics, the result file, the report's
section and figure. The one fake is the meter (a known power trace), as in test_concurrency.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

from ipw.run import sweep
from ipw.cli import main
from ipw.run import runner
from ipw.engines import GenerationSettings
from ipw.engines.openai import OpenAIEngine
from tests.workloads.openai_stub import StubServer
from tests.workloads.test_concurrency import QUERIES, trace_meter  # noqa: F401 - the fixture


@pytest.fixture(scope="module")
def stub():
    """The stub server's base URL (tests/workloads/conftest.py's fixture is out of reach here)."""
    server = StubServer().start()
    yield server.url
    server.stop()


@pytest.fixture
def queryset(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    return path


def test_parse_levels():
    assert sweep.parse_levels("1,4,16,64") == [1, 4, 16, 64] and sweep.parse_levels(" 2 ") == [2]
    for bad in ("0,4", "a,b", "", "4,4", "-1"):
        with pytest.raises(sweep.SweepError):
            sweep.parse_levels(bad)


def test_pareto_min():
    x = [1.0, 0.5, 0.3, 0.4, np.nan]  # J/token
    y = [10.0, 20.0, 40.0, 50.0, 1.0]  # TTFT
    assert sweep.pareto_min(x, y).tolist() == [True, True, True, False, False]


@pytest.fixture
def swept(tmp_path, queryset, stub, trace_meter):  # noqa: F811
    engine = OpenAIEngine(f"{stub}/timed/v1", "stub", api_key_env="IPW_TEST_NO_KEY")
    config = runner.RunConfig(engine="openai", queries=str(queryset), settings=GenerationSettings(max_tokens=6),
                              warmup=0, idle_s=0.0, sampler_hz=50.0, runs_dir=str(tmp_path / "runs"), run_id="s")  # fmt: skip
    try:
        yield sweep.run(config, [1, 2, 3], engine=engine)
    finally:
        engine.close()


def test_sweep_runs_every_level_and_tabulates_the_frontier(swept, tmp_path):
    f = swept.levels
    assert f["level"].tolist() == [1, 2, 3] and (f["mode"] == "concurrency").all()
    assert (f["n"] == len(QUERIES)).all() and (f["accuracy"] == 1.0).all()
    assert np.isfinite(f[["ipw_per_w", "ipj_per_j", "energy_per_query_j", "steady_j_per_token", "ttft_p50_s",
                          "tpot_p50_s", "itl_p99_s", "steady_tokens_per_s"]].to_numpy(float)).all()  # fmt: skip
    # the stub's schedule: 20 ms between tokens; vLLM's TPOT adds the tail after the last token
    assert (f["itl_p50_s"] > 0.015).all() and (f["tpot_vllm_mean_s"] >= f["tpot_mean_s"]).all()
    assert f["frontier_ttft"].any() and f["frontier_tpot"].any()
    assert [p.rsplit("/", 1)[-1] for p in swept.settings["runs"]] == ["s-c1", "s-c2", "s-c3"]
    # more in flight: more tokens per second from the same server
    assert f["steady_tokens_per_s"].iloc[-1] > f["steady_tokens_per_s"].iloc[0]
    # stored runs give the same table
    again = sweep.levels_frame(swept.settings["runs"])
    pd.testing.assert_series_equal(again["steady_j_per_token"], f["steady_j_per_token"])


def test_saved_sweep_loads_and_reports(swept, tmp_path):
    from ipw.reports import build_report
    from ipw.reports.serving import frontier_figure, serving_section

    out = swept.save(tmp_path / "sweep-result")
    loaded = sweep.load(out)
    assert loaded.levels["level"].tolist() == [1, 2, 3] and loaded.settings["mode"] == "concurrency"
    section = serving_section(out)
    assert section.key == "serving" and isinstance(section.figures[0].figure, Figure)
    assert "lowest energy per token" in section.summary[0]
    assert isinstance(frontier_figure(loaded.levels), Figure)
    report = build_report([], extras=[out])
    html = report.html()
    assert "Serving: energy against latency" in html and "<img" in html


def test_cli_sweep(tmp_path, queryset, stub, trace_meter):  # noqa: F811
    out = tmp_path / "result"
    args = ["sweep", "--engine", "openai", "--base-url", f"{stub}/timed/v1", "--model", "stub", "--queries",
            str(queryset), "--warmup", "0", "--idle", "0", "--hz", "50", "--max-tokens", "6", "--runs-dir",
            str(tmp_path / "runs"), "--run-id", "cli", "--quiet", "--concurrency", "1,3", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "serving frontier" in result.output and "steady_j_per_token" in result.output
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["cli-c1", "cli-c3"]
    assert sweep.load(out).levels["level"].tolist() == [1, 3]


@pytest.mark.parametrize("extra,match", [
    (["--concurrency", "0,2"], "every level must be >= 1"),
    (["--concurrency", "1,2", "--batch-size", "1"], "exactly one of"),
    ([], "exactly one of"),
])  # fmt: skip
def test_cli_sweep_bad_levels_are_usage_errors(tmp_path, extra, match):
    result = CliRunner().invoke(main, ["sweep", "--engine", "openai", "--base-url", "http://127.0.0.1:9/v1",
                                       "--runs-dir", str(tmp_path / "runs"), *extra])  # fmt: skip
    assert result.exit_code == 2 and match in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_transformers_batch_sizes(tmp_path, queryset, trace_meter):  # noqa: F811
    from ipw.engines import get_engine

    engine = get_engine("transformers", model="default")
    config = runner.RunConfig(engine="transformers", queries=str(queryset), settings=GenerationSettings(max_tokens=6),
                              warmup=0, idle_s=0.0, limit=6, runs_dir=str(tmp_path / "runs"), run_id="t")  # fmt: skip
    try:
        result = sweep.run(config, [1, 3], mode="batch_size", engine=engine)
    finally:
        engine.close()
    f = result.levels
    assert f["level"].tolist() == [1, 3] and (f["mode"] == "batch_size").all() and (f["n"] == 6).all()
    assert (f["errors"] == 0).all() and np.isfinite(f["j_per_token_run"]).all()
    from ipw.store import load

    q = load(result.settings["runs"][1]).queries
    extra = q["engine_extra"].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    assert extra.map(lambda e: e["batch_size"] == 3).all()
    # rows of one batch share its start; each row's token times are its own
    starts = extra.map(lambda e: e["t_start_s"]).round(9)
    assert starts.nunique() == 2
    assert np.allclose(q["prefill_energy_j"] + q["decode_energy_j"], q["accelerator_energy_j"].fillna(q["energy_j"]))
