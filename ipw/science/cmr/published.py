"""The paper's own numbers (shipped in ``ipw/data/cmr``) and their reproduction.

* Table 5: constants (a4, s4, b3) of the CMR law, Eq. 8, for Finance. :func:`cmr_at` evaluates the
  law; at 20B tokens (T = 100) it gives the CMRs the paper states in Sec. 5.3 (29.8 %, 34.9 %,
  41.4 %, 47.8 %), which ``table5()`` carries in ``published_cmr_20b_pct`` for comparison.
* Table 2: domain loss after 20B CPT tokens at R = 100/75/50/33/25 %, and the paper's prediction at
  25 % from a fit over the other ratios. :func:`table2_fits` refits ``L(R) = a * R^s + b`` (Sec. 5.1)
  with uncertainties: on four points the fit has one degree of freedom and a, b are correlated
  at |rho| > 0.99, so the covariance and a leave-one-out spread are both reported.

"33 %" is read as R = 1/3 (the paper's ratio set is {1/8, 1/4, 1/3, 1/2, ...}; Table 3 writes 33.3 %).
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from ipw.science.cmr.fitting import fit_law, leave_one_out
from ipw.science.cmr.laws import PAPER_TOKEN_UNIT, cmr_law

_DATA = "data/cmr"
#: The ratios Table 2's prediction was fitted on (all but the 25 % one it predicts).
TABLE2_FIT_LABELS = ("100%", "75%", "50%", "33%")


def _read(name: str) -> pd.DataFrame:
    with resources.files("ipw").joinpath(f"{_DATA}/{name}").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def table5() -> pd.DataFrame:
    """Table 5: CMR-law constants per model size (Finance) and the CMR the paper states at 20B."""
    return _read("table5_cmr_law.csv")


def table2() -> pd.DataFrame:
    """Table 2: domain loss at T_max by ratio (``kind`` = measured or paper_prediction)."""
    return _read("table2_domain_loss.csv")


def cmr_at(tokens, constants: pd.DataFrame | None = None, token_unit: float = PAPER_TOKEN_UNIT) -> pd.DataFrame:
    """Eq. 8 with given constants (default: Table 5) at token budgets (raw token counts)."""
    constants = table5() if constants is None else constants
    tokens = np.atleast_1d(np.asarray(tokens, dtype=float))
    rows = []
    for c in constants.itertuples(index=False):
        t = tokens / token_unit
        cmr = cmr_law(t, c.a4, c.s4, c.b3)
        for tok, tt, r in zip(tokens, t, cmr):
            rows.append(dict(model=c.model, tokens=tok, T=tt, cmr=float(r), cmr_pct=100 * float(r)))
    return pd.DataFrame(rows)


def table2_fits(fit_labels: tuple[str, ...] = TABLE2_FIT_LABELS) -> pd.DataFrame:
    """Refit Table 2 per model: on ``fit_labels`` (predict the rest) and on all five ratios."""
    data = table2()
    rows = []
    for model, group in data.groupby("model", sort=False):
        measured = group[group["kind"] == "measured"]
        rows.append(_table2_row(str(model), measured, group, fit_labels))
    return pd.DataFrame(rows)


def _table2_row(model: str, measured: pd.DataFrame, group: pd.DataFrame, labels: tuple[str, ...]) -> dict:
    train = measured[measured["ratio_label"].isin(labels)]
    held = measured[~measured["ratio_label"].isin(labels)].iloc[0]
    part = fit_law("power", train["ratio"], train["domain_loss"], f"Table 2 {model}, {len(train)} ratios")
    full = fit_law("power", measured["ratio"], measured["domain_loss"], f"Table 2 {model}, all ratios")
    loo = leave_one_out("power", measured["ratio"], measured["domain_loss"], f"Table 2 {model}")
    pred = float(part.predict(held["ratio"])[()])
    paper = group[group["kind"] == "paper_prediction"]["domain_loss"]
    row = dict(model=model, held_out=held["ratio_label"], measured=held["domain_loss"],
               predicted=pred, predicted_stderr=float(part.predict_stderr(held["ratio"])[0]),
               rel_error_pct=100 * abs(pred - held["domain_loss"]) / held["domain_loss"],
               paper_predicted=float(paper.iloc[0]) if len(paper) else np.nan)
    row["paper_rel_error_pct"] = 100 * abs(row["paper_predicted"] - held["domain_loss"]) / held["domain_loss"]
    for name, val, err in zip(full.names, full.params, full.stderr):
        row[name], row[f"{name}_stderr"] = val, err
        vals = [r.p[name] for r in loo]
        row[f"{name}_loo_min"], row[f"{name}_loo_max"] = min(vals), max(vals)
    row.update(r2=full.r2, corr_a_b=float(full.correlation()[0, 2]), n_points=full.n_points)
    return row
