"""One IPW across concurrency levels: accuracy over the device's mean power while serving.

The same answers at two levels must give the same IPW when the device draws the same power: a
meter with a flat trace (40 W, whatever is in flight) and the concurrency tests' stub server, which
answers every query correctly on a fixed schedule. The per-query attributed figure, kept as its own
column, grows with the number in flight, which is why it is not the headline. With the concurrency
tests' varying trace, the serving power is checked against the trace's own integral over the
run's active time.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.devices.base import DomainInfo
from ipw.run import sweep
from ipw.science.intelligence.metrics import serving_power_w, summarize
from tests.workloads.test_concurrency import QUERIES, ClockMeter, _run, energy_j, only_meter, trace_meter  # noqa: F401 - QUERIES (the queryset fixture), trace_meter

FLAT_W = 40.0


@pytest.fixture
def flat_meter(monkeypatch):
    """Cumulative energy = 40 W x the time since the meter opened: an exact counter at 1 uJ."""
    info = DomainInfo("gpu:0", "test.flat", True, 0.0, 1e-6, scope="accelerator")
    return only_meter(monkeypatch, ClockMeter([info], lambda t: {"gpu:0": FLAT_W * t}))


def test_the_same_answers_at_two_levels_give_the_same_ipw(tmp_path, queryset, stub, flat_meter):
    one = _run(tmp_path, queryset, f"{stub}/timed/v1", concurrency=1, run_id="c1")
    four = _run(tmp_path, queryset, f"{stub}/timed/v1", concurrency=4, run_id="c4")
    for run in (one, four):
        assert run.queries["correct"].all() and len(run.queries) == len(QUERIES)
    s1, s4 = one.summary["overall"], four.summary["overall"]
    assert s1["serving_power_w"] == pytest.approx(FLAT_W, rel=1e-4) and s4["serving_power_w"] == pytest.approx(FLAT_W, rel=1e-4)
    assert s1["ipw_per_w"] == pytest.approx(1 / FLAT_W, rel=1e-4) and s4["ipw_per_w"] == pytest.approx(s1["ipw_per_w"], rel=1e-4)
    assert s4["ipw_ci"] == pytest.approx(s1["ipw_ci"], rel=1e-4)
    # the per-query attributed IPW grows with the number in flight: kept, but not the headline
    assert s4["ipw_attributed_per_w"] > 2 * s1["ipw_attributed_per_w"]
    # IPJ is what batching rightly improves: four in flight share the same power over less time
    assert s4["ipj_per_j"] > 1.5 * s1["ipj_per_j"]
    # the same in compare, report and sweep
    out = json.loads(CliRunner().invoke(main, ["compare", str(one.path), str(four.path), "--json"]).output)
    ipw = {r["run"]: r["ipw_per_w"] for r in out["runs"]}
    assert ipw["c1"] == pytest.approx(ipw["c4"], rel=1e-4) and ipw["c1"] == pytest.approx(s1["ipw_per_w"], rel=1e-9)
    frame = sweep.levels_frame([one.path, four.path]).set_index("level")
    assert frame.loc[1, "ipw_per_w"] == pytest.approx(frame.loc[4, "ipw_per_w"], rel=1e-4)
    assert frame.loc[4, "ipw_attributed_per_w"] > 2 * frame.loc[1, "ipw_attributed_per_w"]
    text = CliRunner().invoke(main, ["compare", str(one.path), str(four.path)]).output
    assert "serving_power_w" in text and "ipw_attributed_per_w" in text
    # the release-date trend shows the IPW of the table of runs, in compare and in the report
    dates = ["--release-date", "c1=2024-01-01", "--release-date", "c4=2025-01-01"]
    out = json.loads(CliRunner().invoke(main, ["compare", str(one.path), str(four.path), "--json", *dates]).output)
    best = {p["period"]: p["best_ipw_per_w"] for p in out["trend"]["periods"]}
    assert best["2024"] == pytest.approx(ipw["c1"], rel=1e-12) and best["2025"] == pytest.approx(max(ipw.values()), rel=1e-12)
    from ipw.reports import tables as report_tables

    points, _ = report_tables.trend_tables({"c1": one, "c4": four}, {"c1": "2024-01-01", "c4": "2025-01-01"})
    assert dict(zip(points["run"], points["ipw_per_w"])) == pytest.approx(ipw, rel=1e-12)


def test_serving_power_is_the_traces_mean_over_the_active_time(tmp_path, queryset, stub, trace_meter):  # noqa: F811
    run = _run(tmp_path, queryset, f"{stub}/timed/v1", concurrency=4)
    (session,) = run.manifest["serving"]["sessions"]
    spans = sorted(s for e in run.queries["engine_extra"] for s in e["attribution"]["attempt_spans_s"])
    merged = [list(spans[0])]
    for a, b in spans[1:]:  # the union of the attempts' spans: the active time
        if a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    t = np.array(merged) - trace_meter.t0
    true_w = float((energy_j(t[:, 1]) - energy_j(t[:, 0])).sum() / (t[:, 1] - t[:, 0]).sum())
    assert session["active_s"] == pytest.approx((t[:, 1] - t[:, 0]).sum(), rel=0.02)
    assert run.summary["overall"]["serving_power_w"] == pytest.approx(true_w, rel=0.05)
    assert serving_power_w(run.manifest["serving"]) == pytest.approx(session["active_basis"]["energy_j"] / session["active_s"])
    assert session["active_basis"]["scope"] == "accelerator" and session["active_basis"]["domains"] == ["gpu:0"]


def test_serving_power_by_basis_and_a_run_without_serving():
    sessions = [{"active_s": 2.0, "active_basis": {"energy_j": 60.0, "system_energy_j": 80.0, "idle_power_w": 10.0}},
                {"active_s": 1.0, "active_basis": {"energy_j": 30.0, "system_energy_j": 50.0, "idle_power_w": 10.0}},
                {"session": 2, "level": 4, "error": "RuntimeError()"}]  # a session whose summary failed
    serving = {"sessions": sessions}
    assert serving_power_w(serving) == pytest.approx(90.0 / 3.0)
    assert serving_power_w(serving, "system") == pytest.approx(130.0 / 3.0)
    assert serving_power_w(serving, "above_idle") == pytest.approx((130.0 - 10.0 * 3.0) / 3.0)
    assert serving_power_w(None) is None and serving_power_w({"sessions": []}) is None
    frame = __import__("pandas").DataFrame({"id": ["a", "b"], "correct": [True, False], "error": [None, None],
                                            "energy_j": [10.0, 20.0], "accelerator_energy_j": [10.0, 20.0],
                                            "window_s": [2.0, 4.0], "e2e_s": [2.0, 4.0], "measured": [True, True]})  # fmt: skip
    plain, served = summarize(frame).iloc[0], summarize(frame, serving_power=25.0).iloc[0]
    assert plain["ipw_per_w"] == pytest.approx(0.1) and "ipw_attributed_per_w" not in plain  # the paper's, at batch 1
    assert served["ipw_per_w"] == pytest.approx(0.5 / 25.0) and served["ipw_attributed_per_w"] == pytest.approx(0.1)
