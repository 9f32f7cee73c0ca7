"""How far a density trend moves with the choices behind it: the ruler, the selection, one model.

The doubling time of ``ipw density trend`` depends on choices the paper does not fix for
published scores: which family's scores make the ruler, which benchmarks place a model, whether
rho_max is the running-record frontier or every model, and which models are in the table; with
the shipped data the documented options differ by a factor of about 4 (docs/density.md).
:func:`trend_spread` refits
the trend under each option this table allows, without the models the ruler extrapolates to, and
leaving out one model at a time, so that the printed figure carries its spread; the paper's
published doubling time is shown beside it as a constant, never refitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ipw.core.errors import IpwError
from ipw.science.density.extrapolation import flag_extrapolated, of_benchmark_ruler, of_family_ruler
from ipw.science.density.ruler import densities_by_benchmarks, fit_benchmark_ruler
from ipw.science.density.tables import densities_by_family
from ipw.science.density.trend import TrendFit, fit_trend

PAPER_DOUBLING_MONTHS = 3.3
"""The paper's headline (Xiao et al., arXiv 2412.04315v2, abstract: "doubles approximately every 3.3
months"), from its fitted A of about 0.007/day (ln 2 / 0.007 = 99 days). A published constant."""
PAPER_SOURCE = "arXiv 2412.04315v2"
SELECTIONS = ("frontier", "all")
OPTION_COLUMNS = ["ruler", "benchmarks", "select", "n_points", "doubling_months", "r2", "extrapolated_points"]


def _growing_fit(frame: pd.DataFrame, select: str) -> TrendFit | None:
    """The trend fit, or None where it cannot be fitted or shows no growth (no doubling time)."""
    try:
        fit = fit_trend(frame, select)
    except IpwError:
        return None
    return fit if math.isfinite(fit.doubling_months) and fit.slope_per_day > 0 else None


def _option(ruler: str, benchmarks: str, select: str, frame: pd.DataFrame) -> dict:
    fit = _growing_fit(frame, select)
    flagged = set(frame.loc[frame["extrapolated"].astype(bool), "model"]) if "extrapolated" in frame else set()
    return {"ruler": ruler, "benchmarks": benchmarks, "select": select,
            "n_points": fit.n_points if fit else 0, "doubling_months": fit.doubling_months if fit else math.nan,
            "r2": fit.r2 if fit else math.nan,
            "extrapolated_points": sum(m in flagged for m in fit.models) if fit else 0}  # fmt: skip


def published_options(scores: pd.DataFrame) -> pd.DataFrame:
    """Every option ``ipw density trend`` documents for a published-scores table: each family that
    can hold a ruler (``--family``; a benchmark with 3 sizes or more), all its benchmarks or MMLU
    alone (``--benchmark MMLU``), and both selections (``--select``). One row each (OPTION_COLUMNS);
    an option that cannot be fitted or shows no growth has NaN months."""
    rows = []
    for family in dict.fromkeys(scores["family"]):
        try:
            ruler = fit_benchmark_ruler(scores, family)
        except IpwError:
            continue
        for benchmark in (None, "MMLU"):
            try:
                frame, ruler = densities_by_benchmarks(scores, family, benchmark=benchmark, ruler=ruler)
            except IpwError:
                continue
            if benchmark and set(ruler.rulers) == {"MMLU"}:
                continue  # the same as all its benchmarks
            frame = flag_extrapolated(frame, of_benchmark_ruler(ruler, benchmark))
            rows += [_option(f"{family} family", benchmark or ", ".join(ruler.rulers), s, frame) for s in SELECTIONS]
    return pd.DataFrame(rows, columns=OPTION_COLUMNS)


def family_options(table: pd.DataFrame, chance: float) -> pd.DataFrame:
    """For a single-benchmark table (open models): each family with 3 sizes or more as the ruler
    (kept in the trend, as ``ipw density trend TABLE --family`` keeps it), both selections."""
    rows = []
    for family, members in table.groupby("family", sort=False):
        if members["params"].nunique() < 3:
            continue
        try:
            frame, ruler = densities_by_family(table, family, chance)
        except IpwError:
            continue
        frame = flag_extrapolated(frame, of_family_ruler(ruler))
        rows += [_option(f"{family} family", ruler.benchmark, s, frame) for s in SELECTIONS]
    return pd.DataFrame(rows, columns=OPTION_COLUMNS)


def selection_options(frame: pd.DataFrame, ruler: str) -> pd.DataFrame:
    """Where the ruler is fixed (densities given, or fitted laws): both selections."""
    return pd.DataFrame([_option(ruler, "", s, frame) for s in SELECTIONS], columns=OPTION_COLUMNS)


@dataclass(frozen=True)
class Spread:
    """The run's doubling time [months] beside its spread: across ``options`` (OPTION_COLUMNS), without
    the ``n_extrapolated`` models outside the ruler's range (None: no range), and leaving one of the
    trend's points out at a time (``leave_one_out``: left_out, doubling_months)."""

    doubling_months: float
    select: str
    options: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=OPTION_COLUMNS))
    n_extrapolated: int | None = None
    without_extrapolated_months: float | None = None
    leave_one_out: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["left_out", "doubling_months"]))

    def line(self) -> str:
        """One line: "doubling 1.40 months (1.40-5.76 across 16 rulers and selections; ...); paper: 3.3 months"."""
        parts = []
        months = [m for m in self.options["doubling_months"].astype(float) if math.isfinite(m)] + [self.doubling_months]
        rulers = self.options["ruler"].nunique()
        what = "rulers and selections" if rulers > 1 else "selections"
        parts.append(f"{min(months):.2f}-{max(months):.2f} across {len(self.options)} {what}")
        if self.n_extrapolated:
            w = self.without_extrapolated_months
            parts.append(f"{w:.2f} without the {self.n_extrapolated} extrapolated models" if w is not None else
                         f"no growing trend without the {self.n_extrapolated} extrapolated models")  # fmt: skip
        loo = self.leave_one_out.dropna()
        if len(loo):
            far = loo.loc[(loo["doubling_months"] - self.doubling_months).abs().idxmax()]
            parts.append(f"{loo['doubling_months'].min():.2f}-{loo['doubling_months'].max():.2f} leaving one model "
                         f"out, {far['left_out']} moving it most ({far['doubling_months']:.2f})")  # fmt: skip
        return (f"doubling {self.doubling_months:.2f} months ({'; '.join(parts)}); "
                f"paper: {PAPER_DOUBLING_MONTHS:g} months ({PAPER_SOURCE}, its published figure, not refitted here)")

    def to_dict(self) -> dict:
        return {"doubling_months": self.doubling_months, "select": self.select,
                "options": self.options.to_dict("records"), "n_extrapolated": self.n_extrapolated,
                "without_extrapolated_months": self.without_extrapolated_months,
                "leave_one_out": self.leave_one_out.to_dict("records"),
                "paper_doubling_months": PAPER_DOUBLING_MONTHS, "line": self.line()}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Spread:
        nan = (lambda v: math.nan if v is None else float(v))
        options = pd.DataFrame(data.get("options") or [], columns=OPTION_COLUMNS)
        options["doubling_months"] = options["doubling_months"].map(nan)
        options["r2"] = options["r2"].map(nan)
        loo = pd.DataFrame(data.get("leave_one_out") or [], columns=["left_out", "doubling_months"])
        loo["doubling_months"] = loo["doubling_months"].map(nan)
        n = data.get("n_extrapolated")
        w = data.get("without_extrapolated_months")
        return cls(float(data["doubling_months"]), str(data.get("select", "frontier")), options,
                   None if n is None else int(n), None if w is None else float(w), loo)  # fmt: skip


def trend_spread(frame: pd.DataFrame, fit: TrendFit, select: str, options: pd.DataFrame) -> Spread:
    """The spread of ``fit`` (fitted on ``frame`` with ``select``): ``options`` as given (see
    :func:`published_options`), the refit without the models flagged ``extrapolated``, and the
    refit without each of the fit's points in turn."""
    n_extrapolated, without = None, None
    if "extrapolated" in frame:
        flagged = frame["extrapolated"].astype(bool)
        n_extrapolated = int(flagged.sum())
        refit = _growing_fit(frame[~flagged], select) if n_extrapolated else fit
        without = refit.doubling_months if refit else None
    rows = []
    if "model" in frame:
        for model in fit.models:
            refit = _growing_fit(frame[frame["model"].astype(str) != model], select)
            rows.append({"left_out": model, "doubling_months": refit.doubling_months if refit else math.nan})
    loo = pd.DataFrame(rows, columns=["left_out", "doubling_months"])
    return Spread(fit.doubling_months, select, options, n_extrapolated, without, loo)
