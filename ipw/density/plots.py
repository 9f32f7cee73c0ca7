"""Thin aliases kept while older callers move: the figures live in :mod:`ipw.reports.figures`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_fit(frame: pd.DataFrame, loss_fit, score_fit, path: Path | str, score_points=None) -> Path:
    """Write :func:`ipw.reports.figures.density_fit_figure` to ``path``."""
    from ipw.plotting import save_figure
    from ipw.reports.figures import density_fit_figure

    return save_figure(density_fit_figure(frame, loss_fit, score_fit, score_points), path)


def plot_trend(frame: pd.DataFrame, fits: dict, path: Path | str) -> Path:
    """Write :func:`ipw.reports.figures.density_trend_figure` to ``path``."""
    from ipw.plotting import save_figure
    from ipw.reports.figures import density_trend_figure

    return save_figure(density_trend_figure(frame, fits), path)
