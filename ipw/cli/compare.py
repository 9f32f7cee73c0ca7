"""``ipw compare``: runs side by side, coverage and best-of-local; hybrid routing savings against a
reference run and the release-date trend (:mod:`ipw.routing`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ipw.cli.face import command
from ipw.errors import IpwError
from ipw.records import ENERGY_BASES

# ipw.routing's METRICS, MISROUTES and PREFERS, spelled out so that listing commands does not import
# pandas (tests/test_routing_cli.py checks that they agree)
METRICS = ("energy_j", "flops", "cost_usd")
MISROUTES = ("to_reference", "symmetric_fallback", "symmetric_no_fallback")
PREFERS = ("energy_j", "flops", "cost_usd", "params", "order")


@command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--energy", type=click.Choice(ENERGY_BASES), default="accelerator", show_default=True,
              help="Energy IPW and IPJ divide by: the accelerator's (as the IPW paper), the whole system's, "
                   "or the system's above its idle baseline.")
@click.option("--reference", metavar="RUN",
              help="Hybrid routing: the run (folder name) every query would go to without a router, e.g. a "
                   "cloud or larger model; the other runs are the local models.")
@click.option("--price", "prices", multiple=True, metavar="RUN=USD_PER_MTOK",
              help="Price of a run in USD per million tokens (one number, or IN/OUT); repeat per run. "
                   "Cost savings need one for every run.")
@click.option("--params", "params", multiple=True, metavar="RUN=N",
              help="Active parameter count of a run's model (8e9, 8B, 135M); repeat per run. "
                   "Compute savings (2N FLOP per token) need one for every run.")
@click.option("--router-accuracy", "router_accuracies", multiple=True, type=click.FloatRange(0, 1), default=(0.8,),
              show_default=True, help="Accuracy p of a realistic router, besides the oracle; repeat for several.")
@click.option("--misroute", type=click.Choice(MISROUTES), default="to_reference", show_default=True,
              help="Where a p-accurate router's errors go (docs/routing.md).")
@click.option("--oracle-prefers", type=click.Choice(PREFERS), default=None,
              help="Among local runs that answer a query correctly, the oracle picks the least of this "
                   "(default: energy, or the first metric).")
@click.option("--routing-metrics", default=None, metavar="LIST",
              help=f"Comma-separated subset of {','.join(METRICS)} (default: energy, plus flops with --params, "
                   "plus cost with --price); leave energy out for a reference behind an API.")
@click.option("--release-date", "release_dates", multiple=True, metavar="RUN=YYYY-MM-DD",
              help="Release date of a run's model; given for every run, prints the trend of the best "
                   "available model's accuracy and IPW.")
@click.option("--trend-by", type=click.Choice(["year", "date"]), default="year", show_default=True,
              help="Periods of the release-date trend.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def compare(runs: tuple[str, ...], energy: str, reference: str | None, prices: tuple[str, ...], params: tuple[str, ...],
            router_accuracies: tuple[float, ...], misroute: str, oracle_prefers: str | None, routing_metrics: str | None,
            release_dates: tuple[str, ...], trend_by: str, as_json: bool) -> None:
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
    """
    import pandas as pd

    from ipw.efficiency import coverage, summarize
    from ipw.store import load

    loaded = {}
    for path in runs:
        run = load(path)
        name = Path(path).name
        if name in loaded:
            raise IpwError(f"two runs named {name}")
        if run.queries.empty:
            raise IpwError(f"run {path} has no query records yet; nothing to compare")
        loaded[name] = run.queries
    table = pd.concat([summarize(f, energy=energy).assign(run=n) for n, f in loaded.items()], ignore_index=True)
    cols = ["run", "n", "accuracy", "ipw_per_w", "ipj_per_j", "energy_scope", "scope_energy_j_mean", "power_w_mean", "e2e_s_mean", "measured"]
    cov = coverage(loaded, energy) if len(loaded) > 1 else None
    routing = _routing(loaded, energy, reference, prices, params, router_accuracies, misroute, oracle_prefers, routing_metrics)
    trend = _trend(loaded, energy, release_dates, trend_by)
    if as_json:
        out = {"runs": table[cols].to_dict(orient="records"), "coverage": cov}
        if routing is not None:
            out["routing"] = {"reference": reference, "queries": routing[0].queries, "dropped": routing[0].dropped,
                              "routers": routing[1].to_dict(orient="records")}
        if trend is not None:
            out["trend"] = {"periods": trend.table.to_dict(orient="records"), "ipw_ratio": trend.ipw_ratio,
                            "accuracy_first": trend.accuracy_first, "accuracy_last": trend.accuracy_last}
        click.echo(json.dumps(out, indent=2, default=str))
        return
    click.echo(table[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    if cov:
        b = cov["best_of_local"]
        click.echo(f"\ncoverage over {cov['queries']} common queries: {cov['coverage']:.1%}")
        click.echo(f"best-of-local: accuracy {b['accuracy']:.1%}, {b['energy_j_mean']:.3f} J/query, IPJ {b['ipj_per_j']:.5f} /J")
    if routing is not None:
        _print_routing(reference, *routing)
    if trend is not None:
        _print_trend(trend)


def _routing(loaded, energy, reference, prices, params, accuracies, misroute, prefer, metrics):
    """(QueryTable, savings frame) against ``reference``, or None without ``--reference``."""
    from ipw.routing import CostModel, Price, parse_assignments, parse_params, routing_table, savings_frame

    if reference is None:
        if prices or params:
            raise IpwError("--price and --params are for hybrid routing: name the reference run with --reference RUN")
        return None
    costs = CostModel(
        params={k: parse_params(v) for k, v in parse_assignments(params, "--params").items()},
        prices={k: Price.parse(v) for k, v in parse_assignments(prices, "--price").items()},
        energy=energy,
        metrics=tuple(m.strip() for m in metrics.split(",")) if metrics else None,
        prefer=prefer,
    )
    table = routing_table(loaded, reference, costs)
    return table, savings_frame(table, (1.0, *[p for p in accuracies if p != 1.0]), misroute)


def _trend(loaded, energy, release_dates, by):
    from ipw.routing import model_points, parse_assignments, release_trend

    if not release_dates:
        return None
    points = model_points(loaded, parse_assignments(release_dates, "--release-date"), energy)
    return release_trend(points, loaded if len(loaded) > 1 else None, by)


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
    click.echo("\nbest available model by release date:")
    t = trend.table[["period", "models", "best_accuracy", "best_accuracy_run", "best_ipw_per_w", "best_ipw_run", "union_coverage"]]
    click.echo(t.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    click.echo(f"from {trend.first} to {trend.last}: IPW x{trend.ipw_ratio:.3g}, "
               f"best accuracy {trend.accuracy_first:.1%} -> {trend.accuracy_last:.1%}")
