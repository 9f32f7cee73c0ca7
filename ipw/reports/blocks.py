"""The one shape every part of a report takes, so that one renderer draws them all.

A provider (measured runs, comparison, provenance, Densing Law, Information Capacity, CMR) returns
a frozen :class:`Section`: a title, summary lines, tables (pandas), warnings and figures
(matplotlib). :mod:`ipw.reports.html` turns a list of them into one page; a notebook reads the
same objects (``section.tables[0].frame``, ``section.figures[0].figure``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure


@dataclass(frozen=True)
class Table:
    caption: str
    frame: pd.DataFrame
    note: str = ""


@dataclass(frozen=True)
class Plot:
    caption: str
    figure: Figure


@dataclass(frozen=True)
class Section:
    title: str
    summary: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    warnings: tuple[str, ...] = ()
    figures: tuple[Plot, ...] = ()
    intro: str = ""
    key: str = field(default="")  # anchor id in the page; derived from the title when empty

    @property
    def anchor(self) -> str:
        text = self.key or self.title
        return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "section"


def plots(*pairs: tuple[str, Figure | None]) -> tuple[Plot, ...]:
    """Plots for the figures that exist (a plot function returns None when it has nothing to draw)."""
    return tuple(Plot(caption, fig) for caption, fig in pairs if fig is not None)
