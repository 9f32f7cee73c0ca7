"""One least-squares helper for the science packages (density, cmr): one result shape, one fitter.

* :class:`FitResult`: a fitted law's parameter values (``params``, addressable by position and by
  name), standard errors, covariance matrix, R^2, residuals (observed - predicted, in the fitted
  quantity's unit), the number of points and a note of the method.
* :func:`curve_fit_best`: :func:`scipy.optimize.curve_fit` from several starting points, keeping
  the lowest sum of squared residuals; :class:`~ipw.core.errors.FitFailedError` when none converges.
* :func:`require_points` / :func:`require_variation`: refuse fits that cannot say anything, with
  :class:`~ipw.core.errors.TooFewPointsError` (no more *distinct* points than free parameters: ten
  identical rows are one point) and :class:`~ipw.core.errors.DegenerateDataError` (a constant target).

Standard errors are ``sqrt(diag(pcov))`` with scipy's default scaling of the covariance by the
residual variance SSE / (n - p); ``inf`` where the covariance cannot tell (a parameter the data do
not determine). They are local, linearised estimates.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from ipw.core.errors import DegenerateDataError, FitFailedError, TooFewPointsError

CURVE_FIT = "scipy.optimize.curve_fit (least squares), best of {n} starts, covariance scaled by SSE/(n-p)"


class Params(tuple):
    """Fitted values in order, also addressable by name: ``p[0]``, ``p["alpha"]``, ``loss_law(**p)``.

    Iterating gives the values (``a, s, b = fit.params``); ``keys()``/``items()`` give the names,
    so ``**fit.params`` passes them as keyword arguments. Equal to a mapping with the same
    name -> value pairs, and to a sequence with the same values.
    """

    names: tuple[str, ...]

    def __new__(cls, names: Iterable[str], values: Iterable[float]) -> "Params":
        values = tuple(float(v) for v in values)
        names = tuple(names)
        if len(names) != len(values):
            raise ValueError(f"{len(names)} names for {len(values)} values")
        obj = super().__new__(cls, values)
        obj.names = names
        return obj

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self.names.index(key))
            except ValueError:
                raise KeyError(key) from None
        return tuple.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:  # type: ignore[override]
        return key in self.names if isinstance(key, str) else tuple.__contains__(self, key)

    def keys(self) -> tuple[str, ...]:
        return self.names

    def items(self) -> list[tuple[str, float]]:
        return list(zip(self.names, self))

    def get(self, key: str, default: float | None = None) -> float | None:
        return self[key] if key in self.names else default

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.as_dict() == dict(other)
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__

    def __reduce__(self):
        return (Params, (self.names, tuple(self)))

    def __repr__(self) -> str:
        return "Params(" + ", ".join(f"{k}={v:.6g}" for k, v in self.items()) + ")"


@dataclass(frozen=True)
class FitResult:
    """A fitted law: values, standard errors, covariance, R^2, residuals, n and method.

    ``names``/``values``/``stderr`` are parallel tuples; ``cov`` the covariance matrix as nested
    tuples (empty when unknown, e.g. for constants read from a paper); ``residuals`` are
    observed - predicted in the unit of the fitted quantity; ``r2`` = 1 - SS_res / SS_tot.
    """

    law: str
    names: tuple[str, ...]
    values: tuple[float, ...]
    stderr: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...] = field(default=(), repr=False)
    r2: float = float("nan")
    residuals: tuple[float, ...] = field(default=(), repr=False)
    n_points: int = 0
    method: str = ""

    @classmethod
    def exact(cls, law: str, params: Mapping[str, float], method: str = "given") -> "FitResult":
        """Known constants (zero uncertainty): for tests and for published laws."""
        names = tuple(params)
        return cls(law, names, tuple(float(params[k]) for k in names), (0.0,) * len(names),
                   method=method)

    @property
    def params(self) -> Params:
        return Params(self.names, self.values)

    @property
    def p(self) -> dict[str, float]:
        return dict(zip(self.names, self.values))

    def __getitem__(self, name: str) -> float:
        return self.values[self.names.index(name)]

    def error(self, name: str) -> float:
        """Standard error of parameter ``name`` (same units as the parameter)."""
        return self.stderr[self.names.index(name)]

    @property
    def dof(self) -> int:
        """Residual degrees of freedom n - p."""
        return self.n_points - len(self.values)

    @property
    def mse(self) -> float:
        return float(np.mean(np.square(self.residuals))) if self.residuals else float("nan")

    @property
    def rmse(self) -> float:
        return math.sqrt(self.mse) if self.residuals else float("nan")

    def covariance(self) -> np.ndarray:
        if not self.cov:
            return np.diag(np.square(np.asarray(self.stderr, dtype=float)))
        return np.array(self.cov, dtype=float)

    def correlation(self) -> np.ndarray:
        c = self.covariance()
        d = np.sqrt(np.clip(np.diag(c), 1e-300, None))
        return c / np.outer(d, d)

    def predict_with(self, func: Callable[..., np.ndarray], x) -> np.ndarray:
        return func(x, *self.values)

    def predict_stderr_with(self, func: Callable[..., np.ndarray], x) -> np.ndarray:
        """Delta-method standard error of ``func(x, *values)`` (central-difference gradient)."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        grad = np.stack([self.gradient_with(func, x, i) for i in range(len(self.values))], axis=-1)
        var = np.einsum("ni,ij,nj->n", grad, self.covariance(), grad)
        return np.sqrt(np.clip(var, 0.0, None))

    def gradient_with(self, func: Callable[..., np.ndarray], x, i: int) -> np.ndarray:
        """d func / d values[i] at x (central difference)."""
        h = 1e-6 * max(1.0, abs(self.values[i]))
        up, dn = list(self.values), list(self.values)
        up[i] += h
        dn[i] -= h
        return (func(x, *up) - func(x, *dn)) / (2 * h)

    def row(self, **extra: object) -> dict[str, object]:
        """One flat dict: params, ``<name>_stderr``, r2, mse, n_points (for DataFrames)."""
        out: dict[str, object] = dict(extra)
        out["law"] = self.law
        for name, val, err in zip(self.names, self.values, self.stderr):
            out[name] = val
            out[f"{name}_stderr"] = err
        out.update(r2=self.r2, mse=self.mse, n_points=self.n_points)
        return out

    def to_dict(self) -> dict:
        return {
            "law": self.law, "params": self.p, "stderr": dict(zip(self.names, self.stderr)),
            "cov": [list(r) for r in self.cov], "r2": self.r2, "rmse": self.rmse,
            "n_points": self.n_points, "residuals": list(self.residuals), "method": self.method,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "FitResult":
        names = tuple(data["params"])
        return cls(
            law=str(data["law"]), names=names,
            values=tuple(float(data["params"][k]) for k in names),
            stderr=tuple(float(data["stderr"][k]) for k in names),
            cov=tuple(tuple(float(v) for v in r) for r in data.get("cov", ())),
            r2=float(data.get("r2", float("nan"))),
            residuals=tuple(float(r) for r in data.get("residuals", ())),
            n_points=int(data.get("n_points", 0)), method=str(data.get("method", "")),
        )


def require_points(what: str, n_distinct: int, n_params: int, hint: str = "") -> None:
    """Refuse a fit unless it has more distinct points than free parameters."""
    if n_distinct <= n_params:
        raise TooFewPointsError(what, n_distinct, n_params + 1, hint)


def distinct_rows(*columns: np.ndarray) -> int:
    """How many distinct rows the columns form (ten identical rows are one point)."""
    stacked = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    return int(len(np.unique(stacked, axis=0)))


def require_variation(what: str, y: np.ndarray, name: str) -> None:
    """Refuse a fit to a target that does not vary: no law can be told from a constant."""
    y = np.asarray(y, dtype=float)
    if y.size and float(np.ptp(y)) <= 1e-12 * max(1.0, float(np.max(np.abs(y)))):
        raise DegenerateDataError(
            f"{what}: every {name} is {y[0]:g}; a law cannot be fitted to a constant "
            f"(the fit would report meaningless standard errors). Supply points that differ.")


def finite_array(values: Iterable[float], name: str) -> np.ndarray:
    """A one-dimensional float array with only finite values, or :class:`DegenerateDataError`."""
    try:
        arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float)
    except (TypeError, ValueError) as e:
        raise DegenerateDataError(f"{name} must be numbers ({e})") from e
    if arr.ndim != 1:
        raise DegenerateDataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DegenerateDataError(f"{name} contains NaN or infinite values (first at index "
                                  f"{int(np.flatnonzero(bad)[0])})")
    return arr


def curve_fit_best(
    func: Callable[..., np.ndarray], x, y: np.ndarray, starts: Sequence[Sequence[float]],
    what: str, bounds: tuple[Sequence[float], Sequence[float]] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit ``y = func(x, *theta)`` from each start; the best (lowest SSE) as (popt, pcov, sse).

    Starts that fail (scipy raises, or the SSE is not finite) are skipped; when all fail,
    :class:`~ipw.core.errors.FitFailedError` names ``what`` and the first failure.
    """
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    failures: list[str] = []
    kwargs: dict = {"maxfev": 20000}
    if bounds is not None:
        kwargs["bounds"] = bounds
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                popt, pcov = curve_fit(func, x, y, p0=list(p0), **kwargs)
                sse = float(np.sum((y - func(x, *popt)) ** 2))
        except (RuntimeError, ValueError, FloatingPointError) as e:
            failures.append(str(e))
            continue
        if np.isfinite(sse) and (best is None or sse < best[2]):
            best = (popt, pcov, sse)
        elif not np.isfinite(sse):
            failures.append("the residuals are not finite")
    if best is None:
        detail = failures[0] if failures else "no finite solution"
        raise FitFailedError(
            f"{what}: the least-squares fit did not converge from any of {len(starts)} starting "
            f"points ({detail}). Check the data's units and that it follows the law; more points "
            f"or less noise help.")
    return best


def r_squared(y: np.ndarray, predicted: np.ndarray) -> float:
    """1 - SS_res / SS_tot; NaN when y is constant."""
    ss_res = float(np.sum((y - predicted) ** 2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def stderr_from_cov(pcov: np.ndarray) -> np.ndarray:
    """Standard errors from the covariance diagonal; ``inf`` where the fit cannot tell."""
    diag = np.diag(np.asarray(pcov, dtype=float))
    return np.where(np.isfinite(diag) & (diag >= 0), np.sqrt(np.abs(diag)), np.inf)


def as_cov(pcov: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(pcov, dtype=float))


@dataclass(frozen=True)
class Problem:
    """What to fit: the model function, the data and the starting points to try."""

    law: str
    func: Callable[..., np.ndarray]
    x: np.ndarray
    y: np.ndarray
    starts: Sequence[Sequence[float]]
    bounds: tuple[Sequence[float], Sequence[float]] | None = None


def least_squares(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Best (lowest SSE) of the fits started from ``problem.starts``; (popt, pcov)."""
    popt, pcov, _ = curve_fit_best(problem.func, problem.x, problem.y, problem.starts, problem.law, problem.bounds)
    return popt, pcov
