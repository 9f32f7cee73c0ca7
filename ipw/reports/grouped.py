"""Many runs grouped by model and hardware: the IPW paper's comparison as tables.

The IPW paper (arXiv 2511.07885, section 4) compares about 20 models on 8 accelerators: some 160
runs. A table of 160 rows, or a plot with 160 labelled points, cannot be read; what is read is a
grid, one row per model and one column per hardware, and each hardware's own accuracy-energy
frontier (a model is worth running on that machine when no other model on it is more accurate
for less energy). These functions arrange the report's summary table (:func:`ipw.reports.tables.summary_table`)
that way; they compute no metric.

Past :data:`MANY_RUNS` runs the report draws the grouped figures (:mod:`ipw.reports.grid_figures`)
and ``ipw compare`` prints the grids instead of one row per run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ipw.reports.tables import hardware_front

MANY_RUNS = 12
"""Past this many runs, figures aggregate and ``ipw compare`` prints grids: twelve labelled points,
bars or curves still read apart (matplotlib's default cycle has ten colours)."""

FRONT_MARK = "*"


def row_keys(summary: pd.DataFrame) -> list[str]:
    """The columns that name a grid row: ``model``, with ``engine`` where a model ran on one
    hardware with several engines, with ``run`` where even that repeats (so every cell is one run)."""
    for keys in (["model"], ["model", "engine"], ["model", "engine", "run"]):
        keys = [k for k in keys if k in summary]
        if not summary.duplicated(keys + ["hardware"]).any():
            return keys
    return ["run"]


def ordered(summary: pd.DataFrame) -> pd.DataFrame:
    """The runs ordered by hardware (as first given), then model (as first given): the order every
    grouped figure and table shows them in."""
    hw = {h: i for i, h in enumerate(dict.fromkeys(summary["hardware"]))}
    model = {m: i for i, m in enumerate(dict.fromkeys(summary["model"]))}
    key = np.lexsort((summary["model"].map(model).to_numpy(), summary["hardware"].map(hw).to_numpy()))
    return summary.iloc[key]


def grid(summary: pd.DataFrame, value: str) -> pd.DataFrame:
    """``value`` (a summary column: ``ipw_per_w``, ``accuracy``, ...) per model (rows, in the order
    first given) and hardware (columns, likewise); NaN where a model did not run on a hardware."""
    keys = row_keys(summary)
    table = summary.pivot_table(index=keys, columns="hardware", values=value, aggfunc="first", sort=False, dropna=False)
    table = table.reindex(columns=list(dict.fromkeys(summary["hardware"])))
    table.columns.name = None
    return table.reset_index()


def grid_text(summary: pd.DataFrame, value: str, digits: str = ".4g") -> pd.DataFrame:
    """:func:`grid` as text cells, each run on its hardware's frontier marked with
    :data:`FRONT_MARK`, a missing figure ``n/a`` (why: in the per-run table), a model that did not
    run on that hardware left empty."""
    from ipw.core.missing import NA, missing

    on_front = summary.assign(_front=hardware_front(summary))
    values = grid(on_front, value)
    fronts = grid(on_front.assign(_front=on_front["_front"].astype(float)), "_front")
    keys = row_keys(summary)
    ran = grid(on_front.assign(_ran=1.0), "_ran")
    out = values[keys].copy()
    for hw in values.columns[len(keys):]:
        out[hw] = [("" if r != 1.0 else NA if missing(v) else f"{v:{digits}}" + (FRONT_MARK if f == 1.0 else ""))
                   for v, f, r in zip(values[hw], fronts[hw], ran[hw])]
    return out
