"""The report's figures past :data:`ipw.reports.grouped.MANY_RUNS` runs: grouped by hardware, sized
by what they show.

At the IPW paper's scale (about 20 models on 8 accelerators, 160 runs) one point, bar or curve per
run with a legend entry each cannot be read, and matplotlib cannot lay such a figure out (it warned
that the tight layout could not be applied). Instead:

- :func:`frontier_panels`: accuracy against energy per query, one panel per hardware, each with its
  own Pareto frontier and the frontier's models named (the paper's per-accelerator comparison);
- :func:`domain_heatmap`: accuracy and energy per query per domain, one panel per domain, each a
  grid of models by hardware (one cell per run);
- :func:`energy_ranges`: each run's median energy per query and its 10th-90th percentile range, on
  the report's basis and above idle, one panel per hardware, one row per model.

Row labels are drawn once per row of panels (shared axes): tick labels are most of what such a
figure costs to lay out and draw.

Every figure is a ``matplotlib.figure.Figure`` built outside pyplot, as in :mod:`ipw.reports.run_figures`,
whose style and estimate labels it shares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from ipw.core import basis as basis_rule
from ipw.reports.grouped import row_keys
from ipw.reports.run_figures import STYLE, _scopes, _title
from ipw.reports.tables import ESTIMATE, hardware_front
from ipw.store import Run

ROW_IN = 0.13  # inches per run in a figure with one row per run: 6-point labels stay apart at 96 dpi
PANELS_PER_ROW = 4


def frontier_panels(summary: pd.DataFrame) -> Figure | None:
    """Accuracy (95% CI bars) against mean energy per query [J], one panel per hardware: the runs
    on it in grey, its Pareto frontier in red (a step line), each frontier run named by its model.
    The energy axis is logarithmic where a panel's energies span more than 20x."""
    s = summary.dropna(subset=["accuracy", "energy_j_mean"])
    if s.empty:
        return None
    hardware = list(dict.fromkeys(s["hardware"]))
    ncols = min(PANELS_PER_ROW, len(hardware))
    nrows = math.ceil(len(hardware) / ncols)
    fig, axes = _small_multiples(nrows, ncols, 3.8, 3.0)
    front = hardware_front(s)
    estimate = bool((s["energy"] == ESTIMATE).any()) if "energy" in s else True
    with mpl.rc_context(STYLE):
        for k, hw in enumerate(hardware):
            ax = axes[k // ncols][k % ncols]
            mine = (s["hardware"] == hw).to_numpy()
            part, on = s[mine], front[mine]
            x, y = part["energy_j_mean"].to_numpy(float), part["accuracy"].to_numpy(float)
            if {"accuracy_ci_low", "accuracy_ci_high"} <= set(part):
                err = np.vstack([y - part["accuracy_ci_low"].to_numpy(float), part["accuracy_ci_high"].to_numpy(float) - y])
                ax.errorbar(x, y, yerr=np.clip(np.nan_to_num(err), 0, None), fmt="none", ecolor="0.7", lw=0.8)
            ax.scatter(x[~on], y[~on], color="0.45", s=14, zorder=3)
            ax.scatter(x[on], y[on], color="C3", s=20, zorder=4)
            order = np.argsort(x[on])
            if on.sum() > 1:
                ax.step(x[on][order], y[on][order], where="post", color="C3", lw=1)
            for xi, yi, model in zip(x[on], y[on], part["model"].to_numpy()[on]):
                ax.annotate(str(model), (xi, yi), fontsize=6, xytext=(3, 3), textcoords="offset points")
            positive = x[x > 0]
            if len(positive) and positive.max() > 20 * positive.min():
                ax.set_xscale("log")
                _plain_log(ax.xaxis)
            kinds = part["energy"] if "energy" in part else pd.Series([ESTIMATE])
            ax.set(ylim=(-0.02, 1.05), title=_title(str(hw), bool((kinds == ESTIMATE).any())))
            ax.title.set_fontsize(8)
        for k in range(len(hardware), nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        fig.supxlabel(f"mean {_scopes(s)}energy per query [J]", fontsize=9)
        fig.supylabel("accuracy", fontsize=9)
        fig.suptitle(_title("Accuracy against energy per query per hardware; red: that hardware's Pareto frontier",
                            estimate), fontsize=10)
    return fig


def _plain_log(axis) -> None:
    """Log-scale tick labels as plain numbers (the style turns mathtext off, so matplotlib's
    ``10^{1}`` labels would print as their source text), without minor ticks."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())  # no minor ticks: each is an artist to lay out and draw, per panel


def _small_multiples(nrows: int, ncols: int, width: float, height: float) -> tuple[Figure, list[list]]:
    """Panels of ``width`` x ``height`` inches, with room for row labels and titles; the
    constrained layout places panels, colour bars and titles (it fits where the sizes allow, and
    these sizes grow with what is drawn). The panels share no axis: :func:`_outer_labels` gives
    ticks to the outer ones only (a shared axis keeps every panel's ticks, each an artist that the
    layout measures and the renderer draws: half of such a figure's time)."""
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(width * ncols + 1.8, height * nrows + 0.8), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [list(row) for row in axes]


def _outer_labels(axes: list[list], rows: list[str], columns: list[str] | None = None) -> None:
    """Row labels on the first column of panels, column labels (rotated) on the last row; no ticks
    on the inner sides; 6-point tick labels."""
    for i, line in enumerate(axes):
        for j, ax in enumerate(line):
            if j == 0:
                ax.set_yticks(np.arange(len(rows)), rows)
            else:
                ax.set_yticks([])
            if columns is not None and i == len(axes) - 1:
                ax.set_xticks(np.arange(len(columns)), columns, rotation=60, ha="right")
            elif columns is not None:
                ax.set_xticks([])
            ax.tick_params(labelsize=6)


def _row_labels(summary: pd.DataFrame) -> tuple[list[str], pd.Series]:
    """Grid rows (models, or model and engine: :func:`ipw.reports.grouped.row_keys`) in the order
    first given, and each run's row label."""
    keys = row_keys(summary)
    label = summary[keys].astype(str).agg(" | ".join, axis=1)
    return list(dict.fromkeys(label)), label


def domain_heatmap(domains: pd.DataFrame, summary: pd.DataFrame) -> Figure | None:
    """Accuracy (top) and mean energy per query [J] (bottom, one log colour scale) per domain: one
    panel per domain, each a grid of models (rows) by hardware (columns), one cell per run."""
    if domains.empty or "domain" not in domains or summary.empty:
        return None
    rows, label = _row_labels(summary)
    where = pd.DataFrame({"run": summary["run"], "row": label, "hardware": summary["hardware"]})
    d = domains.merge(where, on="run", how="inner")
    if d.empty:
        return None
    names = sorted(d["domain"].astype(str).unique())
    hardware = list(dict.fromkeys(summary["hardware"]))
    estimate = bool((d["energy"] == ESTIMATE).any()) if "energy" in d else True
    e = d["energy_j_mean"].to_numpy(float)
    positive = e[np.isfinite(e) & (e > 0)]
    norm = LogNorm(positive.min(), positive.max()) if len(positive) and positive.max() > positive.min() else None
    fig, axes = _small_multiples(2, len(names), 0.6 + 0.24 * len(hardware), 1.0 + ROW_IN * len(rows))
    with mpl.rc_context(STYLE):
        for j, domain in enumerate(names):
            part = d[d["domain"].astype(str) == domain]
            for i, (col, kw) in enumerate((("accuracy", {"cmap": "viridis", "vmin": 0, "vmax": 1}),
                                           ("energy_j_mean", {"cmap": "magma_r", "norm": norm}))):
                cells = part.pivot_table(index="row", columns="hardware", values=col, aggfunc="first")
                cells = cells.reindex(index=rows, columns=hardware).to_numpy(float)
                if col == "energy_j_mean":
                    cells = np.where(cells > 0, cells, np.nan)
                image = axes[i][j].imshow(cells, aspect="auto", interpolation="nearest", **kw)
                axes[i][j].grid(False)
                axes[i][j].set_title(domain if i == 0 else "", fontsize=8)
        fig.colorbar(axes[0][0].images[0], ax=axes[0], fraction=0.02, pad=0.01, label="accuracy")
        bar = fig.colorbar(image, ax=axes[1], fraction=0.02, pad=0.01, label=f"mean {_scopes(domains)}energy per query [J]")
        if norm is not None:
            bar.ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))  # a few labels within one decade too
            _plain_log(bar.ax.yaxis)
        _outer_labels(axes, rows, hardware)
        fig.suptitle(_title("Accuracy (top) and energy per query (bottom) per domain: models by hardware", estimate),
                     fontsize=10)
    return fig


def _ranges(runs: Mapping[str, Run], names: list[str], energy: str) -> np.ndarray:
    """Per run: 10th percentile, median, 90th percentile of energy per query [J] on ``energy``."""
    out = np.full((len(names), 3), np.nan)
    for i, name in enumerate(names):
        q = runs[name].queries
        if q.empty or "energy_j" not in q:
            continue
        v = basis_rule.frame_energy_j(q, energy).to_numpy(float)
        v = v[np.isfinite(v)]
        if len(v):
            out[i] = np.quantile(v, [0.1, 0.5, 0.9])
    return out


def energy_ranges(runs: Mapping[str, Run], summary: pd.DataFrame, energy: str = basis_rule.DEFAULT_BASIS) -> Figure | None:
    """Each run's energy per query [J]: median (dot) and 10th-90th percentile (bar), on the basis
    ``energy`` and (below it, orange) the system's above the idle baseline; one panel per hardware,
    one row per model, a shared logarithmic axis."""
    s = summary[summary["run"].isin(list(runs))]
    if s.empty:
        return None
    rows, label = _row_labels(s)
    hardware = list(dict.fromkeys(s["hardware"]))
    ncols = min(PANELS_PER_ROW, len(hardware))
    nrows = math.ceil(len(hardware) / ncols)
    fig, axes = _small_multiples(nrows, ncols, 3.4, 0.8 + ROW_IN * 1.6 * len(rows))
    where = dict(zip(rows, range(len(rows))))
    y = label.map(where).to_numpy(float)
    names = list(s["run"])
    estimate = {energy: bool((s["energy"] == ESTIMATE).any()) if "energy" in s else True,
                "above_idle": bool((s["system_energy"] == ESTIMATE).any()) if "system_energy" in s else True}
    ranges = {b: _ranges(runs, names, b) for b in (energy, "above_idle")}
    scope = _scopes(s)
    with mpl.rc_context(STYLE):
        for k, hw in enumerate(hardware):
            ax = axes[k // ncols][k % ncols]
            mine = (s["hardware"] == hw).to_numpy()
            for b, shift, color, what in ((energy, -0.15, "C0", f"{scope}energy"), ("above_idle", 0.15, "C1", "above idle")):
                r = ranges[b][mine]
                ax.hlines(y[mine] + shift, r[:, 0], r[:, 2], color=color, lw=1, alpha=0.6)
                ax.scatter(r[:, 1], y[mine] + shift, color=color, s=8, zorder=3,
                           label=_title(what, estimate[b]) if k == 0 else None)
            ax.set_title(str(hw), fontsize=8)
        both = np.concatenate([v.ravel() for v in ranges.values()])
        both = both[np.isfinite(both)]
        log = len(both) and both.min() > 0
        _outer_labels(axes, rows)
        for ax in (a for line in axes for a in line):
            ax.grid(False, axis="y")
            ax.hlines(np.arange(len(rows)), *(both.min(), both.max()) if len(both) else (0, 1), color="0.92", lw=0.6, zorder=0)
            ax.set_ylim(len(rows) - 0.5, -0.5)
            if log:  # one scale for every panel, as a shared axis would have
                ax.set_xscale("log")
                _plain_log(ax.xaxis)
            if len(both):
                ax.set_xlim(both.min() / (1.3 if log else 1), both.max() * (1.3 if log else 1))
        for k in range(len(hardware), nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        fig.legend(fontsize=7, loc="outside upper right")
        fig.supxlabel("energy per query [J]", fontsize=9)
        fig.suptitle("Energy per query per run: median (dot), 10th to 90th percentile (bar)", fontsize=10)
    return fig
