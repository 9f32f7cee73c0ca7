"""Saved Densing Law results, one kind each (see :mod:`ipw.science.results` for the folder format).

* ``density.laws``: the fitted loss law (and score law, when fitted), D0, and the points fitted;
* ``density.trend``: density per model (with its ``extrapolated`` flag where a ruler placed it),
  the ruler and its fitted range, the trend fits ln(rho_max) = A*t + B with their doubling times,
  and their spread across rulers and selections, as computed by ``ipw density trend`` (a report
  reads them; it never refits). ``ruler`` and ``spread`` were added within version 1: a file
  without them loads with both None;
* ``density.losses``: conditional loss -ln P(answer | prompt) per item and its means.

    >>> DensityTrendResult(frame, {"all dates": fit_trend(frame)}, "frontier").save("trend/")
    >>> DensityTrendResult.load("trend/").fits["all dates"].doubling_months
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from ipw.science.fitting import FitResult
from ipw.science.density.extrapolation import RulerRange
from ipw.science.density.laws import DensityLaws
from ipw.science.density.spread import Spread
from ipw.science.density.trend import TrendFit
from ipw.science.results import Header, Result, read_table


def trend_fit_to_dict(fit: TrendFit) -> dict:
    """Every field of a :class:`TrendFit` as JSON-ready values (epoch as ISO date)."""
    out = dataclasses.asdict(fit)
    out["epoch"] = fit.epoch.isoformat()
    out["models"], out["residuals"] = list(fit.models), list(fit.residuals)
    return out


def trend_fit_from_dict(data: dict) -> TrendFit:
    """The reverse of :func:`trend_fit_to_dict`."""
    known = {f.name for f in dataclasses.fields(TrendFit)}
    values = {k: v for k, v in data.items() if k in known}
    values["epoch"] = date.fromisoformat(str(values["epoch"]))
    values["models"] = tuple(str(m) for m in values.get("models", ()))
    values["residuals"] = tuple(float("nan") if r is None else float(r) for r in values.get("residuals", ()))
    for name in ("slope_per_day", "intercept", "slope_stderr", "intercept_stderr", "r2"):
        values[name] = float("nan") if values.get(name) is None else float(values[name])
    values["n_points"] = int(values["n_points"])
    return TrendFit(**values)


@dataclass(frozen=True, eq=False)
class DensityLawsResult(Result):
    """The loss law L(N, D) and, when fitted, the score law S(L). ``points``: the runs the loss law
    was fitted on; ``score_points``: the models the score law was fitted on (Sec. 2.3)."""

    KIND = "density.laws"
    VERSION = 1
    STEM_ALONE = False  # laws.json + laws.points.csv: never overwrites an input table named laws.csv

    loss: FitResult
    score: FitResult | None = None
    tokens_d0: float | None = None
    points: pd.DataFrame | None = None
    score_points: pd.DataFrame | None = None

    @property
    def laws(self) -> DensityLaws:
        """Both laws as :class:`DensityLaws` (needs the score law)."""
        if self.score is None:
            raise ValueError("no score law was fitted (the table had no score column)")
        return DensityLaws(self.loss, self.score, *(() if self.tokens_d0 is None else (self.tokens_d0,)))

    def to_parts(self) -> tuple[dict, dict[str, pd.DataFrame]]:
        data = {"loss_law": self.loss.to_dict(), "tokens_d0": self.tokens_d0}
        if self.score is not None:
            data["score_law"] = self.score.to_dict()
        tables = {name: frame for name, frame in (("points", self.points), ("score_points", self.score_points))
                  if frame is not None}
        return data, tables

    @classmethod
    def from_parts(cls, header: Header) -> "DensityLawsResult":
        d = header.data
        score = FitResult.from_dict(d["score_law"]) if d.get("score_law") else None
        points = read_table(header, "points") if "points" in header.tables else None
        score_points = read_table(header, "score_points") if "score_points" in header.tables else None
        d0 = d.get("tokens_d0")
        return cls(FitResult.from_dict(d["loss_law"]), score, None if d0 is None else float(d0), points, score_points)


@dataclass(frozen=True, eq=False)
class DensityTrendResult(Result):
    """Density per model (``densities``: model, release_date, density, n_hat, extrapolated, ...), the
    trend fits by label (e.g. ``all dates``, ``before 2022-11-30``), ``select`` (frontier or all),
    the ``ruler`` and its fitted range, and the ``spread`` of the ``all dates`` fit."""

    KIND = "density.trend"
    VERSION = 1

    densities: pd.DataFrame
    fits: dict[str, TrendFit] = field(default_factory=dict)
    select: str = "frontier"
    ruler: RulerRange | None = None
    spread: Spread | None = None

    def to_parts(self) -> tuple[dict, dict[str, pd.DataFrame]]:
        fits = {label: trend_fit_to_dict(fit) for label, fit in self.fits.items()}
        data = {"select": self.select, "fits": fits}
        if self.ruler is not None:
            data["ruler"] = self.ruler.to_dict()
        if self.spread is not None:
            data["spread"] = self.spread.to_dict()
        return data, {"densities": self.densities}

    @classmethod
    def from_parts(cls, header: Header) -> "DensityTrendResult":
        frame = read_table(header, "densities", parse_dates=("release_date",))
        for col in ("release_date", "density"):
            if col not in frame:
                raise ValueError(f"densities table lacks column {col!r}")
        if "extrapolated" in frame:  # CSV gives bools back as bools, or as text where a cell is empty
            frame["extrapolated"] = frame["extrapolated"].map(lambda v: str(v).strip().lower() == "true")
        fits = {str(k): trend_fit_from_dict(v) for k, v in (header.data.get("fits") or {}).items()}
        d = header.data
        ruler = RulerRange.from_dict(d["ruler"]) if isinstance(d.get("ruler"), dict) else None
        spread = Spread.from_dict(d["spread"]) if isinstance(d.get("spread"), dict) else None
        return cls(frame, fits, str(d.get("select", "frontier")), ruler, spread)


@dataclass(frozen=True, eq=False)
class DensityLossesResult(Result):
    """Conditional loss per item (``items``: loss_per_token, nll_nats, n_answer_tokens, ...)."""

    KIND = "density.losses"
    VERSION = 1

    items: pd.DataFrame
    model: str = ""

    def to_parts(self) -> tuple[dict, dict[str, pd.DataFrame]]:
        return {"model": self.model}, {"items": self.items}

    @classmethod
    def from_parts(cls, header: Header) -> "DensityLossesResult":
        frame = read_table(header, "items")
        if "loss_per_token" not in frame:
            raise ValueError("items table lacks column 'loss_per_token'")
        return cls(frame, str(header.data.get("model", "")))


__all__ = ["DensityLawsResult", "DensityLossesResult", "DensityTrendResult", "trend_fit_from_dict",
           "trend_fit_to_dict"]
