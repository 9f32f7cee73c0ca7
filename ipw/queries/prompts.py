"""A query and the text sent to the model for it: what query sets make and graders read.

Its own module so that ``querysets`` (which checks graders by name) and ``grading`` (which reads
queries and renders the judge's prompt) both import it and never each other in a loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Option letters of multiple-choice queries: A for ``choices[0]``, B for ``choices[1]``, ..."""
MC_INSTRUCTION = "Answer with the letter of the correct option only."


@dataclass(frozen=True)
class Query:
    """One question. ``answer`` is the reference as text (numbers too, e.g. ``"0.25"``); for mc it is
    the letter of the right choice (A for ``choices[0]``, B for ``choices[1]``, ...)."""

    id: str
    prompt: str
    answer: str
    grader: str
    domain: str
    choices: tuple[str, ...] | None = None
    difficulty: str | None = None
    tolerance: float | None = None
    pattern: str | None = None
    meta: dict = field(default_factory=dict, hash=False, compare=False)


def choice_letters(query: Query) -> str:
    """The option letters of ``query`` (empty for a query without choices)."""
    return LETTERS[: len(query.choices or ())]


def render_prompt(query: Query) -> str:
    """The text sent to the model.

    For mc queries whose prompt does not already list every option as a line ``A) ...``,
    ``A. ...``, ``(A) ...`` or ``A: ...``, the options and an instruction are appended::

        <prompt>

        A) <choice 1>
        B) <choice 2>
        Answer with the letter of the correct option only.

    Every other prompt is sent as is.
    """
    if query.grader != "mc" or not query.choices:
        return query.prompt
    letters = LETTERS[: len(query.choices)]
    if all(re.search(rf"(?m)^\s*(?:\({x}\)|{x}[).:])\s", query.prompt) for x in letters):
        return query.prompt
    options = "\n".join(f"{x}) {c}" for x, c in zip(letters, query.choices))
    return f"{query.prompt.rstrip()}\n\n{options}\n{MC_INSTRUCTION}"
