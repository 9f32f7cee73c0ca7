"""Hybrid routing savings and the release-date trend of the IPW paper (Saad-Falcon, Narayan et al.,
"Intelligence per Watt", arXiv 2511.07885), computed from runs over the same queries.

**Hybrid routing.** Local models and one *reference* (a cloud or larger model) answered the same
queries. Against sending every query to the reference, what do routers save in energy [J], compute
[FLOP] and cost [USD]? (The paper: oracle 80.4% energy, 77.3% compute, 73.8% cost; an 80%-accurate
router 64.3%, 61.8%, 59.0%.) Per query q and metric m:

- ``R_q`` the reference's cost, ``O_q`` the cost of the local model the oracle picks;
- **oracle**: q goes to a local model that answers it correctly (several do: the one least on
  ``prefer``, energy by default; the paper does not say which), else to the reference;
- **p-accurate router** (``misroute``, see :data:`MISROUTES`): with probability p it routes q as
  the oracle does; with probability 1-p it errs, independently per query. ``"to_reference"``
  (default): an error sends a locally answerable q to the reference (E = p O_q + (1-p) R_q), a q no
  local model answers always goes to the reference. This is the reading the paper's figures
  support: its savings scale with p (64.3 / 80.4 = 0.80), which an error that also spends local
  work on unanswerable queries would not give. The symmetric readings also err on the queries no
  local model answers: they go to the cheapest local model first and are then re-sent to the
  reference (``"symmetric_fallback"``: both costs, accuracy kept) or keep the wrong local answer
  (``"symmetric_no_fallback"``: no reference cost, accuracy lost);
- **savings** = 1 - sum_q E[cost_q] / sum_q R_q (a share of the reference's total), computed as an
  exact expectation, with the exact standard deviation of the realised share over the router's
  independent per-query errors, sqrt(sum_q p (1-p) (a_q - b_q)^2) / sum_q R_q (a_q, b_q the cost of
  q when the router is right, wrong). No random draw.
- accuracy: the hybrid's expected accuracy beside the reference's. With a fallback to the reference
  it is never below the reference's (the paper's "no quality loss"); the savings are *not*
  recomputed at a fixed accuracy.

Costs per query: energy on ``energy``'s basis (accelerator by default, as the paper;
:func:`ipw.science.intelligence.metrics.query_energy_j`); compute = 2 N (input_tokens + output_tokens) FLOP with N
the model's *active* parameter count (the 2 N FLOP per token forward-pass rule, as the paper's
released harness ``ipw/compute/flops.py`` estimates it; attention FLOPs left out), or a per-query
FLOP column the user names; cost = (input_tokens x input price + output_tokens x output price) /
1e6 USD from a price per million tokens given per model.

The release-date trend is in :mod:`ipw.science.intelligence.trend`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pathlib import Path

import numpy as np
import pandas as pd

from ipw.science.intelligence.metrics import DEFAULT_ENERGY, query_energy_j, scored_rows
from ipw.core.errors import IpwError
from ipw.core.basis import energy_column
from ipw.core.records import Col

METRICS = ("energy_j", "flops", "cost_usd")
"""What savings are computed in: energy [J], compute [FLOP], cost [USD]."""
MISROUTES = ("to_reference", "symmetric_fallback", "symmetric_no_fallback")
PREFERS = ("energy_j", "flops", "cost_usd", "params", "order")
"""What the oracle minimises among the local models that answer a query correctly (``order``: the
first in the order the runs are given)."""
PAPER_DIR = Path(__file__).resolve().parents[2] / "data" / "ipw_paper"


class RoutingInputError(IpwError, ValueError):
    """Runs that cannot be routed over: no common queries, a missing cost input, a bad option."""


@dataclass(frozen=True)
class Price:
    """A model's price [USD per million tokens], input and output."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float

    @classmethod
    def parse(cls, text: str) -> Price:
        """``"0.6"`` (both) or ``"0.15/0.60"`` (input/output)."""
        parts = str(text).split("/")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) not in (1, 2) or any(not math.isfinite(v) or v < 0 for v in values):
            raise RoutingInputError(f"price {text!r}: give USD per million tokens, e.g. 0.6 or 0.15/0.60 (input/output)")
        return cls(values[0], values[-1])


@dataclass(frozen=True)
class CostModel:
    """How a query's compute and cost are counted. ``params``: active parameters per run (a count,
    8e9 for an 8B model); ``flops_column``: a per-query FLOP column to use instead; ``prices`` per run;
    ``energy``: the energy basis; ``metrics``: which of :data:`METRICS` (None: energy, plus compute
    where params or a FLOP column are given, plus cost where prices are); ``prefer``: see :data:`PREFERS` (None: the
    first metric, energy unless it is left out)."""

    params: Mapping[str, float] = field(default_factory=dict)
    flops_column: str | None = None
    prices: Mapping[str, Price] = field(default_factory=dict)
    energy: str = DEFAULT_ENERGY
    metrics: tuple[str, ...] | None = None
    prefer: str | None = None

    def chosen_metrics(self) -> tuple[str, ...]:
        if self.metrics is not None:
            bad = [m for m in self.metrics if m not in METRICS]
            if bad or not self.metrics:
                raise RoutingInputError(f"unknown metric(s) {bad or '(none)'}; choose from {', '.join(METRICS)}")
            return tuple(self.metrics)
        out = ["energy_j"]
        if self.params or self.flops_column:
            out.append("flops")
        if self.prices:
            out.append("cost_usd")
        return tuple(out)


@dataclass(frozen=True)
class QueryTable:
    """Runs aligned on the queries every run scored: correctness and per-query costs, one column per
    run (index: query id)."""

    local: tuple[str, ...]
    reference: str
    correct: pd.DataFrame  # bool
    costs: Mapping[str, pd.DataFrame]  # metric -> float costs [J | FLOP | USD]
    params: Mapping[str, float]
    dropped: int  # common ids left out because some run did not score them
    prefer: str

    @property
    def queries(self) -> int:
        return len(self.correct)


@dataclass(frozen=True)
class Savings:
    """One router against all-reference: expected savings (shares of the reference's total, 0..1)
    and their standard deviation over the router's errors, expected accuracy, totals per metric."""

    router: str
    router_accuracy: float
    misroute: str
    queries: int
    local_share: float  # expected share of queries whose answer comes from a local model
    accuracy: float  # expected accuracy of the hybrid
    accuracy_sd: float
    reference_accuracy: float
    saved: Mapping[str, float]
    saved_sd: Mapping[str, float]
    hybrid_total: Mapping[str, float]  # J, FLOP, USD
    reference_total: Mapping[str, float]
    routed_to: Mapping[str, float]  # expected number of queries answered by each run (+ fallbacks)

    def row(self) -> dict:
        d = {"router": self.router, "router_accuracy": self.router_accuracy, "misroute": self.misroute,
             "queries": self.queries, "local_share": self.local_share, "accuracy": self.accuracy,
             "accuracy_sd": self.accuracy_sd, "reference_accuracy": self.reference_accuracy}  # fmt: skip
        for m in self.saved:
            d[f"{m}_saved"] = self.saved[m]
            d[f"{m}_saved_sd"] = self.saved_sd[m]
            d[f"{m}_hybrid_total"] = self.hybrid_total[m]
            d[f"{m}_reference_total"] = self.reference_total[m]
        return d


# -- parsing user assignments (the CLI's --price/--params/--release-date) -------------------------
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


def parse_params(text: str) -> float:
    """A parameter count: ``8e9``, ``8B``, ``135M``, ``1.5b``."""
    m = re.fullmatch(r"\s*([0-9.]+(?:e[+-]?[0-9]+)?)\s*([kmbt]?)\s*", str(text).lower())
    value = float(m.group(1)) * _SUFFIX[m.group(2)] if m else float("nan")
    if not (math.isfinite(value) and value > 0):
        raise RoutingInputError(f"parameter count {text!r}: give a positive count such as 8e9, 8B or 135M")
    return value


def parse_assignments(items: Iterable[str], what: str) -> dict[str, str]:
    """``["a=1", "b=2"]`` -> ``{"a": "1", "b": "2"}``; ``what`` names the option in errors."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip() or not value.strip():
            raise RoutingInputError(f"{what} {item!r}: expected RUN=VALUE")
        if name.strip() in out:
            raise RoutingInputError(f"{what} given twice for {name.strip()!r}")
        out[name.strip()] = value.strip()
    return out


def _tokens(frame: pd.DataFrame, run: str) -> tuple[pd.Series, pd.Series]:
    for col in (Col.INPUT_TOKENS, Col.OUTPUT_TOKENS):
        if col not in frame or frame[col].isna().any():
            n = len(frame) if col not in frame else int(frame[col].isna().sum())
            raise RoutingInputError(f"run {run}: {n} of {len(frame)} queries lack {col}; compute and cost need token counts")
    return frame[Col.INPUT_TOKENS].astype(float), frame[Col.OUTPUT_TOKENS].astype(float)


def _cost(frame: pd.DataFrame, run: str, metric: str, cm: CostModel) -> pd.Series:
    """Per-query cost of ``run`` on ``metric`` [J | FLOP | USD]."""
    if metric == "energy_j":
        col = energy_column(cm.energy)
        if col not in frame and Col.ENERGY_J not in frame:
            raise RoutingInputError(f"run {run} has no energy column {col}; leave energy out of the metrics to route on compute and cost only")
        e = query_energy_j(frame, cm.energy)
        if e.isna().any():
            raise RoutingInputError(f"run {run}: {int(e.isna().sum())} of {len(e)} queries have no {cm.energy} energy; "
                                    "energy savings need it for every query of every run (or leave energy out of the metrics)")  # fmt: skip
        return e
    if metric == "flops":
        if cm.flops_column and cm.flops_column in frame:
            f = frame[cm.flops_column].astype(float)
            if f.isna().any():
                raise RoutingInputError(f"run {run}: {int(f.isna().sum())} queries have no {cm.flops_column}")
            return f
        if run not in cm.params:
            raise RoutingInputError(f"run {run} has no parameter count (and no FLOP column); compute needs one for every run")
        tin, tout = _tokens(frame, run)
        return 2.0 * cm.params[run] * (tin + tout)  # FLOP: 2 N per token, prompt and output tokens
    if run not in cm.prices:
        raise RoutingInputError(f"run {run} has no price; cost needs a price per million tokens for every run")
    tin, tout = _tokens(frame, run)
    p = cm.prices[run]
    return (tin * p.input_usd_per_mtok + tout * p.output_usd_per_mtok) / 1e6  # USD


def routing_table(runs: Mapping[str, pd.DataFrame], reference: str, costs: CostModel | None = None) -> QueryTable:
    """Align ``runs`` (name -> query frame; ``reference`` one of them, the others local) on the
    query ids every run scored, and compute each run's per-query costs."""
    cm = costs or CostModel()
    if reference not in runs:
        raise RoutingInputError(f"reference {reference!r} is not among the runs ({', '.join(runs)})")
    local = tuple(n for n in runs if n != reference)
    if not local:
        raise RoutingInputError("routing needs at least one local run beside the reference")
    for what, names in (("parameter count", cm.params), ("price", cm.prices)):
        unknown = [n for n in names if n not in runs]
        if unknown:
            raise RoutingInputError(f"{what} given for {', '.join(unknown)}, not among the runs ({', '.join(runs)})")
    metrics = cm.chosen_metrics()
    prefer = cm.prefer or metrics[0]
    if prefer not in PREFERS:
        raise RoutingInputError(f"unknown oracle preference {prefer!r}; choose from {', '.join(PREFERS)}")
    if prefer == "params" and any(n not in cm.params for n in local):
        raise RoutingInputError("an oracle preferring the smallest model needs a parameter count for every local run")
    if prefer in METRICS and prefer not in metrics:
        raise RoutingInputError(f"the oracle prefers the least {prefer}, which is not among the metrics {metrics}")
    all_ids = [set(f[Col.ID]) for f in runs.values()]
    common_all = set.intersection(*all_ids)
    scored = {n: scored_rows(f).drop_duplicates(Col.ID, keep="last").set_index(Col.ID) for n, f in runs.items()}
    common = set.intersection(*(set(f.index) for f in scored.values()))
    if not common:
        raise RoutingInputError("the runs share no query id that every run scored; routing needs runs over the same query set"
                                + ("" if common_all else " (they share no id at all)"))  # fmt: skip
    ids = sorted(common)
    rows = {n: f.loc[ids] for n, f in scored.items()}
    correct = pd.DataFrame({n: r[Col.CORRECT].astype(bool) for n, r in rows.items()})
    table = {m: pd.DataFrame({n: _cost(r, n, m, cm).astype(float) for n, r in rows.items()}) for m in metrics}
    for m, t in table.items():
        if (t[reference] <= 0).all():
            raise RoutingInputError(f"the reference {reference} has no positive {m} on the common queries; savings against it are undefined")
    return QueryTable(local, reference, correct, table, dict(cm.params), len(common_all) - len(ids), prefer)


# -- routers ---------------------------------------------------------------------------------------
def _preference(t: QueryTable) -> pd.DataFrame:
    """Per query and local run, the quantity the oracle minimises (ties: the earlier run)."""
    if t.prefer in METRICS:
        return t.costs[t.prefer][list(t.local)]
    if t.prefer == "params":
        return pd.DataFrame({n: np.full(t.queries, t.params[n]) for n in t.local}, index=t.correct.index)
    return pd.DataFrame({n: np.full(t.queries, float(i)) for i, n in enumerate(t.local)}, index=t.correct.index)


def oracle_choice(t: QueryTable) -> pd.Series:
    """Per query, the local run the oracle sends it to, or None where no local run is correct."""
    pref = _preference(t)
    ok = t.correct[list(t.local)]
    masked = pref.where(ok, np.inf)
    chosen = masked.idxmin(axis=1)
    return chosen.astype(object).where(ok.any(axis=1), None)


def _fallback_choice(t: QueryTable) -> pd.Series:
    """Where a symmetric router errs on a query no local run answers: the local run it prefers."""
    return _preference(t).idxmin(axis=1)


def _pick(frame: pd.DataFrame, names: pd.Series) -> np.ndarray:
    idx = frame.columns.get_indexer(names.fillna(frame.columns[0]))
    return frame.to_numpy(float)[np.arange(len(frame)), idx]


def router_savings(t: QueryTable, p: float = 1.0, misroute: str = "to_reference") -> Savings:
    """Expected savings of a router that routes as the oracle with probability ``p`` (1: the
    oracle), against sending every query to the reference; see the module docstring."""
    if not (0.0 <= p <= 1.0):
        raise RoutingInputError(f"router accuracy {p} is not a probability in [0, 1]")
    if misroute not in MISROUTES:
        raise RoutingInputError(f"unknown misroute {misroute!r}; choose from {', '.join(MISROUTES)}")
    chosen = oracle_choice(t)
    answerable = chosen.notna().to_numpy()
    fallback = _fallback_choice(t)
    ref_ok = t.correct[t.reference].to_numpy(float)
    n = t.queries
    # per query: (cost, correct) when the router is right (a) and when it errs (b)
    acc_a = np.where(answerable, 1.0, ref_ok)
    acc_b = ref_ok.copy()
    if misroute == "symmetric_no_fallback":
        acc_b = np.where(answerable, ref_ok, 0.0)  # kept the wrong local answer
    saved, sd, hyb, ref_tot = {}, {}, {}, {}
    for m, c in t.costs.items():
        r = c[t.reference].to_numpy(float)
        a = np.where(answerable, _pick(c, chosen), r)
        b = r.copy()
        f = _pick(c, fallback)
        if misroute == "symmetric_fallback":
            b = np.where(answerable, r, f + r)
        elif misroute == "symmetric_no_fallback":
            b = np.where(answerable, r, f)
        total_r = float(r.sum())
        expected = p * a + (1 - p) * b
        hyb[m], ref_tot[m] = float(expected.sum()), total_r
        saved[m] = 1.0 - hyb[m] / total_r
        sd[m] = math.sqrt(float((p * (1 - p) * (a - b) ** 2).sum())) / total_r
    acc = float((p * acc_a + (1 - p) * acc_b).mean())
    acc_sd = math.sqrt(float((p * (1 - p) * (acc_a - acc_b) ** 2).sum())) / n
    # expected queries answered per run: local when right and answerable, else the reference
    routed = {name: 0.0 for name in (*t.local, t.reference)}
    for name in t.local:
        routed[name] += p * float((chosen == name).sum())
    routed[t.reference] += float((~answerable).sum()) + (1 - p) * float(answerable.sum())
    if misroute == "symmetric_no_fallback":  # errs on unanswerable: answered by the fallback run
        for name in t.local:
            routed[name] += (1 - p) * float(((fallback == name).to_numpy() & ~answerable).sum())
        routed[t.reference] -= (1 - p) * float((~answerable).sum())
    local_share = sum(routed[x] for x in t.local) / n
    label = "oracle" if p == 1.0 else f"p={p:g}"
    return Savings(label, p, misroute, n, local_share, acc, acc_sd, float(ref_ok.mean()), saved, sd, hyb, ref_tot, routed)


def savings_frame(t: QueryTable, accuracies: Iterable[float] = (1.0, 0.8), misroute: str = "to_reference") -> pd.DataFrame:
    """One row per router accuracy: :meth:`Savings.row` of :func:`router_savings`."""
    return pd.DataFrame([router_savings(t, p, misroute).row() for p in accuracies])


# -- release-date trend ----------------------------------------------------------------------------
def paper_figures(name: str) -> pd.DataFrame:
    """A table of the paper's published figures shipped in ``ipw/data/ipw_paper`` (``routing_savings``
    or ``headline``), each row with its source; see that folder's README."""
    path = PAPER_DIR / f"{name}.csv"
    if not path.is_file():
        known = sorted(p.stem for p in PAPER_DIR.glob("*.csv"))
        raise RoutingInputError(f"no published table {name!r}; shipped: {', '.join(known)}")
    return pd.read_csv(path, comment="#")
