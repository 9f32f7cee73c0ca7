"""The release-date trend of the IPW paper (Saad-Falcon, Narayan et al., "Intelligence per Watt",
arXiv 2511.07885), computed from runs over the same queries.

**Release-date trend** (the paper: IPW up 5.3x from 2023 to 2025, locally answerable share from
23.2% to 71.3%): per period (year, or each release date), among the runs whose model was released
by the period's end, the best accuracy (the paper's "coverage": its 23.2% -> 71.3% is the best
local model's win/tie rate, 3.1x, the factor the paper credits to models), the best IPW [1/W], and
the union coverage (share of common queries some available model answers). The ratio of the last
period's best IPW to the first's is the trend's IPW gain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from ipw.core.records import Col
from ipw.science.intelligence.metrics import DEFAULT_ENERGY, accuracy, ipj, ipw, query_energy_j, query_span_s, scored_rows
from ipw.science.intelligence.routing import RoutingInputError


def parse_date(text: str | date) -> pd.Timestamp:
    try:
        return pd.Timestamp(text).normalize()
    except (ValueError, TypeError) as e:
        raise RoutingInputError(f"release date {text!r}: expected YYYY-MM-DD") from e


# -- aligning runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """Best available model per period. ``table``: one row per period with ``as_of`` (period end),
    ``models`` available, ``best_accuracy`` and its run, ``best_ipw_per_w`` [1/W] and its run,
    ``union_coverage``; first/last period and the gains between them."""

    table: pd.DataFrame
    first: str
    last: str
    accuracy_first: float
    accuracy_last: float
    ipw_first: float
    ipw_last: float
    union_coverage_first: float
    union_coverage_last: float

    @property
    def ipw_ratio(self) -> float:
        return self.ipw_last / self.ipw_first if self.ipw_first > 0 else float("nan")

    @property
    def accuracy_ratio(self) -> float:
        return self.accuracy_last / self.accuracy_first if self.accuracy_first > 0 else float("nan")


def model_points(runs: Mapping[str, pd.DataFrame], release_dates: Mapping[str, str | date] | None = None,
                 energy: str = DEFAULT_ENERGY, ipw_per_w: Mapping[str, float] | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per run: ``run``, ``release_date`` (from ``release_dates`` or the frame's constant
    ``release_date`` column), ``scored``, ``accuracy``, ``ipw_per_w`` [1/W], ``ipj_per_j`` [1/J]
    (:mod:`ipw.science.intelligence.metrics`: accuracy over mean per-query power and energy of the scored queries).

    ``ipw_per_w``: each run's IPW [1/W] as its summary gives it, used instead of the per-query
    definition where given. A run served with several queries in flight has its IPW over the
    device's power while serving (the summary's ``ipw_per_w``), not over the mean of per-query
    attributed powers, which grows with the number in flight; the trend then shows the same
    figure as the table of runs beside it."""
    release_dates = release_dates or {}
    unknown = [k for k in release_dates if k not in runs]
    if unknown:
        raise RoutingInputError(f"release date given for {', '.join(unknown)}, not among the runs ({', '.join(runs)})")
    rows = []
    for name, frame in runs.items():
        if name in release_dates:
            when = parse_date(release_dates[name])
        elif "release_date" in frame and frame["release_date"].notna().any():
            vals = frame["release_date"].dropna().unique()
            if len(vals) > 1:
                raise RoutingInputError(f"run {name} has {len(vals)} different release dates in its release_date column")
            when = parse_date(vals[0])
        else:
            raise RoutingInputError(f"run {name} has no release date; give one for every run (RUN=YYYY-MM-DD)")
        s = scored_rows(frame)
        e = query_energy_j(s, energy)
        if e.isna().any():
            raise RoutingInputError(f"run {name}: {int(e.isna().sum())} of {len(e)} scored queries have no {energy} energy")
        acc = accuracy(s[Col.CORRECT])
        with np.errstate(divide="ignore", invalid="ignore"):
            power = (e / query_span_s(s)).mean()
        if ipw_per_w is not None and name in ipw_per_w:  # None (n/a in the summary) stays n/a
            run_ipw = float("nan") if ipw_per_w[name] is None else float(ipw_per_w[name])
        else:
            run_ipw = ipw(acc, float(power)) if len(s) else float("nan")
        rows.append({"run": name, "release_date": when, "scored": len(s), Col.ACCURACY: acc, Col.IPW: run_ipw,
                     Col.IPJ: ipj(acc, float(e.mean())) if len(s) else float("nan")})  # fmt: skip
    return pd.DataFrame(rows)


def _union_coverage(correct: pd.DataFrame | None, names: list[str]) -> float:
    if correct is None:
        return float("nan")
    return float(correct[names].any(axis=1).mean())


def release_trend(points: pd.DataFrame, runs: Mapping[str, pd.DataFrame] | None = None, by: str = "year") -> Trend:
    """The trend of the best available model over release dates. ``points``: :func:`model_points`
    (columns run, release_date, accuracy, ipw_per_w); ``runs`` (optional): the query frames, for the
    union coverage over the queries every run scored; ``by``: ``"year"`` (models released by 31
    December) or ``"date"`` (each release date)."""
    if points.empty:
        raise RoutingInputError("no runs to build a release-date trend from")
    if by not in ("year", "date"):
        raise RoutingInputError(f"trend periods by {by!r}: choose year or date")
    pts = points.assign(release_date=points["release_date"].map(parse_date)).sort_values("release_date", kind="stable")
    correct = None
    if runs is not None:
        scored = {n: scored_rows(runs[n]).drop_duplicates(Col.ID, keep="last").set_index(Col.ID) for n in pts["run"]}
        common = sorted(set.intersection(*(set(f.index) for f in scored.values())))
        if not common:
            raise RoutingInputError("the runs share no query id that every run scored; union coverage needs the same query set")
        correct = pd.DataFrame({n: f.loc[common, Col.CORRECT].astype(bool) for n, f in scored.items()})
    if by == "year":
        periods = [(str(y), pd.Timestamp(year=y, month=12, day=31)) for y in sorted(pts["release_date"].dt.year.unique())]
    else:
        periods = [(d.strftime("%Y-%m-%d"), d) for d in sorted(pts["release_date"].unique())]
        periods = [(label, pd.Timestamp(d)) for label, d in periods]
    rows = []
    for label, end in periods:
        avail = pts[pts["release_date"] <= end]
        ba = avail.loc[avail[Col.ACCURACY].idxmax()] if avail[Col.ACCURACY].notna().any() else None
        bi = avail.loc[avail[Col.IPW].idxmax()] if avail[Col.IPW].notna().any() else None
        rows.append({"period": label, "as_of": end.date(), "models": len(avail),
                     "best_accuracy": float(ba[Col.ACCURACY]) if ba is not None else float("nan"),
                     "best_accuracy_run": ba["run"] if ba is not None else None,
                     "best_ipw_per_w": float(bi[Col.IPW]) if bi is not None else float("nan"),
                     "best_ipw_run": bi["run"] if bi is not None else None,
                     "union_coverage": _union_coverage(correct, list(avail["run"]))})  # fmt: skip
    table = pd.DataFrame(rows)
    f, last = table.iloc[0], table.iloc[-1]
    return Trend(table, f["period"], last["period"], f["best_accuracy"], last["best_accuracy"], f["best_ipw_per_w"],
                 last["best_ipw_per_w"], f["union_coverage"], last["union_coverage"])  # fmt: skip


# -- the paper's published figures -----------------------------------------------------------------
