"""The run store: one folder per run, append-only and resumable.

```
runs/<run-id>/
  manifest.json    model, engine, query set (with hash), hardware, meters and sources, versions,
                   settings, and one entry per session (command line, start/end, status)
  queries.jsonl    one record per query, appended, flushed and fsync'd as each query ends
  idle.json        the idle baseline(s), W per domain, one per session
  power.parquet    the power timeline (written when a session ends, also on Ctrl-C)
  summary.json     the metrics of ipw.efficiency over all records, when a run completes
```

A run killed at any point loses at most the query in flight (and that session's timeline); a record
cut off mid-write is dropped when the run is reopened. ``ipw.store.load(run)`` returns pandas
frames, so notebooks never parse these files by hand.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ipw.errors import InputFileError, IpwError
from ipw.records import QueryRecord

MANIFEST, QUERIES, IDLE, TIMELINE, SUMMARY = (
    "manifest.json", "queries.jsonl", "idle.json", "power.parquet", "summary.json",
)  # fmt: skip


def new_run_id(label: str = "run") -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)[:40]
    return f"{stamp}-{safe}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunStore:
    """A run folder. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, runs_dir: Path | str, run_id: str, manifest: dict) -> RunStore:
        path = Path(runs_dir) / run_id
        if path.exists():
            raise IpwError(f"run folder {path} exists already; use --resume {path} to continue it")
        path.mkdir(parents=True)
        store = cls(path)
        store.write_json(MANIFEST, manifest)
        (path / QUERIES).touch()
        return store

    @classmethod
    def open(cls, path: Path | str) -> RunStore:
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise IpwError(f"{path} is not an ipw run (no {MANIFEST})")
        store = cls(path)
        store.repair()
        return store

    # -- JSON side files -------------------------------------------------------------------------
    def read_json(self, name: str, default=None):
        p = self.path / name
        if not p.is_file():
            return default
        try:
            return json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise InputFileError(p, e.lineno, f"invalid JSON: {e.msg}") from e

    def write_json(self, name: str, obj) -> None:
        _write_atomic(self.path / name, json.dumps(obj, indent=2, default=str) + "\n")

    @property
    def manifest(self) -> dict:
        return self.read_json(MANIFEST, {})

    def update_manifest(self, **changes) -> dict:
        manifest = self.manifest | changes
        self.write_json(MANIFEST, manifest)
        return manifest

    # -- query records ---------------------------------------------------------------------------
    def repair(self) -> int:
        """Drop a last record cut off mid-write (a killed run); returns the bytes removed."""
        p = self.path / QUERIES
        if not p.is_file():
            p.touch()
            return 0
        data = p.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep == len(data):
            return 0
        with open(p, "r+b") as f:
            f.truncate(keep)
        return len(data) - keep

    def append(self, record: QueryRecord) -> None:
        """Append one record durably (flush + fsync) before the next query starts."""
        self.append_many([record])

    def append_many(self, records: list[QueryRecord]) -> None:
        """Append records in one write and one fsync (a finished batch, or a synthetic run)."""
        text = "".join(json.dumps(r.to_dict(), default=str, allow_nan=False) + "\n" for r in records)
        with open(self.path / QUERIES, "a") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[QueryRecord]:
        """Every stored record, typed (records of older schemas are read too)."""
        return [QueryRecord.from_dict(d) for d in self.raw_records()]

    def raw_records(self) -> list[dict]:
        """Every stored record as its JSON object (for bulk loading into frames)."""
        p = self.path / QUERIES
        out = []
        with open(p) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    if not line.endswith("\n"):
                        break  # a record cut off by a kill: ignored, repair() removes it
                    raise InputFileError(p, n, f"invalid JSON record: {e.msg}") from e
        return out

    def done_ids(self) -> set[str]:
        return {r["id"] for r in self.raw_records()}

    # -- timeline --------------------------------------------------------------------------------
    def append_timeline(self, frame) -> None:
        """Add a session's timeline to power.parquet (sessions are told apart by ``session``)."""
        import pandas as pd

        if frame is None or frame.empty:
            return
        p = self.path / TIMELINE
        if p.is_file():
            frame = pd.concat([pd.read_parquet(p), frame], ignore_index=True)
        tmp = p.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, p)


@dataclass
class Run:
    """A run loaded for analysis: pandas frames and the manifest."""

    path: Path
    manifest: dict
    queries: object  # pandas.DataFrame: one row per query record
    timeline: object  # pandas.DataFrame: t_s, domain, energy_j, power_w, session
    idle: list = field(default_factory=list)
    summary: dict | None = None

    @property
    def label(self) -> str:
        m = self.manifest
        return m.get("label") or f"{m.get('engine', {}).get('model', '?')} on {m.get('hardware', {}).get('summary', '?')}"


def load(run: Path | str) -> Run:
    """Load a run folder into pandas frames (``Run.queries``, ``Run.timeline``)."""
    import pandas as pd

    store = RunStore(Path(run))
    if not (store.path / MANIFEST).is_file():
        raise IpwError(f"{store.path} is not an ipw run (no {MANIFEST})")
    records = store.raw_records()
    queries = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    tl_path = store.path / TIMELINE
    timeline = pd.read_parquet(tl_path) if tl_path.is_file() else pd.DataFrame()
    return Run(store.path, store.manifest, queries, timeline, store.read_json(IDLE, []), store.read_json(SUMMARY))
