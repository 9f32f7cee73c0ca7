"""What a Parquet segment promises about itself, and the cheap checks that it keeps its word.

A segment is a cache of journal bytes ``[start, end)`` (:mod:`ipw.store.columnar`). Loading must
not re-read the journal to trust it (a million records: minutes), so a segment carries what can be
checked in about a millisecond each, and :func:`check_table` and :func:`check_journal` check it:

- its Parquet pages carry CRC-32 checksums (``write_page_checksum``, Parquet's own page CRC,
  pyarrow 15 and later), verified as it is read: a flipped byte in a data page is an error, not a
  changed number;
- its footer's row count equals the ``<rows>`` of its name;
- its key-value metadata ``ipw.segment`` (JSON) holds its start, end, rows, column names, first
  and last id and a CRC-32 of its id column (:func:`ids_digest`), all compared with what was read;
- against the journal: a newline ends the byte before ``start`` and the byte before ``end``, and the
  journal's first record at ``start`` and last before ``end`` have the segment's first and last id.

A segment written by an earlier ipw has no ``ipw.segment``: the other checks still hold. What the
cheap checks cannot see (a journal line in the middle changed after sealing), ``ipw store check``
sees: it compares every segment with the journal, record by record (:mod:`ipw.store.check`).
CRC-32 (``zlib.crc32``) is enough: it guards against damage, not against a forger.
"""

from __future__ import annotations

import functools
import inspect
import json
import zlib
from pathlib import Path

import pyarrow as pa

META = b"ipw.segment"
LINE_BLOCK = 1 << 16
"""Bytes read at a time when looking for one journal line."""


@functools.lru_cache(maxsize=None)
def checksums(side: str) -> dict:
    """The option of ``pq.write_table`` (``side="write"``) or ``pq.read_table`` (``"read"``) that
    writes or verifies page checksums, where this pyarrow has it (15 and later), else ``{}``."""
    import pyarrow.parquet as pq

    if side == "write":
        fn, option = pq.write_table, "write_page_checksum"
    else:
        fn, option = pq.read_table, "page_checksum_verification"
    return {option: True} if option in inspect.signature(fn).parameters else {}


class SegmentDamaged(Exception):
    """A segment that cannot be trusted; ``reason`` says why, in a few words on one line."""

    def __init__(self, reason: str) -> None:
        self.reason = one_line(reason)
        super().__init__(self.reason)


def one_line(text: object, limit: int = 160) -> str:
    """``text`` with its whitespace runs as single spaces, cut to ``limit`` characters."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def ids_digest(column) -> int:
    """CRC-32 of an id column: its UTF-8 bytes and the length of each id (so ``["ab", "c"]`` and
    ``["a", "bc"]`` differ). Read from the Arrow buffers: a million ids in milliseconds, where
    joining them in Python takes a tenth of a second."""
    import numpy as np

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(pa.string())
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    if arr.null_count:
        raise SegmentDamaged(f"{arr.null_count} records have no id")
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset: arr.offset + len(arr) + 1]
    if len(offsets) < 2:
        return 0
    data = arr.buffers()[2]
    lengths = np.diff(offsets).astype("<i4")
    crc = zlib.crc32(lengths.tobytes())
    return zlib.crc32(memoryview(data)[int(offsets[0]): int(offsets[-1])], crc) if data is not None else crc


def facts(table: pa.Table, start: int, end: int) -> dict:
    """The ``ipw.segment`` metadata of a segment holding ``table`` as journal bytes [start, end)."""
    ids = table["id"]
    return {"start": start, "end": end, "rows": table.num_rows, "columns": table.column_names,
            "first_id": ids[0].as_py() if table.num_rows else None,
            "last_id": ids[-1].as_py() if table.num_rows else None, "ids_crc32": ids_digest(ids)}


def check_table(seg, table: pa.Table, skipped: tuple[str, ...] = ()) -> None:
    """:class:`SegmentDamaged` unless ``table`` (read from ``seg``, before any conversion, without
    the columns ``skipped``) has the rows its name says and matches its own ``ipw.segment`` metadata."""
    if table.num_rows != seg.rows:
        raise SegmentDamaged(f"it holds {table.num_rows} records, its name says {seg.rows}")
    if "id" not in table.column_names:
        raise SegmentDamaged("it has no id column")
    meta = (table.schema.metadata or {}).get(META)
    if meta is None:
        ids_digest(table["id"])  # ids must be there, at least
        return
    try:
        f = json.loads(meta)
        want = (f["start"], f["end"], f["rows"], list(f["columns"]), f["first_id"], f["last_id"], int(f["ids_crc32"]))
    except (ValueError, KeyError, TypeError) as e:
        raise SegmentDamaged(f"its metadata is unreadable ({type(e).__name__})") from e
    if want[:3] != (seg.start, seg.end, seg.rows):
        raise SegmentDamaged(f"its metadata says bytes {want[0]}-{want[1]} and {want[2]} records, its name otherwise")
    names = table.column_names
    if [c for c in want[3] if c in names or c not in skipped] != names:
        raise SegmentDamaged("its columns differ from those it was written with")
    if table.num_rows and (table["id"][0].as_py(), table["id"][-1].as_py()) != want[4:6]:
        raise SegmentDamaged(f"its ids run from {table['id'][0].as_py()!r} to {table['id'][-1].as_py()!r}, "
                             f"it was written with {want[4]!r} to {want[5]!r}")
    if ids_digest(table["id"]) != want[6]:
        raise SegmentDamaged("its ids differ from those it was written with (CRC-32)")


def check_journal(seg, table: pa.Table, journal: Path, size: int) -> None:
    """:class:`SegmentDamaged` unless the journal's records at ``seg.start`` and before ``seg.end``
    start and end on a newline and have the segment's first and last id. A journal line that is
    not JSON says nothing about the segment (``ipw store check`` reports it): that id is not
    compared. A journal shorter than ``seg.end`` is not checked here (the folder was altered; the
    caller says so)."""
    if size < seg.end or not table.num_rows:
        return
    with open(journal, "rb") as f:
        if seg.start > 0 and _byte(f, seg.start - 1) != b"\n":
            raise SegmentDamaged(f"no journal record starts at byte {seg.start}")
        if _byte(f, seg.end - 1) != b"\n":
            raise SegmentDamaged(f"no journal record ends at byte {seg.end}")
        first, last = _first_line(f, seg.start, seg.end), _last_line(f, seg.start, seg.end)
    for which, line, got in (("first", first, table["id"][0].as_py()), ("last", last, table["id"][-1].as_py())):
        want = _id_of(line)
        if want is not None and want != got:
            raise SegmentDamaged(f"its {which} record is {got!r}, the journal's is {want!r}")


def _byte(f, offset: int) -> bytes:
    f.seek(offset)
    return f.read(1)


def _first_line(f, start: int, end: int) -> bytes:
    """The first line with text in journal bytes [start, end)."""
    pos, buf = start, b""
    f.seek(start)
    while pos < end:
        block = f.read(min(LINE_BLOCK, end - pos))
        if not block:
            break
        pos += len(block)
        buf += block
        while (nl := buf.find(b"\n")) >= 0:
            line, buf = buf[:nl], buf[nl + 1:]
            if line.strip():
                return line
    return buf


def _last_line(f, start: int, end: int) -> bytes:
    """The last line with text in journal bytes [start, end) (``end`` just after its newline)."""
    pos, buf = end - 1, b""  # the newline at end - 1 is left out
    while pos > start:
        n = min(LINE_BLOCK, pos - start)
        f.seek(pos - n)
        buf = f.read(n) + buf
        pos -= n
        lines = buf.split(b"\n")
        for line in reversed(lines[1:] if pos > start else lines):
            if line.strip():
                return line
        buf = lines[0] if pos > start else b""
    return buf


def _id_of(line: bytes) -> str | None:
    try:
        d = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return str(d["id"]) if isinstance(d, dict) and d.get("id") is not None else None
