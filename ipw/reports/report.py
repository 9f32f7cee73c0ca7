"""Assemble a report: runs and science outputs -> sections -> one HTML file.

    >>> from ipw.reports import build_report
    >>> report = build_report(["runs/a", "runs/b"], extras=["capacity-results/"])
    >>> report.tables["summary"]          # pandas
    >>> report.write("report.html")
    >>> from ipw.reports import RoutingRequest, TrendRequest
    >>> from ipw.science.intelligence.routing import CostModel, Price
    >>> build_report(["runs/small", "runs/big", "runs/cloud"],
    ...              routing=RoutingRequest("cloud", CostModel(prices={"small": Price(0.1, 0.1), ...})),
    ...              trend=TrendRequest({"small": "2024-07-23", "big": "2025-04-29", "cloud": "2024-12-06"}))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from ipw.core.basis import canonical
from ipw.science.intelligence.metrics import DEFAULT_ENERGY
from ipw.reports import measured
from ipw.reports import tables as report_tables
from ipw.reports.html import render
from ipw.reports.measured import RoutingRequest, TrendRequest
from ipw.reports.blocks import Section
from ipw.reports.extras import load_extra
from ipw.store import Run


def _ipw_version() -> str:
    try:
        return version("ipw")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Report:
    """Everything a report shows: the sections (each with its DataFrames and Figures)."""

    title: str
    runs: dict[str, Run]
    sections: tuple[Section, ...]
    created: str
    energy: str = DEFAULT_ENERGY  # the basis of IPW, IPJ and every energy the report labels

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The main DataFrames by name: summary, domains (and every section's tables by caption)."""
        out = {}
        for s in self.sections:
            for t in s.tables:
                out.setdefault(f"{s.anchor}: {t.caption}", t.frame)
        by_key = {s.key: s for s in self.sections if s.key}
        if "summary" in by_key:
            out["summary"] = by_key["summary"].tables[0].frame
        if "domains" in by_key:
            out["domains"] = by_key["domains"].tables[0].frame
        return out

    @property
    def estimate_runs(self) -> list[str]:
        return [n for n, r in self.runs.items() if not r.queries.empty and report_tables.energy_kind(r.queries, self.energy) == report_tables.ESTIMATE]

    def html(self) -> str:
        return render(list(self.sections), title=self.title, runs=list(self.runs), estimate_runs=self.estimate_runs,
                      created=self.created, version=_ipw_version(), basis=canonical(self.energy))

    def write(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html(), encoding="utf-8")
        return path


def build_report(runs: Iterable[Path | str | Run], extras: Iterable[Path | str] = (), title: str | None = None,
                 energy: str = DEFAULT_ENERGY, compare: bool = True, routing: RoutingRequest | None = None,
                 trend: TrendRequest | None = None) -> Report:
    """Load the runs (folders or loaded :class:`~ipw.store.Run`), compute every table and figure.

    ``extras``: outputs of ``ipw capacity``, ``ipw cmr fit`` or ``ipw density`` (see
    :mod:`ipw.reports.extras`). ``energy``: the basis of IPW and IPJ (``accelerator``, as
    the IPW paper, by default; ``system``, its old name ``total``, or ``above_idle``).
    ``compare``: add the comparison section (coverage, best-of-local) when there are 2+ runs.
    ``routing``: add the hybrid routing section (savings against a reference run); ``trend``: add
    the release-date trend section (:mod:`ipw.science.intelligence.routing`; both on the ``energy`` basis). A run they
    name that is not among the runs, or a missing price, is a
    :class:`~ipw.science.intelligence.routing.RoutingInputError`.
    """
    loaded = report_tables.load_runs(runs)
    summary = report_tables.summary_table(loaded, energy)
    sections: list[Section] = []
    if loaded:
        sections += [measured.overview(loaded, summary, energy),
                     measured.domains(report_tables.domain_table(loaded, energy), summary)]
        cmp = measured.compare(loaded, summary, energy) if compare else None
        sections += [cmp] if cmp else []
    if routing is not None:
        sections.append(measured.routing(loaded, routing, energy))
    if trend is not None:
        sections.append(measured.trend(loaded, trend, energy, summary))
    if loaded:
        sections += [measured.energy(loaded, energy, summary), measured.samples(loaded, energy)]
    sections += [load_extra(p) for p in extras]
    if loaded:
        sections.append(measured.provenance(loaded))
    if title is None:
        title = "ipw report: " + ", ".join(sorted({report_tables.model_name(r) for r in loaded.values()}) or ["science results"])
    return Report(title, loaded, tuple(sections), datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), energy)


def write_report(runs: Iterable[Path | str | Run], out: Path | str, **options) -> Path:
    """Build and write the HTML report; returns its path."""
    return build_report(runs, **options).write(out)
