"""Query sets: the questions a run asks, each with a reference answer and the grader that checks it.

A query set is a JSONL file, one JSON object per line (docs/querysets.md has the full schema)::

    {"id": "arith-001", "prompt": "What is 7 * 8? Answer with the number only.",
     "answer": "56", "grader": "numeric", "domain": "arithmetic", "difficulty": "easy"}

Required keys: ``id``, ``prompt``, ``answer``, ``grader``, ``domain``. Optional: ``choices`` (mc),
``difficulty`` (easy/medium/hard), ``tolerance`` (numeric), ``pattern`` (regex), ``meta`` (a JSON
object, kept as is). Other top-level keys are kept in ``meta`` too, unless they look like a
misspelt field name (``"tolerence"``), which is an error with a "did you mean".

Lines end at ``\n`` only (a raw U+2028 inside a JSON string is kept), a UTF-8 byte-order mark
is skipped, and bytes that are not UTF-8 or JSON nested too deeply are errors naming the line
(:mod:`ipw.core.jsonl`). Blank lines are skipped. JSONL has no comments; as an ipw extension, a line whose first
non-blank character is ``#`` is skipped too (the shipped sets use none, so they stay plain JSONL).
Every other malformed line raises :class:`~ipw.core.errors.InputFileError` naming the file and line.

``load_queryset("default")`` loads a set shipped in ``ipw/data/querysets/``; any other argument is a
path. :func:`load_lm_eval_task` turns an offline lm-eval ``generate_until`` task into a query set.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import regex

from ipw.core.errors import InputFileError, IpwError, MissingExtra
from ipw.core.jsonl import loads, split_lines
from ipw.queries import grading
from ipw.queries.prompts import LETTERS, Query

DIFFICULTIES = ("easy", "medium", "hard")
REQUIRED = ("id", "prompt", "answer", "grader", "domain")
OPTIONAL = ("choices", "difficulty", "tolerance", "pattern", "meta")


@dataclass(frozen=True)
class QuerySet:
    """A loaded query set; ``sha256`` is of the file's bytes, so a run can tell if it changed."""

    name: str
    path: str
    queries: tuple[Query, ...]
    sha256: str

    def domains(self) -> dict[str, int]:
        """Number of queries per domain, in order of first appearance."""
        counts: dict[str, int] = {}
        for q in self.queries:
            counts[q.domain] = counts.get(q.domain, 0) + 1
        return counts

    def __len__(self) -> int:
        return len(self.queries)

    def __iter__(self):
        return iter(self.queries)


# ----------------------------------------------------------------------------- shipped sets


def shipped() -> list[str]:
    """Names of the query sets shipped with ipw (``ipw/data/querysets/<name>.jsonl``)."""
    root = resources.files("ipw") / "data" / "querysets"
    return sorted(p.name[: -len(".jsonl")] for p in root.iterdir() if p.name.endswith(".jsonl"))


def _resolve(name_or_path: str | Path) -> tuple[str, Path]:
    path = Path(name_or_path)
    if path.is_file():
        return path.stem, path
    if path.is_dir():
        raise InputFileError(path, None, "is a directory, not a query set file (give the JSONL file inside it)")
    text = str(name_or_path)
    names = shipped()
    if text in names:
        res = resources.files("ipw") / "data" / "querysets" / f"{text}.jsonl"
        return text, Path(str(res))
    if "/" in text or "\\" in text or text.endswith((".jsonl", ".json")):
        raise InputFileError(path, None, "no such query set file")
    close = difflib.get_close_matches(text, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise IpwError(
        f"unknown query set {text!r}: not a file, and not one of the shipped sets ({', '.join(names)}).{hint}"
    )


def load_queryset(name_or_path: str | Path = "default") -> QuerySet:
    """Load a shipped query set by name, or a JSONL file by path; validates every line."""
    name, path = _resolve(name_or_path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputFileError(path, None, f"cannot read it: {e.strerror or e}") from None
    queries: list[Query] = []
    seen: dict[str, int] = {}
    for n, line in split_lines(data, path):  # at "\n" only: a raw U+2028 inside a string is no line break
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        q = parse_query(line, path, n)
        if q.id in seen:
            raise InputFileError(path, n, f"duplicate id {q.id!r} (first used on line {seen[q.id]})")
        seen[q.id] = n
        queries.append(q)
    if not queries:
        raise InputFileError(path, None, "no queries in file")
    return QuerySet(name=name, path=str(path), queries=tuple(queries), sha256=hashlib.sha256(data).hexdigest())


# ----------------------------------------------------------------------------- one line


def parse_query(line: str, path: object = "<string>", n: int | None = None) -> Query:
    """Parse and validate one JSONL line; errors name ``path`` and line ``n``."""

    def fail(message: str) -> InputFileError:
        return InputFileError(path, n, message)

    obj = loads(line, path, n)
    if not isinstance(obj, dict):
        raise fail(f"expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise fail(f"missing field(s) {', '.join(missing)}" + _hint_for_missing(obj, missing))
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        raise fail("meta must be a JSON object")
    meta = dict(meta)
    for key in obj:
        if key in REQUIRED or key in OPTIONAL:
            continue
        close = difflib.get_close_matches(key, REQUIRED + OPTIONAL, n=1, cutoff=0.8)
        if close:
            raise fail(f"unknown field {key!r}; did you mean {close[0]!r}?")
        meta[key] = obj[key]

    qid = obj["id"]
    if isinstance(qid, bool) or not isinstance(qid, (str, int)) or str(qid).strip() == "":
        raise fail("id must be a non-empty string")
    qid = str(qid)
    prompt = obj["prompt"]
    if not isinstance(prompt, str):
        raise fail(f"query {qid!r}: prompt is not a string ({type(prompt).__name__} {prompt!r:.40}); write it in quotes")
    if not prompt.strip():
        raise fail(f"query {qid!r}: empty prompt")
    bad = _lone_surrogate(obj)
    if bad is not None:
        raise fail(f"query {qid!r}: {bad[0]} holds a lone surrogate (\\u{ord(bad[1]):04x}, half of a UTF-16 pair), "
                   "which is not text a server can be sent; fix the JSON escape")  # fmt: skip
    domain = obj["domain"]
    if not isinstance(domain, str) or not domain.strip():
        raise fail(f"query {qid!r}: domain must be a non-empty string")
    grader = obj["grader"]
    if not isinstance(grader, str) or grader not in grading.GRADERS:
        close = difflib.get_close_matches(str(grader), grading.GRADERS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise fail(f"query {qid!r}: unknown grader {grader!r} (known: {', '.join(grading.GRADERS)}){hint}")
    answer = _answer_text(obj["answer"])
    if answer is None:
        raise fail(f"query {qid!r}: answer must be a non-empty string or a number")

    difficulty = obj.get("difficulty")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        close = difflib.get_close_matches(str(difficulty), DIFFICULTIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise fail(f"query {qid!r}: difficulty must be one of {', '.join(DIFFICULTIES)}{hint}")

    choices = obj.get("choices")
    if grader == "mc":
        if not isinstance(choices, list) or len(choices) < 2:
            raise fail(f"query {qid!r}: an mc query needs 'choices', a list of at least two option texts")
        if len(choices) > len(LETTERS) or not all(isinstance(c, str) and c.strip() for c in choices):
            raise fail(f"query {qid!r}: choices must be 2 to 26 non-empty strings")
        choices = tuple(choices)
        letters = LETTERS[: len(choices)]
        if answer.upper() not in letters or len(answer) != 1:
            texts = [i for i, c in enumerate(choices) if c.strip().lower() == answer.strip().lower()]
            hint = f" (it is the text of choice {letters[texts[0]]}; give the letter)" if texts else ""
            raise fail(f"query {qid!r}: answer {answer!r} is not one of the choice letters {', '.join(letters)}{hint}")
        answer = answer.upper()
    elif choices is not None:
        raise fail(f"query {qid!r}: 'choices' is only used by the mc grader, not {grader!r}")

    tolerance = obj.get("tolerance")
    if tolerance is not None:
        if grader != "numeric":
            raise fail(f"query {qid!r}: 'tolerance' is only used by the numeric grader")
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0 or math.isinf(tolerance):
            raise fail(f"query {qid!r}: tolerance must be a finite number >= 0")
        tolerance = float(tolerance)
    if grader == "numeric" and grading.parse_number(answer) is None:
        raise fail(f"query {qid!r}: numeric answer {answer!r} is not a number")

    pattern = obj.get("pattern")
    if grader == "regex":
        if not isinstance(pattern, str) or not pattern:
            raise fail(f"query {qid!r}: a regex query needs 'pattern'")
        try:
            regex.compile(pattern, regex.VERSION0)  # the engine grade_regex searches with
        except (regex.error, RecursionError, OverflowError, ValueError) as e:
            raise fail(f"query {qid!r}: pattern is not a valid regex: {e}") from None
    elif pattern is not None:
        raise fail(f"query {qid!r}: 'pattern' is only used by the regex grader")

    return Query(id=qid, prompt=prompt, answer=answer, grader=grader, domain=domain, choices=choices,
                 difficulty=difficulty, tolerance=tolerance, pattern=pattern, meta=meta)  # fmt: skip


def _lone_surrogate(value: object, where: str = "") -> tuple[str, str] | None:
    """(field, character) of the first lone surrogate (U+D800-U+DFFF, from a ``\\ud800`` escape) in a
    parsed line's strings, keys included; UTF-8 cannot encode one, so no request could carry it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")  # in C: no loop over characters here
        except UnicodeEncodeError as e:
            return where or "a value", value[e.start]
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        name = f"{where}.{k}" if where else str(k)
        found = _lone_surrogate(k, name) if isinstance(k, str) else None
        found = found or _lone_surrogate(v, name)
        if found:
            return found
    return None


def _answer_text(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


EXAMPLE_LINE = json.dumps({"id": "q1", "prompt": "What is 2 + 2? Answer with the number only.", "answer": "4",
                           "grader": "numeric", "domain": "arithmetic"})  # fmt: skip
"""One valid query line, shown when a line lacks a required field (docs/querysets.md has them all)."""


def _hint_for_missing(obj: dict, missing: list[str]) -> str:
    """A near field name the line has instead, the graders that exist (when ``grader`` is missing),
    and one valid line: on one line, as every input error is."""
    hints = []
    for m in missing:
        close = difflib.get_close_matches(m, [k for k in obj if k not in REQUIRED + OPTIONAL], n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} -> {m!r}?")
    out = f" (did you mean {', '.join(hints)})" if hints else ""
    if "grader" in missing:
        out += f"; grader is one of {', '.join(grading.GRADERS)} (docs/querysets.md)"
    return out + f"; a valid line: {EXAMPLE_LINE}"


# ----------------------------------------------------------------------------- prompts


# ----------------------------------------------------------------------------- lm-eval


def load_lm_eval_task(
    task_name: str,
    include_path: str | Path,
    limit: int | None = None,
    num_fewshot: int | None = None,
    include_defaults: bool = False,
) -> QuerySet:
    """An lm-eval ``generate_until`` task as a query set, built offline by lm-eval itself.

    ``TaskManager(include_path=...)`` finds the task's YAML; lm-eval loads the documents (use local
    files: ``dataset_path: json`` with ``dataset_kwargs: {data_files: ...}``; relative paths are
    resolved by ``datasets`` against the current directory) and builds each prompt with its own
    few-shot context and ``doc_to_text``. The reference is ``doc_to_target``; the grader is
    "numeric" when the reference parses as a number, else "exact". lm-eval's own filters and metrics
    are NOT applied: ipw grades the answers. The task's ``until`` strings are kept in
    ``meta["until"]``. lm-eval's built-in tasks are not indexed unless ``include_defaults`` (indexing
    them takes seconds, and their datasets need the network).
    """
    try:
        from lm_eval.tasks import TaskManager
    except ImportError as e:
        raise MissingExtra("lm-eval", "pip install 'ipw[lmeval]'") from e

    include = Path(include_path)
    if not include.exists():
        raise InputFileError(include, None, "lm-eval include_path does not exist")
    manager = TaskManager(include_path=str(include), include_defaults=include_defaults)
    if task_name not in manager.all_subtasks:
        close = difflib.get_close_matches(task_name, manager.all_subtasks, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise IpwError(f"lm-eval task {task_name!r} not found under {include}.{hint}")
    try:
        task = manager.load([task_name])["tasks"][task_name]
    except IpwError:
        raise
    except Exception as e:  # lm-eval and datasets raise many types; name the task and the cause
        raise IpwError(f"lm-eval could not load task {task_name!r}: {type(e).__name__}: {e}") from e
    if task.OUTPUT_TYPE != "generate_until":
        raise IpwError(f"lm-eval task {task_name!r} is {task.OUTPUT_TYPE!r}; ipw runs generate_until tasks only")
    if num_fewshot is not None:
        task.set_config(key="num_fewshot", value=num_fewshot)
    task.build_all_requests(limit=limit)

    queries = []
    for inst in task.instances:
        context, gen_kwargs = inst.arguments
        target = task.doc_to_target(inst.doc)
        answer = str(target[0] if isinstance(target, list) else target).strip()
        grader = "numeric" if grading.parse_number(answer) is not None else "exact"
        meta = {"lm_eval_task": task_name, "doc_id": inst.doc_id, "until": list(gen_kwargs.get("until", []))}
        if isinstance(target, list):
            meta["targets"] = [str(t) for t in target]
        queries.append(Query(id=f"{task_name}-{inst.doc_id}", prompt=context, answer=answer, grader=grader,
                             domain=task_name, meta=meta))  # fmt: skip
    digest = hashlib.sha256()
    digest.update(json.dumps([task_name, limit, num_fewshot], default=str).encode())
    for q in queries:
        digest.update(json.dumps([q.id, q.prompt, q.answer]).encode())
    return QuerySet(name=f"lm-eval:{task_name}", path=str(include), queries=tuple(queries), sha256=digest.hexdigest())
