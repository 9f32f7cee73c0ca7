"""A new user's path on a GPU machine, end to end through the real command line: ``ipw profile``
twice, ``ipw compare`` (text and JSON), ``ipw report`` (its HTML and its tables) and ``ipw sweep``
print the same numbers with the same scope and measured/estimate label, number by number.

The machine is fake only at the vendor and engine boundaries: NVML is tests/fakes/nvml.py at the
pynvml boundary (an H200 whose counter is the accelerator, measured), the host is the real labelled
CPU estimate, RAPL, Jetson and amdsmi are pointed at nothing (so a machine that has them runs the
same test), and the engine is a real OpenAI-compatible server on 127.0.0.1
(tests/workloads/openai_stub.py). Accelerator, host and system energies therefore all differ, and
the default basis (ipw.core.basis: accelerator) is measured while the system figure is an estimate.

Missing numbers: a run of one scored query has no interval, a run made with ``--idle 0`` no energy
above idle; every command prints "n/a" with the reason, never "nan", and JSON is strict.
"""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.core import clock
from ipw.store import load
from tests.fakes.nvml import FakeNvml, Trace, h200
from tests.workloads.openai_stub import StubServer

NOWHERE = Path("/nonexistent/ipw-user-path")
# 8 queries over 2 domains; the server echoes i, the answer is wrong for q0, q3, q6: run a (all 8) scores
# 5/8, run b (--limit 4: q0-q3, round-robin over domains) 2/4
QUERIES = [{"id": f"q{i}", "prompt": f"Say {i}. ECHO: {i}", "answer": str(i + 1 if i % 3 == 0 else i), "grader": "numeric",
            "domain": ("arithmetic", "facts")[i % 2]} for i in range(8)]  # fmt: skip
NAN = re.compile(r"\bnan\b|\bNaN\b|\binf\b|Infinity")


def _no_amd():
    return SimpleNamespace(amdsmi_init=lambda: None, amdsmi_get_processor_handles=lambda: [],
                           amdsmi_shut_down=lambda: None, AmdSmiException=Exception)  # fmt: skip


def strict(text: str):
    """JSON that holds no NaN or Infinity (json.loads accepts them unless told not to)."""
    def refuse(name):
        raise ValueError(f"non-finite {name} in JSON")

    return json.loads(text, parse_constant=refuse)


class Tables(HTMLParser):
    """The report page's tables: {caption: (header, rows)}, every cell as shown."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: dict[str, tuple[list, list]] = {}
        self._caption = self._cell = None
        self._row: list | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "caption":
            self._caption = ""
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "caption":
            self.tables[self._caption] = self._current = ([], [])
            self._caption = None
        elif tag in ("td", "th"):
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr":
            header, rows = self._current
            (rows if header else header).extend([self._row] if header else self._row)
            self._row = None

    def handle_data(self, data):
        if self._caption is not None:
            self._caption += data
        elif self._cell is not None:
            self._cell += data

    def rows(self, caption: str) -> list[dict]:
        header, rows = next(v for k, v in self.tables.items() if k.startswith(caption))
        return [dict(zip(header, r)) for r in rows]


def run_cli(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and not NAN.search(result.output), result.output
    return result


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    """Runs a (idle baseline measured), b (--idle 0, --limit 4), one (one query, --idle 0) and a sweep
    at concurrency 1 and 3, each through ``ipw profile``/``ipw sweep``; returns their paths and outputs."""
    from ipw.devices import discover as discovery

    d = tmp_path_factory.mktemp("user-path")
    queries = d / "q.jsonl"
    queries.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    gpu = h200(Trace(base_w=300.0, amp_w=120.0, period_s=0.37))  # the counter changes every 100 ms, as on an H200
    nvml = FakeNvml([gpu], clock.now, cost="none")
    real = discovery.discover

    def on_this_machine(cfg=None):
        cfg = cfg or discovery.DiscoverConfig()
        return real(dataclasses.replace(cfg, nvml=nvml, amdsmi=_no_amd(), rapl_root=NOWHERE, jetson_root=NOWHERE))

    server = StubServer().start()
    common = ["--engine", "openai", "--base-url", f"{server.url}/paced/v1", "--model", "stub", "--queries", queries,
              "--warmup", "0", "--quiet", "--runs-dir", d / "runs"]  # fmt: skip
    out = {}
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(discovery, "discover", on_this_machine)
            out["a"] = run_cli("profile", *common, "--run-id", "a", "--idle", "0.3").output
            out["b"] = run_cli("profile", *common, "--run-id", "b", "--idle", "0", "--limit", "4").output
            out["one"] = run_cli("profile", *common, "--run-id", "one", "--idle", "0", "--limit", "1").output
            out["sweep"] = run_cli("sweep", *common, "--run-id", "sw", "--idle", "0", "--concurrency", "1,3").output
    finally:
        server.stop()
    return SimpleNamespace(dir=d, runs=d / "runs", out=out, gpu=gpu)


def overall(path: Path) -> dict:
    return strict((path / "summary.json").read_text())["overall"]


def test_the_fake_machine_has_three_different_scopes(machine):
    """What every other check stands on: the GPU is measured and is the basis, the host an estimate."""
    for name in ("a", "b"):
        q = load(machine.runs / name).queries
        acc, host, system = (q[c].astype(float) for c in ("accelerator_energy_j", "host_energy_j", "energy_j"))
        assert (acc > 0).all() and (host > 0).all() and ((acc - system).abs() > 1e-6).all()
        assert ((acc + host - system).abs() <= 1e-6 * system).all()
        assert q["accelerator_measured"].all() and not q["host_measured"].any() and not q["measured"].any()
        meters = {d["domain"]: d for m in load(machine.runs / name).manifest["meters"] for d in m["domains"]}
        assert meters["gpu:0"]["source"] == "nvml.total_energy_counter" and meters["gpu:0"]["measured"]
        assert meters["cpu"]["source"].startswith("estimate.") and not meters["cpu"]["measured"]
    assert machine.gpu.counter_reads > 0


@pytest.mark.parametrize("name", ["a", "b"])
def test_profile_prints_summary_json_on_the_accelerator_basis(machine, name):
    run = load(machine.runs / name)
    o, q = overall(run.path), run.queries
    # summary.json from the records, independently: the accelerator is the basis, system beside it
    acc_e, correct = q["accelerator_energy_j"].astype(float), q["correct"].astype(bool)
    assert (o["energy_scope"], o["measured"]) == ("accelerator", True)
    assert o["accuracy"] == pytest.approx(correct.mean())
    assert o["scope_energy_j_mean"] == pytest.approx(acc_e.mean()) != pytest.approx(q["energy_j"].mean())
    assert o["ipj_per_j"] == pytest.approx(correct.mean() / acc_e.mean())
    assert o["ipw_per_w"] == pytest.approx(correct.mean() / (acc_e / q["window_s"]).mean())
    text = machine.out[name]
    lo, hi = o["accuracy_ci"]
    assert "accelerator energy: measured" in text
    assert f"accuracy: {o['accuracy']:.1%}  [95% CI {lo:.1%} - {hi:.1%}]" in text
    acc_above = q["accelerator_energy_above_idle_j"].astype(float)
    if name == "a":  # above idle on the accelerator's own scope, beside its energy
        assert o["scope_energy_above_idle_j_mean"] == pytest.approx(acc_above.mean())
        assert o["scope_energy_above_idle_j_mean"] != pytest.approx(o["energy_above_idle_j_mean"])
        assert (f"energy per query: {o['scope_energy_j_mean']:.3f} J accelerator (measured), "
                f"{o['scope_energy_above_idle_j_mean']:.3f} J accelerator above idle (measured), "
                f"{o['energy_j_mean']:.3f} J system (estimate)") in text  # the host estimate labels the system figure
    else:
        assert acc_above.isna().all() and o["scope_energy_above_idle_j_mean"] is None
        assert (f"energy per query: {o['scope_energy_j_mean']:.3f} J accelerator (measured), accelerator above idle "
                f"n/a (no idle baseline: profiled with --idle 0), {o['energy_j_mean']:.3f} J system (estimate)") in text
    assert f"IPW: {o['ipw_per_w']:.5f} /W" in text and f"IPJ: {o['ipj_per_j']:.5f} /J" in text
    assert f"sub-update-period: {o['sub_update_period']} queries" in text or o["sub_update_period"] == 0
    if name == "a":
        assert f"{o['energy_above_idle_j_mean']:.3f} J system above idle (estimate)" in text
    else:
        assert o["energy_above_idle_j_mean"] is None
        assert "system above idle n/a (no idle baseline: profiled with --idle 0)" in text


def _compare_rows(text: str) -> dict[str, dict]:
    lines = text.splitlines()
    header = lines[0].split()
    rows = {}
    for line in lines[1:]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = dict(zip(header, cells))
    return rows


def test_compare_text_and_json_agree_with_profile(machine):
    a, b = machine.runs / "a", machine.runs / "b"
    js = strict(run_cli("compare", a, b, "--json").output)
    text = run_cli("compare", a, b).output
    shown = _compare_rows(text)
    for row in js["runs"]:
        o = overall(machine.runs / row["run"])
        for key in ("accuracy", "ipw_per_w", "ipj_per_j", "scope_energy_j_mean", "power_w_mean"):
            assert row[key] == pytest.approx(o[key], rel=1e-12), key
            assert shown[row["run"]][key] == f"{o[key]:.4g}", key
        assert (row["energy_scope"], row["energy"], row["measured"]) == ("accelerator", "measured", True)
        assert (shown[row["run"]]["energy_scope"], shown[row["run"]]["energy"]) == ("accelerator", "measured")
    best = js["coverage"]["best_of_local"]
    assert js["coverage"]["queries"] == 4 and (best["energy_scope"], best["energy"]) == ("accelerator", "measured")
    assert (f"best-of-local: accuracy {best['accuracy']:.1%}, {best['energy_j_mean']:.3f} J/query accelerator (measured), "
            f"IPJ {best['ipj_per_j']:.5f} /J") in text


def test_compare_above_idle_without_a_baseline_says_na_with_the_reason(machine):
    a, b = machine.runs / "a", machine.runs / "b"
    text = run_cli("compare", a, b, "--energy", "above_idle").output
    rows = _compare_rows(text)
    assert rows["b"]["ipj_per_j"] == rows["b"]["scope_energy_j_mean"] == "n/a"
    # above idle on the accelerator's scope: the GPU's own figure and label, not the system's
    assert rows["a"]["energy_scope"] == "above_idle" and rows["a"]["energy"] == "measured"
    from ipw.store import load

    q = load(a).queries
    assert float(rows["a"]["scope_energy_j_mean"]) == pytest.approx(q["accelerator_energy_above_idle_j"].mean(), rel=1e-3)
    assert "n/a in ipj_per_j (b): no idle baseline: profiled with --idle 0" in text
    assert "coverage and best-of-local: n/a (no energy above idle for some common queries of run(s) b" in text
    js = strict(run_cli("compare", a, b, "--energy", "above_idle", "--json").output)
    b_row = next(r for r in js["runs"] if r["run"] == "b")
    assert b_row["ipj_per_j"] is None and b_row["missing"]["ipj_per_j"].startswith("no idle baseline")
    assert js["coverage"] is None and "--idle 0" in js["coverage_missing"]


def test_report_html_and_tables_agree_with_profile_and_compare(machine):
    from ipw.reports.report import build_report

    a, b, page_path = machine.runs / "a", machine.runs / "b", machine.dir / "x.html"
    result = run_cli("report", a, b, "-o", page_path)
    assert "is an estimate (no energy counter)" not in result.output  # the accelerator is measured
    page = page_path.read_text()
    assert "Energy in this report is an ESTIMATE" not in page and 'class="banner"' not in page
    assert not re.search(r">\s*(nan|NaN|inf)\s*<", page)
    report = build_report([a, b])  # what `ipw report` builds, as DataFrames
    cov = strict(run_cli("compare", a, b, "--json").output)["coverage"]
    html = Tables(page)
    summary = {r["run"]: r for r in html.rows("One row per run")}
    frame = report.tables["summary"].set_index("run")
    for name in ("a", "b"):
        o, row, cells = overall(machine.runs / name), frame.loc[name], summary[name]
        for key in ("accuracy", "ipw_per_w", "ipj_per_j", "power_w_mean", "sub_update_period"):
            assert row[key] == pytest.approx(o[key], rel=1e-12), key
        assert row["energy_j_mean"] == pytest.approx(o["scope_energy_j_mean"], rel=1e-12)
        assert row["system_energy_j_mean"] == pytest.approx(o["energy_j_mean"], rel=1e-12)
        assert (row["energy_scope"], row["energy"], row["system_energy"]) == ("accelerator", "measured", "estimate")
        # the page, cell by cell: the header names the scope, each figure its label
        assert cells["accelerator energy/query [J]"] == f"{o['scope_energy_j_mean']:.4g}"
        assert cells["system energy/query [J]"] == f"{o['energy_j_mean']:.4g}"
        assert (cells["energy scope"], cells["energy is"], cells["system energy is"]) == ("accelerator", "measured", "estimate")
        assert cells["IPJ [1/J] [95% CI]"].startswith(f"{o['ipj_per_j']:.4g} [")
        assert cells["accuracy [95% CI]"] == f"{o['accuracy']:.1%} [{o['accuracy_ci'][0]:.1%}, {o['accuracy_ci'][1]:.1%}]"
        line = (f"IPW {o['ipw_per_w']:.4g} /W, IPJ {o['ipj_per_j']:.4g} /J, {o['scope_energy_j_mean']:.4g} J/query "
                f"accelerator (measured)")
        assert line in page
    assert summary["b"]["accelerator above idle [J]"] == "n/a"
    assert "n/a in accelerator above idle [J] (b): no idle baseline: profiled with --idle 0." in page
    best = {r["run"]: r for r in html.rows("Coverage and best-of-local")}["best-of-local (oracle routing)"]
    assert best["accelerator energy/query [J]"] == f"{cov['best_of_local']['energy_j_mean']:.4g}"
    assert best["IPJ [1/J]"] == f"{cov['best_of_local']['ipj_per_j']:.4g}" and best["energy is"] == "measured"
    samples = html.rows("First correct and first wrong answers per run")
    q = load(a).queries.set_index("id")
    for s in (s for s in samples if s["run"] == "a"):
        assert s["accelerator energy [J]"] == f"{q.loc[s['id'], 'accelerator_energy_j']:.4g}" and s["energy is"] == "measured"
    assert "a: accelerator energy per query (measured) median" in page


def test_sweep_prints_what_each_level_profiled(machine):
    from ipw.run.sweep import levels_frame

    paths = [machine.runs / f"sw-c{level}" for level in (1, 3)]
    frame = levels_frame(paths).set_index("level")
    text = machine.out["sweep"]
    table = text.split("serving frontier")[1].splitlines()[1:]
    shown = {int(r["level"]): r for r in _compare_rows("\n".join(table)).values()}
    for level, path in zip((1, 3), paths):
        o = overall(path)
        assert frame.loc[level, "accuracy"] == pytest.approx(o["accuracy"], rel=1e-12)
        assert frame.loc[level, "energy_per_query_j"] == pytest.approx(o["scope_energy_j_mean"], rel=1e-12)
        assert (frame.loc[level, "energy_scope"], frame.loc[level, "energy"]) == ("accelerator", "measured")
        assert shown[level]["ipj_per_j"] == f"{o['ipj_per_j']:.4g}"
        assert shown[level]["energy_per_query_j"] == f"{o['scope_energy_j_mean']:.4g}"
        assert (shown[level]["energy_scope"], shown[level]["energy"]) == ("accelerator", "measured")
        assert f"IPJ: {o['ipj_per_j']:.5f} /J" in text  # each level's own profile summary, printed by the sweep


def test_one_scored_query_prints_na_and_writes_strict_json(machine):
    text = machine.out["one"]
    o = overall(machine.runs / "one")  # strict: a NaN would have raised
    assert o["scored"] == 1 and o["accuracy_ci"] == [None, None] and o["ipj_ci"] == [None, None]
    assert "[95% CI n/a (1 scored query: no bootstrap interval)]" in text
    assert "IPJ: " in text and "[n/a (1 scored query: no bootstrap interval)]" in text
    page = machine.dir / "one.html"
    # on the system basis the host's estimate makes the run an estimate, and the page says why truly
    result = run_cli("report", machine.runs / "one", "--energy", "system", "-o", page)
    assert "note: energy of one is an estimate on the system basis (it is, or includes, a domain" in result.output
    html = page.read_text()
    assert "Energy in this report is an ESTIMATE for: one. Their system energy is, or includes, the labelled estimate" in html
    assert "had no energy counter" not in html
    assert "accuracy [95% CI]" in html and "n/a in accuracy (one): 1 scored query: no bootstrap interval." in html
    assert not re.search(r">\s*(nan|NaN)\s*<", html)
