"""``ipw devices`` and ``ipw measure``: what can be measured here, and one measured command."""

from __future__ import annotations

import json
import subprocess
import time

import click

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


@click.command()
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


def _format_measurement(m) -> str:
    frame = m.to_frame()[
        ["domain", "kind", "source", "energy_j", "avg_power_w", "peak_power_w", "uncertainty_j", "energy_above_idle_j"]
    ]
    head = f"{m.name or 'window'}: {m.duration_s:.3f} s, {m.energy_j:.3f} J" + (
        "" if m.measured else " (includes an ESTIMATE)"
    )
    flags = f"\nflags: {', '.join(m.flags)}" if m.flags else ""
    return f"{head}\n{frame.to_string(index=False, float_format=lambda x: f'{x:.4g}')}{flags}"


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--seconds", type=float, help="Measure this many seconds instead of a command.")
@click.option("--idle", "idle_s", type=float, default=0.0, show_default=True, help="Seconds of idle baseline to measure first.")
@click.option("--hz", type=float, default=20.0, show_default=True, help="Timeline sampler rate (0 turns it off).")
@click.option("--json", "as_json", is_flag=True, help="Print the measurement as JSON.")
def measure(command: tuple[str, ...], seconds: float | None, idle_s: float, hz: float, as_json: bool) -> None:
    """Measure the energy, power and time of one command (or of SECONDS of whatever runs now).

    Energy is read from every meter `ipw devices` lists, at the command's start and end.

    \b
    Examples:
      ipw measure -- python -c "sum(range(10**8))"
      ipw measure --idle 5 -- ./my_inference.sh
      ipw measure --seconds 2 --json
    """
    from ipw.profilers.session import Profiler

    if bool(command) == (seconds is not None):
        raise click.UsageError("give either a COMMAND (after --) or --seconds, not both")
    with Profiler(sampler_hz=hz or None) as profiler:
        if idle_s > 0:
            profiler.measure_idle(idle_s)
        with profiler.window(command[0] if command else f"{seconds:g} s") as w:
            code = subprocess.call(list(command)) if command else time.sleep(seconds)
    click.echo(json.dumps(w.result.to_dict(), indent=2) if as_json else _format_measurement(w.result))
    if code:
        raise SystemExit(code)
