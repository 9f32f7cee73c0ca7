"""``ipw devices``: what can be measured here, and how."""

from __future__ import annotations

import json

import click

from ipw.cli.face import command
from ipw.profilers.discover import Discovery, discover


def _format_devices(found: Discovery) -> str:
    lines = ["Meters found:"]
    if not found.meters:
        lines.append("  (none)")
    for meter in found.meters:
        desc = meter.describe()
        for d in desc["domains"]:
            kind = "measured" if d["measured"] else "ESTIMATE"
            inside = f"  (inside {d['parent']})" if d["parent"] else ""
            lines.append(
                f"  {d['domain']:<14} {d['source']:<28} {kind:<9} "
                f"update every {d['update_period_s'] * 1e3:.3g} ms{inside}"
            )
        if "note" in desc:
            lines.append(f"  note: {desc['note']}; model {desc['model']}")
    lines.append("Not found:")
    for a in found.absent:
        lines.append(f"  {a.family:<9} {a.reason}" + (f"\n            fix: {a.fix}" if a.fix else ""))
    return "\n".join(lines)


@command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--probe-s", default=0.2, show_default=True, help="Seconds spent measuring each GPU counter's update period.")
def devices(as_json: bool, probe_s: float) -> None:
    """List every energy meter found on this machine, and every family not found with the fix.

    \b
    Examples:
      ipw devices
      ipw devices --json | jq '.meters[].domains[].source'
    """
    from ipw.profilers.discover import DiscoverConfig

    found = discover(DiscoverConfig(probe_s=probe_s))
    try:
        click.echo(json.dumps(found.to_dict(), indent=2) if as_json else _format_devices(found))
    finally:
        found.close()
