"""Fuzzing the corpus loader: every file either loads completely or raises the project's own error
naming the file, never another exception, a hang or a silent partial result."""

from __future__ import annotations

import json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipw.science.capacity import load_corpus
from ipw.science.capacity.flops import load_config
from ipw.core.errors import InputFileError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
records = st.one_of(
    st.builds(lambda t: json.dumps({"text": t}), st.text(max_size=40)),  # the intended shape, any text
    st.builds(lambda t: json.dumps({"text": t}, ensure_ascii=False), st.text(max_size=40)),
    json_values.map(json.dumps),  # valid JSON of every other shape
    st.text(max_size=30),  # arbitrary text
    st.just('{"text": "a\\ud800b"}'),  # an unpaired surrogate escape
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),  # deep nesting
)
raw_files = st.one_of(
    st.lists(records, max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8")),
    st.binary(max_size=200),  # arbitrary bytes, most not UTF-8
    st.lists(records, max_size=4).map(lambda lines: b"\xef\xbb\xbf" + "\n".join(lines).encode("utf-8")),
    st.tuples(st.lists(records, max_size=3), st.binary(min_size=1, max_size=8)).map(
        lambda p: "\n".join(p[0]).encode("utf-8") + b"\n" + p[1]),
)


def _nonblank_lines(data: bytes) -> int:
    """Lines as the reader counts them (split at \\n, a BOM dropped) that hold more than whitespace."""
    return sum(1 for line in data.decode("utf-8-sig").split("\n") if line.strip())


@FUZZ
@given(data=raw_files)
def test_corpus_files_load_completely_or_fail_naming_the_file(tmp_path, data):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    try:
        corpus = load_corpus(path)
    except InputFileError as e:  # EmptySampleError is one too
        assert str(path) in str(e)
        return
    assert len(corpus.texts) == len(corpus.lines) == _nonblank_lines(data)  # nothing dropped silently
    assert all(isinstance(t, str) and t.strip() for t in corpus.texts)
    for text in corpus.texts:
        text.encode("utf-8")  # every accepted text can be tokenized as UTF-8


@FUZZ
@given(data=raw_files | json_values.map(lambda v: json.dumps(v).encode("utf-8")))
def test_model_config_files_load_or_fail_naming_the_file(tmp_path, data):
    path = tmp_path / "config.json"
    path.write_bytes(data)
    try:
        config = load_config(path)
    except InputFileError as e:
        assert str(path) in str(e)
        return
    assert isinstance(config, dict)
