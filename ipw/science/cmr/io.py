"""Loading a CSV of continual pre-training (CPT) runs, with errors that name file, line and column.

One row is one evaluation of one CPT run at one point of its training:

=====================  ==========================================================================
column                 meaning
=====================  ==========================================================================
model                  a label for the base model (e.g. ``460M``); one CMR analysis per model
ratio                  R, domain share of the CPT mixture, a fraction in [0, 1] (25 % is 0.25)
tokens                 CPT tokens seen so far (a count, > 0; converted to T with the token unit)
general_loss           validation loss on general data after ``tokens`` of CPT (nats/token)
domain_loss            validation loss on domain data after ``tokens`` of CPT (nats/token)
general_loss_before    general validation loss of the model before CPT (same for all its rows)
domain_loss_before     domain validation loss of the model before CPT (same for all its rows)
=====================  ==========================================================================

Extra columns are kept. Blank lines and lines starting with ``#`` are skipped (line numbers still
count them, so an error's line is the line your editor shows). The file is UTF-8, read by the
project's one line splitter (:func:`ipw.core.jsonl.split_lines`): lines end at ``\n`` (``\r\n``
accepted), a byte-order mark (as spreadsheet programs write) is dropped, and bytes that are not
UTF-8 are an error naming the line.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd

from ipw.science.cmr.errors import CsvValueError
from ipw.core.jsonl import split_lines

COLUMNS = ("model", "ratio", "tokens", "general_loss", "domain_loss",
           "general_loss_before", "domain_loss_before")
_NUMERIC = COLUMNS[1:]
_BEFORE = ("general_loss_before", "domain_loss_before")


def load_runs(path: str | Path) -> pd.DataFrame:
    """Read and validate a CPT runs CSV; returns one row per evaluation, with a ``line`` column."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CsvValueError(path, None, "-", f"cannot read the file: {e.strerror or e}") from e
    rows = _parse(path, [text for _, text in split_lines(data, path)])
    frame = pd.DataFrame(rows)
    _check_before_losses(path, frame)
    return frame


def _parse(path: Path, lines: list[str]) -> list[dict[str, object]]:
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]
    if not numbered:
        raise CsvValueError(path, None, "-", "the file has no header and no rows")
    header_line, header_text = numbered[0]
    header = [h.strip() for h in _cells(path, header_line, header_text)]
    for col in COLUMNS:
        if col not in header:
            raise CsvValueError(path, header_line, col,
                                f"missing from the header; expected columns: {', '.join(COLUMNS)}")
    if len(numbered) == 1:
        raise CsvValueError(path, header_line, "-", "the file has a header but no data rows")
    return [_row(path, header, line_no, text) for line_no, text in numbered[1:]]


def _cells(path: Path, line_no: int, text: str) -> list[str]:
    """The cells of one CSV line (``csv`` module rules); a line it refuses names the line."""
    try:
        return next(csv.reader([text]), [])
    except csv.Error as e:
        raise CsvValueError(path, line_no, "-", f"not a CSV line ({e})") from None


def _row(path: Path, header: list[str], line_no: int, text: str) -> dict[str, object]:
    cells = [c.strip() for c in _cells(path, line_no, text)]
    if len(cells) != len(header):
        raise CsvValueError(path, line_no, "-", f"{len(cells)} cells, but the header has {len(header)}")
    raw = dict(zip(header, cells))
    row: dict[str, object] = dict(raw)
    if not raw["model"]:
        raise CsvValueError(path, line_no, "model", "empty model label")
    for col in _NUMERIC:
        row[col] = _number(path, line_no, col, raw[col])
    _check_ranges(path, line_no, row)
    row["line"] = line_no
    return row


def _number(path: Path, line_no: int, col: str, cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise CsvValueError(path, line_no, col, f"{cell!r} is not a number") from None
    if not math.isfinite(value):
        raise CsvValueError(path, line_no, col, f"{cell!r} is not a finite number")
    return value


def _check_ranges(path: Path, line_no: int, row: dict[str, object]) -> None:
    ratio = float(row["ratio"])  # type: ignore[arg-type]
    if not 0.0 <= ratio <= 1.0:
        raise CsvValueError(path, line_no, "ratio",
                            f"{ratio:g} is outside [0, 1]; the ratio is a fraction (25 % is 0.25)")
    if float(row["tokens"]) <= 0:  # type: ignore[arg-type]
        raise CsvValueError(path, line_no, "tokens",
                            "must be > 0; put the losses before CPT in the *_before columns")
    for col in ("general_loss", "domain_loss", *_BEFORE):
        if float(row[col]) <= 0:  # type: ignore[arg-type]
            raise CsvValueError(path, line_no, col, f"a loss must be > 0, got {row[col]}")


def _check_before_losses(path: Path, frame: pd.DataFrame) -> None:
    """The loss before CPT is one number per model; a second value is a data error."""
    for col in _BEFORE:
        for model, group in frame.groupby("model", sort=False):
            first = group[col].iloc[0]
            bad = group[~(abs(group[col] - first) <= 1e-9 * max(1.0, abs(first)))]
            if len(bad):
                line = int(bad["line"].iloc[0])
                raise CsvValueError(path, line, col,
                                    f"model {model!r} has {bad[col].iloc[0]} here but {first} on line "
                                    f"{int(group['line'].iloc[0])}; the loss before CPT is one value per model")


def save_runs(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write runs in the format :func:`load_runs` reads (used by the example)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(COLUMNS) + [c for c in frame.columns if c not in COLUMNS and c != "line"]
    frame[cols].to_csv(path, index=False, float_format="%.10g")
    return path
