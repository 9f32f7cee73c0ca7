"""The density package's use of the shared fitting helper (:mod:`ipw.fitting`).

:class:`Problem` bundles what to fit (model function, data, starting points, bounds);
:func:`least_squares` hands it to :func:`ipw.fitting.curve_fit_best` and returns (popt, pcov).
Results are the shared :class:`~ipw.fitting.FitResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from ipw.fitting import (
    CURVE_FIT, FitResult, as_cov, curve_fit_best, distinct_rows, finite_array, r_squared,
    require_points, require_variation, stderr_from_cov,
)

__all__ = [
    "CURVE_FIT", "FitResult", "Problem", "as_cov", "as_float_array", "check_enough",
    "distinct_rows", "least_squares", "r_squared", "require_variation", "stderr_from_cov",
]


@dataclass(frozen=True)
class Problem:
    """What to fit: the model function, the data and the starting points to try."""

    law: str
    func: Callable[..., np.ndarray]
    x: np.ndarray
    y: np.ndarray
    starts: Sequence[Sequence[float]]
    bounds: tuple[Sequence[float], Sequence[float]] | None = None


def check_enough(what: str, n_points: int, n_params: int, hint: str = "") -> None:
    """Raise :class:`~ipw.errors.TooFewPointsError` unless n_points > n_params (distinct points)."""
    require_points(what, n_points, n_params, hint)


def least_squares(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Best (lowest SSE) of the fits started from ``problem.starts``; (popt, pcov)."""
    popt, pcov, _ = curve_fit_best(problem.func, problem.x, problem.y, problem.starts,
                                   problem.law, problem.bounds)
    return popt, pcov


def as_float_array(values: Iterable[float], name: str) -> np.ndarray:
    """One-dimensional, finite floats (:class:`~ipw.errors.DegenerateDataError` otherwise)."""
    return finite_array(values, name)
