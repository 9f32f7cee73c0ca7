"""The report in a real headless Chromium (Debian's, installed by .ci/run): it loads with no console
errors, no dialog and no network request, renders every plot, and shows hostile model output as
text. The DevTools protocol is spoken over --remote-debugging-pipe (tests/reports/cdp_browser.py).

Set IPW_REPORT_SCREENSHOT=path.png to keep the full-page screenshot.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from ipw.reports.report import build_report
from tests.reports.cdp_browser import Browser, file_url, find_chromium
from tests.reports.conftest import HOSTILE

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium; .ci/run installs it)")

# What the page looks like from inside: scripts present, images decoded, hostile elements, text.
PROBE = """JSON.stringify({
  scripts: document.scripts.length,
  iframes: document.querySelectorAll('iframe, svg, object, embed, textarea').length,
  handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
  images: [...document.images].map(i => ({ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth, h: i.naturalHeight})),
  tables: document.querySelectorAll('table').length,
  text: document.body.innerText,
  pwned: typeof window.pwned !== 'undefined',
  height: document.documentElement.scrollHeight,
})"""


@pytest.fixture(scope="module")
def browser():
    b = Browser(CHROMIUM)
    yield b
    b.close()


def _load(browser, path):
    result = browser.load(file_url(path), PROBE)
    return result, json.loads(result.evaluated)


def test_the_harness_sees_scripts_errors_and_dialogs(browser, tmp_path):
    """The negative control: the checks below can fail."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>console.error('boom'); alert('hi');"
                   "window.pwned = 1;</script><img src='http://127.0.0.1:9/x.png'></body></html>")
    result, probe = _load(browser, bad)
    assert "boom" in result.console_errors
    assert result.dialogs == ["alert: hi"]
    assert probe["scripts"] == 1 and probe["pwned"]
    assert any(u.startswith("http://127.0.0.1:9/") for u in result.requests)


def test_report_renders_plots_and_shows_hostile_output_as_text(browser, two_runs, hostile_run, tmp_path):
    from ipw.reports.tables import load_runs, samples_table

    report = build_report([*two_runs, hostile_run], title="<script>alert('title')</script>")
    path = report.write(tmp_path / "report.html")
    n_figures = sum(len(s.figures) for s in report.sections)
    result, probe = _load(browser, path)

    assert result.console_errors == []
    assert result.dialogs == []
    assert [u for u in result.requests if not u.startswith(("data:", "file:"))] == []
    assert [u for u in result.requests if u.startswith("file:")] == [file_url(path)]
    assert probe["scripts"] == 0 and probe["iframes"] == 0 and probe["handlers"] == 0 and not probe["pwned"]
    assert len(probe["images"]) == n_figures >= 5
    assert all(i["ok"] and i["w"] > 200 and i["h"] > 150 for i in probe["images"]), probe["images"]
    assert probe["tables"] >= 10

    text = probe["text"]
    shown = samples_table(load_runs([hostile_run]))["output"]
    for s in set(shown) | {"<script>alert('model')</script>", "<img src=x onerror=alert(6)>", "<b onmouseover=alert(5)>hw</b>"}:
        assert s in text, s  # the literal characters are on the screen
    assert set(shown) >= set(HOSTILE[:3])
    assert "ESTIMATE" in text and "estimated-run" in re.search(r"Energy in this report is an ESTIMATE for: ([^\n]*)", text).group(1)

    assert result.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(result.screenshot) > 50_000
    keep = os.environ.get("IPW_REPORT_SCREENSHOT")
    (tmp_path / "report.png").write_bytes(result.screenshot)
    if keep:
        shutil.copyfile(tmp_path / "report.png", keep)
