"""Property-based fuzzing of what a run folder holds: the manifest, the records in queries.jsonl and
the record contract itself. Every input loads, or is an error of the project's own that names the
file (and, for a record, the line); never another exception, never a record silently dropped."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ipw.core.errors import InputFileError, IpwError
from ipw.core.records import RECORD_COLUMNS, QueryRecord
from ipw.store import RunStore, load

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
record_dicts = st.dictionaries(st.sampled_from([*RECORD_COLUMNS, "extra_key"]), json_values, max_size=12)
GOOD = QueryRecord(id="q1", domain="d", correct=True, energy_j=1.5, window_s=0.5).to_dict()
near_good = st.builds(lambda base, changes, drop: {k: v for k, v in (base | changes).items() if k not in drop},
                      st.just(GOOD), record_dicts, st.sets(st.sampled_from(sorted(GOOD)), max_size=3))  # fmt: skip

@FAST
@given(st.one_of(record_dicts, near_good))
@example({"domain": "d", "correct": True})
def test_record_from_any_dict(d):
    try:
        r = QueryRecord.from_dict(d)
    except IpwError:
        return
    assert isinstance(r.id, str) and isinstance(r.domain, str) and r.correct in (True, False, None)
    assert all(isinstance(f, str) for f in r.flags)
    assert json.dumps(r.to_dict(), default=str, allow_nan=False)  # what loads can be written back


def _run(tmp_path_factory) -> RunStore:
    return RunStore.create(tmp_path_factory.mktemp("runs"), "r", {"config": {}})


line = st.one_of(
    st.binary(max_size=40), near_good.map(lambda d: json.dumps(d).encode()), st.just(json.dumps(GOOD).encode()),
    st.sampled_from([b"", b"[]", b"{}", b"\xff", b"[" * 3000, b"\xef\xbb\xbf" + json.dumps(GOOD).encode()]),
)  # fmt: skip


@FAST
@given(st.lists(line, max_size=5), st.booleans())
@example([b'{"domain": "d", "correct": true}'], True)
def test_records_file_of_any_bytes(tmp_path_factory, lines, newline_at_end):
    store = _run(tmp_path_factory)
    data = b"\n".join(lines) + (b"\n" if newline_at_end and lines else b"")
    path = store.path / "queries.jsonl"
    path.write_bytes(data)
    try:
        records = RunStore.open(store.path).records()
    except InputFileError as e:
        assert "queries.jsonl" in e.path and e.line is not None
        return
    except IpwError as e:
        assert "queries.jsonl" in str(e)
        return
    complete = [x for x in (data.split(b"\n")[:-1] if not data.endswith(b"\n") else data.split(b"\n")) if x.strip()]
    assert len(records) >= len({json.loads(x)["id"] for x in complete})  # no whole record dropped silently


@FAST
@given(st.one_of(st.binary(max_size=60), json_values.map(lambda v: json.dumps(v).encode())))
@example(b"\xff{}")
@example(b"[" * 5000)
def test_manifest_of_any_bytes(tmp_path_factory, data):
    store = _run(tmp_path_factory)
    (store.path / "manifest.json").write_bytes(data)
    try:
        manifest = RunStore.open(store.path).manifest
    except IpwError as e:
        assert "manifest.json" in str(e)
        return
    assert isinstance(manifest, dict)  # anything else is refused, naming the file
