import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from ipw.science.density import (
    DAYS_PER_MONTH, TooFewPointsError, doubling_time_months, fit_trend, fit_trend_split, frontier,
)
from ipw.science.density.data import load_open_models
from ipw.science.density.tables import densities_by_family

PAPER_DOUBLING_MONTHS = 3.3  # arXiv v1 abstract: "about three months"; A ~ 0.007/day


def test_a_of_0_007_per_day_doubles_in_about_3_3_months():
    months = doubling_time_months(0.007)
    assert months == pytest.approx(math.log(2) / 0.007 / DAYS_PER_MONTH)
    assert 3.2 < months < 3.35


def test_no_growth_has_no_doubling_time():
    assert doubling_time_months(0.0) == math.inf
    assert doubling_time_months(-0.001) == math.inf


def _synthetic(slope, n=25, start=date(2023, 1, 1), seed=0):
    rng = np.random.default_rng(seed)
    days = np.sort(rng.uniform(0, 700, n)).astype(int)
    dates = [start + timedelta(days=int(d)) for d in days]
    density = np.exp(slope * days - 1.0 + 0.05 * rng.standard_normal(n))
    return pd.DataFrame({"model": [f"m{i}" for i in range(n)], "release_date": dates, "density": density})


def test_trend_recovers_slope_from_noisy_points():
    fit = fit_trend(_synthetic(0.007), select="all")
    assert fit.slope_per_day == pytest.approx(0.007, rel=0.05)
    assert fit.r2 > 0.9
    assert fit.doubling_months == pytest.approx(doubling_time_months(fit.slope_per_day))


def test_frontier_keeps_only_running_records():
    frame = pd.DataFrame({
        "model": ["a", "b", "c", "d", "e"],
        "release_date": pd.to_datetime(["2023-01-01", "2023-01-01", "2023-03-01", "2023-05-01", "2023-07-01"]),
        "density": [1.0, 2.0, 1.5, 3.0, 2.9],
    })
    assert list(frontier(frame)["model"]) == ["b", "d"]


def test_split_at_cutoff_finds_faster_growth_after():
    before = _synthetic(0.003, start=date(2021, 1, 1), seed=1)
    before = before[pd.to_datetime(before["release_date"]) < pd.Timestamp(2022, 11, 30)]
    after = _synthetic(0.008, start=date(2022, 12, 1), seed=2)
    after["density"] *= before["density"].max() / after["density"].min()
    early, late = fit_trend_split(pd.concat([before, after]), date(2022, 11, 30), select="all")
    assert early.slope_per_day == pytest.approx(0.003, abs=3 * early.slope_stderr)
    assert late.slope_per_day == pytest.approx(0.008, abs=3 * late.slope_stderr)
    assert late.doubling_months < early.doubling_months


def test_too_few_points_for_a_trend():
    frame = _synthetic(0.007, n=2)
    with pytest.raises(TooFewPointsError, match="2 point"):
        fit_trend(frame, select="all")


def test_shipped_open_models_show_exponential_density_growth():
    """What the shipped table supports: growth clearly above zero, same order as the paper.

    With a Llama-1 MMLU ruler the frontier doubles in roughly 5-6 months (the paper: 3.3 with
    its own reference models and five benchmarks); docs/density.md says so.
    """
    frame, _ = densities_by_family(load_open_models(benchmark="MMLU"), "Llama-1")
    fit = fit_trend(frame, select="frontier")
    assert fit.slope_per_day > 3 * fit.slope_stderr
    assert fit.n_points >= 4 and fit.r2 > 0.8
    assert PAPER_DOUBLING_MONTHS / 2 < fit.doubling_months < PAPER_DOUBLING_MONTHS * 2
