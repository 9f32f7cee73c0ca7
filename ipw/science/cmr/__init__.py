"""CMR scaling law (Gu et al., "CMR Scaling Law: Predicting Critical Mixture Ratios for Continual
Pre-training of Language Models", arXiv 2407.17467, EMNLP 2024).

Pure functions over numbers and pandas frames: loss laws over the mixture ratio R and the training
tokens T, the feasible region for a tolerance eps on the general-loss increase, the critical
mixture ratio (the largest feasible R), and the CMR law R_CMR(T) = a4 * T^s4 + b3. See docs/cmr.md.
"""

from __future__ import annotations

from ipw.science.cmr.analysis import CmrAnalysis, analyse
from ipw.science.cmr.config import CmrConfig
from ipw.core.errors import FitFailedError, TooFewPointsError
from ipw.science.cmr.errors import CmrError, CsvValueError, InfeasibleToleranceError
from ipw.science.cmr.fitting import FitResult, fit_law, leave_one_out
from ipw.science.cmr.io import load_runs, save_runs
from ipw.science.cmr.laws import PAPER_EPS, PAPER_TOKEN_UNIT, cmr_law, tokens_to_t
from ipw.science.cmr.published import cmr_at, table2, table2_fits, table5

__all__ = [
    "CmrAnalysis", "CmrConfig", "CmrError", "CsvValueError", "FitFailedError", "FitResult",
    "InfeasibleToleranceError", "PAPER_EPS", "PAPER_TOKEN_UNIT", "TooFewPointsError", "analyse",
    "cmr_at", "cmr_law", "fit_law", "leave_one_out", "load_runs", "save_runs", "table2",
    "table2_fits", "table5", "tokens_to_t",
]
