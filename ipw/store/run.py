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
