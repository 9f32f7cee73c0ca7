"""Loss laws over training tokens, one pair per (model, ratio): paper Sec. 5.2, Eq. 6.

    dL_dom(T) = a1 * T^s1 + b1                      (domain loss change; falls)
    dL_gen(T) = a2 * T^s2 + a3 * T^s3 + b2           (general loss change; rises, then falls)

``dL = L^CPT(T) - L(before CPT)`` in nats/token (Sec. 3.1, below Eq. 5); ``T = tokens / token_unit``.
The paper fits the change of loss, not the loss (Sec. 5.2, "we model the change of loss"). The two
general terms are ordered so that ``s2 < s3``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from ipw.science.cmr.config import CmrConfig
from ipw.science.cmr.fitting import FitResult, fit_law
from ipw.science.cmr.laws import LAWS


@dataclass(frozen=True)
class TokenFits:
    """The two token laws of one CPT run (one model at one mixture ratio)."""

    model: str
    ratio: float
    general: FitResult
    domain: FitResult
    t_values: tuple[float, ...]

    @property
    def t_max(self) -> float:
        return max(self.t_values)


def loss_changes(runs: pd.DataFrame, config: CmrConfig) -> pd.DataFrame:
    """Add ``T``, ``d_general`` and ``d_domain`` (loss minus loss before CPT) to a runs frame."""
    out = runs.copy()
    out["T"] = out["tokens"] / config.token_unit
    out["d_general"] = out["general_loss"] - out["general_loss_before"]
    out["d_domain"] = out["domain_loss"] - out["domain_loss_before"]
    return out


def fit_token_laws(changes: pd.DataFrame, config: CmrConfig) -> list[TokenFits]:
    """Fit Eq. 6 to every (model, ratio) run of a frame made by :func:`loss_changes`."""
    fits = []
    for (model, ratio), run in changes.groupby(["model", "ratio"], sort=True):
        run = run.sort_values("T")
        where = f"model {model!r}, ratio {ratio:g}"
        gen = fit_law(config.general_law, run["T"], run["d_general"], f"{where}: general loss over T")
        dom = fit_law(config.domain_law, run["T"], run["d_domain"], f"{where}: domain loss over T")
        fits.append(TokenFits(str(model), float(ratio), gen, dom, tuple(run["T"].unique())))
    return fits


def token_fit_table(fits: list[TokenFits], config: CmrConfig) -> pd.DataFrame:
    """One row per (model, ratio, target): parameters, standard errors, R^2, MSE."""
    rows = []
    for f in fits:
        for target, res in (("general", f.general), ("domain", f.domain)):
            row = res.row(model=f.model, ratio=f.ratio, target=target)
            if config.lagrange is not None and target == "general":
                row["t0_eq7"] = critical_t0(f, config.lagrange)
            rows.append(row)
    return pd.DataFrame(rows)


def critical_t0(fits: TokenFits, lam: float, horizon: float = 100.0) -> float:
    """The paper's T0 (Eq. 7; App. B.3 Eq. 25): first T where dF/dT = dL_dom' + lam * dL_gen' <= 0.

    Searched on (0, horizon * T_max]; NaN when dF/dT stays positive there. The paper states a ratio
    is feasible when T0 <= T_max (Sec. 5.3). We report T0; the CMR itself uses the tolerance
    constraint (see :mod:`ipw.science.cmr.ratio`).
    """
    dom, gen = LAWS[fits.domain.law], LAWS[fits.general.law]

    def slope(t: float) -> float:
        return float(dom.derivative(t, *fits.domain.params) + lam * gen.derivative(t, *fits.general.params))

    grid = np.geomspace(min(fits.t_values) * 1e-2, fits.t_max * horizon, 2000)
    vals = np.array([slope(t) for t in grid])
    hits = np.flatnonzero(vals <= 0)
    if hits.size == 0:
        return float("nan")
    i = hits[0]
    if i == 0:
        return float(grid[0])
    return float(brentq(slope, grid[i - 1], grid[i]))
