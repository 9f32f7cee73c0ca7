"""A run loaded for analysis: its manifest and pandas frames.

The power timeline is read when first used, not when the run is loaded: a report of 160 runs of
10,000 queries holds 1.4 GB of timelines (211,000 samples each at 10 Hz) it draws into one figure
at most, so loading them with the records cost a third of the load time and went past 2 GB.
``run.timeline`` reads it on first use and keeps it, as a loaded frame always was;
:meth:`Run.read_timeline` reads it without keeping it (a figure over many runs), and
:attr:`Run.has_timeline` says whether there is one without reading its samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class _Deferred:
    """A dataclass field whose value may be a :class:`TimelineSource`, read (and kept) on first
    access. A descriptor rather than a property, so that the field stays an ordinary constructor
    argument and ``dataclasses.replace`` works."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, obj, owner=None):
        if obj is None:
            raise AttributeError("no default")  # a required field
        value = obj.__dict__[self.slot]
        if isinstance(value, TimelineSource):
            value = obj.__dict__[self.slot] = value.read()
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.slot] = value


@dataclass(frozen=True)
class TimelineSource:
    """A timeline not read yet: ``read()`` gives the frame, ``rows`` its number of samples (from
    the file's metadata, or as the source says). ``read(columns, lean=True)``: only those columns,
    the text ones as pandas categoricals (a figure's read: 10.5 million samples in a third of the
    memory)."""

    reader: Callable[..., object]  # reader(columns: tuple | None, lean: bool) -> DataFrame
    rows: int

    def read(self, columns: tuple[str, ...] | None = None, lean: bool = False):
        return self.reader(columns, lean)


@dataclass
class Run:
    """A run loaded for analysis: pandas frames and the manifest."""

    path: Path
    manifest: dict
    queries: object  # pandas.DataFrame: one row per query record
    timeline: object = _Deferred()  # pandas.DataFrame: t_s, domain, energy_j, power_w, session (read on first use)
    idle: list = field(default_factory=list)
    summary: dict | None = None

    @property
    def timeline_rows(self) -> int:
        """The number of timeline samples (reads none of them)."""
        value = self.__dict__["_timeline"]
        if isinstance(value, TimelineSource):
            return value.rows
        return 0 if value is None else len(value)

    @property
    def has_timeline(self) -> bool:
        return self.timeline_rows > 0

    def timeline_source(self) -> TimelineSource:
        """The timeline as a source to read later (holding no reference to this run)."""
        value = self.__dict__["_timeline"]
        return value if isinstance(value, TimelineSource) else TimelineSource(_frame_reader(value), self.timeline_rows)

    def read_timeline(self, columns: tuple[str, ...] | None = None, lean: bool = False):
        """The timeline, read from its file without keeping it when it was not read before (so a
        figure over many runs holds one timeline at a time); ``columns`` and ``lean``: as
        :meth:`TimelineSource.read` (a timeline already read is only narrowed to ``columns``)."""
        return self.timeline_source().read(columns, lean)

    def __repr__(self) -> str:  # the dataclass's would read the timeline
        return f"Run({str(self.path)!r}, {len(self.queries)} queries)"

    @property
    def label(self) -> str:
        m = self.manifest
        return m.get("label") or f"{m.get('engine', {}).get('model', '?')} on {m.get('hardware', {}).get('summary', '?')}"

    @property
    def unfinished(self) -> str | None:
        """None for a complete run (or a folder that records no sessions or status); else what the
        run holds of its query set, e.g. ``interrupted: 37 of 248 queries``. The status is the last
        session's (``interrupted``, ``failed``; ``running`` is a run still going or killed before it
        could close its session) or, for a folder of shards, ``partial``."""
        done = 0 if self.queries is None or len(self.queries) == 0 else int(self.queries["id"].nunique())
        return unfinished_state(self.manifest, done)


def unfinished_state(manifest: dict, done: int) -> str | None:
    """What :attr:`Run.unfinished` says, from a manifest and the number of queries the run holds."""
    sessions = manifest.get("sessions") or []
    status = (sessions[-1].get("status") if sessions else None) or manifest.get("status")
    if status in (None, "complete"):
        return None
    if status == "running":
        status = "unfinished (running, or killed)"
    total = (manifest.get("queryset") or {}).get("n")
    return f"{status}: {done} of {total if total is not None else '?'} queries"


def _frame_reader(frame):
    """The reader of a timeline already in memory: the frame, narrowed to the columns it has."""
    def read(columns=None, lean=False):
        if frame is None or columns is None:
            return frame
        return frame[[c for c in columns if c in frame]]

    return read
