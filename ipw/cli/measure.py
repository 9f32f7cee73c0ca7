"""``ipw measure``: the energy, power and time of one command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import click

from ipw.cli.checks import number
from ipw.cli.face import command
from ipw.core.errors import IpwError


def _runnable(program: str) -> str:
    """The program's path; a clear error when it cannot be found or run (before anything is measured)."""
    found = shutil.which(program)
    if found is None:
        if os.sep not in program:
            where = "not found on PATH"
        elif os.path.isdir(program):
            where = "is a directory"
        else:
            where = "not executable" if os.path.isfile(program) else "no such file"
        raise IpwError(f"cannot run {program!r}: {where}")
    return found


def _format_measurement(m) -> str:
    frame = m.to_frame()[
        ["domain", "kind", "source", "energy_j", "avg_power_w", "peak_power_w", "uncertainty_j", "energy_above_idle_j"]
    ]
    head = f"{m.name or 'window'}: {m.duration_s:.3f} s, {m.energy_j:.3f} J" + (
        "" if m.measured else " (includes an ESTIMATE)"
    )
    flags = f"\nflags: {', '.join(m.flags)}" if m.flags else ""
    return f"{head}\n{frame.to_string(index=False, float_format=lambda x: f'{x:.4g}')}{flags}"


@command(context_settings={"ignore_unknown_options": True},
         short_help="Measure the energy, power and time of one command.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--seconds", type=float, callback=number(0, strict=True), help="Measure this many seconds instead of a command.")
@click.option("--idle", "idle_s", type=float, default=0.0, show_default=True, callback=number(0), help="Seconds of idle baseline to measure first.")
@click.option("--hz", type=float, default=20.0, show_default=True, callback=number(0), help="Timeline sampler rate (0 turns it off).")
@click.option("--json", "as_json", is_flag=True, help="Print the measurement as JSON.")
def measure(command: tuple[str, ...], seconds: float | None, idle_s: float, hz: float, as_json: bool) -> None:
    """Measure the energy, power and time of one command (or of SECONDS of whatever runs now).

    Energy is read from every meter `ipw devices` lists, at the command's start and end. The
    command's exit status is passed on; one killed by signal N exits 128+N (as a shell reports it),
    with a note.

    \b
    Examples:
      ipw measure -- python -c "sum(range(10**8))"
      ipw measure --idle 5 -- ./my_inference.sh
      ipw measure --seconds 2 --json
    """
    from ipw.profilers.windows import Profiler

    if bool(command) == (seconds is not None):
        raise click.UsageError("give either a COMMAND (after --) or --seconds, not both")
    if command:
        _runnable(command[0])
    with Profiler(sampler_hz=hz or None) as profiler:
        if idle_s > 0:
            profiler.measure_idle(idle_s)
        with profiler.window(command[0] if command else f"{seconds:g} s") as w:
            try:
                code = subprocess.call(list(command)) if command else time.sleep(seconds)
            except OSError as e:  # found, but the system refused to start it
                raise IpwError(f"cannot run {command[0]!r}: {e.strerror or e}") from None
    click.echo(json.dumps(w.result.to_dict(), indent=2) if as_json else _format_measurement(w.result))
    if code and code < 0:  # killed by signal -code: exit as a shell does, 128 + n
        click.echo(f"note: {command[0]} was killed by signal {_signal_name(-code)} ({-code}); exit status {128 - code}",
                   err=True)  # fmt: skip
        raise SystemExit(128 - code)
    if code:
        raise SystemExit(code)


def _signal_name(n: int) -> str:
    import signal

    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"
