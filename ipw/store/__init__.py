"""The run store: one folder per run, append-only, resumable, and fast to load when large.

```
runs/<run-id>/
  manifest.json    model, engine, query set (with hash), hardware, meters and sources, versions,
                   settings, shard (``--shard i/n``), and one entry per session (command line,
                   start/end, status, host of a shard)
  queries.jsonl    the journal: one record per query, appended, flushed and fsync'd as each query
                   ends (``QueryRecord.to_dict()`` per line)
  segments/        the same records in Parquet, written every 10,000 records as the run goes and
                   merged as they accumulate (ipw.store.columnar): a copy for fast loading
  lock             the exclusive lock of the process writing the run (ipw.store.files)
  idle.json        the idle baseline(s), W per domain, one per session
  power.parquet    the power timeline (written when a session ends, also on Ctrl-C)
  summary.json     the metrics of ipw.science.intelligence.metrics over all records, when a run completes
```

Rules every reader and writer keeps:

- **Durability.** A run killed at any point loses at most the query in flight (and that session's
  timeline); a record cut off mid-write is left out with a warning, and dropped when the run is
  reopened. A write that fails (disk full) raises :class:`StoreWriteError` and undoes its own
  partial bytes.
- **Journal first.** ``queries.jsonl`` is the truth; segments cover a prefix of it, named by the
  journal bytes they hold. :func:`load` reads the segments, then parses only the journal after
  them, so records written after the last segment (a crash, a session that ended) are never lost.
  A run folder of the journal-only format loads as before (all of it is the tail);
  :func:`compact` gives it segments.
- **Damage costs no run.** A segment that cannot be read, or disagrees with its name, its own
  metadata or the journal (:mod:`ipw.store.verify`), is set aside as ``<name>.damaged`` (never
  deleted), named in a warning of the ``ipw.store`` logger, and rebuilt from the journal
  (:mod:`ipw.store.damage`); so is a segment missing from the chain. ``ipw store check RUN
  [--repair]`` compares every segment with the journal, record by record (:mod:`ipw.store.check`).
- **One writer.** Creating or reopening a run takes an exclusive lock on the folder; a second
  process gets :class:`RunLocked` naming the holder's pid.
- **The later record of an id wins.** When an id was stored twice (a retried engine error, two
  sessions that overlapped before locks existed), loading keeps only its last record, at the
  last record's place: ``load``, ``RunStore.records()`` and so ``report``, ``compare`` and
  ``--resume`` count each id once. ``ipw profile --resume --retry-errors`` relies on this rule:
  it appends a new record for a failed id rather than rewriting the journal.
- **One frame.** ``load(run).queries`` has the columns of :data:`ipw.core.records.RECORD_COLUMNS` in
  that order, whether it came from segments, the journal or both: text as pandas ``str``, numbers
  as float64 or int64 (float64 where some are missing), ``correct`` as bool (object with None where
  some were not scored), ``flags`` as tuples. The nested dicts ``domains`` and ``engine_extra`` stay
  JSON text (decoding a million of them would cost seconds and a gigabyte): decode on demand with
  ``ipw.store.decode_json(frame["domains"])``. ``reference`` and ``extracted`` are text.
- **Shards.** A folder holding the run folders of the shards of one query set (``ipw profile
  --shard i/n``, or one cell of an ``ipw launch``) loads as one run (:mod:`ipw.store.merge`): its
  frame gains ``node`` (the host that ran each record), the manifest lists every shard's node and
  hardware. The records of a sharded run carry ``shard`` (``"i/n"``), set by the store from the
  manifest's ``shard`` as they are appended.

``ipw.store.load(run)`` returns pandas frames, so notebooks never parse these files by hand.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from ipw.core.errors import InputFileError, IpwError
from ipw.core.jsonl import read_json
from ipw.core.records import RECORD_COLUMNS, QueryRecord, RecordError
from ipw.store import columnar, damage
from ipw.store.columnar import SEGMENT_RECORDS, SEGMENTS, decode_json
from ipw.store.files import IDLE, MANIFEST, QUERIES, SUMMARY, TIMELINE
from ipw.store.run import Run, TimelineSource
from ipw.store.files import LOCK, FolderLock, RunLocked, StoreWriteError, append_durably, validate_run_id, write_json_atomic

log = logging.getLogger("ipw.store")

__all__ = [
    "IDLE", "LOCK", "MANIFEST", "QUERIES", "SEGMENTS", "SEGMENT_RECORDS", "SUMMARY", "TIMELINE", "Run", "RunLocked",
    "RunStore", "StoreWriteError", "compact", "decode_json", "load", "new_run_id", "read_summary", "validate_run_id",
]  # fmt: skip


def new_run_id(label: str = "run") -> str:
    """A fresh run id: UTC time stamp and ``label`` reduced to the safe characters."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() and c.isascii() or c in "-_." else "-" for c in str(label))[:40]
    return validate_run_id(f"{stamp}-{safe or 'run'}")


class RunStore:
    """A run folder. Create with :meth:`create`, reopen with :meth:`open` (both lock it for this
    process); a plain ``RunStore(path)`` reads freely and locks on its first write."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock: FolderLock | None = None

    @classmethod
    def create(cls, runs_dir: Path | str, run_id: str, manifest: dict) -> RunStore:
        validate_run_id(run_id)
        path = Path(runs_dir) / run_id
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            raise IpwError(f"run folder {path} exists already; use --resume {path} to continue it") from None
        except OSError as e:
            raise IpwError(f"cannot create the run folder {path}: {e.strerror}") from e
        store = cls(path)
        store.lock()
        store.write_json(MANIFEST, manifest)
        (path / QUERIES).touch()
        return store

    @classmethod
    def open(cls, path: Path | str) -> RunStore:
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise IpwError(f"{path} is not an ipw run (no {MANIFEST})")
        store = cls(path)
        store.lock()
        store.repair()
        return store

    def lock(self) -> RunStore:
        """Take the folder's exclusive lock (:class:`RunLocked` if another process holds it)."""
        if self._lock is None:
            self._lock = FolderLock.acquire(self.path)
        return self

    def close(self, seal: bool = True) -> None:
        """Write the journal's tail into a segment (``seal``) and let go of the lock."""
        if self._lock is not None:
            if seal:
                self.seal()
            self._lock = None

    def __enter__(self) -> RunStore:
        return self.lock()

    def __exit__(self, *exc) -> None:
        self.close(seal=exc[0] is None)

    # -- JSON side files -------------------------------------------------------------------------
    def read_json(self, name: str, default=None):
        p = self.path / name
        if not p.is_file():
            return default
        return read_json(p)

    def write_json(self, name: str, obj) -> None:
        self.lock()
        write_json_atomic(self.path / name, obj)

    @property
    def manifest(self) -> dict:
        m = self.read_json(MANIFEST, {})
        if not isinstance(m, dict):
            raise InputFileError(self.path / MANIFEST, None, "not a JSON object")
        return m

    def update_manifest(self, **changes) -> dict:
        manifest = self.manifest | changes
        self.write_json(MANIFEST, manifest)
        return manifest

    # -- query records ---------------------------------------------------------------------------
    def repair(self) -> int:
        """Drop a last record cut off mid-write (a killed run); returns the bytes removed."""
        self.lock()
        p = self.path / QUERIES
        if not p.is_file():
            p.touch()
            return 0
        size = p.stat().st_size
        with open(p, "rb") as f:
            f.seek(max(0, size - (1 << 20)))
            tail = f.read()
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= (1 << 20) else None)
        if keep is None:  # a last line longer than 1 MiB: find its start the slow way
            keep = p.read_bytes().rfind(b"\n") + 1
        if keep == size:
            return 0
        with open(p, "r+b") as f:
            f.truncate(keep)
        log.warning("%s: dropped its last %d bytes, a record cut off mid-write (the run was killed while writing "
                    "it); that query runs again", p, size - keep)
        return size - keep

    def append(self, record: QueryRecord) -> None:
        """Append one record durably (flush + fsync) before the next query starts."""
        self.append_many([record])

    def append_many(self, records: list[QueryRecord]) -> None:
        """Append records in one write and one fsync (a finished batch, or a synthetic run); every
        :data:`SEGMENT_RECORDS` records, copy them into a Parquet segment."""
        self.lock()
        text = "".join(json.dumps(r.to_dict(), default=str, allow_nan=False) + "\n" for r in records)
        append_durably(self.path / QUERIES, text.encode())
        lock = self._lock
        if lock.unsealed is None:
            lock.unsealed = columnar.count_tail(self.path / QUERIES, _chain_end(self.path))
        else:
            lock.unsealed += len(records)
        if lock.unsealed >= columnar.SEGMENT_RECORDS:
            self.seal()

    def seal(self, everything: bool = False) -> int:
        """Copy the journal's records after the last segment into a new segment (then merge
        segments as :func:`ipw.store.columnar.compact` says; all into one with ``everything``).
        Returns the records sealed."""
        self.lock()
        journal = self.path / QUERIES
        segs = damage.chain(self.path, journal, claim=lambda: True)
        start = segs[-1].end if segs else 0
        if journal.is_file() and journal.stat().st_size < start:
            raise IpwError(f"{journal} is shorter than its segments in {self.path / SEGMENTS}: the folder was altered")
        tail, end, offsets = columnar.read_tail(journal, start)
        if tail:
            table = columnar.tail_table(journal, tail, offsets)
            segs.append(columnar.write_segment(self.path, table, start, end))
        if tail or everything:
            columnar.compact(self.path, segs, everything,
                             read=lambda part: damage.read(self.path, journal, part, claim=lambda: True))
        self._lock.unsealed = 0
        return len(tail)

    def table(self, skip: tuple[str, ...] = ()):
        """Every stored record as one Arrow table (segments + journal tail), duplicates included
        (without the columns ``skip``). A damaged segment is set aside and rebuilt from the journal
        (:mod:`ipw.store.damage`)."""
        try:
            table = damage.read_table(self.path, self.path / QUERIES, self._claim, skip=skip)
            return table.drop_columns([c for c in skip if c in table.column_names]) if skip else table
        finally:
            if self.__dict__.pop("_borrowed", False):
                lock, self._lock = self._lock, None
                lock.release()

    def _claim(self) -> bool:
        """Whether this process may change the folder (set a damaged segment aside): it holds the
        run's lock, or a reader takes it until its read ends (when no process writes the run)."""
        if self._lock is not None:
            return True
        borrowed = not FolderLock.held(self.path)
        try:
            self.lock()
        except IpwError:  # another process writes the run, or the folder is read-only
            return False
        self._borrowed = borrowed
        return True

    def records(self) -> list[QueryRecord]:
        """Every stored record, typed (records of older schemas are read too); an id stored twice
        counts once, by its later record. A record that breaks the contract is an error naming the
        journal and the record (its position among the kept records, and its id)."""
        out = []
        for n, d in enumerate(self.raw_records(), 1):
            try:
                out.append(QueryRecord.from_dict(d))
            except RecordError as e:
                raise RecordError(f"{self.path / QUERIES}: record {n} (id {d.get('id')!r}): {e}") from e
        return out

    def raw_records(self) -> list[dict]:
        """Every stored record as a dict (nested values decoded), the later record of an id winning."""
        rows = columnar.pylist(self.table())
        seen, out = set(), []
        for r in reversed(rows):
            if r["id"] not in seen:
                seen.add(r["id"])
                out.append(r)
        return out[::-1]

    def done_ids(self) -> set[str]:
        return {str(i) for i in self.table()["id"].to_pylist()}

    # -- timeline --------------------------------------------------------------------------------
    def append_timeline(self, frame) -> None:
        """Add a session's timeline to power.parquet (sessions are told apart by ``session``)."""
        import pandas as pd

        if frame is None or frame.empty:
            return
        self.lock()
        p = self.path / TIMELINE
        if p.is_file():
            frame = pd.concat([pd.read_parquet(p), frame], ignore_index=True)
        tmp = p.with_suffix(".parquet.tmp")
        try:
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, p)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StoreWriteError(p, e) from e


def _chain_end(path: Path) -> int | None:
    segs = columnar.chain(columnar.list_segments(path))
    return segs[-1].end if segs else 0


def query_frame(table):
    """The query frame of a record table: one row per id (its later record), columns of
    :data:`RECORD_COLUMNS` first (see the module's docstring for their types)."""
    frame = columnar.to_frame(table)
    if not frame["id"].is_unique:
        frame = frame[~frame["id"].duplicated(keep="last").to_numpy()].reset_index(drop=True)
    return frame


def compact(run: Path | str) -> int:
    """Give a run folder one segment holding every record (a journal-only folder of an earlier
    ipw, or many small segments); returns the records newly sealed. Locks the folder meanwhile."""
    store = RunStore.open(run)
    try:
        return store.seal(everything=True)
    finally:
        store.close(seal=False)


def load(run: Path | str, json_columns: bool = True) -> Run:
    """Load a run folder (or a folder of the shards of one run) into pandas frames
    (``Run.queries``, ``Run.timeline``; the timeline is read on first use).

    ``json_columns=False`` leaves out the JSON text columns ``domains`` and ``engine_extra``: half
    of a 10,000-record frame's memory and of its load time (measured: 160 such runs load in 4.0 s
    of CPU within 833 MiB without them, 7.3 s and 1,676 MiB with them). Reports and ``ipw
    compare`` read neither."""
    path = Path(run)
    one = load_one if json_columns else partial(load_one, skip=columnar.JSON_COLUMNS)
    if not (path / MANIFEST).is_file():
        from ipw.store import merge

        return merge.load_sharded(path, one)
    return one(path)


def read_summary(path: Path | str) -> tuple[dict, dict | None]:
    """(manifest, ``summary.json``) of a run folder, reading no record: what ``ipw profile`` prints
    at the end, as the runner computed it."""
    store = RunStore(Path(path))
    return store.manifest, store.read_json(SUMMARY)


def load_one(path: Path, skip: tuple[str, ...] = ()) -> Run:
    store = RunStore(path)
    queries = query_frame(store.table(skip))
    return Run(store.path, store.manifest, queries, timeline_source(store.path / TIMELINE), store.read_json(IDLE, []),
               store.read_json(SUMMARY))


def timeline_source(path: Path) -> TimelineSource:
    """The timeline file ``path``, read on first use (its row count from the Parquet footer now)."""
    import pandas as pd
    import pyarrow.parquet as pq

    if not path.is_file():
        return TimelineSource(lambda columns=None, lean=False: pd.DataFrame(), 0)
    def read(columns=None, lean=False):
        if not lean:
            frame = columnar.read_frame(path)
            return frame if columns is None else frame[[c for c in columns if c in frame]]
        names = pq.read_schema(path).names
        table = pq.read_table(path, columns=[c for c in columns or names if c in names], pre_buffer=False,
                              read_dictionary=[c for c in ("domain",) if c in names])
        return table.to_pandas(split_blocks=True, self_destruct=True)  # domain: a categorical

    return TimelineSource(read, pq.ParquetFile(path).metadata.num_rows)


assert tuple(columnar.KINDS) == RECORD_COLUMNS
