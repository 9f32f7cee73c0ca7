"""DataFrame-returning helpers: densities for a table of models, and fits as tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ipw.science.density.errors import BadValue
from ipw.science.fitting import FitResult
from ipw.science.density.laws import DensityLaws
from ipw.science.density.ruler import FamilyRuler, fit_family_ruler
from ipw.science.density.trend import TrendFit

# Chance level of 4-option multiple choice (MMLU): the sigmoid's floor d for that benchmark.
MMLU_CHANCE = 0.25


def densities_by_family(
    frame: pd.DataFrame, family: str = "Llama-1", chance: float = MMLU_CHANCE,
) -> tuple[pd.DataFrame, FamilyRuler]:
    """Add ``n_hat`` and ``density`` using a ruler fitted on the rows of ``family``.

    ``frame`` needs ``family``, ``params`` (count) and ``score`` (fraction) columns; see
    :mod:`ipw.science.density.ruler` for what this substitute ruler means.
    """
    members = frame[frame["family"] == family]
    if members.empty:
        known = sorted(frame["family"].unique())
        raise BadValue(f"no models of family {family!r} in the table; families: {known}")
    benchmark = str(members["benchmark"].iloc[0]) if "benchmark" in members else "score"
    sizes = tuple(sorted(float(p) for p in members["params"].unique()))
    ruler = FamilyRuler(family, benchmark, fit_family_ruler(members["params"], members["score"], chance), sizes)
    out = frame.copy()
    out["n_hat"] = ruler.effective_params(out["score"].to_numpy(dtype=float))
    out["density"] = out["n_hat"] / out["params"]
    return out, ruler


def densities_by_laws(frame: pd.DataFrame, laws: DensityLaws) -> pd.DataFrame:
    """Add ``n_hat`` and ``density`` from fitted loss and score laws (the paper's method)."""
    out = frame.copy()
    out["n_hat"] = laws.effective_params(out["score"].to_numpy(dtype=float))
    out["density"] = out["n_hat"] / out["params"]
    return out


def combine_per_model(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per model: the geometric mean of its rows' ``n_hat`` (several evaluators of one
    benchmark), ``density`` = n_hat / params and ``n_scores``; other columns from its first row."""
    if frame["model"].is_unique:
        return frame
    out = []
    for _, rows in frame.groupby("model", sort=False):
        row = rows.iloc[0].copy()
        row["n_hat"] = float(np.exp(np.log(rows["n_hat"].astype(float)).mean()))
        row["density"] = row["n_hat"] / float(row["params"])
        row["n_scores"] = len(rows)
        out.append(row)
    return pd.DataFrame(out).reset_index(drop=True)


def fit_table(fit: FitResult) -> pd.DataFrame:
    """One row per parameter: value and standard error."""
    return pd.DataFrame({"law": fit.law, "param": fit.names, "value": fit.values, "stderr": fit.stderr})


def trend_table(fits: dict[str, TrendFit]) -> pd.DataFrame:
    """One row per trend fit: A, its error, doubling time in days and months, R^2, n."""
    rows = []
    for label, fit in fits.items():
        d = fit.to_dict()
        rows.append({"fit": label, **{k: v for k, v in d.items() if k != "models"}})
    return pd.DataFrame(rows)
