"""Hybrid routing savings and the release-date trend (ipw.science.intelligence.routing) against hand-computed values,
edge cases, bad input, and the IPW paper's published routing figures."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ipw.science.intelligence.routing import (
    CostModel,
    Price,
    RoutingInputError,
    oracle_choice,
    paper_figures,
    parse_assignments,
    parse_params,
    router_savings,
    routing_table,
    savings_frame,
)
from ipw.science.intelligence.trend import model_points, release_trend

T, F = True, False


def run(correct, energy_j, e2e_s=1.0, input_tokens=10, output_tokens=30, **extra):
    n = len(correct)
    per = lambda v: v if isinstance(v, list) else [v] * n  # noqa: E731
    return pd.DataFrame({"id": [f"q{i}" for i in range(n)], "correct": correct, "energy_j": per(energy_j),
                         "e2e_s": per(e2e_s), "input_tokens": per(input_tokens),
                         "output_tokens": per(output_tokens), **extra})  # fmt: skip


# q0: every run right; q1: big and ref; q2: ref only; q3: nobody
RUNS = {
    "small": run([T, F, F, F], 1.0),
    "big": run([T, T, F, F], 4.0),
    "ref": run([T, T, T, F], 20.0),
}
PARAMS = {"small": 1e9, "big": 4e9, "ref": 70e9}
PRICES = {"small": Price(0.1, 0.2), "big": Price(0.3, 0.6), "ref": Price(2.0, 8.0)}
FULL = CostModel(params=PARAMS, prices=PRICES)


def test_oracle_by_hand():
    t = routing_table(RUNS, "ref", FULL)
    assert list(oracle_choice(t)) == ["small", "big", None, None]
    s = router_savings(t)
    # energy [J]: routed 1 + 4 + 20 + 20 = 45 against 4 x 20 = 80
    assert s.hybrid_total["energy_j"] == 45.0 and s.reference_total["energy_j"] == 80.0
    assert s.saved["energy_j"] == pytest.approx(35 / 80)
    # compute [FLOP]: 2 N (10 + 30) per query: 80e9 + 320e9 + 2 x 5600e9 against 4 x 5600e9
    assert s.reference_total["flops"] == pytest.approx(4 * 2 * 70e9 * 40)
    assert s.saved["flops"] == pytest.approx(1 - 11600 / 22400)
    # cost [USD]: (10 x in + 30 x out) / 1e6: 7e-6, 21e-6, 260e-6 per query
    assert s.saved["cost_usd"] == pytest.approx(1 - (7 + 21 + 260 + 260) / 1040)
    assert s.accuracy == 0.75 and s.reference_accuracy == 0.75 and s.local_share == 0.5
    assert all(v == 0.0 for v in s.saved_sd.values())  # the oracle does not err
    assert s.routed_to == {"small": 1.0, "big": 1.0, "ref": 2.0}


def test_p_router_expectation_and_sd_by_hand():
    t = routing_table(RUNS, "ref", FULL)
    s = router_savings(t, 0.5)
    # q0: .5 x 1 + .5 x 20, q1: .5 x 4 + .5 x 20, q2, q3: 20 -> 62.5 J
    assert s.hybrid_total["energy_j"] == pytest.approx(62.5)
    assert s.saved["energy_j"] == pytest.approx(17.5 / 80)
    assert s.saved_sd["energy_j"] == pytest.approx(math.sqrt(0.25 * (19**2 + 16**2)) / 80)
    assert s.accuracy == 0.75  # an error sends the query to the reference, right on q0 and q1 too
    assert s.accuracy_sd == 0.0
    assert s.routed_to == {"small": 0.5, "big": 0.5, "ref": 3.0}


def test_symmetric_misroutes_by_hand():
    t = routing_table(RUNS, "ref", CostModel())
    fb = router_savings(t, 0.5, "symmetric_fallback")
    # q2, q3 when wrong: the cheapest local run (small, 1 J), then the reference: .5 x 20 + .5 x 21
    assert fb.hybrid_total["energy_j"] == pytest.approx(10.5 + 12 + 20.5 + 20.5)
    assert fb.accuracy == 0.75
    nf = router_savings(t, 0.5, "symmetric_no_fallback")
    assert nf.hybrid_total["energy_j"] == pytest.approx(10.5 + 12 + 10.5 + 10.5)
    assert nf.accuracy == pytest.approx((1 + 1 + 0.5 + 0) / 4)  # q2 kept wrong half the time
    assert nf.accuracy_sd == pytest.approx(math.sqrt(0.25) / 4)
    assert nf.routed_to["small"] == pytest.approx(0.5 + 1.0)  # right on q0, wrong on q2, q3
    assert router_savings(t, 0.0, "symmetric_fallback").saved["energy_j"] == pytest.approx(-2 / 80)  # worse than none


def test_oracle_preference():
    t = routing_table({"big": RUNS["big"], "small": RUNS["small"], "ref": RUNS["ref"]}, "ref", CostModel(prefer="order"))
    assert list(oracle_choice(t))[:2] == ["big", "big"]
    assert router_savings(t).saved["energy_j"] == pytest.approx(1 - 48 / 80)
    t = routing_table(RUNS, "ref", CostModel(params=PARAMS, prefer="params"))
    assert list(oracle_choice(t))[:2] == ["small", "big"]


def test_p1_is_the_oracle_and_p0_saves_nothing():
    t = routing_table(RUNS, "ref", FULL)
    assert router_savings(t, 1.0) == router_savings(t)
    zero = router_savings(t, 0.0)
    assert all(v == 0.0 for v in zero.saved.values()) and zero.accuracy == zero.reference_accuracy
    assert zero.local_share == 0.0
    frame = savings_frame(t, (1.0, 0.8, 0.6, 0.0))
    assert list(frame["router"]) == ["oracle", "p=0.8", "p=0.6", "p=0"]
    # the expectation is linear in p, in every metric and misroute
    for misroute in ("to_reference", "symmetric_fallback", "symmetric_no_fallback"):
        s = {p: router_savings(t, p, misroute).saved for p in (1.0, 0.8, 0.6)}
        for m in s[1.0]:
            assert s[0.6][m] == pytest.approx(2 * s[0.8][m] - s[1.0][m])


def test_no_local_answer_and_all_answered():
    none = {"a": run([F, F], 1.0), "ref": run([T, F], 10.0)}
    s = router_savings(routing_table(none, "ref"))
    assert s.saved["energy_j"] == 0.0 and s.local_share == 0.0 and s.accuracy == 0.5
    every = {"a": run([T, F], 1.0), "b": run([F, T], 3.0), "ref": run([T, T], 10.0)}
    s = router_savings(routing_table(every, "ref"))
    assert s.saved["energy_j"] == pytest.approx(1 - 4 / 20) and s.local_share == 1.0 and s.accuracy == 1.0
    # local answers what the reference gets wrong: the hybrid is more accurate than the reference
    better = {"a": run([T, T], 1.0), "ref": run([F, T], 10.0)}
    s = router_savings(routing_table(better, "ref"), 0.8)
    assert s.accuracy == pytest.approx((0.8 + 1.0) / 2) and s.reference_accuracy == 0.5


def test_unscored_queries_are_dropped_and_counted():
    runs = {"a": run([T, None, T], 1.0), "ref": run([T, T, T], 10.0)}
    t = routing_table(runs, "ref")
    assert t.queries == 2 and t.dropped == 1


def test_bad_input_raises_clear_errors():
    with pytest.raises(RoutingInputError, match="share no query id"):
        routing_table({"a": run([T], 1.0), "ref": run([T], 2.0).assign(id=["other"])}, "ref")
    with pytest.raises(RoutingInputError, match="run ref: 1 of 2 queries have no accelerator energy"):
        routing_table({"a": run([T, T], 1.0), "ref": run([T, T], [2.0, None])}, "ref")
    with pytest.raises(RoutingInputError, match="run big has no price"):
        routing_table(RUNS, "ref", CostModel(prices={"small": Price(1, 1), "ref": Price(1, 1)}))
    with pytest.raises(RoutingInputError, match="run small has no parameter count"):
        routing_table(RUNS, "ref", CostModel(params={"big": 1e9, "ref": 1e9}))
    with pytest.raises(RoutingInputError, match="lack input_tokens"):
        routing_table({"a": run([T], 1.0, input_tokens=None), "ref": run([T], 2.0)}, "ref", CostModel(params={"a": 1.0, "ref": 2.0}))
    with pytest.raises(RoutingInputError, match="price given for cloud, not among the runs"):
        routing_table(RUNS, "ref", CostModel(prices=PRICES | {"cloud": Price(1, 1)}))
    with pytest.raises(RoutingInputError, match="not among the runs"):
        routing_table(RUNS, "cloud")
    with pytest.raises(RoutingInputError, match="at least one local run"):
        routing_table({"ref": RUNS["ref"]}, "ref")
    t = routing_table(RUNS, "ref")
    with pytest.raises(RoutingInputError, match="not a probability"):
        router_savings(t, 1.2)
    with pytest.raises(RoutingInputError, match="unknown misroute"):
        router_savings(t, 0.8, "elsewhere")
    # compute and cost only, for a reference whose energy was not measured (an API)
    api = {"a": run([T, F], 1.0), "ref": run([T, T], None)}
    s = router_savings(routing_table(api, "ref", CostModel(params={"a": 1e9, "ref": 1e11}, metrics=("flops",))))
    assert set(s.saved) == {"flops"} and s.saved["flops"] == pytest.approx(0.5 * (1 - 1e9 / 1e11))


def test_parsing_options():
    assert Price.parse("0.6") == Price(0.6, 0.6) and Price.parse("0.15/0.60") == Price(0.15, 0.6)
    assert parse_params("8B") == 8e9 and parse_params("135m") == 135e6 and parse_params("1.5e9") == 1.5e9
    assert parse_assignments(["a=1", "b = 2"], "--price") == {"a": "1", "b": "2"}
    for bad, call in [("x", Price.parse), ("-1", Price.parse), ("eight", parse_params), ("0", parse_params)]:
        with pytest.raises(RoutingInputError):
            call(bad)
    with pytest.raises(RoutingInputError, match="expected RUN=VALUE"):
        parse_assignments(["a"], "--price")
    with pytest.raises(RoutingInputError, match="given twice"):
        parse_assignments(["a=1", "a=2"], "--price")


# -- the paper's published routing figures ---------------------------------------------------------
def paper_like_runs(saved_pct: dict[str, float], coverage: float = 0.887, n: int = 1000):
    """Runs whose oracle saves the paper's published shares: a local run correct on ``coverage`` of
    the queries, each metric's local cost a constant share r of the reference's with
    coverage x (1 - r) = published oracle saving. Only the oracle row is built in; the router rows
    are computed."""
    k = round(coverage * n)
    r = {m: 1 - saved_pct[m] / 100 / coverage for m in saved_pct}
    local = run([T] * k + [F] * (n - k), r["energy_j"], input_tokens=50, output_tokens=50)
    ref = run([T] * n, 1.0, input_tokens=50, output_tokens=50)
    costs = CostModel(params={"local": r["flops"] * 1e11, "ref": 1e11},
                      prices={"local": Price(r["cost_usd"], r["cost_usd"]), "ref": Price(1.0, 1.0)})  # fmt: skip
    return routing_table({"local": local, "ref": ref}, "ref", costs)


def test_paper_80_percent_router_follows_from_its_oracle():
    paper = paper_figures("routing_savings").set_index("router_accuracy")
    cols = {"energy_j": "energy_saved_pct", "flops": "compute_saved_pct", "cost_usd": "cost_saved_pct"}
    t = paper_like_runs({m: paper.loc[1.0, c] for m, c in cols.items()})
    for p in (1.0, 0.8):
        s = router_savings(t, p)
        for m, c in cols.items():
            assert round(100 * s.saved[m], 1) == paper.loc[p, c], (p, m)
        assert s.accuracy >= s.reference_accuracy  # cloud fallback: no quality loss
    # the published 60% row sits 0.16-0.32 points above any expectation linear in router accuracy
    # (a random draw in the paper, we take it; docs/routing.md), in all three metrics alike
    s = router_savings(t, 0.6)
    gaps = {m: paper.loc[0.6, c] - 100 * s.saved[m] for m, c in cols.items()}
    assert all(0.1 < g < 0.35 for g in gaps.values()), gaps


def test_paper_headline_figures_are_consistent():
    h = paper_figures("headline").set_index("figure")["value"]
    # the trend's "coverage" is the best model's win/tie rate: its ratio is the paper's 3.1x
    assert round(h["best_local_win_tie_rate_2025"] / h["best_local_win_tie_rate_2023"], 1) == h["accuracy_gain_2023_2025"]
    assert round(h["ipw_gain_from_models"] * h["ipw_gain_from_accelerators"], 1) == h["ipw_gain_2023_2025"]
    with pytest.raises(RoutingInputError, match="shipped"):
        paper_figures("nope")


# -- release-date trend ----------------------------------------------------------------------------
TREND_RUNS = {
    "m2023": run([T, F, F, F], 10.0),  # accuracy 0.25, 10 W: IPW 0.025 /W
    "m2024": run([T, T, F, F], 10.0),  # 0.5, 10 W: 0.05
    "m2025a": run([T, T, T, F], 30.0),  # 0.75, 30 W: 0.025
    "m2025b": run([F, F, T, T], 5.0),  # 0.5, 5 W: 0.1
}
DATES = {"m2023": "2023-06-01", "m2024": "2024-03-01", "m2025a": "2025-02-01", "m2025b": "2025-08-01"}


def test_release_trend_by_year_by_hand():
    pts = model_points(TREND_RUNS, DATES).set_index("run")
    assert pts.loc["m2025b", "ipw_per_w"] == pytest.approx(0.1) and pts.loc["m2025a", "ipj_per_j"] == pytest.approx(0.025)
    tr = release_trend(model_points(TREND_RUNS, DATES), TREND_RUNS)
    tab = tr.table.set_index("period")
    assert list(tab.index) == ["2023", "2024", "2025"] and list(tab["models"]) == [1, 2, 4]
    assert list(tab["best_accuracy"]) == [0.25, 0.5, 0.75]
    assert tab.loc["2025", "best_accuracy_run"] == "m2025a" and tab.loc["2025", "best_ipw_run"] == "m2025b"
    assert list(tab["best_ipw_per_w"]) == pytest.approx([0.025, 0.05, 0.1])
    assert list(tab["union_coverage"]) == [0.25, 0.5, 1.0]
    assert tr.ipw_ratio == pytest.approx(4.0) and tr.accuracy_ratio == pytest.approx(3.0)
    assert (tr.first, tr.last, tr.union_coverage_last) == ("2023", "2025", 1.0)


def test_release_trend_by_date_and_from_a_column():
    runs = {n: f.assign(release_date=DATES[n]) for n, f in TREND_RUNS.items()}
    tr = release_trend(model_points(runs), by="date")
    assert list(tr.table["period"]) == sorted(DATES.values())
    assert list(tr.table["best_ipw_per_w"]) == pytest.approx([0.025, 0.05, 0.05, 0.1])
    assert math.isnan(tr.union_coverage_first)  # no query frames given


def test_release_trend_bad_input():
    with pytest.raises(RoutingInputError, match="run m2025b has no release date"):
        model_points(TREND_RUNS, {k: v for k, v in DATES.items() if k != "m2025b"})
    with pytest.raises(RoutingInputError, match="not among the runs"):
        model_points(TREND_RUNS, DATES | {"ghost": "2024-01-01"})
    with pytest.raises(RoutingInputError, match="expected YYYY-MM-DD"):
        model_points(TREND_RUNS, DATES | {"m2023": "June 2023x"})
    with pytest.raises(RoutingInputError, match="year or date"):
        release_trend(model_points(TREND_RUNS, DATES), by="month")
