"""The shipped default query set: size, spread, uniqueness, and every checkable answer re-derived.

Code answers are re-derived by executing ``meta.code``; arithmetic, unit, language and some
reasoning answers by evaluating ``meta.expr`` with exact fractions (``F`` is Fraction).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from fractions import Fraction

import pytest

from ipw.queries.grading import grade, normalize, parse_number
from ipw.queries.prompts import LETTERS, render_prompt
from ipw.queries.querysets import load_queryset
from tests.conftest import REPO

QS = load_queryset("default")
SAFE = {f.__name__: f for f in (len, sorted, sum, max, min, all, range, abs)}


def evaluate(expr: str):
    return eval(expr, {"F": Fraction, "__builtins__": SAFE})  # noqa: S307 - expressions we ship


def run(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})  # noqa: S102 - snippets we ship
    return out.getvalue().strip()


def test_size_domains_difficulties():
    assert len(QS) >= 200
    domains = QS.domains()
    assert len(domains) >= 5 and min(domains.values()) >= 20
    for d in domains:
        levels = Counter(q.difficulty for q in QS if q.domain == d)
        assert set(levels) == {"easy", "medium", "hard"}, (d, levels)


def test_ids_and_prompts_unique_and_answers_sane():
    assert len({q.id for q in QS}) == len(QS)
    assert len({q.prompt for q in QS}) == len(QS)
    for q in QS:
        if q.grader == "exact":
            assert normalize(q.answer), q.id  # "a" or "the" would normalise to nothing
        if q.grader in ("numeric", "exact"):
            assert "only" in q.prompt.lower(), q.id  # asks for a short final answer
    letters = Counter(q.answer for q in QS if q.grader == "mc")
    assert len(letters) == 4 and max(letters.values()) - min(letters.values()) <= 2  # right answers spread


def test_every_code_snippet_prints_its_reference():
    code = [q for q in QS if q.domain == "code"]
    assert len(code) >= 30 and all("code" in q.meta for q in code)
    for q in code:
        assert f"```python\n{q.meta['code']}\n```" in q.prompt, q.id
        assert run(q.meta["code"]) == q.answer, q.id


def test_every_expression_gives_its_reference():
    checked = 0
    for q in QS:
        if "expr" not in q.meta:
            continue
        value = evaluate(q.meta["expr"])
        if q.grader == "mc":
            assert str(value) == q.choices[LETTERS.index(q.answer)], q.id
        elif q.grader == "numeric":
            assert Fraction(value) == parse_number(q.answer), q.id
        else:
            assert str(value) == q.answer, q.id
        checked += 1
    assert all("expr" in q.meta for q in QS if q.domain in ("arithmetic", "units"))
    assert checked >= 110


def test_references_pass_their_own_grader():
    """The reference itself (for mc: the letter, and the choice text) is graded correct."""
    for q in QS:
        assert grade(q, q.answer).correct, q.id
        if q.grader == "mc":
            assert grade(q, q.choices[LETTERS.index(q.answer)]).correct, q.id
            assert render_prompt(q).endswith("Answer with the letter of the correct option only.")


def test_file_is_plain_jsonl_and_readme_counts_match():
    lines = (REPO / "ipw/data/querysets/default.jsonl").read_text().splitlines()
    assert len(lines) == len(QS) and all(json.loads(line)["id"] for line in lines)
    readme = (REPO / "ipw/data/querysets/README.md").read_text()
    assert f"{len(QS)} queries" in readme
    for domain, n in QS.domains().items():
        assert f"| {domain} | {n} |" in readme.replace("`", ""), domain


@pytest.mark.parametrize("wrong", ["I don't know", "0", "Z"])
def test_obviously_wrong_outputs_fail(wrong):
    """Guards against graders that pass everything: each query rejects some unrelated outputs."""
    fails = sum(grade(q, wrong).correct is False for q in QS if q.answer.lower() != wrong.lower())
    assert fails >= len(QS) - 5
