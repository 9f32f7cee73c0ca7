"""Least-squares fits of the power laws in :mod:`ipw.science.cmr.laws`, with honest uncertainties.

How a fit is done (the paper, App. B.3, says only that it fits power laws; these choices are ours):

* x is rescaled by its geometric mean before fitting and the coefficients are mapped back
  (``a * (x/x0)^s == (a * x0^-s) * x^s``), so T in raw tokens and T in 0.2B units fit equally well.
* Starting points: for fixed exponents every law here is linear in its coefficients, so a grid of
  exponents is scanned with a linear solve at each, and the best few seed ``scipy.optimize.curve_fit``.
* Uncertainties are the square roots of the covariance diagonal from ``curve_fit`` (residual
  variance SSE / (n - p), Gauss-Newton), mapped through the rescaling Jacobian. A fit with as many
  points as parameters has no uncertainty, so fits need ``n >= p + 1``
  (:class:`~ipw.core.errors.TooFewPointsError`). Power-law fits on 4 or 5 points are ill-conditioned:
  the coefficient and constant are strongly correlated (see ``correlation``), and the covariance is
  a local, linearised estimate; :func:`leave_one_out` gives a second, model-free spread.
"""

from __future__ import annotations

import itertools

import numpy as np

from ipw.core.errors import FitFailedError, TooFewPointsError
from ipw.science.cmr.laws import LAWS, Law
from ipw.science.fitting import CURVE_FIT, as_cov, curve_fit_best, r_squared
from ipw.science.fitting import FitResult as _SharedFitResult

_EXPONENT_GRID = (-2.0, -1.0, -0.6, -0.3, -0.15, 0.15, 0.3, 0.6, 1.0, 1.5, 2.0)
_EXPONENT_BOUND = 5.0
_SEEDS = 4


class FitResult(_SharedFitResult):
    """The shared :class:`ipw.science.fitting.FitResult`, bound to its law in :data:`ipw.science.cmr.laws.LAWS`.

    Same fields (``params`` iterates the values, ``p`` maps names to values, ``cov``, ``r2``,
    ``residuals`` observed - predicted, ``n_points``, ``method``); adds predictions.
    """

    def predict(self, x: np.ndarray | float) -> np.ndarray:
        return self.predict_with(LAWS[self.law], x)

    def predict_stderr(self, x: np.ndarray | float) -> np.ndarray:
        """Delta-method standard error of the prediction at ``x`` (numerical gradient)."""
        return self.predict_stderr_with(LAWS[self.law], x)

    def param_gradient(self, x: np.ndarray, i: int) -> np.ndarray:
        """d prediction / d params[i] at x (central difference)."""
        return self.gradient_with(LAWS[self.law], x, i)


def fit_law(law: Law | str, x: np.ndarray, y: np.ndarray, what: str = "fit") -> FitResult:
    """Fit ``law`` to (x, y) by least squares; ``what`` names the data in error messages."""
    law = LAWS[law] if isinstance(law, str) else law
    x, y = _check_xy(law, x, y, what)
    x0 = float(np.exp(np.mean(np.log(x))))
    xs = x / x0
    lo, hi = _bounds(law)
    seeds = [np.clip(seed, lo + 1e-9, hi - 1e-9) for seed in _seeds(law, xs, y)]
    try:
        popt, pcov, sse = curve_fit_best(law, xs, y, seeds, f"{what}: the {law.name} law",
                                         bounds=(lo, hi))
    except FitFailedError as e:
        raise FitFailedError(f"{what}: the {law.name} law did not converge from any start ({e})") from e
    params, cov = _unscale(law, popt, pcov, x0)
    params, cov = _canonical_order(law, params, cov)
    return _result(law, params, cov, x, y, len(seeds))


def leave_one_out(law: Law | str, x: np.ndarray, y: np.ndarray, what: str = "fit") -> list[FitResult]:
    """Refit with each point left out in turn (needs ``n >= p + 2``): the jackknife spread."""
    law = LAWS[law] if isinstance(law, str) else law
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < law.n_params + 2:
        raise TooFewPointsError(f"{what} (leave-one-out)", len(x), law.n_params + 2)
    keep = ~np.eye(len(x), dtype=bool)
    return [fit_law(law, x[k], y[k], f"{what} without point {i}") for i, k in enumerate(keep)]


def _check_xy(law: Law, x: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{what}: x and y differ in length ({x.size} vs {y.size})")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"{what}: x and y must be finite")
    if np.any(x <= 0):
        raise ValueError(f"{what}: power laws need x > 0 (got min {x.min():g})")
    need = law.n_params + 1
    if len(np.unique(x)) < need:
        raise TooFewPointsError(what, len(np.unique(x)), need,
                                hint=f"The {law.name} law has {law.n_params} parameters.")
    return x, y


def _design(law: Law, xs: np.ndarray, exps: tuple[float, ...]) -> np.ndarray:
    cols = [np.power(xs, e) for e in exps] + [np.ones_like(xs)]
    return np.stack(cols, axis=1)


def _seeds(law: Law, xs: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Scan exponent grids; solve the linear coefficients; keep the best few as seeds."""
    scored = []
    for exps in itertools.product(_EXPONENT_GRID, repeat=len(law.pairs)):
        if len(exps) > 1 and not all(a < b for a, b in zip(exps, exps[1:])):
            continue  # terms ordered by exponent: no duplicate seeds, no degenerate equal exponents
        design = _design(law, xs, exps)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        sse = float(np.sum((design @ coef - y) ** 2))
        p = np.zeros(law.n_params)
        for (c, e), cv, ev in zip(law.pairs, coef[:-1], exps):
            p[c], p[e] = cv, ev
        p[law.const] = coef[-1]
        scored.append((sse, p))
    scored.sort(key=lambda t: t[0])
    return [p for _, p in scored[:_SEEDS]]


def _bounds(law: Law) -> tuple[np.ndarray, np.ndarray]:
    """Exponents within +/- _EXPONENT_BOUND; coefficients free."""
    lo = np.full(law.n_params, -np.inf)
    hi = np.full(law.n_params, np.inf)
    for _, e in law.pairs:
        lo[e], hi[e] = -_EXPONENT_BOUND, _EXPONENT_BOUND
    return lo, hi


def _unscale(law: Law, popt: np.ndarray, pcov: np.ndarray, x0: float):
    """Map params fitted on x/x0 back to x: a -> a * x0^-s; covariance by the Jacobian."""
    params = popt.astype(float).copy()
    jac = np.eye(law.n_params)
    for c, e in law.pairs:
        scale = x0 ** (-popt[e])
        params[c] = popt[c] * scale
        jac[c, c] = scale
        jac[c, e] = -popt[c] * scale * np.log(x0)
    return params, jac @ pcov @ jac.T


def _canonical_order(law: Law, params: np.ndarray, cov: np.ndarray):
    """Order the power terms by exponent (s2 < s3) so results are comparable across fits."""
    if len(law.pairs) < 2:
        return params, cov
    order = sorted(range(len(law.pairs)), key=lambda k: params[law.pairs[k][1]])
    perm = list(range(law.n_params))
    for dst, src in zip(law.pairs, (law.pairs[k] for k in order)):
        perm[dst[0]], perm[dst[1]] = src
    perm = np.array(perm)
    return params[perm], cov[np.ix_(perm, perm)]


def _result(law: Law, params: np.ndarray, cov: np.ndarray, x: np.ndarray, y: np.ndarray,
            n_starts: int) -> FitResult:
    predicted = law(x, *params)
    stderr = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    if not np.all(np.isfinite(cov)):
        stderr = np.full(law.n_params, np.nan)
    return FitResult(law=law.name, names=law.names, values=tuple(map(float, params)),
                     stderr=tuple(map(float, stderr)), cov=as_cov(cov), r2=r_squared(y, predicted),
                     residuals=tuple(map(float, y - predicted)), n_points=len(x),
                     method=CURVE_FIT.format(n=n_starts) + "; x rescaled by its geometric mean")
