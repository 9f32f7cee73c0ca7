"""A substitute ruler: effective size from one model family's published scores.

The paper's ruler is its own reference models (Table 1) with fitted loss and score laws; their
fitted constants were not published, and the reference models' benchmark losses are not shipped
here. To place *published* scores on a size scale anyway, this module fits the same sigmoid as
the score law (Sec. 2.3, arXiv v2) with ln N in the place of the loss:

    S(N) = c / (1 + exp(-gamma*(ln N - m))) + d,    d = chance score, c = ceiling - chance.

Why this shape: with L = a*N^-alpha + const and small alpha, N^-alpha ~ 1 - alpha*ln N, so the
loss is nearly linear in ln N and the paper's sigmoid-of-loss becomes a sigmoid of ln N. Pinning
c and d to the benchmark's chance and ceiling leaves two free parameters (gamma, m), which a
four-model family can fit with two degrees of freedom to spare.

This is *relative* density against the chosen family, not the paper's absolute density, and it
extrapolates beyond the family's sizes: :mod:`ipw.science.density.extrapolation` flags the models
whose effective size lies outside them (``extrapolated``), and ``ipw density trend`` prints how many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

from ipw.science.density.errors import BadValue
from ipw.science.fitting import FitResult, finite_array
from ipw.science.density.laws import fit_sigmoid, loss_for_score, score_range


@dataclass(frozen=True)
class FamilyRuler:
    """Score -> effective parameter count, from a sigmoid in ln N fitted to one family."""

    family: str
    benchmark: str
    fit: FitResult  # score law with "l" meaning m (ln of params at the midpoint)
    sizes: tuple[float, ...] = ()  # the parameter counts it was fitted on (its valid range)

    def effective_params(self, score):
        """N_hat for a score given as a fraction; raises ScoreOutOfRange outside (d, c + d)."""
        return np.exp(loss_for_score(score, self.fit))

    def density(self, score, params):
        return self.effective_params(score) / np.asarray(params, dtype=float)


def fit_family_ruler(
    params: Iterable[float], scores: Iterable[float], chance: float, ceiling: float = 1.0,
) -> FitResult:
    """Fit S = (ceiling - chance)/(1 + exp(-gamma*(ln N - m))) + chance; scores as fractions."""
    n = finite_array(params, "params")
    if np.any(n <= 0):
        raise BadValue("params must be positive counts")
    return fit_sigmoid(np.log(n), scores, {"c": ceiling - chance, "d": chance},
                       "family ruler S = c/(1+exp(-gamma(ln N - m))) + d", "ln params")


#: Chance score (the sigmoid's floor d) per benchmark, as a fraction. MMLU is 4-way multiple
#: choice; BBH, code (pass@1) and math (exact answer) are scored on generated answers, floor 0.
BENCHMARK_CHANCE = {"MMLU": 0.25, "BBH": 0.0, "Code": 0.0, "Math": 0.0}
#: Benchmark groups as the Llama 2 paper defines them (arXiv 2307.09288, Table 3): Code is the
#: mean pass@1 of HumanEval and MBPP; Math the mean of GSM8K and MATH.
GROUPS = {"Code": ("HumanEval", "MBPP"), "Math": ("GSM8K", "MATH")}
DEFAULT_RULER_FAMILY = "Llama-1"


def grouped_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the ruler's benchmarks, adding Code/Math group rows from their components.

    A group row is added for a (model, evaluator) that reports both components and no group row
    of its own; its ``source`` says it was derived. Added rows follow the kept rows, group by group,
    in the order in which their (model, evaluator) first appears in ``frame``. Vectorised (one groupby per
    group) because ``ipw density trend`` regroups the table once per ruler option.
    """
    keep = frame[frame["benchmark"].isin(BENCHMARK_CHANCE)]
    keys = ["model", "evaluator"]
    order = frame.groupby(keys, sort=False).ngroup()  # first appearance of each (model, evaluator)
    added = []
    for group, parts in GROUPS.items():
        have = frame[frame["benchmark"].isin(parts)]
        if have.empty:
            continue
        by = have.groupby(keys, sort=False)
        complete = by["benchmark"].transform("nunique") == len(parts)
        own = frame.loc[frame["benchmark"] == group, keys].drop_duplicates()
        mine = pd.MultiIndex.from_frame(have[keys]).isin(pd.MultiIndex.from_frame(own)) if len(own) else False
        chosen = have[complete & ~pd.Series(mine, index=have.index)]
        if chosen.empty:
            continue
        means = chosen.groupby(keys, sort=False)[["score", "score_pct"]].transform("mean")
        rows = chosen.assign(score=means["score"].astype(float), score_pct=means["score_pct"].astype(float),
                             benchmark=group, _order=order[chosen.index])  # fmt: skip
        rows = rows[~rows.duplicated(keys)]  # the first component row of each (model, evaluator)
        rows["source"] = f"mean of {' and '.join(parts)} from: " + rows["source"].astype(str)
        added.append(rows.sort_values("_order", kind="stable").drop(columns="_order"))
    if not added:
        return keep.reset_index(drop=True)
    return pd.concat([keep, *added], ignore_index=True)


@dataclass(frozen=True)
class BenchmarkRuler:
    """One family ruler per benchmark; a model's N_hat is the geometric mean over its scores."""

    family: str
    rulers: dict

    def row_effective_params(self, frame: pd.DataFrame) -> pd.Series:
        """ln N_hat per score row (NaN where the benchmark has no ruler or the score is at chance)."""
        out = np.full(len(frame), np.nan)
        for i, (bench, score) in enumerate(zip(frame["benchmark"], frame["score"])):
            ruler = self.rulers.get(bench)
            if ruler is None:
                continue
            low, high = score_range(ruler.fit)
            if low < score < high:
                out[i] = float(loss_for_score(score, ruler.fit))
        return pd.Series(out, index=frame.index, name="ln_n_hat")

    def model_densities(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per model: params, release_date, n_hat, density and how many scores were used.

        ``ln_spread`` is the standard deviation of ln N_hat over the model's scores: how much its
        benchmarks disagree (0.69 is a factor of two).
        """
        rows = grouped_scores(frame).assign(ln_n_hat=lambda f: self.row_effective_params(f))
        out = []
        for model, g in rows.groupby("model", sort=False):
            used = g["ln_n_hat"].dropna()
            if used.empty:
                continue
            n_hat = float(np.exp(used.mean()))
            first = g.iloc[0]
            out.append({
                "model": model, "family": first["family"], "release_date": first["release_date"],
                "params": float(first["params"]), "n_hat": n_hat,
                "density": n_hat / float(first["params"]), "n_scores": int(len(used)),
                "n_at_chance": int(g["benchmark"].isin(self.rulers).sum() - len(used)),
                "benchmarks": ",".join(sorted(set(g.loc[used.index, "benchmark"]))),
                "ln_spread": float(used.std(ddof=0)),
            })
        return pd.DataFrame(out)


def fit_benchmark_ruler(frame: pd.DataFrame, family: str = DEFAULT_RULER_FAMILY) -> BenchmarkRuler:
    """Fit S_b = (1 - chance_b)/(1 + exp(-gamma_b (ln N - m_b))) + chance_b per benchmark b.

    Fitted on the rows of ``family`` (one evaluator per benchmark: the one reporting the most
    sizes, ties going to the first in the table), for the benchmarks of :data:`BENCHMARK_CHANCE` it covers with 3 sizes or more.
    """
    rows = grouped_scores(frame)
    members = rows[rows["family"] == family]
    if members.empty:
        known = sorted(frame["family"].unique())
        raise BadValue(f"no models of family {family!r} in the table; families: {known}")
    rulers = {}
    for bench, chance in BENCHMARK_CHANCE.items():
        b = members[members["benchmark"] == bench]
        if b.empty:
            continue
        sizes = b.groupby("evaluator", sort=False)["params"].nunique()
        b = b[b["evaluator"] == sizes.idxmax()]  # most sizes; ties: first in the table
        if b["params"].nunique() < 3:
            continue
        fit = fit_family_ruler(b["params"], b["score"], chance)
        rulers[bench] = FamilyRuler(family, bench, fit, tuple(sorted(float(p) for p in b["params"].unique())))
    if not rulers:
        raise BadValue(f"family {family!r} has no benchmark with 3 sizes or more to fit a ruler on")
    return BenchmarkRuler(family, rulers)


def densities_by_benchmarks(
    frame: pd.DataFrame, family: str = DEFAULT_RULER_FAMILY, keep_ruler: bool = False,
    benchmark: str | None = None, ruler: BenchmarkRuler | None = None,
) -> tuple[pd.DataFrame, BenchmarkRuler]:
    """Per-model densities on a multi-benchmark family ruler.

    The ruler's own family is left out of the result unless ``keep_ruler``: its densities are
    about 1 by construction, and letting them into the trend would make the trend measure the
    ruler against itself (circularity). With ``benchmark`` (e.g. "MMLU") only that benchmark's
    scores place the models (the ruler family keeps all its rows) and only the models placed by
    it alone are kept (``ipw density trend --benchmark``). A ``ruler`` already fitted on ``family``
    is used as it is (the filter keeps the family's rows, so it is the same ruler).
    """
    if benchmark:
        frame = frame[(frame["benchmark"].str.lower() == benchmark.lower()) | (frame["family"] == family)]
    ruler = ruler or fit_benchmark_ruler(frame, family)
    models = ruler.model_densities(frame)
    if not keep_ruler:
        models = models[models["family"] != family]
    if benchmark:
        models = models[models["benchmarks"].str.lower() == benchmark.lower()]
    return models.reset_index(drop=True), ruler
