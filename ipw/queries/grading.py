"""Graders: did the model's output answer the query? (docs/querysets.md has every rule in full.)

``grade(query, output, judge=None)`` picks the query's grader by name from :data:`GRADERS`:

- ``exact``: SQuAD-style normalised match against the whole output, its last non-empty line, or
  the text after the last "answer:"/"answer is" (plus ``meta["aliases"]``); or a final sentence
  that ends with the reference and names no alternatives ("The capital of France is Paris.").
- ``numeric``: the number after the last "answer" marker, else the final number in the output,
  compared exactly for integer references and within 1e-6 relative otherwise (or the query's
  absolute ``tolerance``).
- ``mc``: the chosen letter (several different letters: wrong, "ambiguous").
- ``regex``: the query's pattern, searched case-insensitively, within a time limit.
- ``judge``: an LLM judge (any :class:`~ipw.engines.base.Engine`) says CORRECT or INCORRECT;
  without one the query is not scored (``correct=None``).

Accuracy (IPW paper, arXiv 2511.07885, section 3) = correct / scored, where a query is scored when
``correct`` is not None.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from ipw.core.errors import IpwError
from ipw.queries.prompts import Query, choice_letters, render_prompt

if TYPE_CHECKING:
    from ipw.engines.base import Engine

RELATIVE_TOLERANCE = Fraction(1, 10**6)


@dataclass(frozen=True)
class Grade:
    """``correct`` is None when the answer could not be scored (e.g. no judge configured)."""

    correct: bool | None
    extracted: str | None
    method: str
    reason: str


# ----------------------------------------------------------------------------- normalisation

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "\u2018\u2019\u201c\u201d")
_MARKER = re.compile(r"(?i)(?:\banswer\b\s*(?:is\b|:|=)|####)")


def normalize(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and the articles a/an/the, squeeze spaces."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _after_marker(text: str) -> str | None:
    """The rest of the line after the last "answer:", "answer is", "answer =" or "####"."""
    found = list(_MARKER.finditer(text))
    if not found:
        return None
    rest = text[found[-1].end() :].split("\n", 1)[0]
    return rest.strip()


# ----------------------------------------------------------------------------- exact


def grade_exact(query: Query, output: str, judge: Engine | None = None) -> Grade:
    """Correct when the normalised reference (or an alias) equals the normalised whole output, its
    last non-empty line (unless another line is a short bare answer of at most three words: a list of
    candidates), or the text after the last answer marker; or when the final sentence of the last
    line ends with the reference and names no alternatives (no comma, semicolon, "or", "not",
    "nor"): "The capital of France is Paris." Containment elsewhere is not enough."""
    refs = [query.answer, *query.meta.get("aliases", [])]
    wanted = {normalize(str(r)) for r in refs} - {""}
    lines = _lines(output)
    candidates = [("whole output", output)]
    # the last line counts unless another line is itself a short bare answer (a list of candidates)
    listed = [o for o in map(normalize, lines[:-1]) if 0 < len(o.split()) <= 3 and o not in wanted]
    if lines and not listed:
        candidates.append(("last line", lines[-1]))
    marker = _after_marker(output)
    if marker is not None:
        candidates.append(("after answer marker", marker))
    for where, text in candidates:
        if normalize(text) in wanted:
            return Grade(True, text.strip(), "exact", f"{where} matches the reference")
    sentence = _final_sentence(lines[-1]) if lines and not listed else ""
    if sentence and not _ALTERNATIVES.search(sentence):
        words = normalize(sentence).split()
        for ref in wanted:
            n = len(ref.split())
            if len(words) > n and " ".join(words[-n:]) == ref:
                return Grade(True, sentence.strip(), "exact", "the final sentence ends with the reference")
    shown = (marker if marker is not None else lines[-1] if lines else "").strip()
    return Grade(False, shown or None, "exact", "no match: neither the whole output, its last line nor the text after 'answer:' equals the reference")  # fmt: skip


_ALTERNATIVES = re.compile(r"(?i),|;|\bor\b|\bnot\b|\bnor\b")


def _final_sentence(line: str) -> str:
    """The last sentence of a line (sentences end with . ! or ? followed by a space)."""
    parts = [p for p in re.split(r"(?<=[.!?])\s+", line.strip()) if p.strip()]
    return parts[-1] if parts else ""


# ----------------------------------------------------------------------------- numeric

_NUMBER = re.compile(
    r"""
    (?<![\w.])                                   # not glued to a word or another number
    (?P<sign>[-+\u2212])?\s?\$?\s?
    (?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)?(?P<frac>\.\d+)?
    (?:\s*/\s*(?P<den>\d+)(?![\d.,]\d))?         # a fraction like 3/4
    (?:[eE](?P<exp>[-+]?\d+)|\s*(?:[x\u00d7*]|\\times)\s*10\s*\^\s*\{?(?P<exp10>[-+\u2212]?\d+)\}?)?
    """,
    re.VERBOSE,
)


def _to_fraction(m: re.Match) -> Fraction | None:
    if m["int"] is None and m["frac"] is None:
        return None
    try:
        value = Fraction((m["int"] or "0").replace(",", "") + (m["frac"] or ""))
        if m["den"] is not None:
            value /= Fraction(int(m["den"]))
    except ZeroDivisionError:
        return None
    exp = m["exp"] or m["exp10"]
    if exp is not None:
        value *= Fraction(10) ** int(exp.replace("\u2212", "-"))
    return -value if m["sign"] in ("-", "\u2212") else value


def numbers_in(text: str) -> list[tuple[str, Fraction]]:
    """Every number in ``text``, in order, as (matched text, exact value). Handles 1,234, -5, 0.5,
    .5, 3/4, 1.5e-3, 2 x 10^3, $12 and 50% (the % sign is dropped: "50%" is 50)."""
    out = []
    for m in _NUMBER.finditer(text.replace("\u2212", "-")):
        value = _to_fraction(m)
        if value is not None:
            out.append((m.group(0).strip(), value))
    return out


def parse_number(text: str) -> Fraction | None:
    """``text`` as one number (surrounding spaces, "$" and "%" allowed), else None."""
    stripped = text.replace("\u2212", "-").strip().rstrip("%").strip()
    found = numbers_in(stripped)
    if len(found) != 1 or found[0][0] != stripped:
        return None
    return found[0][1]


def _is_integer_text(text: str) -> bool:
    return re.fullmatch(r"\s*[-+]?\$?\s?(\d{1,3}(,\d{3})+|\d+)\s*%?\s*", text) is not None


def grade_numeric(query: Query, output: str, judge: Engine | None = None) -> Grade:
    """The first number after the last answer marker ("answer:", "answer is", "####"), else the
    final number in the output, against the reference: exact when the reference is an integer,
    else within 1e-6 relative; with ``query.tolerance``, within that absolute tolerance."""
    ref = parse_number(query.answer)
    if ref is None:
        raise IpwError(f"query {query.id!r}: numeric reference {query.answer!r} is not a number")
    marker = _after_marker(output)
    found = numbers_in(marker) if marker else []
    where = "after answer marker"
    if found:
        text, value = found[0]
    else:
        found = numbers_in(output)
        if not found:
            return Grade(False, None, "numeric", "no number in the output")
        text, value = found[-1]
        where = "final number"
    diff = abs(value - ref)
    if query.tolerance is not None:
        ok, rule = diff <= Fraction(query.tolerance), f"|diff| <= {query.tolerance:g}"
    elif _is_integer_text(query.answer):
        ok, rule = diff == 0, "exact integer"
    else:
        ok, rule = diff <= RELATIVE_TOLERANCE * abs(ref), "relative 1e-6"
    verdict = "equals" if ok else "differs from"
    return Grade(ok, text, "numeric", f"{where} {text} = {float(value):g} {verdict} {query.answer} ({rule})")


# ----------------------------------------------------------------------------- multiple choice


def _letter_at_start(text: str, letters: str) -> str | None:
    """A letter opening ``text``: "B", "(B)", "B)", "B.", "B:", "B," "**B**"; lowercase only when
    bracketed or followed by ) . : or nothing (so "a dog" is not option A)."""
    t = text.strip().lstrip("*_ ").strip()
    m = re.match(r"\(?([A-Z])\)?(?![\w'\u2019])", t) or re.match(r"(?:\(([a-z])\)|([a-z])(?:[).:]|\s*$))", t)
    if not m:
        return None
    letter = next(g for g in m.groups() if g).upper()
    return letter if letter in letters else None


def _letter_mentions(text: str, letters: str) -> list[str]:
    """Letters written as option labels anywhere: "(B)", "B)", "B." / "B:" before a space or the
    end, a capital letter closing a line ("... is B"), or opening the output before "is"/"-"
    ("B is correct"), or joined to another by "or"/"and" ("A or B")."""
    pattern = (
        r"\(([A-Z])\)|(?<![\w'\u2019])([A-Z])(?=[).:](?:\s|$))|(?<![\w'\u2019])([A-Z])(?=[.!*]*\s*$)"
        r"|\A[\s*_]*([A-Z])(?=[*_]*\s+(?:is|-|\u2013)\s)"
        r"|(?<![\w'\u2019])([A-Z])(?=,?\s+(?:or|and)\s+\(?[A-Z]\b)"
    )
    found = [next(g for g in m.groups() if g) for m in re.finditer(pattern, text, re.MULTILINE)]
    return [x for x in found if x in letters]


def _choice_by_text(text: str, query: Query, letters: str) -> str | None:
    t = normalize(text)
    hits = [x for x, c in zip(letters, query.choices or ()) if normalize(c) == t]
    return hits[0] if len(hits) == 1 else None


def grade_mc(query: Query, output: str, judge: Engine | None = None) -> Grade:
    """Extract the chosen letter, in this order: after the last answer marker; the whole output being
    a letter ("B", "(B)", "B."); the whole output being exactly one choice's text (unless it opens with
    a label such as "A)"); all option-label letters in the output (one distinct letter: chosen; several:
    wrong, "ambiguous"); then choice texts quoted in the output (one: chosen; several: ambiguous)."""
    letters = choice_letters(query)

    def decide(letter: str, how: str) -> Grade:
        ok = letter == query.answer
        return Grade(ok, letter, "mc", f"{how}: {letter} ({'right' if ok else 'reference ' + query.answer})")

    marker = _after_marker(output)
    if marker:
        letter = _letter_at_start(marker, letters) or _choice_by_text(marker, query, letters)
        if letter:
            return decide(letter, "after answer marker")
    whole = output.strip()
    if re.fullmatch(r"[*_\s]*\(?[A-Za-z]\)?[.:)]?[*_\s]*", whole):
        letter = _letter_at_start(whole, letters)
        if letter:
            return decide(letter, "bare letter")
    labelled = re.match(r"[*_\s]*\(?[A-Za-z][).:]\s", whole)  # "A) 8": the label decides, not the text
    letter = None if labelled else _choice_by_text(whole, query, letters)
    if letter:
        return decide(letter, "output is the text of a choice")
    mentions = sorted(set(_letter_mentions(output, letters)))
    if len(mentions) == 1:
        return decide(mentions[0], "only option letter mentioned")
    if len(mentions) > 1:
        return Grade(False, ",".join(mentions), "mc", f"ambiguous: several options named ({', '.join(mentions)})")
    norm = f" {normalize(output)} "
    texts = [x for x, c in zip(letters, query.choices or ()) if normalize(c) and f" {normalize(c)} " in norm]
    if len(texts) == 1:
        return decide(texts[0], "only choice text quoted")
    if len(texts) > 1:
        return Grade(False, ",".join(texts), "mc", f"ambiguous: several choice texts quoted ({', '.join(texts)})")
    return Grade(False, None, "mc", "no option letter or choice text found")


# ----------------------------------------------------------------------------- regex


REGEX_TIMEOUT_S = 1.0
"""The longest one pattern search may take [s]; a pattern such as ``^(a+)+$`` can backtrack for
longer than the age of the universe on a long answer."""


def grade_regex(query: Query, output: str, judge: Engine | None = None) -> Grade:
    """Correct when ``query.pattern`` is found anywhere in the output (a search ignoring case, by the
    ``regex`` engine, whose syntax is Python's ``re``). A search that does not finish within
    :data:`REGEX_TIMEOUT_S` leaves the query not scored (``correct`` None), with the reason."""
    import regex

    try:
        m = regex.search(query.pattern or "", output, regex.IGNORECASE | regex.VERSION0, timeout=REGEX_TIMEOUT_S)
    except TimeoutError:
        return Grade(None, None, "regex", f"pattern {query.pattern!r} did not finish within {REGEX_TIMEOUT_S:g} s "
                                          f"on this {len(output)}-character output (catastrophic backtracking); not scored")  # fmt: skip
    if m:
        return Grade(True, m.group(0), "regex", f"pattern {query.pattern!r} found")
    return Grade(False, None, "regex", f"pattern {query.pattern!r} not found")


# ----------------------------------------------------------------------------- judge

JUDGE_PROMPT = """You are grading an answer to a question against a reference answer.

Question:
{question}

Reference answer:
{reference}

Candidate answer:
{answer}

Is the candidate answer correct, meaning it agrees with the reference answer? Ignore style and length.
Reply with exactly one word: CORRECT or INCORRECT."""

_VERDICT = re.compile(r"\b(INCORRECT|NOT\s+CORRECT|CORRECT)\b", re.IGNORECASE)


def judge_prompt(query: Query, output: str) -> str:

    return JUDGE_PROMPT.format(question=render_prompt(query), reference=query.answer, answer=output.strip())


def parse_verdict(reply: str) -> bool | None:
    """The first CORRECT / INCORRECT / NOT CORRECT in the judge's reply (any case); None if absent."""
    m = _VERDICT.search(reply)
    if not m:
        return None
    return m.group(1).upper() == "CORRECT"


def grade_judge(query: Query, output: str, judge: Engine | None = None) -> Grade:
    """Ask ``judge`` (greedy, 8 tokens) for CORRECT/INCORRECT. No judge, a failing judge or an
    unreadable verdict: not scored (correct=None)."""
    if judge is None:
        return Grade(None, None, "judge", "no judge configured")
    from ipw.engines.base import GenerationSettings

    try:
        reply = judge.generate(judge_prompt(query, output), GenerationSettings(max_tokens=8, temperature=0.0)).text
    except IpwError as e:
        return Grade(None, None, "judge", f"judge failed: {e}")
    verdict = parse_verdict(reply)
    if verdict is None:
        return Grade(None, None, "judge", f"unreadable judge verdict: {reply.strip()[:80]!r}")
    return Grade(verdict, output.strip(), "judge", f"judge said {'CORRECT' if verdict else 'INCORRECT'}")


# ----------------------------------------------------------------------------- registry

Grader = Callable[["Query", str, "Engine | None"], Grade]

GRADERS: dict[str, Grader] = {
    "exact": grade_exact,
    "numeric": grade_numeric,
    "mc": grade_mc,
    "regex": grade_regex,
    "judge": grade_judge,
}


def get_grader(name: str) -> Grader:
    """The grader called ``name``; an unknown name gets a "did you mean" error."""
    if name not in GRADERS:
        close = difflib.get_close_matches(name, GRADERS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise IpwError(f"unknown grader {name!r}; known: {', '.join(GRADERS)}.{hint}")
    return GRADERS[name]


def grade(query: Query, output: str, judge: Engine | None = None) -> Grade:
    """Grade one output. An empty output is wrong (except for the judge grader with no judge)."""
    grader = get_grader(query.grader)
    if not output.strip() and not (query.grader == "judge" and judge is None):
        return Grade(False, None, query.grader, "empty output")
    return grader(query, output, judge)
