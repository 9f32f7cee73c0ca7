"""A run with meter gaps says so on the report's page."""

from __future__ import annotations

from dataclasses import replace

from ipw.reports.report import build_report
from ipw.store import RunStore
from tests.fakes.runs import SyntheticRun, write_synthetic_run


def test_the_report_warns_of_queries_without_energy(tmp_path):
    path = write_synthetic_run(tmp_path, "gappy", SyntheticRun(n_queries=20, hz=0))
    store = RunStore.open(path)
    last = store.records()[-1]
    store.append(replace(last, id="gap-1", correct=None, error="energy not measured (meter gap): rapl: read failed",
                         flags=("meter-gap:cpu-package:0",)))  # fmt: skip
    html = build_report([path], compare=False).html()
    assert "gappy: 1 queries have no energy" in html and "meter-gap:&lt;domain&gt;" in html
