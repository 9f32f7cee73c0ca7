"""Property-based fuzzing of the parsers and loaders that read files a user or a machine hands us.

The property, for every input: it loads, completely, or it raises the project's own error naming the
file and the place (an :class:`~ipw.core.errors.InputFileError` with the path and, where the input has
lines, the line). Never another exception, never a hang (each example is bounded by the test's
timeout), never a silent partial result (what loads accounts for every non-blank line).
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ipw.core.errors import InputFileError
from ipw.core.jsonl import read_objects
from ipw.queries.querysets import REQUIRED, load_queryset

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# lines that are mostly JSON objects, with hostile bytes mixed in
line_bytes = st.one_of(
    st.binary(max_size=60),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.dictionaries(st.sampled_from([*REQUIRED, "choices", "pattern", "tolerance", "meta", "difficulty", "x"]),
                    json_values, max_size=8).map(lambda d: json.dumps(d).encode()),
    st.sampled_from([b"", b"\xef\xbb\xbf{}", b"[" * 5000, b"# comment", b'{"a": "\xe2\x80\xa8"}', b"\r", b"\xff\xfe"]),
)  # fmt: skip
files = st.lists(line_bytes, max_size=6).map(lambda lines: b"\n".join(lines))


def _assert_names_file_and_line(error: InputFileError, path, data: bytes) -> None:
    assert error.path == str(path) and str(error).startswith(str(path))
    n_lines = data.count(b"\n") + 1
    assert error.line is None or 1 <= error.line <= n_lines


def _records(data: bytes) -> int:
    """Non-blank lines, as a reader that splits at \\n only (BOM skipped) counts them."""
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    return sum(1 for line in lines if line.decode("utf-8", "replace").strip())


@FAST
@given(files)
@example(b'{"t": "a\xe2\x80\xa8b"}\n{"t": 1}')
@example(b"\xef\xbb\xbf{}\n")
def test_jsonl_reader(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("jsonl") / "in.jsonl"
    path.write_bytes(data)
    try:
        objects = list(read_objects(path))
    except InputFileError as e:
        _assert_names_file_and_line(e, path, data)
        return
    assert len(objects) == _records(data)  # nothing skipped silently
    assert all(isinstance(obj, dict) for _, obj in objects)


@FAST
@given(files)
def test_query_set_loader(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("qs") / "set.jsonl"
    path.write_bytes(data)
    try:
        qs = load_queryset(path)
    except InputFileError as e:
        _assert_names_file_and_line(e, path, data)
        return
    lines = [x for x in data.removeprefix(b"\xef\xbb\xbf").split(b"\n") if x.decode("utf-8").strip()]
    assert len(qs) == sum(1 for x in lines if not x.decode("utf-8").strip().startswith("#"))


good_query = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=10), "prompt": st.text(min_size=1, max_size=30),
     "answer": st.one_of(st.text(max_size=10), st.integers(), st.floats()),
     "grader": st.sampled_from(["exact", "numeric", "mc", "regex", "judge", "exakt"]),
     "domain": st.text(min_size=1, max_size=8)},
    optional={"choices": st.lists(st.text(max_size=6), max_size=4), "pattern": st.text(max_size=12),
              "tolerance": st.floats() | st.integers(), "difficulty": st.text(max_size=6), "meta": json_values},
)  # fmt: skip


@FAST
@given(st.lists(good_query, min_size=1, max_size=5))
def test_query_set_loader_on_near_valid_queries(tmp_path_factory, queries):
    path = tmp_path_factory.mktemp("qs") / "set.jsonl"
    data = "\n".join(json.dumps(q, ensure_ascii=False) for q in queries).encode("utf-8", "surrogatepass")
    path.write_bytes(data)
    try:
        qs = load_queryset(path)
    except InputFileError as e:
        _assert_names_file_and_line(e, path, data)
        assert e.line is not None  # a query-level problem is always on a line
        return
    assert [q.id for q in qs] == [str(q["id"]) for q in queries]
