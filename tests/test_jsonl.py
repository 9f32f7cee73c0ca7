"""The shared JSONL reader: every malformed line is named by file and line."""

from __future__ import annotations

import pytest

from ipw.core.errors import InputFileError
from ipw.core.jsonl import read_objects


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


def test_line_separators_inside_strings_bom_and_crlf(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + '{"t": "a\u2028b\u0085c"}\r\n{"t": 2}\n'.encode())
    assert list(read_objects(path)) == [(1, {"t": "a\u2028b\u0085c"}), (2, {"t": 2})]


@pytest.mark.parametrize(
    "data, what",
    [(b'{"a": 1}\n{"b": "\xff"}\n', r":2: not UTF-8 text"), (b"[" * 50_000 + b"\n", r":1: JSON nested too deeply"),
     (b'{"a": 1' + b"1" * 5000 + b"}\n", r":1: not valid JSON")],
)  # fmt: skip
def test_hostile_bytes_name_file_and_line(tmp_path, data, what):
    path = tmp_path / "d.jsonl"
    path.write_bytes(data)
    with pytest.raises(InputFileError, match=what):
        list(read_objects(path))
