"""A run loaded for analysis: its manifest and pandas frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
