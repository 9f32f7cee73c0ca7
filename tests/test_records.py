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


def test_a_schema_1_record_reads_with_its_system_energy_as_the_accelerator():
    """Records written before energy had scopes (schema 1, no ``schema`` key) held one energy: the
    machine's. They read back with that figure and its measured flag as the accelerator's, so the
    default basis of old runs is what they were reported on; a schema-2 record is never rewritten."""
    from ipw.core.records import SCHEMA_VERSION, QueryRecord

    old = {"id": "q1", "domain": "math", "correct": True, "energy_j": 7.5, "measured": False, "e2e_s": 1.0,
           "flags": ["estimate"], "watts_note": "kept"}
    r = QueryRecord.from_dict(old)
    assert r.schema == 1 and r.accelerator_energy_j == 7.5 and r.accelerator_measured is False
    assert r.host_energy_j is None and r.flags == ("estimate",)
    assert r.engine_extra["_unknown"] == {"watts_note": "kept"}
    new = QueryRecord.from_dict(old | {"schema": SCHEMA_VERSION, "accelerator_energy_j": None})
    assert new.accelerator_energy_j is None  # schema 2 says "no accelerator figure": kept as is
    again = QueryRecord.from_dict(r.to_dict())
    assert again.accelerator_energy_j == 7.5 and again.schema == 1
