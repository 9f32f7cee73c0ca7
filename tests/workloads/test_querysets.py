"""Loading query sets: names, paths, hashes, and an error naming file and line for every bad line."""

from __future__ import annotations

import hashlib
import json

import pytest

from ipw.core.errors import InputFileError, IpwError
from ipw.queries.prompts import MC_INSTRUCTION, Query, render_prompt
from ipw.queries.querysets import load_queryset, shipped

GOOD = {"id": "q1", "prompt": "What is 2 + 2?", "answer": "4", "grader": "numeric", "domain": "arithmetic"}


def write(tmp_path, *lines, name="set.jsonl"):
    path = tmp_path / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_loads_a_file_with_hash_and_domains(tmp_path):
    mc = {"id": "q2", "prompt": "Pick", "answer": "b", "grader": "mc", "domain": "logic", "choices": ["x", "y"],
          "difficulty": "easy", "source": "mine"}  # fmt: skip
    path = write(tmp_path, GOOD, "", "# a comment line", mc)
    qs = load_queryset(path)
    assert qs.name == "set" and qs.path == str(path) and len(qs) == 2
    assert qs.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert qs.domains() == {"arithmetic": 1, "logic": 1}
    q1, q2 = qs.queries
    assert q1 == Query("q1", "What is 2 + 2?", "4", "numeric", "arithmetic")
    assert q2.answer == "B" and q2.choices == ("x", "y") and q2.meta == {"source": "mine"}


def test_numbers_become_text(tmp_path):
    qs = load_queryset(write(tmp_path, GOOD | {"id": 7, "answer": 0.25, "tolerance": 0.01}))
    assert qs.queries[0].id == "7" and qs.queries[0].answer == "0.25" and qs.queries[0].tolerance == 0.01


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"id": "q9", "prompt": ', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ({k: v for k, v in GOOD.items() if k != "answer"}, "missing field(s) answer"),
        (GOOD | {"grader": "exakt"}, "did you mean 'exact'"),
        (GOOD | {"id": "q1"}, "duplicate id 'q1' (first used on line 1)"),
        (GOOD | {"id": "m", "grader": "mc"}, "needs 'choices'"),
        (GOOD | {"id": "m", "grader": "mc", "choices": ["a", "b"], "answer": "C"}, "not one of the choice letters A, B"),
        (GOOD | {"id": "m", "grader": "mc", "choices": ["no", "yes"], "answer": "yes"}, "text of choice B"),
        (GOOD | {"id": "e", "prompt": "   "}, "empty prompt"),
        (GOOD | {"id": "n", "answer": "four"}, "is not a number"),
        (GOOD | {"id": "t", "tolerence": 0.1}, "did you mean 'tolerance'"),
        (GOOD | {"id": "d", "difficulty": "hardest"}, "did you mean 'hard'"),
        (GOOD | {"id": "r", "grader": "regex"}, "needs 'pattern'"),
        (GOOD | {"id": "r", "grader": "regex", "pattern": "(unclosed"}, "not a valid regex"),
        (GOOD | {"id": "c", "choices": ["a", "b"]}, "only used by the mc grader"),
        (GOOD | {"id": "a", "answer": ""}, "answer must be"),
        (GOOD | {"id": "t", "tolerance": -1}, "tolerance must be"),
        (GOOD | {"id": "m", "meta": [1]}, "meta must be a JSON object"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    path = write(tmp_path, GOOD, "", bad)
    with pytest.raises(InputFileError) as err:
        load_queryset(path)
    assert err.value.line == 3 and err.value.path == str(path)
    assert str(err.value).startswith(f"{path}:3: ") and message in str(err.value)


def test_empty_file_and_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="no queries"):
        load_queryset(write(tmp_path, "", "# nothing"))
    with pytest.raises(InputFileError, match="no such query set file"):
        load_queryset(tmp_path / "absent.jsonl")


def test_not_utf8_names_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + '{"id": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(InputFileError) as err:
        load_queryset(path)
    assert err.value.line == 2 and "UTF-8" in str(err.value)


def test_shipped_names_and_unknown_name():
    assert "default" in shipped()
    assert load_queryset("default").name == "default"
    with pytest.raises(IpwError) as err:
        load_queryset("defualt")
    assert "shipped sets (" in str(err.value) and "default" in str(err.value) and "Did you mean 'default'" in str(err.value)


def test_render_prompt_appends_lettered_choices():
    q = Query("m", "Which is a colour?", "B", "mc", "d", choices=("Dog", "Red", "Seven"))
    assert render_prompt(q) == f"Which is a colour?\n\nA) Dog\nB) Red\nC) Seven\n{MC_INSTRUCTION}"
    listed = Query("m", "Which?\n(A) Dog\n(B) Red\nAnswer with A or B.", "B", "mc", "d", choices=("Dog", "Red"))
    assert render_prompt(listed) == listed.prompt
    half = Query("m", "Which?\nA) Dog", "B", "mc", "d", choices=("Dog", "Red"))
    assert render_prompt(half).endswith(f"B) Red\n{MC_INSTRUCTION}")
    plain = Query("p", "What is 2 + 2?", "4", "numeric", "d")
    assert render_prompt(plain) == plain.prompt


# ---- hostile bytes: every one loads or is an InputFileError naming file and line ---------------------


def _write(tmp_path, data: bytes):
    path = tmp_path / "set.jsonl"
    path.write_bytes(data)
    return path


def test_a_raw_line_separator_inside_a_string_is_not_a_line_break(tmp_path):
    lines = [json.dumps(GOOD | {"prompt": "one\u2028two\u0085three\x0cfour"}, ensure_ascii=False),
             json.dumps(GOOD | {"id": "q2"})]  # fmt: skip
    qs = load_queryset(_write(tmp_path, ("\n".join(lines) + "\n").encode()))
    assert [q.id for q in qs] == ["q1", "q2"] and qs.queries[0].prompt == "one\u2028two\u0085three\x0cfour"


def test_a_byte_order_mark_and_crlf_endings_are_accepted(tmp_path):
    data = b"\xef\xbb\xbf" + (json.dumps(GOOD) + "\r\n" + json.dumps(GOOD | {"id": "q2"}) + "\r\n").encode()
    assert [q.id for q in load_queryset(_write(tmp_path, data))] == ["q1", "q2"]


def test_bytes_that_are_not_utf8_name_the_line(tmp_path):
    data = (json.dumps(GOOD) + "\n").encode() + b'{"id": "caf\xe9"}\n'
    with pytest.raises(InputFileError, match=r"set.jsonl:2: not UTF-8 text \(byte 12 of the line"):
        load_queryset(_write(tmp_path, data))


def test_deep_nesting_is_an_input_error_not_a_recursion_error(tmp_path):
    data = (json.dumps(GOOD) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n").encode()
    with pytest.raises(InputFileError, match=r"set.jsonl:2: JSON nested too deeply"):
        load_queryset(_write(tmp_path, data))


def test_a_pattern_the_regex_engine_refuses_is_named(tmp_path):
    data = (json.dumps(GOOD | {"grader": "regex", "answer": "x", "pattern": "(" * 3}) + "\n").encode()
    with pytest.raises(InputFileError, match=r"set.jsonl:1: query 'q1': pattern is not a valid regex"):
        load_queryset(_write(tmp_path, data))
