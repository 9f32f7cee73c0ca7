"""The report's hybrid routing and release-date trend sections (ipw.science.intelligence.routing), on synthetic run
folders over the same query ids: numbers recomputed here by hand, the figure embedded, every
name escaped, bad options one line."""

from __future__ import annotations

import base64
import re

import markupsafe
import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

from ipw.cli.compare import compare
from ipw.cli.report import report
from ipw.reports import RoutingRequest, TrendRequest, build_report
from ipw.science.intelligence.routing import CostModel, Price, RoutingInputError
from ipw.store import load
from tests.fakes.runs import SyntheticRun, write_synthetic_run

IDS = tuple(f"item-{i:03d}" for i in range(48))  # every run answers these queries
PARAMS = {"small": 1.7e9, "big": 8e9, "cloud": 70e9}
PRICES = {"small": (0.1, 0.1), "big": (0.2, 0.4), "cloud": (0.88, 0.88)}
DATES = {"small": "2023-05-01", "big": "2024-05-01", "cloud": "2025-05-01"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("routing-runs")
    specs = {"small": SyntheticRun(n_queries=48, seed=11, accuracy=0.4, energy_j=2.0, ids=IDS),
             "big": SyntheticRun(n_queries=48, seed=12, accuracy=0.6, energy_j=6.0, ids=IDS),
             "cloud": SyntheticRun(n_queries=48, seed=13, accuracy=0.8, energy_j=30.0, hz=0, ids=IDS)}  # fmt: skip
    return {name: write_synthetic_run(d, name, spec) for name, spec in specs.items()}


def _request(accuracies=(1.0, 0.8)) -> RoutingRequest:
    prices = {k: Price(*v) for k, v in PRICES.items()}
    return RoutingRequest("cloud", CostModel(params=PARAMS, prices=prices), accuracies)


def _by_hand(runs):
    """Oracle and 0.8-router savings from the records: the least-energy correct local run, else the
    reference; a 0.8 router errs to the reference (docs/routing.md). Energy is the accelerator's, the
    report's default basis (the records' system energy differs from it)."""
    q = {n: load(p).queries.set_index("id").loc[list(IDS)] for n, p in runs.items()}
    tokens = {n: (f["input_tokens"].to_numpy(float), f["output_tokens"].to_numpy(float)) for n, f in q.items()}
    cost = {"energy_j": {n: f["accelerator_energy_j"].to_numpy(float) for n, f in q.items()},
            "flops": {n: 2 * PARAMS[n] * (tokens[n][0] + tokens[n][1]) for n in q},
            "cost_usd": {n: (tokens[n][0] * PRICES[n][0] + tokens[n][1] * PRICES[n][1]) / 1e6 for n in q}}
    ok = {n: f["correct"].to_numpy(bool) for n, f in q.items()}
    out = {"oracle": {}, "p=0.8": {}}
    for m, c in cost.items():
        a, r = [], c["cloud"]
        for i in range(len(IDS)):
            local = [c[n][i] for n in ("small", "big") if ok[n][i]]
            energies = [cost["energy_j"][n][i] for n in ("small", "big") if ok[n][i]]
            a.append(local[int(np.argmin(energies))] if local else r[i])
        a = np.array(a)
        out["oracle"][m] = (1 - a.sum() / r.sum(), 0.0)
        expected = 0.8 * a + 0.2 * r
        out["p=0.8"][m] = (1 - expected.sum() / r.sum(), np.sqrt((0.8 * 0.2 * (a - r) ** 2).sum()) / r.sum())
    answerable = ok["small"] | ok["big"]
    out["oracle"]["accuracy"] = np.where(answerable, 1.0, ok["cloud"]).mean()
    out["reference_accuracy"] = ok["cloud"].mean()
    out["local_share"] = answerable.mean()
    return out


def _section(rep, key):
    return next(s for s in rep.sections if s.key == key)


def _page_section(page: str, key: str) -> str:
    return page.split(f'<section id="{key}">')[1].split("</section>")[0]


def test_routing_section_has_the_savings_computed_by_hand(runs):
    rep = build_report(list(runs.values()), routing=_request())
    keys = [s.key for s in rep.sections]
    assert keys.index("compare") < keys.index("routing") < keys.index("energy") and "trend" not in keys
    sec = _section(rep, "routing")
    frame = sec.tables[0].frame.set_index("router")
    hand = _by_hand(runs)
    assert list(frame.index) == ["oracle", "p=0.8"]
    for router in ("oracle", "p=0.8"):
        for m in ("energy_j", "flops", "cost_usd"):
            saved, sd = hand[router][m]
            assert frame.loc[router, f"{m}_saved"] == pytest.approx(saved, rel=1e-12)
            assert frame.loc[router, f"{m}_saved_sd"] == pytest.approx(sd, rel=1e-12, abs=1e-15)
    assert hand["p=0.8"]["energy_j"][1] > 0  # the 0.8 router's spread is shown, not zero
    assert frame.loc["oracle", "accuracy"] == pytest.approx(hand["oracle"]["accuracy"])
    assert frame.loc["oracle", "reference_accuracy"] == pytest.approx(hand["reference_accuracy"])
    assert frame.loc["oracle", "local_share"] == pytest.approx(hand["local_share"])
    assert frame.loc["p=0.8", "local_share"] == pytest.approx(0.8 * hand["local_share"])
    e, f, c = (hand["p=0.8"][m] for m in ("energy_j", "flops", "cost_usd"))
    line = next(s for s in sec.summary if s.startswith("p=0.8:"))
    assert f"energy {e[0]:.1%} \u00b1 {e[1]:.1%}, compute {f[0]:.1%} \u00b1 {f[1]:.1%}, cost {c[0]:.1%}" in line
    assert f"(cloud alone {hand['reference_accuracy']:.1%})" in line
    assert "exact expectation" in sec.intro and "exact standard deviation" in sec.intro
    routed = sec.tables[1].frame.set_index("run")
    assert routed["queries_oracle"].sum() == pytest.approx(len(IDS))
    page = rep.html()
    assert f"energy {e[0]:.1%} \u00b1 {e[1]:.1%}" in _page_section(page, "routing")


def test_trend_section_and_its_embedded_figure(runs):
    rep = build_report(list(runs.values()), trend=TrendRequest(DATES))
    assert "routing" not in [s.key for s in rep.sections]
    sec = _section(rep, "trend")
    q = {n: load(p).queries for n, p in runs.items()}
    acc = {n: f["correct"].mean() for n, f in q.items()}
    ipw = {n: acc[n] / (f["accelerator_energy_j"] / f["window_s"]).mean() for n, f in q.items()}  # the default basis
    table = sec.tables[0].frame
    assert list(table["period"]) == ["2023", "2024", "2025"]
    order = ["small", "big", "cloud"]
    assert table["best_accuracy"].tolist() == pytest.approx(np.maximum.accumulate([acc[n] for n in order]))
    assert table["best_ipw_per_w"].tolist() == pytest.approx(np.maximum.accumulate([ipw[n] for n in order]))
    assert f"best accuracy {acc['small']:.1%} -> {max(acc.values()):.1%}" in sec.summary[0]
    assert isinstance(sec.figures[0].figure, Figure)
    html = _page_section(rep.html(), "trend")
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == 1 and base64.b64decode(imgs[0])[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_sections_without_their_options(runs):
    keys = [s.key for s in build_report(list(runs.values())).sections]
    assert "routing" not in keys and "trend" not in keys


def test_cli_report_shows_both_sections(runs, tmp_path):
    out = tmp_path / "r.html"
    args = [str(p) for p in runs.values()] + ["-o", str(out), "--reference", "cloud", "--router-accuracy", "0.6"]
    args += [x for n, v in PARAMS.items() for x in ("--params", f"{n}={v:g}")]
    args += [x for n, (i, o) in PRICES.items() for x in ("--price", f"{n}={i}/{o}")]
    args += [x for n, d in DATES.items() for x in ("--release-date", f"{n}={d}")]
    res = CliRunner().invoke(report, args)
    assert res.exit_code == 0, res.output
    page = out.read_text()
    routing = _page_section(page, "routing")
    saved = 0.6 * _by_hand(runs)["oracle"]["cost_usd"][0]  # errs to the reference: p x the oracle's
    assert "p=0.6: saves energy" in routing and f"cost {saved:.1%}" in routing
    assert 'id="trend"' in page


def test_report_and_compare_share_the_routing_options():
    names = ("reference", "prices", "params", "router_accuracies", "misroute", "oracle_prefers", "routing_metrics",
             "release_dates", "trend_by")
    mine = {p.name: p for p in report.params}
    theirs = {p.name: p for p in compare.params}
    for n in names:
        a, b = mine[n], theirs[n]
        assert (a.opts, a.multiple, a.default, repr(a.type)) == (b.opts, b.multiple, b.default, repr(b.type)), n


@pytest.mark.parametrize("extra,message", [
    (["--reference", "nowhere"], "Error: reference 'nowhere' is not among the runs (small, big, cloud)"),
    (["--reference", "cloud", "--price", "small=0.1"], "Error: run big has no price"),
    (["--price", "small=0.1"], "Error: --price and --params are for hybrid routing"),
    (["--reference", "cloud", "--params", "tiny=1B"], "Error: parameter count given for tiny, not among the runs"),
    (["--release-date", "small=2023-05-01"], "Error: run big has no release date"),
    (["--release-date", "small=May 2023x"], "Error: release date 'May 2023x': expected YYYY-MM-DD"),
])
def test_bad_options_are_one_line(runs, tmp_path, extra, message):
    res = CliRunner().invoke(report, [str(p) for p in runs.values()] + ["-o", str(tmp_path / "x.html")] + extra)
    assert res.exit_code == 1 and res.output.startswith(message), res.output
    assert res.output.count("\n") == 1 and "Traceback" not in res.output
    assert not (tmp_path / "x.html").exists()


def test_library_errors_are_routing_input_errors(runs):
    with pytest.raises(RoutingInputError, match="no price"):
        build_report(list(runs.values()), routing=RoutingRequest("cloud", CostModel(prices={"cloud": Price(1, 1)})))


def test_user_names_are_escaped(tmp_path):
    local, ref = "<img src=x onerror=alert(7)> $x^2$", "<b onmouseover=alert(8)>cloud &amp; co"
    paths = [write_synthetic_run(tmp_path, name, SyntheticRun(n_queries=20, seed=seed, accuracy=acc, ids=IDS))
             for name, seed, acc in ((local, 1, 0.5), (ref, 2, 0.8))]
    rep = build_report(paths, routing=RoutingRequest(ref), trend=TrendRequest({local: "2024-01-01", ref: "2025-01-01"}))
    page = rep.html()
    for key in ("routing", "trend"):
        html = _page_section(page, key)
        for name in (local, ref):
            assert name not in html and str(markupsafe.escape(name)) in html
    assert len(_section(rep, "trend").figures) == 1
