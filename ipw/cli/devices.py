"""``ipw devices``: what can be measured here, and how."""

from __future__ import annotations

import json

import click

from ipw.cli.face import command
from ipw.devices.base import scope_of
from ipw.devices.discover import Discovery, discover


def _format_devices(found: Discovery) -> str:
    lines = ["Meters found:"]
    if not found.meters:
        lines.append("  (none)")
    infos = {d: i for m in found.meters for d, i in m.infos.items()}
    for meter in found.meters:
        desc = meter.describe()
        for d in desc["domains"]:
            kind = "measured" if d["measured"] else "ESTIMATE"
            inside = f"  (inside {d['parent']})" if d["parent"] else ""
            scope = scope_of(infos[d["domain"]], infos)
            lines.append(
                f"  {d['domain']:<14} {d['source']:<28} {kind:<9} {scope:<11} "
                f"update every {d['update_period_s'] * 1e3:.3g} ms{inside}"
            )
        if "note" in desc:
            lines.append(f"  note: {desc['note']}; model {desc['model']}")
        if desc.get("family") == "nvidia":
            lines.extend(_gpu_lines(desc))
        if desc.get("family") == "jetson":
            lines.extend(_jetson_lines(desc))
    lines.append("Not found:")
    for a in found.absent:
        lines.append(f"  {a.family:<9} {a.reason}" + (f"\n            fix: {a.fix}" if a.fix else ""))
    return "\n".join(lines)


def _gpu_lines(desc: dict) -> list[str]:
    """A GPU's identity, its counter (how read, measured update period, read cost) and notes."""
    c = desc.get("counter", {})
    ident = f"    {desc.get('device')}  NVML {desc.get('index')}, cuda:{desc.get('cuda_index')}  {desc.get('uuid') or ''}"
    if c.get("update_period_probed"):
        period = f"updates every {c['update_period_s'] * 1e3:.3g} ms (measured, {c.get('updates_seen')} updates seen)"
    else:
        period = f"update period not measured (assumed {c.get('update_period_s', 0) * 1e3:.3g} ms)"
    cost = ""
    if c.get("read_s") is not None:
        cost = f", counter read {c['read_s'] * 1e3:.3g} ms"
        if c.get("field_read_s") is not None:
            cost += f", instant-power read {c['field_read_s'] * 1e6:.3g} us"
    lines = [ident, f"    counter: {c.get('source')} read by {c.get('read')}; {period}{cost}"]
    module = desc.get("module") or {}
    if module.get("module"):
        lines.append(f"    module counter: {module['covers']}: no host estimate or RAPL is added "
                     f"({module['why']}; decided by {module['decided_by']})")  # fmt: skip
    lines += [f"    note: {n}" for n in desc.get("notes", []) if not n.startswith("module counter")]
    return lines


def _jetson_lines(desc: dict) -> list[str]:
    """The board, each rail (label, monitor, scope, files read) and the rails skipped, with why."""
    lines = [f"    {desc.get('device')}: power rails polled at {desc.get('poll_hz'):g} Hz and integrated"]
    for r in desc.get("rails", []):
        inside = f", inside {r['inside']}" if r["inside"] else ""
        lines.append(f"    rail {r['label']:<16} {r['driver']} {r['device']}  {r['scope']}{inside}  "
                     f"reads {' x '.join(f.rsplit('/', 1)[-1] for f in r['files'])}")  # fmt: skip
    lines += [f"    skipped: {s}" for s in desc.get("skipped", [])]
    return lines


def _gpus(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


@command(short_help="List the energy meters found here, and the fix for each one not found.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--probe-s", default=1.0, show_default=True,
              help="At most this many seconds measuring each GPU counter's update period (it stops after four updates).")
@click.option("--gpus", help="GPUs to show: CUDA indices or UUIDs, comma-separated (default: all visible).")
def devices(as_json: bool, probe_s: float, gpus: str | None) -> None:
    """List every energy meter found on this machine, and every family not found with the fix.

    \b
    Examples:
      ipw devices
      ipw devices --gpus 0,1
      ipw devices --json | jq '.meters[].domains[].source'
    """
    from ipw.devices.discover import DiscoverConfig

    found = discover(DiscoverConfig(probe_s=probe_s, gpus=_gpus(gpus)))
    try:
        click.echo(json.dumps(found.to_dict(), indent=2) if as_json else _format_devices(found))
    finally:
        found.close()
