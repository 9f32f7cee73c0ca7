"""The shared JSONL reader: every malformed line is named by file and line."""

from __future__ import annotations

import pytest

from ipw.errors import InputFileError
from ipw.jsonl import read_objects


def test_objects_with_their_line_numbers(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n{"b": 2}\n')
    assert list(read_objects(path)) == [(1, {"a": 1}), (3, {"b": 2})]


@pytest.mark.parametrize("text, where, what", [('{"a": 1}\n{oops\n', ":2:", "not valid JSON"), ("[1]\n", ":1:", "got list")])
def test_malformed_lines(tmp_path, text, where, what):
    path = tmp_path / "b.jsonl"
    path.write_text(text)
    with pytest.raises(InputFileError, match=f"{where} .*{what}"):
        list(read_objects(path))


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        list(read_objects(tmp_path / "none.jsonl"))
