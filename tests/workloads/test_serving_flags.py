"""Serving records carry the flags serial records carry: a query that ran shorter than a counter's
update period is flagged ``sub-update-period:<domain>`` (its energy is a share of one counter step),
counted in the summary and said by ``ipw profile``."""

from __future__ import annotations

import math

import pytest

from ipw.devices.base import DomainInfo
from ipw.cli.profile import print_summary
from ipw.store import read_summary
from tests.workloads.test_concurrency import N_QUERIES, QUERIES, ClockMeter, _run, energy_j, only_meter  # noqa: F401 - QUERIES (the queryset fixture)

STEP_S = 0.5  # the counter's update period: longer than any stub query (60 ms + 5 x 20 ms)


@pytest.fixture
def stepped(monkeypatch):
    """The trace's counter, updated every STEP_S (the value holds between updates), and one that
    updates every millisecond: only the first's domain is flagged."""
    infos = [DomainInfo("gpu:0", "test.stepped", True, STEP_S, 1e-6, scope="accelerator"),
             DomainInfo("cpu:0", "test.fine", True, 1e-3, 1e-6, scope="host")]
    return only_meter(monkeypatch, ClockMeter(infos, lambda t: {"gpu:0": float(energy_j(math.floor(t / STEP_S) * STEP_S)),
                                                                "cpu:0": 12.0 * t}, family="stepped"))


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_query_shorter_than_the_update_period_is_flagged_at_any_concurrency(tmp_path, queryset, stub, stepped,
                                                                              concurrency, capsys):
    run = _run(tmp_path, queryset, f"{stub}/timed/v1", concurrency=concurrency)
    q = run.queries
    assert len(q) == N_QUERIES and q["error"].isna().all()
    for flags in q["flags"]:
        assert "sub-update-period:gpu:0" in flags and "sub-update-period:cpu:0" not in flags, flags
    _, summary = read_summary(run.path)
    assert summary["overall"]["sub_update_period"] == N_QUERIES
    capsys.readouterr()
    print_summary(run.path)  # what `ipw profile` prints at the end
    said = capsys.readouterr().out
    assert f"sub-update-period: {N_QUERIES} queries ran shorter than a counter's update period" in said
