"""Saved science results: a JSON header with the result's kind and format version, tables as CSV.

A result is saved either into a folder or as a named JSON file::

    cmr-out/                      ipw cmr fit --out cmr-out/
      result.json                 {"kind": "cmr.analysis", "version": 1, "ipw_version": "...",
      cmr_law.csv ...              "tables": {"cmr_law": "cmr_law.csv", ...}, "config": {...}}

    trend.json + trend.csv        ipw density trend --out trend.csv (one table: <stem>.csv;
                                  several: <stem>.<table>.csv)

The header's ``kind`` names what the result is (``capacity``, ``cmr.analysis``, ``density.trend``,
...) and ``version`` the format of that kind; its other keys are the kind's own data. Readers
dispatch on the kind, never on column names, and a file of another kind, of an unknown kind, or of
a newer version than this ipw reads is a :class:`ResultFileError` that names the file. Tables are
plain CSV so that a spreadsheet or ``pandas.read_csv`` opens them without ipw.

Each science package defines its result types as frozen dataclasses deriving from :class:`Result`
(``ipw.science.capacity.results``, ``ipw.science.cmr.results``, ``ipw.science.density.results``); this module knows none of
them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from ipw.core.errors import InputFileError
from ipw.core.jsonl import read_json

RESULT_FILE = "result.json"
RESERVED = ("kind", "version", "ipw_version", "tables")


class ResultFileError(InputFileError):
    """A result folder or file that cannot be read: missing, malformed, another or a newer kind."""

    def __init__(self, path: object, line: int | None, message: str) -> None:
        self.message = message
        super().__init__(path, line, message)


@dataclass(frozen=True)
class Header:
    """What ``result.json`` says about itself: kind, format version, the ipw that wrote it."""

    path: Path  # the result.json file
    kind: str
    version: int
    ipw_version: str
    data: dict
    tables: dict  # table name -> CSV file name (relative to the folder)

    @property
    def folder(self) -> Path:
        return self.path.parent


def _ipw_version() -> str:
    try:
        return version("ipw")
    except PackageNotFoundError:
        return "unknown"


def _has_kind(file: Path) -> bool:
    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(payload, dict) and isinstance(payload.get("kind"), str)


def result_file(path: Path | str) -> Path:
    """The header file of a result: ``path`` itself for a file; for a folder its ``result.json``,
    else the one JSON file in it that has a ``kind`` (``capacity.json`` of ``ipw capacity --out``)."""
    path = Path(path)
    if not path.is_dir() or (path / RESULT_FILE).is_file():
        return path / RESULT_FILE if path.is_dir() else path
    found = [f for f in sorted(path.glob("*.json")) if _has_kind(f)]
    return found[0] if len(found) == 1 else path / RESULT_FILE


def table_files(header_file: Path, names, stem_alone: bool = True) -> dict[str, str]:
    """CSV file names for the tables of a result saved at ``header_file``: ``<name>.csv`` in a
    folder of its own (header ``result.json``), else ``<stem>.csv`` for one table (when
    ``stem_alone``) and ``<stem>.<name>.csv`` otherwise."""
    names = list(names)
    if header_file.name == RESULT_FILE:
        return {n: f"{n}.csv" for n in names}
    if len(names) == 1 and stem_alone:
        return {names[0]: f"{header_file.stem}.csv"}
    return {n: f"{header_file.stem}.{n}.csv" for n in names}


def _jsonable(value: Any) -> Any:
    """Plain JSON: NaN and infinities become null (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def read_header(path: Path | str) -> Header:
    """Read and check ``result.json`` (a folder or the file); :class:`ResultFileError` if it is
    missing, not JSON, or lacks a kind and an integer version."""
    file = result_file(path)
    if not file.is_file():
        raise ResultFileError(file, None, "no such result file (expected what an ipw command's --out "
                                          "wrote: a folder or a .json file)")
    payload = read_json(file, ResultFileError)
    if not isinstance(payload, dict) or not isinstance(payload.get("kind"), str):
        raise ResultFileError(file, None, "not an ipw result: no 'kind' field")
    ver = payload.get("version")
    if not isinstance(ver, int) or isinstance(ver, bool) or ver < 1:
        raise ResultFileError(file, None, f"'version' must be a positive integer, got {ver!r}")
    tables = payload.get("tables", {})
    if not isinstance(tables, dict) or not all(isinstance(v, str) and "/" not in v and "\\" not in v
                                               for v in tables.values()):
        raise ResultFileError(file, None, "'tables' must map table names to CSV file names beside the file")
    data = {k: v for k, v in payload.items() if k not in RESERVED}
    return Header(file, payload["kind"], ver, str(payload.get("ipw_version", "unknown")), data, tables)


def write_result(path: Path | str, kind: str, version_: int, data: Mapping,
                 tables: Mapping[str, pd.DataFrame], header_name: str = RESULT_FILE,
                 stem_alone: bool = True) -> Path:
    """Write a result: into folder ``path`` (header ``header_name``), or, when ``path`` ends in
    ``.json``, as that file with its tables beside it. Returns the header file, written last (so
    a result with a header is complete)."""
    path = Path(path)
    clash = [k for k in data if k in RESERVED]
    if clash:
        raise ValueError(f"result data may not use the reserved key(s) {clash}")
    header_file = path if path.suffix.lower() == ".json" else path / header_name
    header_file.parent.mkdir(parents=True, exist_ok=True)
    names = table_files(header_file, tables, stem_alone)
    for name, frame in tables.items():
        frame.to_csv(header_file.parent / names[name], index=False)
    payload = {"kind": kind, "version": version_, "ipw_version": _ipw_version(), "tables": names,
               **_jsonable(dict(data))}
    tmp = header_file.with_name(header_file.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(header_file)
    return header_file


def read_table(header: Header, name: str, parse_dates: tuple[str, ...] = ()) -> pd.DataFrame:
    """One side table of a result, by its name in ``result.json``."""
    if name not in header.tables:
        raise ResultFileError(header.path, None, f"the result has no table {name!r} "
                                                 f"(tables: {', '.join(header.tables) or 'none'})")
    file = header.folder / str(header.tables[name])
    try:
        frame = pd.read_csv(file, encoding="utf-8")
    except FileNotFoundError:
        raise ResultFileError(file, None, f"table {name!r} named in {header.path.name} is missing") from None
    except UnicodeDecodeError as e:
        raise ResultFileError(file, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, ValueError) as e:
        raise ResultFileError(file, None, f"not a readable CSV table ({e})") from None
    for col in parse_dates:
        if col in frame:
            frame[col] = pd.to_datetime(frame[col]).dt.date
    return frame


class Result:
    """Base of the science result types: a ``KIND``, a format ``VERSION``, ``save`` and ``load``.

    Subclasses are frozen dataclasses; they implement :meth:`to_parts` (JSON data and tables) and
    :meth:`from_parts` (the reverse). ``load`` checks the kind and refuses newer versions.
    """

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    HEADER: ClassVar[str] = RESULT_FILE  # header file name when saved into a folder
    STEM_ALONE: ClassVar[bool] = True  # saved as x.json, a single table is x.csv (else x.<table>.csv)

    def to_parts(self) -> tuple[dict, dict[str, pd.DataFrame]]:
        raise NotImplementedError

    @classmethod
    def from_parts(cls, header: Header):
        raise NotImplementedError

    def save(self, path: Path | str) -> Path:
        """Write the result into folder ``path``, or as ``path`` when it ends in ``.json`` (tables
        beside it); returns the header file."""
        data, tables = self.to_parts()
        return write_result(path, self.KIND, self.VERSION, data, tables, self.HEADER, self.STEM_ALONE)

    @classmethod
    def load(cls, path: Path | str):
        """Read a result saved by :meth:`save` (its folder or its JSON file)."""
        header = read_header(path)
        check_kind(header, cls.KIND, cls.VERSION)
        try:
            return cls.from_parts(header)
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ResultFileError):
                raise
            raise ResultFileError(header.path, None, f"malformed {cls.KIND} result: {e!r}") from None


def check_kind(header: Header, kind: str, newest: int) -> None:
    """:class:`ResultFileError` unless ``header`` is of ``kind`` in a version up to ``newest``."""
    if header.kind != kind:
        raise ResultFileError(header.path, None, f"a {header.kind!r} result, not a {kind!r} result")
    if header.version > newest:
        raise ResultFileError(header.path, None,
                              f"{kind!r} result format version {header.version} was written by a newer "
                              f"ipw ({header.ipw_version}); this ipw reads up to version {newest}. "
                              "Upgrade ipw to read it.")
