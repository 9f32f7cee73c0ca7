"""Parquet segments of the query journal: the columnar side of a run folder.

``queries.jsonl`` stays the durable journal. Every :data:`SEGMENT_RECORDS` records, the records
appended since the last segment are copied into one Parquet file under ``segments/``, named after
the journal bytes it holds: ``segments/<start>-<end>-<rows>.parquet`` (start and end are byte
offsets of ``queries.jsonl`` in hex, end exclusive and always just after a newline). Loading reads
the segments that chain from byte 0, then parses only the journal after the last one (the tail).

- A segment is written to ``*.tmp``, fsync'd and renamed: it exists whole or not at all. A kill
  between the journal append and the segment loses nothing (the records are in the tail).
- A segment carries Parquet page checksums and ``ipw.segment`` metadata (its bytes, rows, columns,
  first and last id, a CRC-32 of its ids), checked as it is read (:mod:`ipw.store.verify`); one that
  fails is set aside and rebuilt from the journal (:mod:`ipw.store.damage`).
- Compaction: when the last :data:`FANOUT` segments are of one size class (rows within one power of
  FANOUT above SEGMENT_RECORDS), they are merged into one; the merged file is renamed in before the
  parts are deleted, so a reader sees either. Each record is rewritten about log10(n / 1e4) times.
- Columns are the fields of :class:`ipw.core.records.QueryRecord`, typed from its annotations: text,
  float64, int64 and bool columns as such; ``flags`` as a JSON array; ``domains`` and
  ``engine_extra`` (nested dicts) as JSON text; ``reference`` and ``extracted`` as text (a value
  that is not a string is kept as its JSON text).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

import pyarrow as pa

from ipw.core.errors import InputFileError, IpwError
from ipw.core.records import SCHEMA_VERSION, QueryRecord
from ipw.store.verify import META, checksums, facts

SEGMENTS = "segments"
SEGMENT_RECORDS = 10_000
"""Records per segment as a run goes (one Parquet file, written between two queries)."""
FANOUT = 10
"""Segments of one size class merged at once."""
JSON_COLUMNS = ("domains", "engine_extra")
"""Nested dicts, kept as JSON text in frames: decode with :func:`decode_json` when needed."""
FLAGS = "flags"
FEW_VALUES = ["domain", "difficulty", "grader", "grade_method", "finish_reason", "shard", "reference", "flags"]
"""Text columns with few distinct values, read through their Parquet dictionary (faster)."""

_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})-(\d+)\.parquet$")


def _arrow_type(annotation: str) -> tuple[str, pa.DataType]:
    """(kind, Arrow type) of a QueryRecord field from its annotation."""
    a = str(annotation)
    if "tuple" in a:
        return "flags", pa.string()
    if "dict" in a:
        return "json", pa.string()
    if a.startswith("Any"):
        return "text", pa.string()
    if a.startswith("str"):
        return "str", pa.string()
    if a.startswith("bool"):
        return "bool", pa.bool_()
    if a.startswith("int"):
        return "int", pa.int64()
    if a.startswith("float"):
        return "float", pa.float64()
    return "text", pa.string()


KINDS = {f.name: _arrow_type(f.type) for f in fields(QueryRecord)}
SCHEMA = pa.schema([(name, t) for name, (_, t) in KINDS.items()])


def _text(v):
    return v if v is None or isinstance(v, str) else json.dumps(v, default=str, allow_nan=False)


def _column(kind: str, values) -> pa.Array:
    if kind in ("str", "text"):
        return pa.array([_text(v) for v in values], pa.string())
    if kind == "json":
        return pa.array([None if v is None else json.dumps(v, default=str, separators=_SEP) for v in values], pa.string())
    if kind == "flags":
        return pa.array([json.dumps(list(v or ())) for v in values], pa.string())
    return pa.array(values, _TYPES[kind])


_SEP = (",", ":")
_TYPES = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64()}


def records_table(dicts: list[dict]) -> pa.Table:
    """Normalised record dicts (``QueryRecord.to_dict()``) as one Arrow table of :data:`SCHEMA`."""
    return columns_table({name: [d.get(name) for d in dicts] for name in KINDS})


def columns_table(columns: dict) -> pa.Table:
    """Columns (name -> sequence, numpy arrays welcome) as a table of :data:`SCHEMA`; a missing
    column is null, except ``flags`` (empty)."""
    n = len(next(iter(columns.values()))) if columns else 0
    arrays = []
    for name, (kind, t) in KINDS.items():
        values = columns.get(name)
        if values is None:
            arrays.append(_column(kind, [None] * n) if kind == "flags" else pa.nulls(n, t))
        elif kind in _TYPES and not isinstance(values, list):
            arrays.append(pa.array(values, t))
        else:
            arrays.append(_column(kind, values))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def conform(table: pa.Table) -> pa.Table:
    """A table of any earlier schema as one of :data:`SCHEMA` (missing columns null, extra kept last)."""
    if table.schema.equals(SCHEMA, check_metadata=False):
        return table
    n = table.num_rows
    arrays = []
    for name, (kind, t) in KINDS.items():
        if name in table.column_names:
            column = table[name]
            arrays.append(column if column.type == t else column.cast(t))
        elif kind == "flags":
            arrays.append(pa.chunked_array([pa.array(["[]"] * n, pa.string())]))
        else:
            arrays.append(pa.chunked_array([pa.nulls(n, t)]))
    names = list(KINDS)
    for extra in table.column_names:
        if extra not in KINDS:
            arrays.append(table[extra])
            names.append(extra)
    return pa.Table.from_arrays(arrays, names=names)


def to_frame(table: pa.Table):
    """The query frame of a table: pandas columns as Arrow converts them (text as pandas ``str``,
    bool with nulls as object, int with nulls as float64), ``flags`` as tuples, JSON columns as
    text (see :func:`decode_json`)."""
    import numpy as np
    import pandas as pd

    if FLAGS in table.column_names:
        enc = table[FLAGS].combine_chunks().dictionary_encode()
        decoded = np.empty(len(enc.dictionary), dtype=object)
        decoded[:] = [tuple(json.loads(s)) if s is not None else () for s in enc.dictionary.to_pylist()]
        idx = enc.indices.to_numpy(zero_copy_only=False)
        flags = decoded[idx] if len(idx) else np.empty(0, dtype=object)
        table = table.drop_columns([FLAGS])
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        frame.insert(list(KINDS).index(FLAGS) if FLAGS in KINDS else len(frame.columns), FLAGS, pd.Series(flags, index=frame.index, dtype=object))
        return frame
    return table.to_pandas(split_blocks=True, self_destruct=True)


def read_frame(path: Path):
    """A Parquet file (the power timeline) as pandas, text columns read through their dictionary
    (a few distinct domains over millions of samples: about half the time)."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    table = _undictionary(pq.read_table(path, pre_buffer=False, read_dictionary=text), text)
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _undictionary(table: pa.Table, names, to: pa.DataType = pa.large_string()) -> pa.Table:
    for name in names:
        if name in table.column_names and pa.types.is_dictionary(table.schema.field(name).type):
            i = table.column_names.index(name)
            table = table.set_column(i, name, table[name].cast(to))
    return table


def decode_json(series):
    """A JSON-text column of a query frame (``domains``, ``engine_extra``) as Python objects."""
    return series.map(lambda s: None if s is None or s != s else json.loads(s))


def pylist(table: pa.Table) -> list[dict]:
    """A table's rows as record dicts with nested values decoded (for :meth:`QueryRecord.from_dict`)."""
    rows = table.to_pylist()
    for r in rows:
        for name in JSON_COLUMNS:
            if r.get(name) is not None:
                r[name] = json.loads(r[name])
        if r.get(FLAGS) is not None:
            r[FLAGS] = json.loads(r[FLAGS])
    return rows


# -- segment files ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    path: Path
    start: int
    end: int
    rows: int

    @property
    def level(self) -> int:
        """Size class: 0 up to FANOUT x SEGMENT_RECORDS rows, 1 up to FANOUT^2 x, ..."""
        k, cap = 0, SEGMENT_RECORDS * FANOUT
        while self.rows >= cap:
            k, cap = k + 1, cap * FANOUT
        return k


def segment_name(start: int, end: int, rows: int) -> str:
    return f"{start:016x}-{end:016x}-{rows}.parquet"


def list_segments(run: Path) -> list[Segment]:
    d = Path(run) / SEGMENTS
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m:
            out.append(Segment(p, int(m[1], 16), int(m[2], 16), int(m[3])))
    return out


def chain(segments: list[Segment]) -> list[Segment]:
    """The segments that cover the journal from byte 0 without a gap, widest first at each start."""
    by_start: dict[int, Segment] = {}
    for s in segments:
        if s.end > s.start and (s.start not in by_start or s.end > by_start[s.start].end):
            by_start[s.start] = s
    out, pos = [], 0
    while pos in by_start:
        out.append(by_start[pos])
        pos = by_start[pos].end
    return out


def write_segment(run: Path, table: pa.Table, start: int, end: int) -> Segment:
    """Write ``table`` as the segment of journal bytes [start, end): tmp, fsync, rename."""
    import pyarrow.parquet as pq

    d = Path(run) / SEGMENTS
    d.mkdir(exist_ok=True)
    path = d / segment_name(start, end, table.num_rows)
    tmp = path.with_name(path.name + ".tmp")
    table = table.replace_schema_metadata({META: json.dumps(facts(table, start, end))})
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=1 << 16, **checksums("write"))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(d)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        from ipw.store.files import StoreWriteError

        raise StoreWriteError(path, e) from e
    return Segment(path, start, end, table.num_rows)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_segments(segs: list[Segment]) -> list[pa.Table]:
    """The segments' tables as :data:`SCHEMA`, unchecked (:mod:`ipw.store.damage` checks them)."""
    return [conform(read_raw(s)) for s in segs]


def read_raw(seg: Segment, skip: tuple[str, ...] = ()) -> pa.Table:
    """A segment's table as stored (before :func:`conform`), its page checksums verified; the
    columns ``skip`` are not read (their pages are neither decompressed nor decoded), and the
    table's metadata still names every column the file holds."""
    import pyarrow.parquet as pq

    columns = [c for c in pq.read_schema(seg.path).names if c not in skip] if skip else None
    table = pq.read_table(seg.path, columns=columns, pre_buffer=False, read_dictionary=FEW_VALUES,
                          **checksums("read"))
    return _undictionary(table, FEW_VALUES, pa.string())  # the type of SCHEMA: conform has nothing to cast


def compact(run: Path, segs: list[Segment], everything: bool = False, read=read_segments) -> list[Segment]:
    """Merge the trailing FANOUT segments of one size class (all of them with ``everything``),
    repeatedly, reading them with ``read``; delete segments no longer in the chain. Returns the
    new chain."""
    segs = chain(segs)
    while True:
        if everything:
            tail = segs if len(segs) > 1 else []
        else:
            tail = segs[-FANOUT:] if len(segs) >= FANOUT and len({s.level for s in segs[-FANOUT:]}) == 1 else []
        if not tail:
            break
        merged = write_segment(run, pa.concat_tables(read(tail)), tail[0].start, tail[-1].end)
        segs = segs[: len(segs) - len(tail)] + [merged]
        if everything:
            break
    keep = {s.path for s in segs}
    for s in list_segments(run):
        if s.path not in keep:
            s.path.unlink(missing_ok=True)
    for p in (Path(run) / SEGMENTS).glob("*.tmp"):
        p.unlink(missing_ok=True)
    return segs


# -- the journal tail ----------------------------------------------------------------------------
def read_tail(journal: Path, start: int, stop: int | None = None) -> tuple[list[dict], int, list[int]]:
    """Complete records of the journal from byte ``start`` (to ``stop``; a record cut off by a
    kill is left out), the byte just after the last one, and the byte where each record starts."""
    if not journal.is_file():
        return [], start, []
    with open(journal, "rb") as f:
        f.seek(start)
        data = f.read() if stop is None else f.read(max(0, stop - start))
    end = data.rfind(b"\n") + 1
    out, offsets = [], []
    pos = 0
    for raw in data[:end].split(b"\n")[:-1]:
        if raw.strip():
            try:
                d = json.loads(raw)
                if not isinstance(d, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError, RecursionError) as e:
                msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e) or type(e).__name__
                raise InputFileError(journal, line_of(journal, start + pos), f"invalid JSON record: {msg}") from e
            out.append(d)
            offsets.append(start + pos)
        pos += len(raw) + 1
    return out, start + end, offsets


def line_of(journal: Path, offset: int) -> int:
    """The 1-based line of the journal that starts at byte ``offset``."""
    n = 1
    with open(journal, "rb") as f:
        left = offset
        while left > 0 and (block := f.read(min(left, 1 << 23))):
            n += block.count(b"\n")
            left -= len(block)
    return n


def tail_table(journal: Path, records: list[dict], offsets: list[int]) -> pa.Table:
    """Journal records as a table of :data:`SCHEMA`; a record that does not fit the record contract
    is an :class:`InputFileError` naming the journal and its line."""
    try:
        return records_table(normalise(records))
    except (IpwError, TypeError, ValueError, pa.ArrowException, RecursionError):
        pass
    for d, off in zip(records, offsets):  # find the first record at fault, for the message
        try:
            records_table(normalise([d]))
        except (IpwError, TypeError, ValueError, pa.ArrowException, RecursionError) as e:
            raise InputFileError(journal, line_of(journal, off), f"record does not fit the record contract: {e}") from e
    raise IpwError(f"{journal}: records do not fit the record contract")


def count_tail(journal: Path, start: int) -> int:
    """Complete lines of the journal after byte ``start`` (read in 8 MiB blocks)."""
    n = 0
    with open(journal, "rb") as f:
        f.seek(start)
        while block := f.read(1 << 23):
            n += block.count(b"\n")
    return n


_NAMES = frozenset(KINDS)


def _plain(d: dict) -> bool:
    """The checks :func:`normalise` makes, on a dict that needs no conversion."""
    flags = d["flags"]
    return (isinstance(d["id"], str) and isinstance(d["domain"], (str, type(None))) and d["correct"] in (True, False, None)
            and isinstance(flags, list) and all(isinstance(f, str) for f in flags)
            and (d["energy_j"] is not None or d["correct"] is None or d["error"] is not None))  # else: check_contract


def normalise(dicts: list[dict]) -> list[dict]:
    """Journal records of any schema as current ``QueryRecord.to_dict()`` dicts."""
    out = []
    for d in dicts:
        if d.keys() == _NAMES and d.get("schema") == SCHEMA_VERSION and _plain(d):
            out.append(d)  # a line written by this ipw is QueryRecord.to_dict() already
            continue
        r = QueryRecord.from_dict(d)
        if not isinstance(r.id, str) or not isinstance(r.domain, (str, type(None))):
            raise IpwError("'id' and 'domain' must be text")
        if r.correct not in (True, False, None) or not all(isinstance(f, str) for f in r.flags):
            raise IpwError("'correct' must be true, false or null and 'flags' a list of text")
        out.append(r.to_dict())
    return out
