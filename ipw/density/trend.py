"""The densing law itself: ln(rho_max) = A*t + B over release dates (arXiv 2412.04315, Sec. 3).

Units: t in **days** since ``epoch`` (default 2023-01-01), A in **1/day**, B dimensionless
(ln of density at the epoch). Doubling time = ln 2 / A days; months = days / 30.4375 (the mean
Gregorian month, 365.25/12). So A = 0.007/day gives 99.0 days = 3.25 months, the paper's
"about 3.3 months" (arXiv v1); the journal version reports about 3.5 months on 51 models.

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

from ipw.density.fitting import Problem, check_enough, least_squares, r_squared, stderr_from_cov

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
    raise ValueError(f"select must be 'frontier' or 'all', got {select!r}")


def fit_trend(frame: pd.DataFrame, select: str = "frontier", epoch: date = DEFAULT_EPOCH) -> TrendFit:
    """Fit ln(rho) = A*t + B (Sec. 3) to a frame with ``release_date`` and ``density`` columns.

    Optional ``model`` column names the points used. Needs 3 selected points or more.
    """
    if (frame["density"] <= 0).any():
        raise ValueError("densities must be positive to take their logarithm")
    points = select_points(frame, select)
    check_enough(f"density trend ({select} points)", len(points), 2)
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
    """(before, after) trend fits split at ``cutoff`` (default: ChatGPT's release, 2022-11-30)."""
    when = pd.to_datetime(frame["release_date"])
    before = frame[when < pd.Timestamp(cutoff)]
    after = frame[when >= pd.Timestamp(cutoff)]
    return fit_trend(before, select), fit_trend(after, select)
