"""Saved CMR analyses (kind ``cmr.analysis``): every table of :class:`~ipw.science.cmr.analysis.CmrAnalysis`.

    >>> from ipw.science.cmr.results import CmrResults
    >>> saved = CmrResults.from_analysis(analyse(load_runs("runs.csv")), predict=[50e9])
    >>> saved.save("cmr-out/")                  # result.json + one CSV per table
    >>> CmrResults.load("cmr-out/").tables["cmr_law"]

Tables (see docs/cmr.md for their columns): ``changes`` (the runs with T and loss changes),
``token_fits`` (Eq. 6), ``ratio_fits`` (Sec. 5.1), ``feasible`` (Def. 2/3 at the largest budget),
``regions`` (the feasible intervals, one row each), ``cmr_curve``, ``cmr_law`` (Eq. 8) and, when
asked for, ``predict``. The fitted laws can be redrawn from them: every fit row names its law and
its parameters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from ipw.science.cmr.analysis import CmrAnalysis
from ipw.science.cmr.config import CmrConfig
from ipw.science.results import Header, Result, read_table

#: Tables in the order a report shows them; the first five are always present.
TABLES = ("cmr_law", "feasible", "cmr_curve", "ratio_fits", "token_fits", "regions", "changes", "predict")
_REQUIRED = TABLES[:5]


@dataclass(frozen=True, eq=False)
class CmrResults(Result):
    """A CMR analysis as tables (pandas DataFrames) plus the :class:`CmrConfig` that made it."""

    KIND = "cmr.analysis"
    VERSION = 1

    config: CmrConfig
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @classmethod
    def from_analysis(cls, analysis: CmrAnalysis, predict=None) -> "CmrResults":
        """The tables of ``analysis``; ``predict``: token budgets for the Eq. 8 extrapolation table."""
        regions = pd.DataFrame([dict(model=m.model, T=m.region.t, lo=lo, hi=hi)
                                for m in analysis.models for lo, hi in m.region.intervals],
                               columns=["model", "T", "lo", "hi"])
        tables = {"cmr_law": analysis.cmr_law, "feasible": analysis.feasible, "cmr_curve": analysis.cmr_curve,
                  "ratio_fits": analysis.ratio_fits, "token_fits": analysis.token_fits, "regions": regions,
                  "changes": analysis.changes}
        if predict is not None and len(list(predict)):
            tables["predict"] = analysis.predict(list(predict))
        return cls(analysis.config, tables)

    def to_parts(self) -> tuple[dict, dict[str, pd.DataFrame]]:
        return {"config": asdict(self.config)}, dict(self.tables)

    @classmethod
    def from_parts(cls, header: Header) -> "CmrResults":
        config = CmrConfig(**dict(header.data.get("config") or {}))
        tables = {name: read_table(header, name) for name in TABLES if name in header.tables}
        missing = [name for name in _REQUIRED if name not in tables]
        if missing:
            raise ValueError(f"missing table(s) {', '.join(missing)}")
        return cls(config, tables)


__all__ = ["CmrResults", "TABLES"]
