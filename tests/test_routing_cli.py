"""``ipw compare`` with --reference and --release-date, on synthetic run folders in the store format."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import ipw.science.intelligence.routing as routing
from ipw.cli import compare as compare_cli
from ipw.cli.compare import compare
from ipw.science.intelligence.routing import CostModel, Price, router_savings, routing_table
from ipw.store import load
from tests.fakes.runs import SyntheticRun, write_synthetic_run


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    specs = {"small": SyntheticRun(n_queries=60, seed=1, accuracy=0.4, energy_j=2.0),
             "big": SyntheticRun(n_queries=60, seed=2, accuracy=0.6, energy_j=6.0),
             "cloud": SyntheticRun(n_queries=60, seed=3, accuracy=0.8, energy_j=30.0, hz=0)}  # fmt: skip
    return {name: write_synthetic_run(d, name, spec) for name, spec in specs.items()}


ARGS = ["--reference", "cloud", "--params", "small=1.7B", "--params", "big=8B", "--params", "cloud=70B",
        "--price", "small=0.1", "--price", "big=0.2/0.4", "--price", "cloud=0.88", "--router-accuracy", "0.8"]  # fmt: skip


def test_choices_agree_with_the_library():
    assert compare_cli.METRICS == routing.METRICS
    assert compare_cli.MISROUTES == routing.MISROUTES
    assert compare_cli.PREFERS == routing.PREFERS


def test_compare_prints_routing_savings(three_runs):
    paths = [str(p) for p in three_runs.values()]
    res = CliRunner().invoke(compare, paths + ARGS)
    assert res.exit_code == 0, res.output
    assert "coverage over 60 common queries" in res.output  # the existing output is kept
    assert "hybrid routing against cloud over 60 queries" in res.output
    # the printed shares are the library's, on the same loaded frames
    frames = {name: load(p).queries for name, p in three_runs.items()}
    costs = CostModel(params={"small": 1.7e9, "big": 8e9, "cloud": 70e9},
                      prices={"small": Price(0.1, 0.1), "big": Price(0.2, 0.4), "cloud": Price(0.88, 0.88)})  # fmt: skip
    t = routing_table(frames, "cloud", costs)
    oracle, p8 = router_savings(t), router_savings(t, 0.8)
    assert f"oracle   saves energy {oracle.saved['energy_j']:.1%}, compute {oracle.saved['flops']:.1%}, cost {oracle.saved['cost_usd']:.1%}" in res.output
    assert f"p=0.8    saves energy {p8.saved['energy_j']:.1%} +- {p8.saved_sd['energy_j']:.1%}" in res.output
    js = json.loads(CliRunner().invoke(compare, paths + ARGS + ["--json"]).output)
    rows = {r["router"]: r for r in js["routing"]["routers"]}
    assert rows["p=0.8"]["cost_usd_saved"] == pytest.approx(p8.saved["cost_usd"])
    assert js["routing"]["queries"] == 60 and js["coverage"]["queries"] == 60


def test_compare_prints_the_release_trend(three_runs):
    paths = [str(p) for p in three_runs.values()]
    dates = ["--release-date", "small=2023-05-01", "--release-date", "big=2024-05-01", "--release-date", "cloud=2025-05-01"]
    res = CliRunner().invoke(compare, paths + dates)
    assert res.exit_code == 0, res.output
    assert "best available model by release date" in res.output and "from 2023 to 2025: IPW x" in res.output
    js = json.loads(CliRunner().invoke(compare, paths + dates + ["--json"]).output)
    assert [p["period"] for p in js["trend"]["periods"]] == ["2023", "2024", "2025"]
    assert js["trend"]["accuracy_first"] == pytest.approx(load(three_runs["small"]).queries["correct"].mean())


def test_compare_routing_errors_are_one_line(three_runs):
    paths = [str(p) for p in three_runs.values()]
    res = CliRunner().invoke(compare, paths + ["--price", "small=0.1"])
    assert res.exit_code == 1 and "--reference RUN" in res.output
    res = CliRunner().invoke(compare, paths + ["--reference", "cloud", "--price", "small=0.1"])
    assert res.exit_code == 1 and "run big has no price" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(compare, paths + ["--reference", "nowhere"])
    assert res.exit_code == 1 and "reference 'nowhere' is not among the runs" in res.output
    res = CliRunner().invoke(compare, paths + ["--release-date", "small=2023-05-01"])
    assert res.exit_code == 1 and "run big has no release date" in res.output
