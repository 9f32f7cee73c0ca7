"""``ipw store``: look after run folders (``check``: segments against the journal, ``--repair``).

Thin commands over :mod:`ipw.store.check`.
"""

from __future__ import annotations

from pathlib import Path

import click

from ipw.cli.face import group


@group(context_settings={"help_option_names": ["-h", "--help"]},
       short_help="Look after run folders: check and repair their segments.")
def store() -> None:
    """Look after run folders: the journal (queries.jsonl, the truth) and its Parquet segments (a cache).

    \b
    Examples:
      ipw store check runs/20261124-150000-llamacpp-default
      ipw store check runs/20261124-150000-llamacpp-default --repair
    """


@store.command("check", short_help="Check every segment of RUN against its journal (--repair).")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repair", is_flag=True,
              help="Set damaged segments aside (renamed *.damaged, never deleted) and rebuild them and missing ones "
                   "from the journal; drop a last record cut off mid-write. Takes the run's lock.")
def check(run: Path, repair: bool) -> None:
    """Compare every segment of RUN with its journal, record by record, and say what was found:
    segments ok, damaged or missing, records missing from segments, journal lines unreadable.

    RUN is a run folder, a folder of its shards, or a launch folder (each shard is checked).
    Exit status: 0 when healthy (or repaired), 1 when damage remains. Loading (report, compare,
    --resume) already sets a damaged segment aside and reads its records from the journal; this
    command finds what loading's cheap checks cannot, such as a segment that reads well but holds
    other records than the journal. It reads the whole journal (about 11 s of CPU per 200,000
    records) and holds the run's lock meanwhile: while a run writes RUN, it stops and names it.

    \b
    Examples:
      ipw store check runs/my-run             # report only; exit 1 if damaged
      ipw store check runs/my-run --repair    # set damaged segments aside, rebuild them
      ipw store check launches/grid-1         # every shard of every cell
    """
    from ipw.store.check import check as check_run
    from ipw.store.check import run_folders

    damaged, fixed = [], False
    for folder in run_folders(run):
        report = check_run(folder, repair=repair)
        for line in report.lines():
            click.echo(line)
        if not report.healthy:
            damaged.append(folder)
        fixed = fixed or report.cut_dropped or any(p.repaired for p in report.parts)
    if damaged:
        hint = "" if repair else f"; repair with `ipw store check {run} --repair`"
        click.echo(f"damage remains in {', '.join(str(f) for f in damaged)}{hint}", err=True)
        raise click.exceptions.Exit(1)
    click.echo("repaired" if fixed else "healthy")
