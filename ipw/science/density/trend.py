"""The densing law itself: ln(rho_max) = A*t + B over release dates (arXiv 2412.04315v2, Sec. 3.3).

Units: t in **days** since ``epoch`` (default 2023-01-01), A in **1/day**, B dimensionless
(ln of density at the epoch). Doubling time = ln 2 / A days; months = days / 30.4375 (the mean
Gregorian month, 365.25/12). So A = 0.007/day gives 99.0 days = 3.25 months, the paper's
"about 3.3 months". The arXiv v2 fit is A ~ 0.0073/day (95 days, R^2 0.912, 29 models); before
ChatGPT A ~ 0.0048/day (144 days) against 0.0073 after. The journal version reports about 3.5
months on 51 models.

Ambiguities resolved here (see docs/density.md):

* Which models count as rho_max. The paper fits the trend of the *maximum* density over time.
  ``select="frontier"`` (default) keeps a model only if its density beats every model released
  before it (a running record; ties on one date keep the densest). ``select="all"`` fits every
  model, which estimates the average trend instead.
* Before/after a cut-off (the paper's ChatGPT finding; ChatGPT was released 2022-11-30): the
  data are split at the cut-off first (models released on the cut-off day go "after"), then the
  frontier is taken within each part, so a period's records are judged against that period only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from ipw.science.density.errors import BadValue, EmptySide, NoGrowth
from ipw.science.fitting import (
    Problem, require_points, distinct_rows, least_squares, r_squared, stderr_from_cov,
)
from ipw.core.errors import IpwError

DAYS_PER_MONTH = 365.25 / 12
DEFAULT_EPOCH = date(2023, 1, 1)
CHATGPT_RELEASE = date(2022, 11, 30)


def doubling_time_days(slope_per_day: float) -> float:
    """ln 2 / A, in days; ``inf`` when density does not grow (A <= 0)."""
    return math.log(2.0) / slope_per_day if slope_per_day > 0 else math.inf


def doubling_time_months(slope_per_day: float) -> float:
    """ln 2 / A converted to months of 30.4375 days."""
    return doubling_time_days(slope_per_day) / DAYS_PER_MONTH


@dataclass(frozen=True)
class TrendFit:
    """ln(rho) = A*t + B with t = days since ``epoch``; stderr from the fit's covariance."""

    slope_per_day: float
    intercept: float
    slope_stderr: float
    intercept_stderr: float
    r2: float
    n_points: int
    epoch: date
    models: tuple[str, ...]
    residuals: tuple[float, ...]

    @property
    def doubling_days(self) -> float:
        return doubling_time_days(self.slope_per_day)

    @property
    def doubling_months(self) -> float:
        return doubling_time_months(self.slope_per_day)

    @property
    def doubling_months_stderr(self) -> float:
        """Delta method: se(T) = ln2 * se(A) / A^2, in months."""
        a = self.slope_per_day
        return math.log(2.0) * self.slope_stderr / a**2 / DAYS_PER_MONTH if a > 0 else math.inf

    def to_dict(self) -> dict:
        return {
            "A_per_day": self.slope_per_day, "A_stderr": self.slope_stderr,
            "B": self.intercept, "B_stderr": self.intercept_stderr, "r2": self.r2,
            "n_points": self.n_points, "epoch": self.epoch.isoformat(),
            "doubling_days": self.doubling_days, "doubling_months": self.doubling_months,
            "doubling_months_stderr": self.doubling_months_stderr, "models": list(self.models),
        }


def _line(t, a, b):
    return a * t + b


def days_since(dates: pd.Series, epoch: date) -> np.ndarray:
    return ((pd.to_datetime(dates) - pd.Timestamp(epoch)).dt.days).to_numpy(dtype=float)


def frontier(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose density beats every earlier release: the running-record rho_max set."""
    ordered = frame.sort_values(["release_date", "density"], ascending=[True, False])
    best_per_day = ordered.drop_duplicates("release_date", keep="first")
    records = best_per_day["density"] > best_per_day["density"].cummax().shift(fill_value=-np.inf)
    return best_per_day[records.to_numpy()]


def select_points(frame: pd.DataFrame, select: str) -> pd.DataFrame:
    if select == "frontier":
        return frontier(frame)
    if select == "all":
        return frame.sort_values("release_date")
    raise BadValue(f"select must be 'frontier' or 'all', got {select!r}")


def fit_trend(
    frame: pd.DataFrame, select: str = "frontier", epoch: date = DEFAULT_EPOCH, label: str = "",
) -> TrendFit:
    """Fit ln(rho) = A*t + B (Sec. 3.3) to a frame with ``release_date`` and ``density`` columns.

    Optional ``model`` column names the points used. Needs 3 selected points on distinct dates.
    """
    density = pd.to_numeric(frame["density"], errors="coerce")
    bad = ~(np.isfinite(density.to_numpy(dtype=float)) & (density.to_numpy(dtype=float) > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        who = f" ({frame['model'].iloc[i]})" if "model" in frame else ""
        raise BadValue(f"density of row {i}{who} is {frame['density'].iloc[i]!r}: densities must be "
                       f"positive numbers to take their logarithm")
    points = select_points(frame, select)
    what = f"density trend{' ' + label if label else ''} ({select} points)"
    require_points(what, distinct_rows(days_since(points["release_date"], epoch)) if len(points) else 0, 2)
    t = days_since(points["release_date"], epoch)
    y = np.log(points["density"].to_numpy(dtype=float))
    popt, pcov = least_squares(Problem("density trend", _line, t, y, [[0.0, float(np.mean(y))]]))
    se = stderr_from_cov(pcov)
    names = points["model"] if "model" in points else pd.Series(range(len(points))).astype(str)
    return TrendFit(
        slope_per_day=float(popt[0]), intercept=float(popt[1]),
        slope_stderr=float(se[0]), intercept_stderr=float(se[1]),
        r2=r_squared(y, _line(t, *popt)), n_points=len(points), epoch=epoch,
        models=tuple(map(str, names)), residuals=tuple(map(float, y - _line(t, *popt))),
    )


def fit_trend_split(
    frame: pd.DataFrame, cutoff: date = CHATGPT_RELEASE, select: str = "frontier",
) -> tuple[TrendFit, TrendFit]:
    """(before, after) trend fits split at ``cutoff`` (default: ChatGPT's release, 2022-11-30).

    A side with no model raises :class:`~ipw.science.density.errors.EmptySide` naming that side.
    """
    when = pd.to_datetime(frame["release_date"])
    before = frame[when < pd.Timestamp(cutoff)]
    after = frame[when >= pd.Timestamp(cutoff)]
    if before.empty:
        raise EmptySide("before", cutoff, len(after))
    if after.empty:
        raise EmptySide("after", cutoff, len(before))
    return (fit_trend(before, select, label=f"before {cutoff}"),
            fit_trend(after, select, label=f"from {cutoff}"))


def require_growth(fit: TrendFit, label: str = "density trend") -> TrendFit:
    """The fit itself, or :class:`~ipw.science.density.errors.NoGrowth` when A <= 0 (no doubling time)."""
    if not (math.isfinite(fit.slope_per_day) and fit.slope_per_day > 0):
        raise NoGrowth(
            f"{label}: A = {fit.slope_per_day:.3g} +/- {fit.slope_stderr:.2g} per day over "
            f"{fit.n_points} points: density does not grow, so there is no doubling time "
            f"(ln 2 / A is not finite). More models, a longer span or --select all may help.")
    return fit


def seed_sensitivity(frame: pd.DataFrame, n_seeds: int = 4, epoch: date = DEFAULT_EPOCH) -> pd.DataFrame:
    """How the frontier trend moves with its seed point (the first running record).

    Seed k drops every model released before the k-th frontier model, then refits the frontier
    (so the k-th model starts the running record). One row per seed: the seed model and date, A,
    its standard error, the doubling time in months, R^2 and the number of frontier points.
    Seeds that leave fewer than 3 frontier points are omitted.
    """
    first = frontier(frame)
    rows = []
    for k in range(min(n_seeds, len(first))):
        seed = first.iloc[k]
        later = frame[pd.to_datetime(frame["release_date"]) >= pd.Timestamp(seed["release_date"])]
        try:
            fit = fit_trend(later, "frontier", epoch)
        except IpwError:
            continue
        rows.append({"seed": str(seed.get("model", k)), "seed_date": pd.Timestamp(seed["release_date"]).date(),
                     "A_per_day": fit.slope_per_day, "A_stderr": fit.slope_stderr,
                     "doubling_months": fit.doubling_months, "r2": fit.r2, "n_points": fit.n_points})
    return pd.DataFrame(rows)
