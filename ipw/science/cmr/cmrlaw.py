"""The CMR scaling law over the training budget: paper Sec. 5.3, Eq. 8, ``R_CMR(T) = a4 * T^s4 + b3``.

Points of the curve: for each budget T at which every ratio of a model was evaluated, the CMR at
that budget (:func:`ipw.science.cmr.ratio.feasible_region`). Budgets where no ratio is feasible
(``infeasible``) or where every ratio is (``saturated``, the CMR is the end of the range, not a
crossing) carry no information about the law and are left out of its fit, with their status kept.

How the paper gets its points is different in detail: it solves Eq. 7 for the T0 at which each
ratio becomes feasible and reads (T0, R0) as a point of the curve; the Lagrange multiplier it needs
was tuned by hand (Sec. 5.3, "ranges from 100 to 7000"). The tolerance route needs no lambda.
Extrapolation beyond the largest fitted budget is flagged in every prediction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ipw.science.cmr.config import CmrConfig
from ipw.science.cmr.errors import CmrError, InfeasibleToleranceError
from ipw.science.cmr.fitting import FitResult, fit_law
from ipw.science.cmr.laws import POWER
from ipw.science.cmr.ratio import feasible_region, fit_ratio_law
from ipw.science.cmr.tokens import TokenFits


def common_budgets(fits: list[TokenFits]) -> np.ndarray:
    """Budgets (T) at which every ratio of one model was evaluated."""
    common = set(fits[0].t_values)
    for f in fits[1:]:
        common &= set(f.t_values)
    return np.array(sorted(common))


def cmr_curve(fits: list[TokenFits], config: CmrConfig) -> pd.DataFrame:
    """The CMR at each common budget of one model, with its status and standard error."""
    model = fits[0].model
    ratios = [f.ratio for f in fits if f.ratio > 0]
    rows = []
    for t in common_budgets(fits):
        row = dict(model=model, T=float(t), tokens=float(t) * config.token_unit)
        try:
            region = feasible_region(fit_ratio_law(fits, t, "general"), model, t, config,
                                     (min(ratios), max(ratios)))
        except InfeasibleToleranceError as e:
            rows.append(row | dict(cmr=np.nan, cmr_stderr=np.nan, status="infeasible",
                                   smallest_increase=e.smallest_increase))
            continue
        status = "saturated" if region.saturated else "ok"
        rows.append(row | dict(cmr=region.cmr, cmr_stderr=region.cmr_stderr, status=status,
                               smallest_increase=np.nan))
    return pd.DataFrame(rows)


def fit_cmr_law(curve: pd.DataFrame, model: str) -> FitResult:
    """Fit Eq. 8 to the ``ok`` points of one model's CMR curve."""
    ok = curve[(curve["model"] == model) & (curve["status"] == "ok")]
    return fit_law(POWER, ok["T"], ok["cmr"],
                   f"model {model!r}: CMR law over T (budgets with a CMR strictly inside (0, 1))")


def predict_cmr(law: FitResult, tokens: np.ndarray, config: CmrConfig, t_fit_max: float) -> pd.DataFrame:
    """Eq. 8 at the given token budgets, with delta-method standard errors and an extrapolation flag."""
    tokens = np.atleast_1d(np.asarray(tokens, dtype=float))
    if np.any(tokens <= 0):
        raise CmrError(f"token budgets must be > 0, got {tokens[tokens <= 0][0]:g}")
    t = tokens / config.token_unit
    cmr = law.predict(t)
    return pd.DataFrame(dict(tokens=tokens, T=t, cmr=cmr, cmr_stderr=law.predict_stderr(t),
                             extrapolated=t > t_fit_max * (1 + 1e-9),
                             out_of_range=(cmr <= 0) | (cmr > 1)))
