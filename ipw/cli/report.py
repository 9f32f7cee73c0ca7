"""``ipw report``: one self-contained HTML file from runs and science results."""

from __future__ import annotations

from pathlib import Path

import click

from ipw.cli.checks import distinct_runs
from ipw.cli.face import command
from ipw.cli.routing_options import RoutingArgs, routing_options
from ipw.core.basis import DEFAULT_BASIS, ENERGY_BASES


@command(context_settings={"help_option_names": ["-h", "--help"]},
         short_help="Write a self-contained HTML report of runs and science results.")
@click.argument("runs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="The HTML file to write.")
@click.option("--extra", "extras", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Output of `ipw capacity --out`, `ipw cmr fit --out`, `ipw density fit/trend/model --out` "
                   "(file or folder; repeatable).")
@click.option("--title", help="Page title [default: the models' names].")
@click.option("--energy", type=click.Choice([*ENERGY_BASES, "total"]), default=DEFAULT_BASIS, show_default=True,
              help="Energy that IPW, IPJ and the routing savings use: the accelerator's (as the IPW paper, "
                   "`ipw profile` and `ipw compare`), the system's (total is its old name), or the system's above idle.")
@click.option("--no-compare", is_flag=True, help="Leave out the comparison section (coverage, best-of-local).")
@routing_options
def report(runs, out, extras, title, energy, no_compare, routing: RoutingArgs) -> None:
    """Write a self-contained HTML report (plots embedded, no network) of runs and science results.

    \b
    It shows, per model x hardware: accuracy, IPW, IPJ, energy per query (total and above idle),
    TTFT, TPOT, end-to-end; per-domain results; the power timeline; the energy-per-query
    distribution; accuracy against energy with the Pareto frontier; with 2+ runs, a side-by-side
    comparison with coverage and best-of-local routing (when the runs share query ids); with
    --reference, the energy, compute and cost routers save against the reference run; with
    --release-date, the trend of the best available model's accuracy and IPW (docs/routing.md);
    density, information capacity and CMR results given with --extra; and provenance (meters,
    sources, estimate labels, versions). Estimated energies are labelled "estimate" everywhere.

    \b
    Examples:
      ipw report runs/20261124-150000-llamacpp-default -o report.html
      ipw report runs/a runs/b -o compare.html --title "SmolLM2 on two engines"
      ipw report runs/a --extra capacity-results/ --extra cmr-out/ --extra trend.csv
      ipw report runs/small runs/big runs/cloud --reference cloud --energy accelerator \\
          --params small=1.7B --params big=8B --params cloud=70B \\
          --price small=0.1 --price big=0.2 --price cloud=0.88 --router-accuracy 0.8 \\
          --release-date small=2024-09-18 --release-date big=2025-04-29 --release-date cloud=2024-12-06
    """
    if not runs and not extras:
        raise click.UsageError("give at least one RUN folder or one --extra result")
    distinct_runs(runs)
    from ipw.reports.report import RoutingRequest, TrendRequest, build_report

    costs, dates = routing.costs(energy), routing.dates()
    hybrid = None if costs is None else RoutingRequest(routing.reference, costs, routing.accuracies, routing.misroute)
    trend = None if dates is None else TrendRequest(dates, routing.trend_by)
    built = build_report(runs, extras=extras, title=title, energy=energy, compare=not no_compare, routing=hybrid,
                         trend=trend)
    path = built.write(out)
    for name in built.estimate_runs:
        click.echo(f"note: energy of {name} is an estimate on the {built.energy} basis (it is, or includes, a domain "
                   f"with no energy counter; see the report's Provenance)", err=True)
    click.echo(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(built.sections)} sections)")
