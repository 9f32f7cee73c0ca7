"""Shipped data and user tables, loaded into pandas with their units made explicit.

Shipped files live in ``ipw/data/density/`` (provenance in its SOURCES.md):

* ``reference_models.csv``: the paper's reference-model architectures (Table 1).
* ``open_models.csv``: public open base models with published 5-shot MMLU; ``params_b`` is
  billions as stated on the cards, ``score_pct`` a percentage. :func:`load_open_models` adds
  ``params`` (a count) and ``score`` (a fraction).
* ``published_scores.csv``: the paper's model families on several benchmarks, one row per
  (model, benchmark, evaluator), each with its source and what was verified
  (:func:`load_published_scores`).
* ``bench_small.jsonl``: the small benchmark set for conditional loss, written for ipw.

Every reader refuses a malformed file with :class:`~ipw.core.errors.InputFileError` naming the file,
the line and the column: not UTF-8, empty, a missing column, a ragged row, "abc" where a number
belongs, a NaN, a value outside its unit's range. A UTF-8 byte-order mark (Excel) is accepted.
"""

from __future__ import annotations

import csv
import io
import math
from importlib import resources
from pathlib import Path

import pandas as pd

from ipw.core.errors import InputFileError
from ipw.core.jsonl import split_lines

# Token budgets of the reference models, as multiples of their parameter count (arXiv
# 2412.04315, Sec. 2.2 / Table 1 notes; taken from the project's paper notes, not re-checked).
REFERENCE_TOKEN_MULTIPLIERS = (10, 15, 20, 30, 40, 60)
_LINE = "_line"  # the source line of each row, kept while checking values


def data_dir() -> Path:
    return Path(str(resources.files("ipw") / "data" / "density"))


def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(path, None, "no such file") from None
    except IsADirectoryError:
        raise InputFileError(path, None, "is a directory, not a CSV file") from None
    except OSError as e:
        raise InputFileError(path, None, f"cannot be read ({e.strerror or e})") from e
    # the project's one line rule (ipw.core.jsonl): UTF-8, a leading BOM skipped, bad bytes named by line
    return "\n".join(text for _, text in split_lines(raw, path))


def _rows(path: Path, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line, fields) of every non-blank row, with csv's own line numbers."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not any(f.strip() for f in fields):
                continue
            if header is None:
                header = [f.strip() for f in fields]
                continue
            rows.append((line, fields))
    except csv.Error as e:
        raise InputFileError(path, start, f"not a readable CSV row ({e})") from None
    if header is None:
        raise InputFileError(path, None, "empty file: expected a CSV header line and rows")
    seen = set()
    for name in header:
        if name in seen and name:
            raise InputFileError(path, 1, f"column {name!r} appears twice in the header")
        seen.add(name)
    return header, rows


def read_table(
    path: Path | str, required: tuple[str, ...], numeric: tuple[str, ...] | None = None,
    positive: tuple[str, ...] = (), keep_line: bool = False,
) -> pd.DataFrame:
    """Read a CSV, check its ``required`` columns, and convert ``numeric`` ones to float.

    Columns in ``positive`` must be > 0. Every error names the file, the line (the header is
    line 1) and the column. Other columns stay strings, stripped of surrounding blanks; with
    ``numeric=None`` every column whose values all read as finite numbers becomes float.
    ``keep_line`` keeps each row's source line in a ``_line`` column (for later checks).
    """
    path = Path(path)
    header, rows = _rows(path, _text(path))
    missing = [c for c in required if c not in header]
    if missing:
        raise InputFileError(path, 1, f"missing column(s) {missing}; found {header}")
    if numeric is None:
        numeric = tuple(c for i, c in enumerate(header) if c and all(
            _is_number(f[i]) for _, f in rows if len(f) == len(header)))
    records = []
    for line, fields in rows:
        if len(fields) != len(header):
            raise InputFileError(path, line, f"{len(fields)} field(s), the header has {len(header)}")
        record = {name: value.strip() for name, value in zip(header, fields) if name}
        for column in required:
            if record[column] == "":
                raise InputFileError(path, line, f"column {column!r}: empty value")
        for column in numeric:
            if column in record:
                record[column] = _number(path, line, column, record[column], column in positive)
        record[_LINE] = line
        records.append(record)
    if not records:
        raise InputFileError(path, None, f"no data rows under the header {header}")
    frame = pd.DataFrame.from_records(records)
    return frame if keep_line else frame.drop(columns=[_LINE])


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _number(path: Path, line: int, column: str, text: str, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputFileError(path, line, f"column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputFileError(path, line, f"column {column!r}: {text!r} is not a finite number")
    if positive and value <= 0:
        raise InputFileError(path, line, f"column {column!r}: {text} must be > 0")
    return value


def check_range(frame: pd.DataFrame, path: Path | str, column: str, low: float, high: float,
                what: str) -> None:
    """Every value of ``column`` within [low, high], else an error naming the line."""
    bad = ~frame[column].between(low, high)
    if bad.any():
        row = frame[bad].iloc[0]
        raise InputFileError(path, int(row[_LINE]), f"column {column!r}: {row[column]:g} {what}")


def _dates(frame: pd.DataFrame, path: Path | str) -> pd.Series:
    parsed = pd.to_datetime(frame["release_date"], errors="coerce", format="%Y-%m-%d")
    if parsed.isna().any():
        row = frame[parsed.isna()].iloc[0]
        raise InputFileError(path, int(row[_LINE]), f"column 'release_date': "
                                                    f"{row['release_date']!r} is not a YYYY-MM-DD date")
    return parsed


def _done(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[_LINE]).reset_index(drop=True)


def load_reference_models() -> pd.DataFrame:
    """Table 1 of the paper: name, params (count), batch size and architecture, source."""
    return _done(read_table(data_dir() / "reference_models.csv", ("name", "params", "source"),
                            numeric=("params",), positive=("params",), keep_line=True))


def reference_token_grid() -> pd.DataFrame:
    """Every (params, tokens) pair of the reference runs: tokens = multiplier x params."""
    ref = load_reference_models()
    rows = [
        {"name": r.name, "params": int(r.params), "multiplier": m, "tokens": int(r.params) * m}
        for r in ref.itertuples() for m in REFERENCE_TOKEN_MULTIPLIERS
    ]
    return pd.DataFrame(rows)


def load_open_models(path: Path | str | None = None, benchmark: str | None = None) -> pd.DataFrame:
    """Open models with published scores: adds ``params`` (count) and ``score`` (fraction)."""
    path = Path(path) if path else data_dir() / "open_models.csv"
    required = ("model", "params_b", "release_date", "benchmark", "score_pct", "source")
    frame = read_table(path, required, numeric=("params_b", "score_pct"), positive=("params_b",),
                       keep_line=True)
    check_range(frame, path, "score_pct", 0.0, 100.0, "is not a percentage in [0, 100]")
    frame["release_date"] = _dates(frame, path)
    frame["params"] = frame["params_b"] * 1e9
    frame["score"] = frame["score_pct"] / 100.0
    if benchmark is not None:
        frame = frame[frame["benchmark"].str.lower() == benchmark.lower()]
        if frame.empty:
            raise InputFileError(path, None, f"no rows for benchmark {benchmark!r}")
    return _done(frame)


def load_density_table(path: Path | str) -> pd.DataFrame:
    """A user table with ``model``, ``release_date`` and ``density`` (> 0) columns."""
    path = Path(path)
    frame = read_table(path, ("model", "release_date", "density"), numeric=("density",),
                       positive=("density",), keep_line=True)
    frame["release_date"] = _dates(frame, path)
    return _done(frame)


def load_loss_runs(path: Path | str) -> pd.DataFrame:
    """Reference-model runs for the loss law (Sec. 2.2): params, tokens (counts), loss (nats)."""
    cols = ("params", "tokens", "loss")
    return _done(read_table(path, cols, numeric=cols, positive=cols, keep_line=True))


def load_score_runs(path: Path | str) -> pd.DataFrame:
    """(loss, score) of fully trained models or checkpoints for the score law (Sec. 2.3).

    ``loss`` in nats per token (> 0); ``score`` a fraction in [0, 1] (a percentage such as 73.2
    is refused, naming its line).
    """
    path = Path(path)
    frame = read_table(path, ("loss", "score"), numeric=("loss", "score"), positive=("loss",),
                       keep_line=True)
    check_range(frame, path, "score", 0.0, 1.0,
                "is not a fraction in [0, 1] (scores are fractions: 0.732, not 73.2)")
    return _done(frame)


def load_published_scores(path: Path | str | None = None) -> pd.DataFrame:
    """Published benchmark scores of the paper's families, one row per (model, benchmark, evaluator).

    Columns: model, family, params_b (billions), release_date, benchmark, shots, score_pct,
    evaluator (who ran the evaluation), source, verified (what was read in the source), note.
    Adds ``params`` (count) and ``score`` (fraction).
    """
    path = Path(path) if path else data_dir() / "published_scores.csv"
    required = ("model", "family", "params_b", "release_date", "benchmark", "score_pct",
                "evaluator", "source", "verified")
    frame = read_table(path, required, numeric=("params_b", "score_pct"), positive=("params_b",),
                       keep_line=True)
    check_range(frame, path, "score_pct", 0.0, 100.0, "is not a percentage in [0, 100]")
    frame["release_date"] = _dates(frame, path)
    frame["params"] = frame["params_b"] * 1e9
    frame["score"] = frame["score_pct"] / 100.0
    return _done(frame)
