"""Graders: each rule's positive, negative and edge cases, and the judge through a fake engine."""

from __future__ import annotations

from fractions import Fraction

import pytest

from ipw.core.errors import IpwError
from ipw.engines.base import Engine, Generation, GenerationSettings
from ipw.queries.grading import GRADERS, Grade, get_grader, grade, normalize, numbers_in, parse_number
from ipw.queries.querysets import Query


def q(grader="exact", answer="Paris", **kw):
    return Query(id="q", prompt="What is the capital of France?", answer=answer, grader=grader, domain="d", **kw)


MC = q("mc", "B", choices=("Dog", "Red", "Seven"))


def test_normalize_is_squad_style():
    assert normalize("  The  Eiffel-Tower!! ") == "eiffeltower"
    assert normalize("An apple, a pear") == "apple pear"


@pytest.mark.parametrize(
    "output, correct",
    [
        ("Paris", True),
        ("paris.", True),
        ("**Paris**", True),
        ("The answer is Paris.", True),
        ("Answer: paris", True),
        ("The capital of France is:\nParis", True),
        ("The capital of France is Paris.", True),  # a final sentence ending with the reference
        ("Paris is the capital of France.", False),  # containment elsewhere is not enough
        ("Paris, Lyon, Marseille", False),
        ("Lyon\nParis", False),  # a list of short candidates: the last line does not count
        ("Paris\nLyon", False),
        ("Parisian", False),
        ("", False),
    ],
)
def test_exact(output, correct):
    assert grade(q(), output).correct is correct


def test_exact_aliases_and_reason():
    query = q(answer="William Shakespeare", meta={"aliases": ["Shakespeare"]})
    g = grade(query, "Shakespeare.")
    assert g == Grade(True, "Shakespeare.", "exact", "whole output matches the reference")
    assert not grade(query, "Marlowe").correct


@pytest.mark.parametrize(
    "text, value",
    [
        ("1,234,567", 1234567),
        ("-5", -5),
        ("\u22127", -7),
        ("0.5", Fraction(1, 2)),
        (".25", Fraction(1, 4)),
        ("3/4", Fraction(3, 4)),
        ("1.5e-3", Fraction(3, 2000)),
        ("2 x 10^3", 2000),
        ("$12.50", Fraction(25, 2)),
        ("50%", 50),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_numbers_in_skips_words_and_splits_lists():
    assert [v for _, v in numbers_in("H2O costs 3-5 dollars, or 1,2,3")] == [3, 5, 1, 2, 3]
    assert parse_number("12 apples") is None and parse_number("") is None and parse_number("1/0") is None


@pytest.mark.parametrize(
    "answer, output, correct",
    [
        ("42", "42", True),
        ("42", "6 * 7 = 42.", True),
        ("42", "The answer is 42 because 6 times 7", True),  # marker wins over the final number
        ("42", "#### 42", True),
        ("42", "42.0", True),
        ("42", "41", False),
        ("42", "42.000001", False),  # integer references are exact
        ("1234", "1,234", True),
        ("-6", "It is -6 degrees", True),
        ("0.75", "3/4", True),
        ("0.75", "0.7500001", True),  # within 1e-6 relative
        ("0.75", "0.7501", False),
        ("1500", "1.5e3", True),
        ("50", "50%", True),
        ("12.5", "$12.50", True),
        ("42", "forty-two", False),
        ("42", "no idea", False),
    ],
)
def test_numeric(answer, output, correct):
    assert grade(q("numeric", answer), output).correct is correct


def test_numeric_tolerance_and_extracted():
    query = q("numeric", "3.14", tolerance=0.01)
    assert grade(query, "about 3.149").correct and not grade(query, "3.2").correct
    g = grade(q("numeric", "7"), "2 + 5 = 7")
    assert g.extracted == "7" and g.method == "numeric" and "final number" in g.reason
    assert grade(q("numeric", "7"), "").reason == "empty output"


@pytest.mark.parametrize(
    "output, correct, extracted",
    [
        ("B", True, "B"),
        ("(B)", True, "B"),
        ("B)", True, "B"),
        ("b.", True, "B"),
        ("**B**", True, "B"),
        ("Answer: B", True, "B"),
        ("The answer is (b) Red", True, "B"),
        ("I think the answer is B, not A", True, "B"),
        ("Red", True, "B"),  # exact text of a choice
        ("B) Red", True, "B"),
        ("A) Red", False, "A"),  # the label decides, not the text (normalised "a red" is "red")
        ("The correct option is B", True, "B"),
        ("B is correct", True, "B"),
        ("A", False, "A"),
        ("Dog", False, "A"),
        ("D", False, None),  # outside the choices
        ("A dog is an animal", False, "A"),  # the article is not a letter; the choice text is quoted
        ("A) Dog\nB) Red\nC) Seven", False, "A,B,C"),
        ("A or B", False, "A,B"),
        ("Red or Dog", False, "A,B"),
        ("I do not know", False, None),
    ],
)
def test_mc(output, correct, extracted):
    g = grade(MC, output)
    assert (g.correct, g.extracted) == (correct, extracted), g


def test_mc_ambiguous_reason():
    assert grade(MC, "A) Dog\nB) Red").reason.startswith("ambiguous")


def test_regex():
    query = q("regex", "11", pattern=r"^\W*(11|13|17|19)\W*$")
    assert grade(query, "13").correct and grade(query, " 17.").correct
    assert not grade(query, "11, 13 or 17").correct and not grade(query, "12").correct
    assert grade(q("regex", "x", pattern="paris"), "It is PARIS").extracted == "PARIS"


@pytest.mark.parametrize("pattern", [r"^(a+)+$", r"(x+x+)+y", r"(a|aa)+$"])
def test_a_backtracking_pattern_cannot_hang_the_grader(monkeypatch, pattern):
    from ipw.queries import grading

    monkeypatch.setattr(grading, "REGEX_TIMEOUT_S", 0.2)
    output = ("a" * 20000 + "b") if "a" in pattern else "x" * 20000
    g = grade(q("regex", "x", pattern=pattern), output)
    # either the engine sees there is no match, or the time limit stops it: never a hang, never "correct"
    assert g.correct is False or (g.correct is None and "did not finish within 0.2 s" in g.reason)
    slow = grade(q("regex", "x", pattern=r"(x+x+)+y"), "x" * 20000)
    assert slow.correct is None and "catastrophic backtracking" in slow.reason


class FakeJudge(Engine):
    """Returns canned replies; records the prompts it was given."""

    name = "fake-judge"

    def __init__(self, *replies: str, fail: bool = False) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []
        self.fail = fail

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        self.prompts.append(prompt)
        if self.fail:
            raise IpwError("judge endpoint unreachable")
        return Generation(text=self.replies.pop(0), input_tokens=10, output_tokens=1, t_start_s=0.0, t_end_s=0.1)

    def describe(self) -> dict:
        return {"engine": self.name}


@pytest.mark.parametrize(
    "reply, correct",
    [("CORRECT", True), (" correct.", True), ("INCORRECT", False), ("Not correct", False), ("Verdict: INCORRECT", False)],
)
def test_judge_verdicts(reply, correct):
    judge = FakeJudge(reply)
    g = grade(q("judge", "Paris"), "It's Paris, the city of light.", judge=judge)
    assert g.correct is correct and g.method == "judge"
    (prompt,) = judge.prompts
    assert "What is the capital of France?" in prompt and "Paris, the city of light" in prompt
    assert "Reference answer:\nParis" in prompt and "CORRECT or INCORRECT" in prompt


def test_judge_not_scored_without_judge_or_verdict():
    assert grade(q("judge"), "Paris") == Grade(None, None, "judge", "no judge configured")
    assert grade(q("judge"), "Paris", judge=FakeJudge("maybe")).correct is None
    g = grade(q("judge"), "Paris", judge=FakeJudge(fail=True))
    assert g.correct is None and "unreachable" in g.reason


def test_registry_did_you_mean():
    assert set(GRADERS) == {"exact", "numeric", "mc", "regex", "judge"}
    with pytest.raises(IpwError, match="Did you mean 'numeric'"):
        get_grader("numerc")


@pytest.mark.parametrize(
    "output, correct",
    [
        ("The capital of France is Paris.", True),
        ("I think so. The capital of France is Paris!", True),
        ("It is not Lyon, it is Paris.", False),  # names an alternative
        ("Paris or Lyon", False),
        ("Paris is the capital of France.", False),  # the reference does not end the sentence
        ("The capital is Paris. Or maybe Lyon.", False),
    ],
)
def test_exact_accepts_a_final_sentence_ending_with_the_reference(output, correct):
    from ipw.queries.querysets import parse_query

    q = parse_query('{"id": "x", "prompt": "Capital of France?", "answer": "Paris", "grader": "exact", "domain": "facts"}')
    assert grade(q, output).correct is correct
