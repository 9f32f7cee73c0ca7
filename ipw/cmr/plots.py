"""Thin aliases kept for the command line: the figures live in :mod:`ipw.reports.figures`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ipw.plotting import save_figure


def plot_analysis(result, path: str | Path) -> Path:
    """Write :func:`ipw.reports.figures.cmr_fit_figure` of an analysis to ``path``."""
    from ipw.cmr.results import CmrResults
    from ipw.reports.figures import cmr_fit_figure

    saved = CmrResults.from_analysis(result)
    return save_figure(cmr_fit_figure(saved.tables, saved.config.eps), path, dpi=110)


def plot_constants(constants: pd.DataFrame, tokens, token_unit: float, path: str | Path) -> Path:
    """Write :func:`ipw.reports.figures.cmr_constants_figure` to ``path``."""
    from ipw.reports.figures import cmr_constants_figure

    return save_figure(cmr_constants_figure(constants, tokens, token_unit), path, dpi=110)
