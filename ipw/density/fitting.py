"""Least-squares fitting shared by the loss law, the score law and the density trend.

One job: fit ``y = f(x, *theta)`` with :func:`scipy.optimize.curve_fit` from several starting
points, keep the best, and return a frozen :class:`FitResult` with standard errors from the
covariance matrix (``sqrt(diag(pcov))``, scipy's default scaling by the residual variance),
R^2 and residuals.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from ipw.density.errors import FitDidNotConverge, TooFewPoints


@dataclass(frozen=True)
class FitResult:
    """A fitted law: parameter values, their standard errors and the quality of the fit.

    ``names``/``values``/``stderr`` are parallel tuples; ``residuals`` = observed - predicted,
    in the units of the fitted quantity. ``r2`` = 1 - SS_res / SS_tot.
    """

    law: str
    names: tuple[str, ...]
    values: tuple[float, ...]
    stderr: tuple[float, ...]
    r2: float
    residuals: tuple[float, ...]
    n_points: int

    def __getitem__(self, name: str) -> float:
        return self.values[self.names.index(name)]

    def error(self, name: str) -> float:
        """Standard error of parameter ``name`` (same units as the parameter)."""
        return self.stderr[self.names.index(name)]

    @property
    def params(self) -> dict[str, float]:
        return dict(zip(self.names, self.values))

    @property
    def rmse(self) -> float:
        return float(np.sqrt(np.mean(np.square(self.residuals))))

    def to_dict(self) -> dict:
        return {
            "law": self.law, "params": self.params,
            "stderr": dict(zip(self.names, self.stderr)), "r2": self.r2,
            "rmse": self.rmse, "n_points": self.n_points, "residuals": list(self.residuals),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FitResult":
        names = tuple(data["params"])
        return cls(
            law=data["law"], names=names,
            values=tuple(float(data["params"][k]) for k in names),
            stderr=tuple(float(data["stderr"][k]) for k in names),
            r2=float(data["r2"]), residuals=tuple(float(r) for r in data.get("residuals", ())),
            n_points=int(data["n_points"]),
        )


@dataclass(frozen=True)
class Problem:
    """What to fit: the model function, the data and the starting points to try."""

    law: str
    func: Callable[..., np.ndarray]
    x: np.ndarray
    y: np.ndarray
    starts: Sequence[Sequence[float]]
    bounds: tuple[Sequence[float], Sequence[float]] | None = None


def check_enough(what: str, n_points: int, n_params: int) -> None:
    """Raise :class:`TooFewPoints` unless there are more points than free parameters."""
    if n_points <= n_params:
        raise TooFewPoints(what, n_points, n_params + 1)


def _one_start(problem: Problem, p0: Sequence[float]) -> tuple[np.ndarray, np.ndarray, float]:
    kwargs = {"p0": list(p0), "maxfev": 20000}
    if problem.bounds is not None:
        kwargs["bounds"] = problem.bounds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        popt, pcov = curve_fit(problem.func, problem.x, problem.y, **kwargs)
    sse = float(np.sum((problem.y - problem.func(problem.x, *popt)) ** 2))
    return popt, pcov, sse


def least_squares(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Best (lowest SSE) of the fits started from ``problem.starts``; (popt, pcov)."""
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    failures: list[str] = []
    for p0 in problem.starts:
        try:
            popt, pcov, sse = _one_start(problem, p0)
        except (RuntimeError, ValueError) as e:
            failures.append(str(e))
            continue
        if np.isfinite(sse) and (best is None or sse < best[2]):
            best = (popt, pcov, sse)
    if best is None:
        detail = failures[0] if failures else "no finite solution"
        raise FitDidNotConverge(
            f"{problem.law}: the least-squares fit did not converge from any of "
            f"{len(problem.starts)} starting points ({detail}). Check the data's units and "
            f"that it follows the law; more points or less noise help."
        )
    return best[0], best[1]


def r_squared(y: np.ndarray, predicted: np.ndarray) -> float:
    ss_res = float(np.sum((y - predicted) ** 2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def stderr_from_cov(pcov: np.ndarray) -> np.ndarray:
    """Standard errors from the covariance diagonal; ``inf`` where the fit cannot tell."""
    diag = np.diag(pcov).astype(float)
    return np.where(np.isfinite(diag) & (diag >= 0), np.sqrt(np.abs(diag)), np.inf)


def as_float_array(values: Iterable[float], name: str) -> np.ndarray:
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr
