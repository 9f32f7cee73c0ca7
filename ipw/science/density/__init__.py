"""Densing Law of LLMs (Xiao et al., arXiv 2412.04315; Nature Machine Intelligence 2025).

Capacity density rho = N_hat / N, the effective parameter size N_hat read off a reference
model family's loss law and loss-to-score sigmoid, and the density trend over release dates.
Pure functions over numbers and pandas frames; :mod:`ipw.science.density.loss` is the one adapter that
runs a model (imported lazily, it needs torch and transformers). See docs/density.md.
"""

from ipw.science.density.errors import (
    BadValue, DensityError, EmptySide, FitFailedError, LossOutOfRange, NoGrowth,
    ScoreOutOfRange, TooFewPointsError,
)
from ipw.science.fitting import FitResult
from ipw.science.density.laws import (
    DEFAULT_D0_TOKENS, DensityLaws, fit_laws, fit_loss_law, fit_score_law, loss_for_score,
    loss_law, params_for_loss, score_law, score_range,
)
from ipw.science.density.price import PriceTrend, price_trend
from ipw.science.density.ruler import (
    BenchmarkRuler, FamilyRuler, densities_by_benchmarks, fit_benchmark_ruler, fit_family_ruler,
)
from ipw.science.density.trend import (
    CHATGPT_RELEASE, DAYS_PER_MONTH, TrendFit, doubling_time_days, doubling_time_months,
    fit_trend, fit_trend_split, frontier, require_growth, seed_sensitivity,
)

__all__ = [
    "BadValue", "BenchmarkRuler", "CHATGPT_RELEASE", "DAYS_PER_MONTH", "DEFAULT_D0_TOKENS",
    "DensityError", "DensityLaws", "EmptySide", "FamilyRuler", "FitFailedError", "FitResult",
    "LossOutOfRange", "NoGrowth", "PriceTrend", "ScoreOutOfRange", "TooFewPointsError", "TrendFit",
    "densities_by_benchmarks", "doubling_time_days", "doubling_time_months",
    "fit_benchmark_ruler", "fit_family_ruler", "fit_laws", "fit_loss_law", "fit_score_law",
    "fit_trend", "fit_trend_split", "frontier", "loss_for_score", "loss_law", "params_for_loss",
    "price_trend", "require_growth", "score_law", "score_range", "seed_sensitivity",
]
