"""The HTML page: self-contained, every user string escaped, every estimate labelled."""

from __future__ import annotations

import re

import markupsafe

import pytest
from click.testing import CliRunner

from ipw.cli.report import report
from ipw.reports.report import build_report
from tests.reports.conftest import HOSTILE


@pytest.fixture
def page(two_runs, hostile_run):
    return build_report([*two_runs, hostile_run], title="<i>title</i>").html()


def test_the_page_has_no_script_and_no_external_resource(page):
    assert "<script" not in page.lower()
    assert " on" not in re.sub(r"<(p|li|td|th|caption|figcaption|h1|h2|title)[^>]*>.*?</\1>", "", page, flags=re.S)
    for attr in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert attr.startswith(("data:image/png;base64,", "#")), attr
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_hostile_strings_are_escaped_text(page, hostile_run):
    from ipw.reports.tables import load_runs, samples_table

    shown = samples_table(load_runs([hostile_run]))
    assert set(shown["output"]) >= set(HOSTILE[:3])
    names = ("<script>alert('model')</script>", "<b onmouseover=alert(5)>hw</b>", "<img src=x onerror=alert(6)>")
    for s in HOSTILE + names:
        assert s not in page
    for s in set(shown["output"]) | set(shown["id"]) | set(names):
        assert str(markupsafe.escape(s)) in page, s
    assert "&lt;i&gt;title&lt;/i&gt;" in page


def test_every_figure_is_an_embedded_png(page):
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(imgs) >= 5
    import base64

    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in imgs)


def test_estimates_are_labelled_in_the_banner_and_rows(two_runs):
    page = build_report(two_runs).html()
    assert 'class="banner"' in page and "estimated-run" in page.split('class="banner"')[1].split("</p>")[0]
    assert "measured-run" not in page.split('class="banner"')[1].split("</p>")[0]
    rows = re.findall(r"<tr( class=\"est\")?>(.*?)</tr>", page, flags=re.S)
    est_rows = [r for cls, r in rows if cls]
    # the measured run's only row marked estimate is its host's meter (the CPU estimate beside the GPU)
    host = "<td>measured-run</td><td>estimate</td><td>cpu</td><td>estimate.cpu_util_tdp</td>"
    assert est_rows and all("estimated-run" in r or "best-of-local" in r or r.startswith(host) for r in est_rows)
    assert sum(r.startswith(host) for r in est_rows) == 1
    measured_only = build_report(two_runs[:1]).html()
    assert 'class="banner"' not in measured_only and "is an ESTIMATE" not in measured_only
    assert [r for cls, r in re.findall(r"<tr( class=\"est\")?>(.*?)</tr>", measured_only, flags=re.S) if cls] == [
        r for r in est_rows if r.startswith(host)]


def test_comparison_section_only_with_two_runs(two_runs):
    assert 'id="compare"' in build_report(two_runs).html()
    assert 'id="compare"' not in build_report(two_runs[:1]).html()
    assert 'id="compare"' not in build_report(two_runs, compare=False).html()


def test_report_tables_for_notebooks(two_runs):
    rep = build_report(two_runs)
    assert list(rep.tables["summary"]["run"]) == ["measured-run", "estimated-run"]
    assert set(rep.tables["domains"]["run"]) == {"measured-run", "estimated-run"}


def test_cli_writes_the_file(two_runs, tmp_path):
    out = tmp_path / "sub" / "r.html"
    result = CliRunner().invoke(report, [str(p) for p in two_runs] + ["-o", str(out), "--title", "T"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "<title>T</title>" in out.read_text()
    assert "estimated-run is an estimate" in result.output


def test_cli_errors(tmp_path):
    assert CliRunner().invoke(report, ["-o", str(tmp_path / "x.html")]).exit_code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(report, ["--extra", str(bad), "-o", str(tmp_path / "x.html")])
    assert result.exit_code == 1 and "match no known output" in result.output
    (tmp_path / "notarun").mkdir()
    result = CliRunner().invoke(report, [str(tmp_path / "notarun")])
    assert result.exit_code == 1 and "not an ipw run" in result.output
