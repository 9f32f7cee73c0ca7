"""Windows, idle baseline, timeline and the notebook API, over fake hardware."""

from __future__ import annotations

import time

import pytest

import ipw
from ipw.devices.nvidia.meter import NvmlMeter
from ipw.devices.rapl import RaplMeter
from ipw.profilers.windows import Profiler
from tests.fakes.nvml import FakeGpu, FakeNvml, Trace
from tests.fakes.powercap import PowercapTree


def test_overlapping_windows_and_idle_baseline(clock):
    trace = Trace(base_w=100.0, amp_w=0.0)
    with Profiler([NvmlMeter(0, monitor="off", nvml=FakeNvml([FakeGpu(trace)], clock))], sampler_hz=None) as p:
        clock.advance(1.0)
        idle_window = p.start()
        clock.advance(2.0)
        base = idle_window.stop()
        outer = p.start("outer")
        clock.advance(1.0)
        inner = p.start("inner")
        clock.advance(0.5)
        inner_m = inner.stop()
        clock.advance(1.0)
        outer_m = outer.stop()
    assert base.domains["gpu:0"].avg_power_w == pytest.approx(100.0, rel=1e-3)
    assert inner_m.energy_j == pytest.approx(50.0, rel=1e-3)
    assert outer_m.energy_j == pytest.approx(250.0, rel=1e-3)


def test_above_idle_energy(clock, monkeypatch):
    trace = Trace(base_w=60.0, amp_w=0.0)
    gpu = FakeGpu(trace)
    with Profiler([NvmlMeter(0, monitor="off", nvml=FakeNvml([gpu], clock))], sampler_hz=None) as p:
        monkeypatch.setattr(time, "sleep", clock.advance)  # the idle period passes in simulated time
        idle = p.measure_idle(3.0)
        gpu.trace = Trace(base_w=260.0, amp_w=0.0)  # load starts
        w = p.start()
        clock.advance(2.0)
        m = w.stop()
    assert idle.power_w["gpu:0"] == pytest.approx(60.0, rel=1e-3)
    assert m.energy_j == pytest.approx(520.0, rel=1e-2)
    assert m.energy_above_idle_j == pytest.approx(400.0, rel=1e-2)


def test_sampler_timeline_peak_and_counts(tmp_path):
    tree = PowercapTree(tmp_path, {"intel-rapl:0": "package-0"})
    with Profiler([RaplMeter(tmp_path)], sampler_hz=200) as p:
        with p.window() as w:
            for step in range(1, 21):
                tree.set_uj("intel-rapl:0", step * 10_000 * (5 if step == 10 else 1))
                time.sleep(0.01)
        frame = p.timeline()
    m = w.result
    assert m.samples > 0 and "no-timeline" not in m.flags
    assert list(frame["t_s"]) == sorted(frame["t_s"])
    assert m.domains["cpu-package:0"].peak_power_w >= m.domains["cpu-package:0"].avg_power_w
    assert m.start_s <= frame["t_s"].iloc[-1]


def test_results_before_the_window_ends_raise(clock):
    meter = NvmlMeter(0, monitor="off", nvml=FakeNvml([FakeGpu(Trace())], clock))
    with ipw.measure(meters=[meter], sampler_hz=None) as m:
        with pytest.raises(AttributeError, match="still open"):
            _ = m.energy_j
        clock.advance(0.5)
    assert m.energy_j == pytest.approx(Trace().between_j(m.start_s, m.end_s), rel=0.01)
    assert m.to_dict()["domains"]["gpu:0"]["source"] == "nvml.total_energy_counter"


def test_measure_on_a_machine_without_counters_uses_the_estimate(estimate_only):
    with ipw.measure("sleep") as m:
        time.sleep(0.05)
    assert m.duration_s >= 0.05 and m.energy_j > 0
    assert not m.measured and "estimate" in m.flags


def test_sampler_between_matches_a_full_scan(clock):
    from ipw.profilers.sampler import Sampler

    nvml = FakeNvml([FakeGpu(Trace()), FakeGpu(Trace(base_w=50))], clock)
    sampler = Sampler([NvmlMeter(0, monitor="off", nvml=nvml), NvmlMeter(1, monitor="off", nvml=nvml)], hz=100)
    for _ in range(200):
        clock.advance(0.01)
        sampler.tick()
    t0, t1 = sampler.samples[57].t_s, sampler.samples[301].t_s
    for domain in (None, "gpu:1"):
        scan = [s for s in sampler.samples if t0 < s.t_s <= t1 and domain in (None, s.domain)]
        assert sampler.between(t0, t1, domain) == scan and scan
