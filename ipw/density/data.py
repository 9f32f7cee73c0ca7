"""Shipped data and user tables, loaded into pandas with their units made explicit.

Shipped files live in ``ipw/data/density/`` (provenance in its SOURCES.md):

* ``reference_models.csv``: the paper's reference-model architectures (Table 1).
* ``open_models.csv``: public open base models with published benchmark scores; ``params_b`` is
  billions as stated on the cards, ``score_pct`` a percentage. :func:`load_open_models` adds
  ``params`` (a count) and ``score`` (a fraction).
* ``bench_small.jsonl``: the small benchmark set for conditional loss, written for ipw.

Every shipped row carries a ``source``; loading fails loudly if one is missing.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from ipw.errors import InputFileError

# Token budgets of the reference models, as multiples of their parameter count (arXiv
# 2412.04315, Sec. 2.2 / Table 1 notes; taken from the project's paper notes, not re-checked).
REFERENCE_TOKEN_MULTIPLIERS = (10, 15, 20, 30, 40, 60)


def data_dir() -> Path:
    return Path(str(resources.files("ipw") / "data" / "density"))


def read_table(path: Path | str, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV and check it has the ``required`` columns; errors name the file and line."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InputFileError(path, None, "no such file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InputFileError(path, None, f"not a readable CSV table ({e})") from e
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputFileError(path, 1, f"missing column(s) {missing}; found {list(frame.columns)}")
    for column in required:
        empty = frame[column].isna()
        if empty.any():
            line = int(empty.to_numpy().nonzero()[0][0]) + 2  # header is line 1
            raise InputFileError(path, line, f"empty value in column {column!r}")
    return frame


def _dates(frame: pd.DataFrame, path: Path) -> pd.Series:
    parsed = pd.to_datetime(frame["release_date"], errors="coerce", format="%Y-%m-%d")
    if parsed.isna().any():
        line = int(parsed.isna().to_numpy().nonzero()[0][0]) + 2
        raise InputFileError(path, line, "release_date must be YYYY-MM-DD")
    return parsed


def load_reference_models() -> pd.DataFrame:
    """Table 1 of the paper: name, params (count), batch size and architecture, source."""
    return read_table(data_dir() / "reference_models.csv", ("name", "params", "source"))


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
    frame = read_table(path, required)
    frame["release_date"] = _dates(frame, path)
    frame["params"] = frame["params_b"].astype(float) * 1e9
    frame["score"] = frame["score_pct"].astype(float) / 100.0
    if benchmark is not None:
        frame = frame[frame["benchmark"].str.lower() == benchmark.lower()]
        if frame.empty:
            raise InputFileError(path, None, f"no rows for benchmark {benchmark!r}")
    return frame.reset_index(drop=True)


def load_density_table(path: Path | str) -> pd.DataFrame:
    """A user table with ``model``, ``release_date`` and ``density`` columns."""
    path = Path(path)
    frame = read_table(path, ("model", "release_date", "density"))
    frame["release_date"] = _dates(frame, path)
    return frame
