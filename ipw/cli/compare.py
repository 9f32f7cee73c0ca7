"""``ipw compare``: runs side by side, coverage and best-of-local; hybrid routing savings against a
reference run and the release-date trend (:mod:`ipw.science.intelligence.routing`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ipw.cli.checks import distinct_runs
from ipw.cli.face import command
from ipw.cli.routing_options import METRICS, MISROUTES, PREFERS, RoutingArgs, routing_options
from ipw.core.basis import DEFAULT_BASIS, ENERGY_BASES
from ipw.core.errors import IpwError
from ipw.core.missing import fmt

GRID_PAST = 12  # runs; ipw.reports.grouped.MANY_RUNS (not imported here: it would load matplotlib for every command)

__all__ = ["METRICS", "MISROUTES", "PREFERS", "compare"]


@command(short_help="Compare runs: accuracy, IPW, IPJ, coverage, routing savings, trend.")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--energy", type=click.Choice(ENERGY_BASES), default=DEFAULT_BASIS, show_default=True,
              help="Energy IPW and IPJ divide by: the accelerator's (as the IPW paper), the whole system's, "
                   "or the system's above its idle baseline.")
@routing_options
@click.option("--table", "layout", type=click.Choice(["auto", "runs", "grid"]), default="auto", show_default=True,
              help="runs: one row per run; grid: IPW, IPJ and accuracy per model (rows) and hardware (columns), "
                   f"each hardware's frontier marked; auto: grid past {GRID_PAST} runs.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def compare(runs: tuple[str, ...], energy: str, routing: RoutingArgs, layout: str, as_json: bool) -> None:
    """Compare runs side by side: accuracy, IPW, IPJ, energy, latency, coverage and best-of-local.

    With --reference, the energy, compute and cost an oracle router and p-accurate routers save
    against sending every query to the reference run; with --release-date, the trend of the best
    available model's accuracy and IPW (docs/routing.md).

    \b
    Examples:
      ipw compare runs/a runs/b
      ipw compare runs/* --json
      ipw compare runs/a runs/b --energy system
      ipw compare runs/small runs/big runs/cloud --reference cloud \\
          --params small=1.7B --params big=8B --params cloud=70B \\
          --price small=0.1 --price big=0.2 --price cloud=0.88 --router-accuracy 0.8
      ipw compare runs/a runs/b --release-date a=2024-07-23 --release-date b=2025-04-29
      ipw compare launches/grid-1/* --table grid
    """
    import pandas as pd

    from ipw.cli.text import table as text_table
    from ipw.core.missing import reasons
    from ipw.core.records import finite
    from ipw.reports.tables import energy_label, run_names, summarized
    from ipw.science.intelligence.metrics import NoCoverageEnergy
    from ipw.store import load

    distinct_runs(runs)
    loaded, rows, unfinished = {}, [], {}
    for path in runs:
        run = load(path, json_columns=False)  # no table here reads the records' JSON columns
        name = Path(path).name
        if name in loaded:
            raise IpwError(f"two runs named {name}")
        if run.queries.empty:
            raise IpwError(f"run {path} has no query records yet; nothing to compare")
        loaded[name] = run.queries
        rows.append(summarized(run, run.queries, energy).assign(**run_names(run, name)))  # summary.json where valid
        unfinished[name] = run.unfinished
    table = pd.concat(rows, ignore_index=True)
    table["energy"] = energy_label(table["measured"])
    why = [reasons(r) for r in table.to_dict(orient="records")]
    cols = ["run", "status", "n", "accuracy", "ipw_per_w", "ipj_per_j", "energy_scope", "scope_energy_j_mean", "energy",
            "power_w_mean", "e2e_s_mean"]
    if "serving_power_w" in table:  # serving runs: IPW over the device's power while serving (docs/serving.md)
        cols[cols.index("power_w_mean") + 1:cols.index("power_w_mean") + 1] = ["serving_power_w", "ipw_attributed_per_w"]
    cov, no_cov = None, ""
    if len(loaded) > 1:
        try:
            cov = _coverage(loaded, energy, table)
        except NoCoverageEnergy as e:
            no_cov = str(e)
    reference = routing.reference
    savings = _routing(loaded, energy, routing)
    trend = _trend(loaded, energy, routing, dict(zip(table["run"], table["ipw_per_w"])))
    if as_json:
        rows = table[cols + ["measured"]].to_dict(orient="records")
        out = {"runs": [r | ({"missing": w} if w else {}) for r, w in zip(rows, why)], "coverage": cov}
        if no_cov:
            out["coverage_missing"] = no_cov
        if savings is not None:
            out["routing"] = {"reference": reference, "queries": savings[0].queries, "dropped": savings[0].dropped,
                              "routers": savings[1].to_dict(orient="records")}
        if trend is not None:
            out["trend"] = {"periods": trend.table.to_dict(orient="records"), "ipw_ratio": trend.ipw_ratio,
                            "accuracy_first": trend.accuracy_first, "accuracy_last": trend.accuracy_last}
        click.echo(json.dumps(finite(out), indent=2, default=str, allow_nan=False))
        return
    if layout == "grid" or layout == "auto" and len(loaded) > GRID_PAST:
        _print_grid(table, why)
    else:
        click.echo(text_table(table[[c for c in cols if c != "status"]], why, key="run"))
    for name, state in unfinished.items():
        if state:
            click.echo(f"{name}: {state} (unfinished: its figures cover only these)")
    if no_cov:
        click.echo(f"\ncoverage and best-of-local: n/a ({no_cov})")
    if cov:
        b = cov["best_of_local"]
        click.echo(f"\ncoverage over {cov['queries']} common queries: {cov['coverage']:.1%}")
        click.echo(f"best-of-local: accuracy {b['accuracy']:.1%}, "
                   f"{fmt(b['energy_j_mean'], '.3f', b.get('missing', ''), ' J')}/query {b['energy_scope']} ({b['energy']}), "
                   f"IPJ {fmt(b['ipj_per_j'], '.5f', b.get('missing', ''), ' /J')}")
    if savings is not None:
        _print_routing(reference, *savings)
    if trend is not None:
        _print_trend(trend)


def _print_grid(table, why) -> None:
    """IPW, IPJ and accuracy per model (rows) and hardware (columns), each hardware's frontier
    marked (:mod:`ipw.reports.grouped`), then why a figure is n/a, naming its runs."""
    from ipw.reports.grouped import FRONT_MARK, grid_text

    runs = table.rename(columns={"energy_j_mean": "system_energy_j_mean", "scope_energy_j_mean": "energy_j_mean"})
    kinds = "+".join(dict.fromkeys(runs["energy"]))
    click.echo(f"{len(runs)} runs: {runs['model'].nunique()} models on {runs['hardware'].nunique()} hardware; "
               f"{'+'.join(dict.fromkeys(runs['energy_scope']))} energy ({kinds}); {FRONT_MARK}: on that hardware's "
               "Pareto frontier of accuracy against energy per query; empty: the model did not run there")
    for title, col, digits in (("IPW [1/W]", "ipw_per_w", ".4g"), ("IPJ [1/J]", "ipj_per_j", ".4g"),
                               ("accuracy", "accuracy", ".1%")):
        click.echo(f"\n{title}\n" + grid_text(runs, col, digits).to_string(index=False))
    notes: dict[tuple[str, str], list[str]] = {}
    for run, reasons_ in zip(runs["run"], why):
        for col, reason in reasons_.items():
            if col in ("ipw_per_w", "ipj_per_j", "accuracy"):
                notes.setdefault((col, reason), []).append(str(run))
    for (col, reason), names in notes.items():
        click.echo(f"n/a in {col} ({', '.join(names)}): {reason}")
    click.echo("\none row per run: ipw compare --table runs (or --json)")


def _coverage(loaded, energy: str, table) -> dict:
    """:func:`ipw.science.intelligence.metrics.coverage`, with the scope and the label of its
    best-of-local energy (measured only where every run's is) and why a figure is missing."""
    from ipw.core.missing import NOT_ABOVE_ZERO, missing
    from ipw.science.intelligence.metrics import coverage

    cov = coverage(loaded, energy)
    b = cov["best_of_local"]
    b["energy_scope"] = "+".join(dict.fromkeys(table["energy_scope"]))
    b["energy"] = "measured" if (table["energy"] == "measured").all() else "estimate"
    if missing(b["ipj_per_j"]):
        b["missing"] = NOT_ABOVE_ZERO
    return cov


def _routing(loaded, energy: str, args: RoutingArgs):
    """(QueryTable, savings frame) against ``--reference``, or None without it."""
    from ipw.science.intelligence.routing import routing_table, savings_frame

    costs = args.costs(energy)
    if costs is None:
        return None
    table = routing_table(loaded, args.reference, costs)
    return table, savings_frame(table, args.accuracies, args.misroute)


def _trend(loaded, energy: str, args: RoutingArgs, ipw_per_w: dict):
    """The release-date trend, each run's IPW the one of the table of runs (a serving run's included)."""
    from ipw.science.intelligence.trend import model_points, release_trend

    dates = args.dates()
    if dates is None:
        return None
    points = model_points(loaded, dates, energy, ipw_per_w)
    return release_trend(points, loaded if len(loaded) > 1 else None, args.trend_by)


def _print_routing(reference, table, frame) -> None:
    click.echo(f"\nhybrid routing against {reference} over {table.queries} queries every run scored"
               + (f" ({table.dropped} left out)" if table.dropped else "")
               + f"; oracle picks the least {table.prefer}; savings are shares of {reference}'s total")
    names = {"energy_j": "energy", "flops": "compute", "cost_usd": "cost"}
    for _, r in frame.iterrows():
        parts = [f"{names[m]} {r[f'{m}_saved']:.1%}" + (f" +- {r[f'{m}_saved_sd']:.1%}" if r[f"{m}_saved_sd"] else "")
                 for m in names if f"{m}_saved" in r]
        click.echo(f"  {r['router']:<8} saves {', '.join(parts)}; local share {r['local_share']:.1%}, "
                   f"accuracy {r['accuracy']:.1%} ({reference} {r['reference_accuracy']:.1%})")


def _print_trend(trend) -> None:
    from ipw.cli.text import table

    click.echo("\nbest available model by release date:")
    t = trend.table[["period", "models", "best_accuracy", "best_accuracy_run", "best_ipw_per_w", "best_ipw_run", "union_coverage"]]
    click.echo(table(t))
    click.echo(f"from {trend.first} to {trend.last}: IPW x{fmt(trend.ipw_ratio, '.3g', 'no IPW at one end')}, "
               f"best accuracy {fmt(trend.accuracy_first, '.1%')} -> {fmt(trend.accuracy_last, '.1%')}")
