"""The Jetson meter against fake sysfs trees in the Orin (hwmon) and Xavier/Nano (iio) layouts,
whose rails follow known power traces that change between polls (tests/fakes/jetson.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipw.core.errors import MeterPermissionError, MeterReadError, MeterUnavailable
from ipw.core import clock as core_clock
from ipw.devices.discover import DiscoverConfig, discover
from ipw.devices.jetson import JetsonMeter, find_rails
from ipw.profilers.sampler import Sampler
from ipw.profilers.windows import Profiler
from tests.fakes.clock import FakeClock
from tests.fakes.jetson import AGX_ORIN, AGX_XAVIER, NANO, ORIN_NX, JetsonTree
from tests.fakes.nvml import FakeNvml, StepTrace

NOWHERE = Path("/nonexistent/powercap")
POLL_HZ = 20.0

# Levels change at times that are not multiples of the 50 ms poll: the trace changes between polls.
ORIN_TRACES = {
    "VDD_GPU_SOC": StepTrace([0.0, 0.233, 0.611], [4.0, 21.0, 9.0]),
    "VDD_CPU_CV": StepTrace([0.0, 0.417], [2.5, 6.5]),
    "VIN_SYS_5V0": StepTrace([0.0, 0.5], [4.9, 5.6]),
    "VDDQ_VDD2_1V8AO": StepTrace([0.0, 0.3], [0.6, 1.1]),
}
NX_TRACES = {
    "VDD_IN": StepTrace([0.0, 0.271, 0.733], [9.0, 17.0, 12.0]),
    "VDD_CPU_GPU_CV": StepTrace([0.0, 0.271, 0.733], [3.0, 9.5, 6.0]),
    "VDD_SOC": StepTrace([0.0, 0.4], [1.2, 1.9]),
}
XAVIER_TRACES = {
    "GPU": StepTrace([0.0, 0.123, 0.871], [1.5, 14.0, 3.0]),
    "CPU": StepTrace([0.0, 0.52], [2.2, 4.4]),
    "SOC": StepTrace([0.0], [2.9]),
    "CV": StepTrace([0.0, 0.36], [0.3, 0.8]),
    "VDDRQ": StepTrace([0.0], [1.4]),
    "SYS5V": StepTrace([0.0, 0.65], [3.3, 3.8]),
}
NANO_TRACES = {
    "POM_5V_IN": StepTrace([0.0, 0.312], [3.1, 7.9]),
    "POM_5V_GPU": StepTrace([0.0, 0.312], [0.4, 3.6]),
    "POM_5V_CPU": StepTrace([0.0, 0.588], [1.1, 2.0]),
}
LAYOUTS = {"agx-orin": (AGX_ORIN, ORIN_TRACES), "orin-nx": (ORIN_NX, NX_TRACES),
           "agx-xavier": (AGX_XAVIER, XAVIER_TRACES), "nano": (NANO, NANO_TRACES)}  # fmt: skip


def run_window(meter: JetsonMeter, tree: JetsonTree, clock, seconds: float, lead_s: float = 0.2):
    """Poll for ``lead_s``, then one window of ``seconds``; the chip converts every 5 ms and a
    sampler polls the meter at 20 Hz, all on the simulated clock."""
    sampler = Sampler([meter], hz=POLL_HZ)
    step, poll_every = tree.conversion_s, round(1 / POLL_HZ / tree.conversion_s)

    def advance(duration: float, k: int = 0) -> int:
        for _ in range(round(duration / step)):
            clock.advance(step)
            tree.update(clock.t)
            k += 1
            if k % poll_every == 0:
                sampler.tick()
        return k

    with Profiler([meter], sampler_hz=None) as p:
        p.sampler = sampler  # peak powers come from these polls, as from the default timeline
        k = advance(lead_s)
        w = p.start("w")
        clock.advance(0.0123)  # the window opens between conversions and between polls
        tree.update(clock.t)
        advance(seconds - 0.0123, k)
        m = w.stop()
        return m, w._start


def check_bounds(m, start, tree) -> dict[str, float]:
    """Every rail's window energy lies within its bound of the trace's integral; the integrals."""
    truths = {}
    for domain, d in m.domains.items():
        label = domain.split(":", 1)[1]
        t0 = start[domain].t_s - tree.origin
        truth = tree.traces[label].between_j(t0, t0 + d.duration_s)
        assert abs(d.energy_j - truth) <= d.uncertainty_j, (domain, d.energy_j, truth, d.uncertainty_j)
        assert d.uncertainty_j < 0.5 * truth, domain  # and the bound says something
        truths[domain] = truth
    return truths


@pytest.mark.parametrize("name", LAYOUTS)
def test_per_rail_energy_within_bounds_of_a_trace_that_changes_between_polls(tmp_path, clock, name):
    layout, traces = LAYOUTS[name]
    tree = JetsonTree(tmp_path, layout, traces, origin=clock.t)
    meter = JetsonMeter(tmp_path, poll_hz=POLL_HZ, poll="manual")
    m, start = run_window(meter, tree, clock, 1.0)
    truths = check_bounds(m, start, tree)
    assert set(truths) == {f"rail:{label}" for label in traces}
    for domain, d in m.domains.items():
        assert d.energy_j == pytest.approx(truths[domain], rel=0.05)
        assert d.measured and d.source.startswith("jetson.ina3221")
    assert len({round(d.energy_j, 3) for d in m.domains.values()}) == len(m.domains)  # no rail read twice
    meter.close()


@settings(max_examples=20, deadline=None)
@given(
    levels=st.lists(st.floats(0.2, 40.0), min_size=1, max_size=4),
    cuts=st.lists(st.floats(0.01, 0.95), min_size=3, max_size=3),
    seconds=st.sampled_from([0.3, 0.6, 1.0]),
)
def test_bounds_hold_for_random_step_traces(levels, cuts, seconds):
    times = [0.0] + sorted(cuts)[: len(levels) - 1]
    traces = {"VDD_GPU_SOC": StepTrace(times, levels), "VDD_CPU_CV": StepTrace([0.0, cuts[0]], [1.0, 3.0]),
              "VIN_SYS_5V0": StepTrace([0.0], [5.0]), "VDDQ_VDD2_1V8AO": StepTrace([0.0], [0.8])}  # fmt: skip
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as d, mock.patch.object(core_clock, "now", clock):
        tree = JetsonTree(Path(d), AGX_ORIN, traces, origin=clock.t)
        meter = JetsonMeter(d, poll_hz=POLL_HZ, poll="manual")
        m, start = run_window(meter, tree, clock, seconds, lead_s=0.05)
        meter.close()
    for domain, e in m.domains.items():
        label = domain.split(":", 1)[1]
        t0 = start[domain].t_s - tree.origin
        truth = traces[label].between_j(t0, t0 + e.duration_s)
        assert abs(e.energy_j - truth) <= e.uncertainty_j, (domain, e.energy_j, truth, e.uncertainty_j)


def test_orin_rails_found_with_their_files_and_scopes(tmp_path):
    JetsonTree(tmp_path, AGX_ORIN, ORIN_TRACES)
    rails, skipped = find_rails(tmp_path)
    assert [r.label for r in rails] == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]
    assert skipped == []  # NC channels and the sum of shunt voltages are not rails
    gpu = rails[0]
    assert gpu.device == "1-0040" and gpu.driver == "ina3221" and gpu.update_interval_s == pytest.approx(0.005)
    assert [f.name for f in gpu.files] == ["in1_input", "curr1_input"] and gpu.to_w == 1e-6
    with JetsonMeter(tmp_path, poll="manual") as meter:
        infos = meter.infos
        desc = meter.describe()
    scopes = {d: (i.scope, i.parent) for d, i in infos.items()}
    assert scopes == {
        "rail:VDD_GPU_SOC": ("accelerator", None), "rail:VDD_CPU_CV": ("host", None),
        "rail:VIN_SYS_5V0": ("host", None), "rail:VDDQ_VDD2_1V8AO": ("host", "rail:VIN_SYS_5V0"),
    }  # fmt: skip
    assert desc["device"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert infos["rail:VDD_GPU_SOC"].update_period_s == pytest.approx(1 / 20 + 0.005)


def test_xavier_iio_rails_read_in_power_in_mw(tmp_path):
    JetsonTree(tmp_path, AGX_XAVIER, XAVIER_TRACES)
    rails, _ = find_rails(tmp_path)
    assert [r.label for r in rails] == ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"]
    assert [f.name for f in rails[3].files] == ["in_power0_input"] and rails[3].to_w == 1e-3
    assert rails[3].device == "1-0041" and rails[3].driver == "ina3221x" and rails[3].update_interval_s is None


def _scopes(tmp_path, clock, layout, traces):
    tree = JetsonTree(tmp_path, layout, traces, origin=clock.t)
    with JetsonMeter(tmp_path, poll="manual") as meter:
        m, _ = run_window(meter, tree, clock, 1.0)
    return m, {k: (v.energy_j, v.domains) for k, v in m.scopes.items()}


def test_input_rail_is_the_system_figure_never_added_to_its_parts(tmp_path, clock):
    m, scopes = _scopes(tmp_path, clock, ORIN_NX, NX_TRACES)
    d = m.domains
    assert scopes["system"] == (d["rail:VDD_IN"].energy_j, ("rail:VDD_IN",)) and m.energy_j == d["rail:VDD_IN"].energy_j
    assert scopes["accelerator"][1] == ("rail:VDD_CPU_GPU_CV", "rail:VDD_SOC") and "host" not in scopes
    assert m.energy_j > scopes["accelerator"][0]  # the parts are inside the input, not on top of it
    assert m.to_dict()["domains"]["rail:VDD_IN"]["scope"] == "system"


def test_without_an_input_rail_the_system_is_the_sum_of_top_level_rails(tmp_path, clock):
    m, scopes = _scopes(tmp_path, clock, AGX_ORIN, ORIN_TRACES)
    d = {k: v.energy_j for k, v in m.domains.items()}
    assert scopes["accelerator"] == (d["rail:VDD_GPU_SOC"], ("rail:VDD_GPU_SOC",))
    assert scopes["host"][1] == ("rail:VDD_CPU_CV", "rail:VIN_SYS_5V0")  # VDDQ is inside VIN_SYS_5V0
    assert m.energy_j == pytest.approx(d["rail:VDD_GPU_SOC"] + d["rail:VDD_CPU_CV"] + d["rail:VIN_SYS_5V0"])


def test_nano_iio_input_rail_and_cpu_rail(tmp_path, clock):
    m, scopes = _scopes(tmp_path, clock, NANO, NANO_TRACES)
    assert scopes["system"][1] == ("rail:POM_5V_IN",) and scopes["host"][1] == ("rail:POM_5V_CPU",)
    assert scopes["accelerator"][1] == ("rail:POM_5V_GPU",)


def test_unknown_labels_are_skipped_and_said(tmp_path):
    tree = JetsonTree(tmp_path, AGX_ORIN, ORIN_TRACES)
    _, _, folder = tree.paths["NC"]
    (folder / "in1_label").write_text("VDD_CARRIER_X\n")
    rails, skipped = find_rails(tmp_path)
    assert "VDD_CARRIER_X" not in [r.label for r in rails]
    assert skipped == ["VDD_CARRIER_X (ina3221 1-0041): not in ipw's rail table, so its place in the power tree is unknown"]


def test_unreadable_file_is_an_error_naming_the_file_and_the_fix(tmp_path, monkeypatch, clock):
    tree = JetsonTree(tmp_path, AGX_ORIN, ORIN_TRACES)
    target = tree.file("VDD_CPU_CV")
    if os.geteuid() == 0:  # root reads through any mode: refuse at the open, as the kernel does for others
        real_open = os.open
        monkeypatch.setattr(os, "open", lambda p, *a: (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
                            if Path(p) == target else real_open(p, *a))  # fmt: skip
    else:
        target.chmod(0)
    with pytest.raises(MeterPermissionError) as e:
        JetsonMeter(tmp_path, poll="manual")
    assert str(target) in e.value.reason and f"sudo chmod o+r {target}" in e.value.fix
    found = discover(DiscoverConfig(jetson_root=tmp_path, rapl_root=NOWHERE, nvml=FakeNvml([], clock), estimate="auto",
                                    probe_s=0, monitor="manual"))
    absent = {a.family: a for a in found.absent}
    found.close()
    assert str(target) in absent["jetson"].reason and "chmod" in absent["jetson"].fix
    assert "estimate" in {m.family for m in found.meters}  # without readable rails, the estimate stands in


def test_a_file_that_stops_reading_is_a_read_error_naming_it(tmp_path, clock):
    tree = JetsonTree(tmp_path, AGX_XAVIER, XAVIER_TRACES, origin=clock.t)
    meter = JetsonMeter(tmp_path, poll="manual")
    tree.file("SOC", "power").write_text("not a number\n")
    with pytest.raises(MeterReadError, match=str(tree.file("SOC", "power"))) as e:
        meter.read()
    assert "dmesg" in str(e.value)
    meter.close()


def test_no_jetson_here_is_absent_with_reason(tmp_path):
    with pytest.raises(MeterUnavailable, match="no Jetson power rails") as e:
        JetsonMeter(tmp_path)
    assert "Jetson" in e.value.fix


def test_discovery_finds_the_rails_and_drops_the_estimate(tmp_path, clock):
    JetsonTree(tmp_path, AGX_ORIN, ORIN_TRACES, origin=clock.t)
    found = discover(DiscoverConfig(jetson_root=tmp_path, rapl_root=NOWHERE, nvml=FakeNvml([], clock), estimate="auto",
                                    probe_s=0, monitor="manual"))
    try:
        families = [m.family for m in found.meters]
        absent = {a.family: a.reason for a in found.absent}
        from ipw.cli.devices import _format_devices

        text = _format_devices(found)
    finally:
        found.close()
    assert "jetson" in families and "estimate" not in families
    assert "Jetson rails" in absent["estimate"]
    assert "NVIDIA Jetson AGX Orin Developer Kit" in text
    from ipw.devices.inventory import hardware_inventory

    assert "NVIDIA Jetson AGX Orin Developer Kit" in hardware_inventory(found.meters)["summary"]
    assert "VDD_GPU_SOC" in text and "accelerator" in text and "inside rail:VIN_SYS_5V0" in text
