"""A damaged segment never costs a run: it is set aside and its records come from the journal.

Segments are a cache of ``queries.jsonl``, the journal, which is the truth (:mod:`ipw.store`).
Wherever segments are read (``load``, report, compare, ``--resume``, a writing run merging them),
each is checked first (:mod:`ipw.store.verify`: page checksums, row count, its own metadata, its
first and last id against the journal). One that fails (bytes flipped, cut short, empty, rows or
ids that disagree) is

- set aside: renamed ``<name>.damaged`` (``.damaged-2``, ... if that is taken), never deleted, and
  named with the reason in a warning of the ``ipw.store`` logger (one line on the command line);
- rebuilt: the journal bytes it held are parsed again and written as a new segment, so the next
  load is fast again. Every record is then there exactly once, as the journal has it.

Only a process holding the run's lock changes the folder: the run's writer, or a reader that takes
the lock for the moment (no run writes this folder). A reader that cannot (another process writes
the run, or the folder is read-only) reads those records from the journal, leaves the files alone
and says so. A segment missing from the middle of the chain (later segments exist, none starts
where the chain stops) is rebuilt from the journal bytes between. A segment whose records are in
no journal (a folder of segments only) cannot be rebuilt: an error names it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pyarrow as pa

from ipw.core.errors import InputFileError, IpwError
from ipw.store import columnar
from ipw.store.columnar import SEGMENTS, Segment
from ipw.store.files import StoreWriteError
from ipw.store.verify import SegmentDamaged, check_journal, check_table, one_line

log = logging.getLogger("ipw.store")
_OPENING = re.compile(r"^Could not open Parquet input source '[^']*': ")  # pyarrow names the file; the warning does
ASIDE = ".damaged"
BLOCK = 1 << 26
"""Journal bytes parsed at a time when rebuilding (64 MiB: a few ten thousand records)."""


def read_checked(seg: Segment, journal: Path, size: int, skip: tuple[str, ...] = ()) -> pa.Table:
    """``seg``'s table as :data:`~ipw.store.columnar.SCHEMA` (the columns ``skip`` not read: null),
    or :class:`SegmentDamaged`. ``FileNotFoundError`` passes through: a writer merged the segment
    away meanwhile."""
    try:
        raw = columnar.read_raw(seg, skip)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure to read a cache file is damage (OSError, ArrowInvalid,
        # MemoryError on a mangled length: pyarrow raises all of these on the fault injection's files)
        raise SegmentDamaged(_OPENING.sub("", str(e)) or type(e).__name__) from e
    check_table(seg, raw, skip)
    try:
        table = columnar.conform(raw)
    except Exception as e:  # noqa: BLE001 - a column whose type was mangled does not cast
        raise SegmentDamaged(f"its columns do not convert: {e}") from e
    check_journal(seg, table, journal, size)
    return table


def read(run: Path, journal: Path, segs: list[Segment], claim, skip: tuple[str, ...] = ()) -> list[pa.Table]:
    """The tables of ``segs`` (a chain), each checked; a damaged one is set aside and rebuilt
    from the journal when ``claim()`` says this process may change the folder, else read from
    the journal in memory. Warns once per damaged segment."""
    size = journal.stat().st_size if journal.is_file() else 0
    out = []
    for seg in segs:
        try:
            out.append(read_checked(seg, journal, size, skip))
        except SegmentDamaged as d:
            out.append(recover(run, journal, seg, d.reason, size, claim))
    return out


def recover(run: Path, journal: Path, seg: Segment, reason: str, size: int, claim) -> pa.Table:
    """The records of damaged ``seg`` from the journal; the file set aside and rebuilt if ``claim()``."""
    if size < seg.end:
        raise IpwError(f"{seg.path} is damaged ({reason}) and {journal} does not hold its records (it has "
                       f"{size} bytes, the segment held bytes {seg.start}-{seg.end}): they cannot be rebuilt. "
                       "Restore the file from a copy of the run.")
    if not aligned(journal, seg.start, seg.end):
        raise IpwError(f"{seg.path} does not match {journal} (no record starts at byte {seg.start} or ends at "
                       f"{seg.end}): the folder was altered. Remove {run / SEGMENTS} to load the journal alone.")
    try:
        table = journal_table(journal, seg.start, seg.end)
    except InputFileError as e:
        raise IpwError(f"{seg.path} is damaged ({reason}) and its records cannot be rebuilt: {e}") from e
    n = table.num_rows
    if not claim():
        log.warning("%s is damaged (%s): its %d records were read from %s instead (another process writes the run, "
                    "or the folder is read-only; `ipw store check %s --repair` sets it aside)",
                    seg.path, reason, n, journal.name, run)
        return table
    try:
        aside = set_aside(seg)
    except FileNotFoundError:
        raise  # merged away meanwhile: the caller reads again
    except OSError as e:
        log.warning("%s is damaged (%s): its %d records were read from %s instead (it could not be set aside: %s)",
                    seg.path, reason, n, journal.name, one_line(e, 120))
        return table
    try:
        columnar.write_segment(run, table, seg.start, seg.end)
    except StoreWriteError as e:
        log.warning("%s is damaged (%s): set aside as %s; its %d records were read from %s (%s)",
                    seg.path, reason, aside.name, n, journal.name, one_line(e, 200))
        return table
    log.warning("%s is damaged (%s): set aside as %s; its %d records were rebuilt from %s",
                seg.path, reason, aside.name, n, journal.name)
    return table


def set_aside(seg: Segment) -> Path:
    """Rename ``seg`` to ``<name>.damaged`` (``.damaged-2``, ... if taken); returns the new path."""
    target, k = seg.path.with_name(seg.path.name + ASIDE), 2
    while target.exists():
        target, k = seg.path.with_name(f"{seg.path.name}{ASIDE}-{k}"), k + 1
    os.replace(seg.path, target)
    columnar._fsync_dir(seg.path.parent)
    return target


def aligned(journal: Path, start: int, end: int) -> bool:
    """Whether journal bytes [start, end) are whole lines (a newline just before each end)."""
    with open(journal, "rb") as f:
        for offset in (start, end):
            if offset > 0:
                f.seek(offset - 1)
                if f.read(1) != b"\n":
                    return False
    return True


def journal_table(journal: Path, start: int, end: int) -> pa.Table:
    """The records of journal bytes [start, end) (whole lines) as one table, parsed in blocks of
    :data:`BLOCK` bytes so that a large range never holds all its dicts at once."""
    tables, pos, block = [], start, BLOCK
    while pos < end:
        records, nxt, offsets = columnar.read_tail(journal, pos, min(pos + block, end))
        if nxt == pos:  # one line longer than a block
            block *= 2
            continue
        if records:
            tables.append(columnar.tail_table(journal, records, offsets))
        pos = nxt
    if not tables:
        return columnar.SCHEMA.empty_table()
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def gaps(run: Path, journal: Path) -> list[tuple[int, int]]:
    """Journal byte ranges [a, b) with no segment although later segments exist (a segment that
    went missing or was set aside): the chain stops at ``a``, the next segment starts at ``b``."""
    found, segs = [], columnar.list_segments(run)
    size = journal.stat().st_size if journal.is_file() else 0
    while True:
        linked = columnar.chain(segs)
        end = linked[-1].end if linked else 0
        later = [s.start for s in segs if s.start > end and s.end <= size]
        if not later or not aligned(journal, end, min(later)):
            return found
        found.append((end, min(later)))
        segs = segs + [Segment(Path(), end, min(later), 0)]  # as if filled, to find the next gap


def chain(run: Path, journal: Path, claim) -> list[Segment]:
    """The chain of segments from byte 0, with the missing ones rebuilt from the journal first
    when ``claim()`` says this process may change the folder (else said in a warning)."""
    holes = gaps(run, journal)
    if holes and claim():
        for a, b in holes:
            try:
                seg = columnar.write_segment(run, journal_table(journal, a, b), a, b)
            except InputFileError as e:
                raise IpwError(f"{run / SEGMENTS} has no segment for journal bytes {a}-{b}, and they cannot be "
                               f"rebuilt: {e}") from e
            except StoreWriteError as e:  # records after the gap are read from the journal instead
                log.warning("%s has no segment for journal bytes %d-%d (missing), and it could not be rebuilt: %s",
                            run / SEGMENTS, a, b, one_line(e, 200))
                break
            log.warning("%s had no segment for journal bytes %d-%d (missing): its %d records were rebuilt from %s",
                        run / SEGMENTS, a, b, seg.rows, journal.name)
    elif holes:
        log.warning("%s has no segment for journal bytes %s (missing): those records were read from %s; "
                    "`ipw store check %s --repair` rebuilds it", run / SEGMENTS,
                    ", ".join(f"{a}-{b}" for a, b in holes), journal.name, run)
    return columnar.chain(columnar.list_segments(run))


def read_table(path: Path, journal: Path, claim=lambda: False, tries: int = 5, skip: tuple[str, ...] = ()) -> pa.Table:
    """Every record of run folder ``path``: its segments (checked, a damaged or missing one
    rebuilt when ``claim()`` says this process may change the folder) and the journal after
    them, as one Arrow table (the segments' columns ``skip`` not read: null). A writer may merge segments while we read: a segment that vanished
    means a newer listing, so read again."""
    for attempt in range(tries):
        segs = chain(path, journal, claim)
        start = segs[-1].end if segs else 0
        size = journal.stat().st_size if journal.is_file() else 0
        if segs and 0 < size < start:
            raise IpwError(f"{journal} is shorter than the records in {path / SEGMENTS} say: the folder was altered. "
                           f"Remove {path / SEGMENTS} to load the journal alone.")
        if segs and size >= start and not aligned(journal, 0, start):
            raise IpwError(f"{path / SEGMENTS} does not match {journal} (no record ends at byte {start}): the folder "
                           f"was altered. Remove {path / SEGMENTS} to load the journal alone.")
        try:
            tables = read(path, journal, segs, claim, skip)
        except FileNotFoundError:
            if attempt == tries - 1:
                raise
            continue
        tail, end, offsets = columnar.read_tail(journal, start) if size > start else ([], start, [])
        if tail:
            tables.append(columnar.tail_table(journal, tail, offsets))
        if size > max(end, start):
            log.warning("%s ends in %d bytes of a record cut off mid-write (a run killed while writing it, or still "
                        "writing): left out; `ipw profile --resume` drops them and runs that query again",
                        journal, size - max(end, start))
        if not tables:
            return columnar.SCHEMA.empty_table()
        return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    raise AssertionError("unreachable")
