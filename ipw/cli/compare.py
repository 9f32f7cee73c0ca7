"""``ipw compare``: runs side by side, coverage and best-of-local."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ipw.cli.face import command
from ipw.errors import IpwError
from ipw.records import ENERGY_BASES


@command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--energy", type=click.Choice(ENERGY_BASES), default="accelerator", show_default=True,
              help="Energy IPW and IPJ divide by: the accelerator's (as the IPW paper), the whole system's, "
                   "or the system's above its idle baseline.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def compare(runs: tuple[str, ...], energy: str, as_json: bool) -> None:
    """Compare runs side by side: accuracy, IPW, IPJ, energy, latency, coverage and best-of-local.

    \b
    Examples:
      ipw compare runs/a runs/b
      ipw compare runs/* --json
      ipw compare runs/a runs/b --energy system
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
    if as_json:
        click.echo(json.dumps({"runs": table[cols].to_dict(orient="records"), "coverage": cov}, indent=2, default=str))
        return
    click.echo(table[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    if cov:
        b = cov["best_of_local"]
        click.echo(f"\ncoverage over {cov['queries']} common queries: {cov['coverage']:.1%}")
        click.echo(f"best-of-local: accuracy {b['accuracy']:.1%}, {b['energy_j_mean']:.3f} J/query, IPJ {b['ipj_per_j']:.5f} /J")
