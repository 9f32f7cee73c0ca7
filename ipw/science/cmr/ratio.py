"""Loss over the mixture ratio, the feasible region and the critical mixture ratio (CMR).

Paper Sec. 5.1: at a fixed budget T the losses follow ``L(R) = alpha * R^s + beta`` over the domain
share R. Definition 2 / Sec. 5.1: the ratios whose general-loss increase stays within the tolerance,
``A = {R : dL_gen(R, T) <= eps}``, and Definition 3: the CMR is the largest feasible ratio.

How the general loss depends on R here (the paper leaves this open): at budget T each measured ratio
R_i gives ``dL_gen(R_i, T)`` from its own token law (Eq. 6, :mod:`ipw.science.cmr.tokens`), and the power law
in R is fitted across those values. So R is interpolated by Sec. 5.1's law, T by Eq. 6's.

Feasibility: the paper's set F adds to A the condition that the Lagrangian objective has started to
fall (Eq. 5, 13). We use A, the tolerance constraint of Eq. 1 that the issue and the paper's
Sec. 5.1 use to compute the range; the Eq. 7 check is available per ratio as ``t0_eq7``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ipw.science.cmr.config import CmrConfig
from ipw.science.cmr.errors import InfeasibleToleranceError
from ipw.science.cmr.fitting import FitResult, fit_law
from ipw.science.cmr.laws import POWER
from ipw.science.cmr.tokens import TokenFits


@dataclass(frozen=True)
class Feasibility:
    """The feasible region at one budget T for one model, and its largest ratio, the CMR."""

    model: str
    t: float
    eps: float
    intervals: tuple[tuple[float, float], ...]
    cmr: float
    cmr_stderr: float
    saturated: bool  # every R up to 1 is feasible: the CMR is the end of the range, not a crossing
    extrapolated: bool  # the CMR lies outside the measured ratios

    def row(self) -> dict[str, object]:
        region = " U ".join(f"[{lo:.4f}, {hi:.4f}]" for lo, hi in self.intervals)
        return dict(model=self.model, T=self.t, eps=self.eps, feasible_region=region, cmr=self.cmr,
                    cmr_stderr=self.cmr_stderr, saturated=self.saturated, extrapolated=self.extrapolated)


def changes_at(fits: list[TokenFits], t: float, target: str) -> tuple[np.ndarray, np.ndarray]:
    """(ratios, predicted loss change at T = t) over one model's runs with R > 0."""
    use = [f for f in fits if f.ratio > 0]
    ratios = np.array([f.ratio for f in use])
    values = np.array([getattr(f, target).predict(t)[()] for f in use])
    return ratios, values


def fit_ratio_law(fits: list[TokenFits], t: float, target: str) -> FitResult:
    """Sec. 5.1: fit dL(R) = a * R^s + b across one model's ratios at budget T = t."""
    model = fits[0].model
    ratios, values = changes_at(fits, t, target)
    return fit_law(POWER, ratios, values, f"model {model!r}: {target} loss over R at T = {t:g}")


def feasible_region(law: FitResult, model: str, t: float, config: CmrConfig,
                    measured: tuple[float, float]) -> Feasibility:
    """Ratios with ``law(R) <= eps`` on [ratio_floor, 1], and the largest of them (the CMR).

    Raises :class:`InfeasibleToleranceError` (with the smallest achievable increase) when none is.
    """
    grid = np.linspace(config.ratio_floor, 1.0, config.ratio_grid)
    excess = law.predict(grid) - config.eps
    ok = excess <= 0
    if not ok.any():
        i = int(np.argmin(excess))
        raise InfeasibleToleranceError(config.eps, float(excess[i] + config.eps), float(grid[i]),
                                       f"model {model!r} at T = {t:g}")
    intervals = _intervals(grid, ok, lambda r: law.predict(r)[()] - config.eps)
    cmr = intervals[-1][1]
    saturated = bool(ok[-1])
    err = float("nan") if saturated else _cmr_stderr(law, cmr)
    outside = not (measured[0] - 1e-12 <= cmr <= measured[1] + 1e-12)
    return Feasibility(model, t, config.eps, intervals, cmr, err, saturated, outside)


def _intervals(grid: np.ndarray, ok: np.ndarray, f) -> tuple[tuple[float, float], ...]:
    """Runs of True in ``ok``, with each inner edge refined to the root of ``f``."""
    edges = np.flatnonzero(np.diff(ok.astype(int)))
    bounds = [grid[0]] if ok[0] else []
    for i in edges:
        bounds.append(float(brentq(f, grid[i], grid[i + 1])))
    if ok[-1]:
        bounds.append(grid[-1])
    return tuple((float(lo), float(hi)) for lo, hi in zip(bounds[::2], bounds[1::2]))


def _cmr_stderr(law: FitResult, cmr: float) -> float:
    """Delta method through the implicit equation law(R*; p) = eps: dR*/dp = -(df/dp) / (df/dR)."""
    a, s, _ = law.params
    dfdr = a * s * cmr ** (s - 1.0)
    if dfdr == 0:
        return float("nan")
    grad = np.array([law.param_gradient(np.array([cmr]), i)[0] for i in range(3)]) / -dfdr
    var = float(grad @ law.covariance() @ grad)
    return float(np.sqrt(max(var, 0.0)))
