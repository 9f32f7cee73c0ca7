"""One call from a runs frame to every table of the CMR analysis (the Python API).

    >>> from ipw.science.cmr import load_runs, analyse, CmrConfig
    >>> result = analyse(load_runs("runs.csv"), CmrConfig(eps=0.05))
    >>> result.feasible          # per model: feasible region and CMR at the largest budget
    >>> result.predict([50e9])   # CMR law (Eq. 8) extrapolated to 50B tokens
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ipw.science.cmr.cmrlaw import cmr_curve, fit_cmr_law, predict_cmr
from ipw.science.cmr.config import CmrConfig
from ipw.core.errors import TooFewPointsError
from ipw.science.cmr.errors import CmrError
from ipw.science.cmr.fitting import FitResult
from ipw.science.cmr.ratio import Feasibility, feasible_region, fit_ratio_law
from ipw.science.cmr.tokens import TokenFits, fit_token_laws, loss_changes, token_fit_table


@dataclass(frozen=True)
class ModelAnalysis:
    """Everything fitted for one model (kept for plots; the tables are on :class:`CmrAnalysis`)."""

    model: str
    token_fits: tuple[TokenFits, ...]
    general_over_r: FitResult
    domain_over_r: FitResult
    region: Feasibility
    curve: pd.DataFrame
    cmr_law: FitResult | None
    cmr_law_note: str


@dataclass(frozen=True)
class CmrAnalysis:
    """Tables (pandas DataFrames) of a CMR analysis; see ``docs/cmr.md`` for every column."""

    config: CmrConfig
    changes: pd.DataFrame  # the runs with T, d_general, d_domain
    token_fits: pd.DataFrame  # Eq. 6 per (model, ratio, target)
    ratio_fits: pd.DataFrame  # Sec. 5.1 per (model, target) at the largest budget
    feasible: pd.DataFrame  # Definition 2/3 per model at the largest budget
    cmr_curve: pd.DataFrame  # CMR per (model, budget)
    cmr_law: pd.DataFrame  # Eq. 8 per model
    models: tuple[ModelAnalysis, ...] = field(repr=False)

    def predict(self, tokens, model: str | None = None) -> pd.DataFrame:
        """Eq. 8 at token budgets (raw token counts) for every model, or one."""
        frames = []
        for m in self.models:
            if model is not None and m.model != model:
                continue
            if m.cmr_law is None:
                raise CmrError(f"model {m.model!r} has no CMR law: {m.cmr_law_note}")
            t_fit = float(self.cmr_curve.query("model == @m.model and status == 'ok'")["T"].max())
            frames.append(predict_cmr(m.cmr_law, tokens, self.config, t_fit).assign(model=m.model))
        if not frames:
            raise CmrError(f"no model named {model!r}; models: {[m.model for m in self.models]}")
        out = pd.concat(frames, ignore_index=True)
        return out[["model", *[c for c in out.columns if c != "model"]]]


def analyse(runs: pd.DataFrame, config: CmrConfig | None = None) -> CmrAnalysis:
    """Fit Eq. 6 per run, Sec. 5.1 over R, find the feasible region and CMR, fit Eq. 8."""
    config = config or CmrConfig()
    changes = loss_changes(runs, config)
    fits = fit_token_laws(changes, config)
    models = tuple(_analyse_model([f for f in fits if f.model == name], config)
                   for name in dict.fromkeys(f.model for f in fits))
    curve = pd.concat([m.curve for m in models], ignore_index=True)
    return CmrAnalysis(config, changes, token_fit_table(fits, config), _ratio_table(models),
                       pd.DataFrame([m.region.row() for m in models]), curve, _law_table(models),
                       models)


def _analyse_model(fits: list[TokenFits], config: CmrConfig) -> ModelAnalysis:
    model = fits[0].model
    positive = [f.ratio for f in fits if f.ratio > 0]
    if len(positive) < 4:
        raise TooFewPointsError(f"model {model!r}: mixture ratios > 0", len(positive), 4,
                                hint="The law over R (Sec. 5.1) has 3 parameters; run more ratios.")
    t_max = min(f.t_max for f in fits)
    gen = fit_ratio_law(fits, t_max, "general")
    dom = fit_ratio_law(fits, t_max, "domain")
    region = feasible_region(gen, model, t_max, config, (min(positive), max(positive)))
    curve = cmr_curve(fits, config)
    try:
        law, note = fit_cmr_law(curve, model), ""
    except TooFewPointsError as e:
        law, note = None, str(e)
    return ModelAnalysis(model, tuple(fits), gen, dom, region, curve, law, note)


def _ratio_table(models: tuple[ModelAnalysis, ...]) -> pd.DataFrame:
    rows = []
    for m in models:
        for target, res in (("general", m.general_over_r), ("domain", m.domain_over_r)):
            rows.append(res.row(model=m.model, target=target, T=m.region.t))
    return pd.DataFrame(rows)


def _law_table(models: tuple[ModelAnalysis, ...]) -> pd.DataFrame:
    rows = []
    for m in models:
        if m.cmr_law is None:
            rows.append(dict(model=m.model, law="power", a4=np.nan, s4=np.nan, b3=np.nan, note=m.cmr_law_note))
            continue
        row = m.cmr_law.row(model=m.model)
        for old, new in (("a", "a4"), ("s", "s4"), ("b", "b3")):
            row[new], row[f"{new}_stderr"] = row.pop(old), row.pop(f"{old}_stderr")
        rows.append(row | dict(note=""))
    return pd.DataFrame(rows)
