"""The run store: durable appends, a cut-off record, and loading into pandas."""

from __future__ import annotations

import pytest

from ipw.errors import InputFileError, IpwError
from ipw.records import QueryRecord
from ipw.store import QUERIES, RunStore, load


def test_append_reopen_repair_and_load(tmp_path):
    store = RunStore.create(tmp_path, "r1", {"config": {"x": 1}})
    store.append(QueryRecord(id="a", domain="d", correct=True, energy_j=1.5))
    store.append(QueryRecord(id="b", domain="d", correct=False, energy_j=2.5))
    with open(store.path / QUERIES, "a") as f:
        f.write('{"id": "c", "corr')  # killed mid-write
    assert store.done_ids() == {"a", "b"}
    reopened = RunStore.open(store.path)
    assert (store.path / QUERIES).read_text().endswith("}\n")
    reopened.append(QueryRecord(id="c", domain="d", correct=True, energy_j=0.5))
    run = load(store.path)
    assert list(run.queries["id"]) == ["a", "b", "c"]
    assert run.queries["energy_j"].sum() == pytest.approx(4.5)


def test_existing_folder_and_bad_records(tmp_path):
    RunStore.create(tmp_path, "r1", {})
    with pytest.raises(IpwError, match="--resume"):
        RunStore.create(tmp_path, "r1", {})
    store = RunStore(tmp_path / "r1")
    (store.path / QUERIES).write_text('{"id": "a"}\nnot json\n')
    with pytest.raises(InputFileError, match=r"queries.jsonl:2"):
        store.records()
    with pytest.raises(IpwError, match="not an ipw run"):
        load(tmp_path)
