"""``ipw report``: one self-contained HTML file from runs and science results."""

from __future__ import annotations

from pathlib import Path

import click

from ipw.cli.face import command



@command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("runs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="The HTML file to write.")
@click.option("--extra", "extras", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Output of `ipw capacity --out`, `ipw cmr fit --out`, `ipw density fit/trend/model --out` "
                   "(file or folder; repeatable).")
@click.option("--title", help="Page title [default: the models' names].")
@click.option("--energy", type=click.Choice(["total", "above_idle"]), default="total", show_default=True,
              help="Energy that IPW and IPJ divide by.")
@click.option("--no-compare", is_flag=True, help="Leave out the comparison section (coverage, best-of-local).")
def report(runs, out, extras, title, energy, no_compare) -> None:
    """Write a self-contained HTML report (plots embedded, no network) of runs and science results.

    \b
    It shows, per model x hardware: accuracy, IPW, IPJ, energy per query (total and above idle),
    TTFT, TPOT, end-to-end; per-domain results; the power timeline; the energy-per-query
    distribution; accuracy against energy with the Pareto frontier; with 2+ runs, a side-by-side
    comparison with coverage and best-of-local routing (when the runs share query ids); density,
    information capacity and CMR results given with --extra; and provenance (meters, sources,
    estimate labels, versions). Estimated energies are labelled "estimate" everywhere.

    \b
    Examples:
      ipw report runs/20261124-150000-llamacpp-default -o report.html
      ipw report runs/a runs/b -o compare.html --title "SmolLM2 on two engines"
      ipw report runs/a --extra capacity-results/ --extra cmr-out/ --extra trend.csv
    """
    if not runs and not extras:
        raise click.UsageError("give at least one RUN folder or one --extra result")
    from ipw.reports.report import build_report

    built = build_report(runs, extras=extras, title=title, energy=energy, compare=not no_compare)
    path = built.write(out)
    for name in built.estimate_runs:
        click.echo(f"note: energy of {name} is an estimate (no energy counter)", err=True)
    click.echo(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(built.sections)} sections)")
