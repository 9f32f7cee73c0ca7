"""Providers for what ``ipw profile`` measured: one :class:`Section` each.

Overview (per model x hardware), per-domain breakdown, energy and power, comparison (coverage and
best-of-local when the runs share query ids), hybrid routing savings and the release-date trend
(:mod:`ipw.science.intelligence.routing`, when asked for), sample answers, provenance. Metrics from
:mod:`ipw.science.intelligence.metrics` and :mod:`ipw.science.intelligence.routing`; tables from :mod:`ipw.reports.tables`; figures from
:mod:`ipw.reports.run_figures` and :mod:`ipw.reports.science_figures`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ipw.core import basis as basis_rule
from ipw.core.missing import NO_ENERGY, NO_IDLE, NOT_ABOVE_ZERO, fmt, reasons
from ipw.science.intelligence.metrics import DEFAULT_ENERGY, N_BOOT, energy_scope
from ipw.reports import grid_figures, grouped, run_figures, science_figures
from ipw.reports import tables as report_tables
from ipw.reports.blocks import Section, Table, plots
from ipw.science.intelligence.routing import CostModel
from ipw.run.cpu_scope import line as cpu_scope_line
from ipw.store import Run

ESTIMATE_WARNING = ("{names}: {basis} energy is an ESTIMATE, or includes one (a domain with no energy counter; see "
                    "Provenance), not a measurement alone. Every such energy, IPW and IPJ is labelled 'estimate'.")


def _pct(x: float, reason: str = "") -> str:
    return fmt(x, ".1%", reason)


def _g(x: float, unit: str = "", reason: str = "") -> str:
    return fmt(x, ".4g", reason, unit)


def _ci(row: dict, why: dict) -> str:
    if "accuracy_ci_low" in why or "accuracy_ci_high" in why:
        return f"[{_pct(None, why.get('accuracy_ci_low') or why.get('accuracy_ci_high'))}]"
    return f"[{_pct(row['accuracy_ci_low'])} - {_pct(row['accuracy_ci_high'])}]"


def overview(runs: Mapping[str, Run], summary: pd.DataFrame, basis: str = DEFAULT_ENERGY) -> Section:
    lines, warnings = [], []
    for r in summary.to_dict(orient="records"):
        why = reasons(r)
        per_query = (f"{r['energy_scope']} energy/query {_g(None, '', why['energy_j_mean'])}" if "energy_j_mean" in why
                     else f"{_g(r['energy_j_mean'], ' J')}/query {r['energy_scope']} ({r['energy']})")
        lines.append(
            f"{r['run']}: {r['model']} on {r['hardware']}: accuracy {_pct(r['accuracy'], why.get('accuracy', ''))} "
            f"{_ci(r, why)}, IPW {_g(r['ipw_per_w'], ' /W', why.get('ipw_per_w', ''))}, "
            f"IPJ {_g(r['ipj_per_j'], ' /J', why.get('ipj_per_j', ''))}, {per_query} over {r['n']} queries")
    for name, run in runs.items():
        scope = cpu_scope_line(run.manifest.get("cpu_scope"))
        if scope:
            lines.append(f"{name}: {scope}")
        if run.unfinished:
            warnings.append(f"{name}: {run.unfinished}: the run is unfinished and its figures cover only these "
                            f"(`ipw profile --resume RUN` continues it).")
    empty = [n for n, r in runs.items() if r.queries.empty]
    if empty:
        warnings.append(f"no query records in: {', '.join(empty)}")
    est = summary.loc[summary["energy"] == report_tables.ESTIMATE, "run"].tolist()
    if est:
        warnings.append(ESTIMATE_WARNING.format(names=", ".join(est), basis=basis_rule.canonical(basis).replace("_", " ")))
    if est and len(est) < len(summary):
        warnings.append("measured and estimated energies are side by side here: do not compare them as equals.")
    failed = summary.loc[summary["errors"] > 0, ["run", "errors"]]
    for r in failed.itertuples(index=False):
        warnings.append(f"{r.run}: {r.errors} queries failed in the engine (not scored; "
                        f"`ipw profile --resume RUN --retry-errors` runs them again).")
    for r in summary.loc[summary["meter_gaps"] > 0, ["run", "meter_gaps"]].itertuples(index=False):
        warnings.append(f"{r.run}: {r.meter_gaps} queries have no energy (a meter failed to read; flag "
                        f"meter-gap:<domain>): they are not scored.")
    for r in summary.loc[summary["sub_update_period"] > 0, ["run", "sub_update_period"]].itertuples(index=False):
        warnings.append(f"{r.run}: {r.sub_update_period} queries ran shorter than a counter's update period (flag "
                        f"sub-update-period:<domain>): their energy is a share of a counter step, within its bound.")
    frontier = report_tables.frontier_table(summary)
    reduced = summary.loc[summary["n_boot"] < N_BOOT, ["run", "n", "n_boot"]]
    if len(reduced):
        lines.append("bootstrap resamples: " + ", ".join(f"{r.run}: {r.n_boot} (over {r.n} queries)"
                                                        for r in reduced.itertuples(index=False)))
    return Section(
        "Summary per model x hardware",
        intro=("Accuracy = correct / scored; IPW = accuracy / mean per-query power [1/W]; IPJ = accuracy / "
               "mean per-query energy [1/J] (IPW paper, arXiv 2511.07885, section 3); 95% percentile-bootstrap "
               "intervals over queries. Energy per query is the query's own meter window, on the report's basis "
               "(energy scope: the accelerator's by default, ipw/core/basis.py) with its own measured/estimate label, "
               "and the system's, total and above the idle baseline. TTFT: time to first token; TPOT: time per "
               "output token after the first. n/a: a figure that does not exist, its reason under the table."),
        summary=tuple(lines), warnings=tuple(warnings),
        tables=(Table("One row per run", summary), *grid_tables(summary),
                Table("Accuracy against energy per query (on_front: on the Pareto frontier)", frontier)),
        figures=plots(("Accuracy against energy per query per hardware; red: each hardware's Pareto frontier",
                       grid_figures.frontier_panels(summary)) if many(summary) else
                      ("Accuracy against energy per query; red: the Pareto frontier", run_figures.accuracy_vs_energy(summary))),
        key="summary",
    )


def many(summary: pd.DataFrame) -> bool:
    """Whether the report groups its figures (past :data:`ipw.reports.grouped.MANY_RUNS` runs)."""
    return len(summary) > grouped.MANY_RUNS


def grid_tables(summary: pd.DataFrame) -> tuple[Table, ...]:
    """IPW, IPJ and accuracy per model (rows) and hardware (columns), where the runs span several
    of both; ``*`` marks a run on its hardware's frontier."""
    if summary.empty or summary["model"].nunique() < 2 or summary["hardware"].nunique() < 2:
        return ()
    note = (f"{grouped.FRONT_MARK}: on its hardware's Pareto frontier (no run on that hardware more accurate for less "
            "energy); empty: the model did not run there; n/a: see the table of one row per run.")
    return tuple(Table(f"{what} by model and hardware", grouped.grid_text(summary, col, fmt_), note=note)
                 for what, col, fmt_ in (("IPW [1/W]", "ipw_per_w", ".4g"), ("IPJ [1/J]", "ipj_per_j", ".4g"),
                                         ("Accuracy", "accuracy", ".1%")))


def domains(domain: pd.DataFrame, summary: pd.DataFrame | None = None) -> Section:
    figure = (("Accuracy and energy per query by run and domain (rows grouped by hardware)",
               grid_figures.domain_heatmap(domain, summary)) if summary is not None and many(summary) else
              ("Accuracy and energy per query by domain", run_figures.domain_bars(domain)))
    return Section(
        "Per domain", intro="The same metrics within each query domain.",
        tables=(Table("One row per run and domain", domain),), figures=plots(figure), key="domains",
    )


def energy(runs: Mapping[str, Run], basis: str = DEFAULT_ENERGY, summary: pd.DataFrame | None = None) -> Section:
    """The power timeline and each run's distribution of energy per query on ``basis`` (its scope
    and label named) and above idle; past :data:`ipw.reports.grouped.MANY_RUNS` runs (``summary``
    given), each run's median and 10th-90th percentile instead, and no timeline."""
    no_tl = [n for n, r in runs.items() if not r.has_timeline]
    warnings = [f"no power timeline in {', '.join(no_tl)} (profile with --hz 10 to record one)"] if no_tl else []
    lines = []
    if summary is not None and many(summary):
        lines.append(f"power timelines are drawn for up to {grouped.MANY_RUNS} runs (this report has {len(runs)}): "
                     "a report of fewer runs, one hardware's for example, shows them")
        figures = plots(("Energy per query per run: median and 10th-90th percentile (rows grouped by hardware)",
                         grid_figures.energy_ranges(runs, summary, basis)))
    else:
        figures = plots(("Power over time (averaged into bins for long runs)", run_figures.power_timeline(runs)),
                        ("Energy per query: histogram and ECDF", run_figures.energy_distribution(runs, basis)),
                        ("Energy per query above the idle baseline", run_figures.energy_distribution(runs, "above_idle")))
    for n, r in runs.items():
        q = r.queries
        if q.empty or "energy_j" not in q:
            continue
        e = basis_rule.frame_energy_j(q, basis)
        what = f"{energy_scope(q, basis)} energy per query ({report_tables.energy_kind(q, basis)})"
        if e.notna().any():
            lines.append(f"{n}: {what} median {_g(e.median(), ' J')}, 90th percentile "
                         f"{_g(e.quantile(0.9), ' J')}, max {_g(e.max(), ' J')}, total {_g(e.sum(), ' J')}")
        else:
            lines.append(f"{n}: {what} {fmt(None, '', NO_IDLE if basis_rule.canonical(basis) == 'above_idle' else NO_ENERGY)}")
    return Section(
        "Energy and power", summary=tuple(lines), warnings=tuple(warnings), figures=figures, key="energy",
    )


def compare(runs: Mapping[str, Run], summary: pd.DataFrame, energy: str = DEFAULT_ENERGY) -> Section | None:
    """Side by side, relative to the best run; coverage and best-of-local when ids are shared."""
    if len(summary) < 2:
        return None
    side = summary[["run", "model", "hardware", "accuracy", "ipw_per_w", "ipj_per_j", "energy_j_mean", "energy_scope",
                    "energy", "e2e_s_mean"]].copy()
    side["ipw_vs_best"] = side["ipw_per_w"] / side["ipw_per_w"].max()
    side["ipj_vs_best"] = side["ipj_per_j"] / side["ipj_per_j"].max()
    tables, lines, warnings = [Table("Side by side (vs_best: share of the best run's value)", side)], [], []
    try:
        cov, routed, n = report_tables.coverage_tables({r: runs[r] for r in summary["run"]}, energy)
    except ValueError as e:
        warnings.append(f"no coverage: {e}")
    else:
        best = cov.iloc[-1]
        lines.append(f"coverage over {n} common queries: {_pct(best['accuracy'])} answered correctly by at least one run")
        lines.append(f"best-of-local routing: accuracy {_pct(best['accuracy'])}, {_g(best['energy_j_mean'], ' J')}"
                     f"/query {best['energy_scope']} ({best['energy']}), IPJ {_g(best['ipj_per_j'], ' /J', NOT_ABOVE_ZERO)}")
        tables += [Table(f"Coverage and best-of-local over the {n} common queries", cov,
                         note="Routing sends each query to a run that answered it correctly, the least-energy "
                              "one where several did (an oracle: an upper bound, as in the IPW paper, section 4)."),
                   Table("Queries routed to each run", routed)]
    return Section("Comparison", summary=tuple(lines), warnings=tuple(warnings), tables=tuple(tables), key="compare")


def samples(runs: Mapping[str, Run], basis: str = DEFAULT_ENERGY) -> Section:
    return Section(
        "Sample answers", intro="A few answers per run exactly as the model wrote them (shown as text).",
        tables=(Table("First correct and first wrong answers per run", report_tables.samples_table(runs, energy=basis)),),
        key="samples",
    )


def _by_field(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per field, one column per run: easier to read side by side."""
    if frame.empty:
        return frame
    return frame.set_index("run").T.rename_axis("field").reset_index().rename_axis(None, axis=1)


def provenance(runs: Mapping[str, Run]) -> Section:
    meters = report_tables.meters_table(runs)
    warnings = []
    est = meters.loc[meters["energy"] == report_tables.ESTIMATE]
    for r in est.drop_duplicates(["run", "source"]).itertuples(index=False):
        warnings.append(f"{r.run}: domain {r.domain} comes from {r.source}, an estimate ({r.note})".rstrip(" ()"))
    return Section(
        "Provenance",
        intro="Where every number comes from: the meters and their sources, meter families looked for and "
              "not found, the idle baseline, record flags, and the versions of everything involved.",
        warnings=tuple(warnings),
        tables=(Table("Meters and sources", meters), Table("Meter families not available", report_tables.absent_table(runs)),
                Table("Idle baseline", report_tables.idle_table(runs)), Table("Record flags", report_tables.flags_table(runs)),
                Table("Versions (one column per run)", _by_field(report_tables.versions_table(runs)))),
        key="provenance",
    )


# -- Hybrid routing and the release-date trend (IPW paper, arXiv 2511.07885; docs/routing.md) -----

@dataclass(frozen=True)
class RoutingRequest:
    """Hybrid routing against the run named ``reference``: ``costs`` (prices, parameter counts,
    metrics, oracle preference; its energy basis is replaced by the report's), the routers'
    accuracies (1.0: the oracle) and where a p-accurate router's errors go (``misroute``)."""

    reference: str
    costs: CostModel = field(default_factory=CostModel)
    accuracies: tuple[float, ...] = (1.0, 0.8)
    misroute: str = "to_reference"


@dataclass(frozen=True)
class TrendRequest:
    """The release-date trend: ``release_dates`` (run -> YYYY-MM-DD; runs left out need a constant
    ``release_date`` column) and its periods, ``by`` year or each release date."""

    release_dates: Mapping[str, str] = field(default_factory=dict)
    by: str = "year"


METRIC_NAMES = {"energy_j": "energy", "flops": "compute", "cost_usd": "cost"}
PREFER_TEXT = {"energy_j": "the least energy", "flops": "the least compute", "cost_usd": "the least cost",
               "params": "the fewest parameters", "order": "the first given"}
MISROUTE_TEXT = {
    "to_reference": "otherwise it sends the query to the reference (a query no local run answers always goes there)",
    "symmetric_fallback": ("otherwise a locally answerable query goes to the reference, and a query no local run "
                           "answers goes to the cheapest local run first, then to the reference"),
    "symmetric_no_fallback": ("otherwise a locally answerable query goes to the reference, and a query no local run "
                              "answers goes to the cheapest local run, whose wrong answer is kept"),
}


def _share_sd(x: float, sd: float) -> str:
    return _pct(x) + (f" \u00b1 {sd:.1%}" if np.isfinite(sd) and sd > 0 else "")


def routing(runs: Mapping[str, Run], request: RoutingRequest, energy: str = DEFAULT_ENERGY) -> Section:
    """Energy, compute and cost an oracle and p-accurate routers save against sending every query
    to the reference run; :class:`~ipw.science.intelligence.routing.RoutingInputError` when the runs cannot be routed."""
    ref = request.reference
    table, frame, routed = report_tables.routing_tables(runs, ref, replace(request.costs, energy=energy), request.accuracies,
                                            request.misroute)
    metrics = [m for m in METRIC_NAMES if f"{m}_saved" in frame]
    lines = [f"{table.queries} queries every run scored; local runs: {', '.join(table.local)}; reference: {ref}; "
             f"the oracle picks {PREFER_TEXT[table.prefer]} of the local runs that are correct"]
    for r in frame.itertuples(index=False):
        r = r._asdict()
        saved = ", ".join(f"{METRIC_NAMES[m]} {_share_sd(r[f'{m}_saved'], r[f'{m}_saved_sd'])}" for m in metrics)
        lines.append(f"{r['router']}: saves {saved}; local share {_pct(r['local_share'])}; accuracy "
                     f"{_share_sd(r['accuracy'], r['accuracy_sd'])} ({ref} alone {_pct(r['reference_accuracy'])})")
    warnings = []
    if table.dropped:
        warnings.append(f"{table.dropped} queries some run did not score are left out of the routing")
    if "energy_j" in metrics:
        est = [n for n in (*table.local, ref) if report_tables.energy_kind(runs[n].queries, energy) == report_tables.ESTIMATE]
        if est:
            warnings.append(f"energy savings use estimated energies of {', '.join(est)} (see Provenance)")
    if request.misroute == "symmetric_no_fallback":
        warnings.append("misroute symmetric_no_fallback keeps wrong local answers: these savings cost accuracy")
    units = {"energy_j": f"energy [J] on the {energy} basis", "flops": "compute [FLOP] = 2 N (input + output tokens), "
             "N the active parameters", "cost_usd": "cost [USD] = tokens x price per million tokens / 1e6"}
    intro = (f"Against sending every query to the reference run {ref}: the oracle sends each query to a local run "
             f"that answers it correctly ({PREFER_TEXT[table.prefer]} where several do), else to {ref}; a p-accurate "
             f"router routes as the oracle with probability p, independently per query; {MISROUTE_TEXT[request.misroute]}. "
             f"Saved = 1 - sum of expected costs / sum of {ref}'s costs over the same queries, in "
             + "; ".join(units[m] for m in metrics)
             + ". Every figure is an exact expectation over the router's errors, not a random draw; \u00b1 is its "
             "exact standard deviation. Accuracy is the hybrid's expected accuracy beside the reference's "
             "(IPW paper, arXiv 2511.07885; definitions in docs/routing.md).")
    return Section(
        "Hybrid routing", key="routing", intro=intro, summary=tuple(lines), warnings=tuple(warnings),
        tables=(Table(f"Savings per router: shares of {ref}'s total (0.5 = 50%); _sd: exact standard deviation; "
                      "totals in J, FLOP, USD", frame),
                Table("Expected queries answered by each run, per router", routed)),
    )


def trend(runs: Mapping[str, Run], request: TrendRequest, energy: str = DEFAULT_ENERGY,
          summary: pd.DataFrame | None = None) -> Section:
    """The best available run's accuracy and IPW per release-date period, with its figure
    (``summary``: the report's table of runs, whose IPW the trend shows)."""
    points, tr = report_tables.trend_tables(runs, request.release_dates, energy, request.by, summary)
    points = points.assign(release_date=points["release_date"].dt.date)
    lines = [f"from {tr.first} to {tr.last}: best IPW {_g(tr.ipw_first, ' /W')} -> {_g(tr.ipw_last, ' /W')} "
             f"(x{_g(tr.ipw_ratio)}); best accuracy {_pct(tr.accuracy_first)} -> {_pct(tr.accuracy_last)} "
             f"(x{_g(tr.accuracy_ratio)})"]
    if np.isfinite(tr.union_coverage_first):
        lines.append(f"union coverage (some available run correct): {_pct(tr.union_coverage_first)} -> "
                     f"{_pct(tr.union_coverage_last)}")
    est = [n for n in points["run"] if report_tables.energy_kind(runs[n].queries, energy) == report_tables.ESTIMATE]
    warnings = [f"IPW of {', '.join(est)} uses estimated energy (see Provenance)"] if est else []
    period = "year (runs released by 31 December)" if request.by == "year" else "release date"
    return Section(
        "Release-date trend", key="trend", summary=tuple(lines), warnings=tuple(warnings),
        intro=(f"Per {period}, among the runs whose model was released by then: the best accuracy, the best IPW "
               f"(each run's IPW of the table of runs [1/W], energy on the {energy} basis: accuracy / mean per-query "
               "power, or for a served run / the device's power while serving) and the union coverage. The "
               "IPW paper (arXiv 2511.07885) reports IPW up 5.3x from 2023 to 2025 and the best local accuracy up "
               "from 23.2% to 71.3%. A run is a model on a machine: runs on one accelerator trace models alone."),
        tables=(Table("Best available run per period", tr.table),
                Table("One row per run, at its release date", points)),
        figures=plots(("Best IPW and best accuracy over release date; grey: each run at its release date",
                       science_figures.release_trend_figure(points, tr.table))),
    )
