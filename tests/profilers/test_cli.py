"""`ipw devices` and `ipw measure` on two machines made explicit at the vendor boundaries: one with
no counter (only the labelled estimate) and a GPU server with RAPL (tests/fakes/machine.py), so the
tests say the same on this VM, on CI and on the machines ipw is for."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from ipw.cli import main


@pytest.fixture(params=["estimate-only", "gpu-rapl"])
def machine(request, monkeypatch, tmp_path):
    """The machine discovery sees: nothing but the CPU estimate, or an H200-like GPU and RAPL."""
    if request.param == "estimate-only":
        request.getfixturevalue("estimate_only")
        yield request.param
        return
    from ipw.devices import jetson
    from tests.fakes.machine import FakeMachine

    monkeypatch.setattr(jetson, "DEFAULT_ROOT", tmp_path / "no-jetson")
    fake = FakeMachine(tmp_path)
    fake.start(monkeypatch)
    yield request.param
    fake.stop()


def test_devices_lists_found_and_absent_with_fixes(machine):
    result = CliRunner().invoke(main, ["devices", "--probe-s", "0"])
    assert result.exit_code == 0, result.output
    assert "Not found:" in result.output and "fix:" in result.output
    if machine == "estimate-only":
        assert "estimate.cpu_util_tdp" in result.output and "ESTIMATE" in result.output
    else:
        assert "nvml.total_energy_counter" in result.output and "rapl.energy_uj" in result.output
        assert "estimate.cpu_util_tdp" not in result.output and "not needed: a measured CPU counter" in result.output


def test_devices_json(machine):
    result = CliRunner().invoke(main, ["devices", "--json", "--probe-s", "0"])
    data = json.loads(result.output)
    sources = {d["source"] for m in data["meters"] for d in m["domains"]}
    absent = {a["family"] for a in data["absent"]}
    if machine == "estimate-only":
        assert sources == {"estimate.cpu_util_tdp"} and absent >= {"nvidia", "rapl", "apple"}
    else:
        assert sources == {"nvml.total_energy_counter", "rapl.energy_uj"} and absent >= {"estimate", "apple"}


def test_measure_a_command_json(machine):
    cmd = ["measure", "--json", "--hz", "50", "--", sys.executable, "-c", "sum(range(10**6))"]
    result = CliRunner().invoke(main, cmd)
    assert result.exit_code == 0, result.output
    m = json.loads(result.output)
    assert m["energy_j"] > 0
    if machine == "estimate-only":
        assert m["measured"] is False and "estimate" in m["flags"]
    else:  # a measured GPU and RAPL host: the accelerator differs from the system figure
        assert m["measured"] is True and "estimate" not in m["flags"]
        scopes = m["scopes"]
        assert scopes["accelerator"]["energy_j"] < scopes["system"]["energy_j"]


def test_measure_propagates_the_command_exit_code(machine):
    result = CliRunner().invoke(main, ["measure", "--", sys.executable, "-c", "raise SystemExit(3)"])
    assert result.exit_code == 3
    assert ("ESTIMATE" in result.output) == (machine == "estimate-only")


def test_measure_needs_command_or_seconds():
    result = CliRunner().invoke(main, ["measure"])
    assert result.exit_code == 2 and "either a COMMAND" in result.output


def test_devices_with_gpus_asked_for_where_there_is_none_is_an_error(estimate_only):
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
