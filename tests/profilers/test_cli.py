"""`ipw devices` and `ipw measure` on this machine (no counters: only the labelled estimate)."""

from __future__ import annotations

import json
import sys

from click.testing import CliRunner

from ipw.cli import main


def test_devices_lists_found_and_absent_with_fixes():
    result = CliRunner().invoke(main, ["devices", "--probe-s", "0"])
    assert result.exit_code == 0, result.output
    assert "estimate.cpu_util_tdp" in result.output and "ESTIMATE" in result.output
    assert "Not found:" in result.output and "fix:" in result.output


def test_devices_json():
    result = CliRunner().invoke(main, ["devices", "--json", "--probe-s", "0"])
    data = json.loads(result.output)
    sources = [d["source"] for m in data["meters"] for d in m["domains"]]
    assert "estimate.cpu_util_tdp" in sources
    assert {a["family"] for a in data["absent"]} >= {"nvidia", "rapl", "apple"}


def test_measure_a_command_json():
    cmd = ["measure", "--json", "--hz", "50", "--", sys.executable, "-c", "sum(range(10**6))"]
    result = CliRunner().invoke(main, cmd)
    assert result.exit_code == 0, result.output
    m = json.loads(result.output)
    assert m["energy_j"] > 0 and m["measured"] is False and "estimate" in m["flags"]


def test_measure_propagates_the_command_exit_code():
    result = CliRunner().invoke(main, ["measure", "--", sys.executable, "-c", "raise SystemExit(3)"])
    assert result.exit_code == 3
    assert "ESTIMATE" in result.output


def test_measure_needs_command_or_seconds():
    result = CliRunner().invoke(main, ["measure"])
    assert result.exit_code == 2 and "either a COMMAND" in result.output


def test_devices_with_gpus_asked_for_where_there_is_none_is_an_error():
    result = CliRunner().invoke(main, ["devices", "--gpus", "0", "--probe-s", "0"])
    assert result.exit_code == 1 and "gpus=['0'] asked for, but nvidia" in result.output


def test_devices_shows_a_gpu_counter_period_and_read_cost(clock, monkeypatch):
    from pathlib import Path

    from ipw.cli.devices import _format_devices
    from ipw.devices.discover import DiscoverConfig, discover
    from tests.fakes.nvml import FakeNvml, Trace, h200

    cfg = DiscoverConfig(nvml=FakeNvml([h200(Trace())], clock), monitor="manual", sleep=clock.advance,
                         rapl_root=Path("/nonexistent"), estimate="never")  # fmt: skip
    found = discover(cfg)
    try:
        text = _format_devices(found)
    finally:
        found.close()
    assert "NVIDIA H200" in text and "updates every 100 ms (measured, 4 updates seen)" in text
    assert "counter read" in text and "instant-power read" in text and "background monitor" in text
