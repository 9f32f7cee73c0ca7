"""``ipw store check``: every segment compared with the journal, record by record, and repaired.

Loading checks segments cheaply (:mod:`ipw.store.verify`); this check reads everything: each
segment of the chain is read (page checksums, rows, metadata) and compared with the journal bytes
it holds, in blocks of :data:`ipw.store.damage.BLOCK` bytes, column by column (Arrow equality of
the table the journal's lines give). It finds what loading cannot: a segment that reads well but
holds other records than the journal, and journal lines that are not records (in bytes a
segment covers, loading never reads them). It holds the memory of one segment and a block; on
the project's 2-core VM, 200,000 records took 11 s of CPU and 830 MiB.

It holds the run's lock meanwhile, so it never runs while a run writes the folder (segments merged
away under it would look damaged): :class:`RunLocked` names the writer. With ``repair``, it sets
damaged segments aside and rebuilds them from the journal (:mod:`ipw.store.damage`), rebuilds
missing ones, and drops a last record cut off mid-write. A segment whose journal bytes hold
unreadable lines is left as it is: it may be the only copy of those records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ipw.core.errors import IpwError
from ipw.store import MANIFEST, QUERIES, SEGMENTS, RunLocked, RunStore, columnar, damage
from ipw.store.columnar import Segment
from ipw.store.verify import SegmentDamaged, one_line


@dataclass
class Part:
    """One stretch of journal bytes [start, end) and what holds it."""

    start: int
    end: int
    segment: Segment | None  # None: no segment holds these bytes (missing)
    state: str = "ok"  # ok, damaged, missing, unverified (journal lines unreadable in it)
    reason: str = ""
    records: int = 0  # journal records in these bytes
    repaired: str = ""  # what --repair did


@dataclass
class Report:
    run: Path
    parts: list[Part] = field(default_factory=list)
    journal_records: int = 0
    journal_bytes: int = 0
    tail_records: int = 0  # after the last segment: not damage, sealed when the run next closes
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    cut_bytes: int = 0  # a last record cut off mid-write
    cut_dropped: bool = False
    set_aside_before: list[str] = field(default_factory=list)
    problem: str = ""  # the folder as a whole does not match (journal shorter than its segments)

    @property
    def remaining(self) -> list[Part]:
        return [p for p in self.parts if p.state != "ok" and not p.repaired]

    @property
    def healthy(self) -> bool:
        """No damage left: every segment matches the journal, every journal line is a record."""
        return not self.remaining and not self.unreadable and not self.problem

    def lines(self) -> list[str]:
        segs = [p for p in self.parts if p.segment is not None]
        count = {s: sum(p.state == s for p in self.parts) for s in ("ok", "damaged", "missing", "unverified")}
        out = [f"{self.run}: journal {QUERIES}: {self.journal_records} records ({self.journal_bytes} bytes); "
               f"{len(segs)} segments: " + ", ".join(f"{n} {s}" for s, n in count.items() if n or s == "ok")]
        for p in self.parts:
            if p.state == "ok":
                continue
            what = p.segment.path.name if p.segment else f"journal bytes {p.start}-{p.end} (no segment)"
            done = f" -> {p.repaired}" if p.repaired else ""
            out.append(f"  {p.state}: {what}: {p.reason} ({p.records} records){done}")
        lost = sum(p.records for p in self.parts if p.state in ("damaged", "missing") and not p.repaired)
        out.append(f"records missing from segments: {lost}" + (" (read from the journal meanwhile)" if lost else "")
                   + f"; {self.tail_records} after the last segment (sealed when the run next closes)")
        if self.unreadable:
            shown = "; ".join(f"line {n}: {why}" for n, why in self.unreadable[:5])
            more = f" (and {len(self.unreadable) - 5} more)" if len(self.unreadable) > 5 else ""
            out.append(f"journal lines unreadable: {len(self.unreadable)}: {shown}{more}")
        else:
            out.append("journal lines unreadable: none")
        if self.cut_bytes:
            out.append(f"journal ends in {self.cut_bytes} bytes of a record cut off mid-write"
                       + (": dropped" if self.cut_dropped else " (left out when loading; --repair drops them)"))
        if self.set_aside_before:
            out.append(f"set aside before: {', '.join(self.set_aside_before)}")
        if self.problem:
            out.append(self.problem)
        return out


def run_folders(path: Path | str) -> list[Path]:
    """The run folders under ``path``: itself, its shards, or the shards of each launch cell."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return [path]
    if not path.is_dir():
        raise IpwError(f"{path} is not an ipw run (no {MANIFEST})")
    found = sorted(p for p in path.iterdir() if (p / MANIFEST).is_file())
    if not found:
        found = sorted(q for p in path.iterdir() if p.is_dir() for q in p.iterdir() if (q / MANIFEST).is_file())
    if not found:
        raise IpwError(f"{path} is not an ipw run (no {MANIFEST}), nor a folder of runs")
    return found


def check(run: Path | str, repair: bool = False) -> Report:
    """Compare every segment of a run folder with its journal (see the module's docstring)."""
    run = Path(run)
    if not (run / MANIFEST).is_file():
        raise IpwError(f"{run} is not an ipw run (no {MANIFEST})")
    journal = run / QUERIES
    store = RunStore(run)
    report = Report(run)
    try:  # segments merged away while being compared would read as damage: no writer meanwhile
        store.lock()
    except RunLocked:
        raise
    except IpwError:  # a read-only copy of a run: nothing writes it, and nothing can be repaired
        if repair:
            raise
    if repair:
        report.cut_bytes = store.repair()
        report.cut_dropped = report.cut_bytes > 0
    size = journal.stat().st_size if journal.is_file() else 0
    report.journal_bytes = size
    if (run / SEGMENTS).is_dir():
        report.set_aside_before = sorted(p.name for p in (run / SEGMENTS).iterdir() if damage.ASIDE in p.name)
    try:
        _walk(report, run, journal, size, repair)
    finally:
        store.close(seal=False)
    return report


def _plan(run: Path, journal: Path) -> list[Part]:
    """The chain of segments from byte 0, with the missing stretches between them."""
    by_start: dict[int, Segment] = {}
    for s in columnar.list_segments(run):
        if s.end > s.start and (s.start not in by_start or s.end > by_start[s.start].end):
            by_start[s.start] = s
    holes = dict(damage.gaps(run, journal))
    parts, pos = [], 0
    while pos in by_start or pos in holes:
        seg = by_start.get(pos)
        if seg is not None:
            part = Part(pos, seg.end, seg)
        else:
            part = Part(pos, holes[pos], None, "missing", "no segment holds these bytes")
        parts.append(part)
        pos = part.end
    return parts


def _walk(report: Report, run: Path, journal: Path, size: int, repair: bool) -> None:
    parts = _plan(run, journal)
    report.parts = parts
    end = parts[-1].end if parts else 0
    if parts and size == 0:  # a folder of segments only (written so on purpose): no journal to compare with
        for part in parts:
            try:
                part.records = damage.read_checked(part.segment, journal, size).num_rows if part.segment else 0
            except (SegmentDamaged, FileNotFoundError) as e:
                why = getattr(e, "reason", e)
                part.state, part.reason = "damaged", f"{why}; {QUERIES} is empty: no copy to rebuild from"
        return
    if parts and size < end:
        report.problem = (f"{journal} is shorter ({size} bytes) than its segments say ({end}): the folder was "
                          "altered; nothing was compared or repaired")
        return
    line = 1
    for part in parts:
        line = _check_part(report, run, journal, size, part, line)
        if repair and part.state in ("damaged", "missing"):
            _repair(run, journal, size, part)
    tail = _Journal(journal, end, size, line)
    for _ in tail.blocks():
        pass
    report.tail_records, report.journal_records = tail.records, report.journal_records + tail.records
    report.unreadable += tail.unreadable
    if not repair and size > tail.end:
        report.cut_bytes = size - tail.end


def _check_part(report: Report, run: Path, journal: Path, size: int, part: Part, line: int) -> int:
    """Fill in ``part`` (state, reason, records); returns the journal line after it."""
    seg, table = part.segment, None
    if seg is not None:
        try:
            table = damage.read_checked(seg, journal, size)
        except SegmentDamaged as d:
            part.state, part.reason = "damaged", d.reason
        except FileNotFoundError:
            part.state, part.reason = "damaged", "it vanished while being checked (a run is merging segments?)"
    src = _Journal(journal, part.start, part.end, line)
    pos = 0
    for block in src.blocks():
        if table is None or part.state != "ok":
            continue
        if block is None:  # unreadable lines in this block: it cannot be compared
            part.state, part.reason = "unverified", "journal lines in its bytes are unreadable"
            continue
        got = table.slice(pos, block.num_rows).select(list(columnar.KINDS))
        if pos + block.num_rows > table.num_rows or not got.equals(block):
            part.state, part.reason = "damaged", _difference(table, block, pos)
        pos += block.num_rows
    part.records = src.records
    report.journal_records += src.records
    report.unreadable += src.unreadable
    if part.state == "ok" and table is not None and pos != table.num_rows:
        part.state, part.reason = "damaged", f"it holds {table.num_rows} records, the journal {pos} in its bytes"
    return src.line


def _difference(table: pa.Table, block: pa.Table, pos: int) -> str:
    """Where ``table`` (from row ``pos``) first differs from the journal's ``block``."""
    if pos + block.num_rows > table.num_rows:
        return f"it holds {table.num_rows} records, the journal more in its bytes"
    got = table.slice(pos, block.num_rows)
    for name in columnar.KINDS:
        a, b = got[name].to_pylist(), block[name].to_pylist()
        for k, (x, y) in enumerate(zip(a, b)):
            if x != y and not (x != x and y != y):  # NaN equals NaN here
                return f"record {pos + k + 1} ({block['id'][k].as_py()!r}) differs from the journal in {name!r}"
    return "it differs from the journal"


def _repair(run: Path, journal: Path, size: int, part: Part) -> None:
    try:
        table = damage.journal_table(journal, part.start, part.end)
    except IpwError as e:
        part.reason += f"; not rebuilt: {one_line(e, 200)}"
        return
    done = ""
    try:
        if part.segment is not None:
            aside = damage.set_aside(part.segment)
            done = f"set aside as {aside.name}, "
        columnar.write_segment(run, table, part.start, part.end)
    except (OSError, IpwError) as e:  # a read-only folder, a full disk
        part.reason += f"; {done}not rebuilt: {one_line(e, 200)}"
        return
    part.repaired = f"{done}rebuilt from the journal ({table.num_rows} records)"


class _Journal:
    """Journal bytes [start, end) read in blocks: each block's records as a table (None where a
    line is unreadable), counting records and the unreadable lines (with their numbers)."""

    def __init__(self, journal: Path, start: int, end: int, line: int) -> None:
        self.path, self.start, self.stop, self.line = journal, start, end, line
        self.end = start  # just after the last whole line read
        self.records, self.unreadable = 0, []

    def blocks(self):
        if not self.path.is_file():
            return
        pos, block = self.start, damage.BLOCK
        with open(self.path, "rb") as f:
            while pos < self.stop:
                f.seek(pos)
                data = f.read(min(block, self.stop - pos))
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    if pos + len(data) >= self.stop:
                        break  # a last line cut off mid-write
                    block *= 2
                    continue
                yield self._parse(data[:cut])
                pos += cut
                self.end = pos

    def _parse(self, data: bytes):
        dicts, lines, before = [], [], len(self.unreadable)
        for raw in data.split(b"\n")[:-1]:
            if raw.strip():
                try:
                    d = json.loads(raw)
                    if not isinstance(d, dict):
                        raise ValueError("not a JSON object")
                    dicts.append(d)
                    lines.append(self.line)
                except (ValueError, UnicodeDecodeError, RecursionError) as e:
                    self.unreadable.append((self.line, one_line(getattr(e, "msg", None) or e, 80)))
            self.line += 1
        table, misfits = _table(dicts, lines)
        self.unreadable += misfits
        self.records += len(dicts) - len(misfits)
        return table if len(self.unreadable) == before else None


def _table(dicts: list[dict], lines: list[int]) -> tuple[pa.Table | None, list[tuple[int, str]]]:
    """The records as one table, or None and the (line, why) of those that do not fit the record
    contract."""
    try:
        return columnar.records_table(columnar.normalise(dicts)), []
    except Exception:  # noqa: BLE001 - find the records at fault, one by one, as tail_table does
        pass
    misfits = []
    for d, n in zip(dicts, lines):
        try:
            columnar.records_table(columnar.normalise([d]))
        except Exception as e:  # noqa: BLE001 - IpwError, TypeError, ValueError, ArrowException: all a misfit
            misfits.append((n, one_line(f"does not fit the record contract: {e}", 80)))
    return None, misfits
