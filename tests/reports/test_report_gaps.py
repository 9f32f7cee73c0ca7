"""A run with meter gaps, or with windows shorter than a counter's update period, says so on the report's
page and in `ipw profile`'s summary."""

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


def test_the_report_and_the_summary_count_windows_shorter_than_the_update_period(tmp_path, capsys):
    from ipw.cli.profile import print_summary
    from ipw.run.session import write_summary

    path = write_synthetic_run(tmp_path, "short", SyntheticRun(n_queries=20, hz=0))
    store = RunStore.open(path)
    records = store.records()
    store.append_many([replace(r, id=f"short-{i}", flags=("sub-update-period:gpu:0",)) for i, r in enumerate(records[:3])])
    write_summary(store)
    html = build_report([path], compare=False).html()
    assert "short: 3 queries ran shorter than a counter&#39;s update period" in html
    assert "sub-update-period:&lt;domain&gt;" in html
    print_summary(path)
    assert "sub-update-period: 3 queries ran shorter than a counter's update period" in capsys.readouterr().out
