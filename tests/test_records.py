"""The record contract round-trips through the store, meter gaps included."""

from __future__ import annotations

from dataclasses import replace

from ipw.core.records import QueryRecord
from ipw.store import RunStore


def test_a_meter_gap_record_reads_back(tmp_path):
    # a query whose meter failed keeps no energy figure (None, never 0 J); --resume must read it back
    gap = replace(QueryRecord(id="q1", domain="d", correct=None, error="energy not measured (meter gap)",
                              flags=("meter-gap:cpu",)), energy_j=None)  # fmt: skip
    store = RunStore.create(tmp_path, "r", {"config": {}})
    store.append(gap)
    assert RunStore.open(store.path).records() == [gap]


def test_every_record_field_has_a_column_name():
    from dataclasses import fields

    from ipw.core.records import Col, QueryRecord

    names = {v for k, v in vars(Col).items() if k.isupper()}
    assert [f.name for f in fields(QueryRecord) if f.name not in names] == []
