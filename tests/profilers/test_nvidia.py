"""The NVML meter against a fake NVML whose counter and power follow a known trace."""

from __future__ import annotations

import pytest

from ipw.core.errors import MeterUnavailable
from ipw.devices.discover import DiscoverConfig, discover, probe_update_period
from ipw.devices.nvidia.meter import SOURCE_COUNTER, SOURCE_INTEGRATED, NvmlMeter
from ipw.profilers.sampler import Sampler
from ipw.profilers.windows import Profiler
from tests.fakes.nvml import FakeGpu, FakeNvml, Trace


def window_error(profiler: Profiler, clock, trace: Trace, seconds: float, tick=None, step_s=0.01):
    """Run one window of ``seconds`` (advancing simulated time in steps) and return it with its
    relative error against the trace's integral over the window's own recorded edges."""
    w = profiler.start("w")
    start_reads = w._start
    remaining = seconds
    while remaining > 1e-12:
        dt = min(step_s, remaining)
        clock.advance(dt)
        remaining -= dt
        if tick:
            tick()
    m = w.stop()
    d = m.domains["gpu:0"]
    t0 = start_reads["gpu:0"].t_s
    truth = trace.between_j(t0, t0 + d.duration_s)
    return m, abs(d.energy_j - truth) / truth, abs(d.energy_j - truth)


@pytest.mark.parametrize("seconds", [0.01, 0.05, 0.2, 1.0, 10.0])
def test_counter_window_energy_matches_trace_integral(clock, seconds):
    trace = Trace()
    nvml = FakeNvml([FakeGpu(trace)], clock)
    with Profiler([NvmlMeter(0, monitor="off", nvml=nvml, update_period_s=1e-4)], sampler_hz=None) as p:
        m, rel, _ = window_error(p, clock, trace, seconds)
    assert rel < 0.01
    assert m.domains["gpu:0"].source == SOURCE_COUNTER
    assert m.measured and "sub-update-period:gpu:0" not in m.flags


def test_idle_time_between_windows_is_charged_to_no_window(clock):
    trace = Trace()
    nvml = FakeNvml([FakeGpu(trace)], clock)
    with Profiler([NvmlMeter(0, monitor="off", nvml=nvml)], sampler_hz=None) as p:
        first, _, _ = window_error(p, clock, trace, 0.1)
        clock.advance(5.0)  # a long gap, at 200 W: 1 kJ that belongs to nobody
        second, rel, _ = window_error(p, clock, trace, 0.1)
    assert rel < 0.01
    assert second.energy_j < 0.2 * 300  # a window of 0.1 s at <= 280 W


def test_short_window_on_coarse_counter_is_flagged_and_bounded(clock):
    trace = Trace()
    gpu = FakeGpu(trace, update_s=0.1)  # a counter refreshed every 100 ms
    meter = NvmlMeter(0, monitor="off", nvml=FakeNvml([gpu], clock), update_period_s=0.1)
    with Profiler([meter], sampler_hz=None) as p:
        clock.advance(0.07)  # start inside a refresh interval, before the counter ever changed
        m, _, err = window_error(p, clock, trace, 0.02)
        assert m.domains["gpu:0"].energy_j == 0.0  # the counter did not move
        assert m.domains["gpu:0"].uncertainty_j == float("inf")
        assert {"sub-update-period:gpu:0", "unbounded:gpu:0"} <= set(m.flags)
        sampler = Sampler([meter], hz=20)
        for _ in range(10):  # a timeline gives the meter a recent power
            clock.advance(0.05)
            sampler.tick()
        clock.advance(0.03)
        m, _, err = window_error(p, clock, trace, 0.02)
    d = m.domains["gpu:0"]
    assert "sub-update-period:gpu:0" in m.flags and "unbounded:gpu:0" not in m.flags
    assert err > 0.5  # the window is far off (J) ...
    assert err <= d.uncertainty_j  # ... and its bound says so


def test_power_integration_fallback_without_counter(clock):
    trace = Trace(period_s=1.0)
    nvml = FakeNvml([FakeGpu(trace, has_counter=False)], clock)
    meter = NvmlMeter(0, monitor="off", nvml=nvml, poll_hz=1e-3)  # the test drives the polling below
    assert not meter.has_counter
    sampler = Sampler([meter], hz=100)
    with Profiler([meter], sampler_hz=None) as p:
        for seconds in (0.05, 0.5, 2.0):
            m, rel, _ = window_error(p, clock, trace, seconds, tick=sampler.tick, step_s=0.01)
            assert rel < 0.01, seconds
    assert m.domains["gpu:0"].source == SOURCE_INTEGRATED


def test_power_fields_instant_and_average(clock):
    trace = Trace()
    meter = NvmlMeter(0, monitor="off", nvml=FakeNvml([FakeGpu(trace)], clock))
    fields = meter.power_fields_w()
    assert set(fields) == {"instant_w", "average_w"}
    assert fields["average_w"] == pytest.approx(trace.base_w)
    old = NvmlMeter(0, monitor="off", nvml=FakeNvml([FakeGpu(trace, has_instant_field=False)], clock))
    assert set(old.power_fields_w()) == {"usage_w"}


def test_one_meter_per_gpu_never_summed(clock):
    traces = [Trace(base_w=100), Trace(base_w=300)]
    nvml = FakeNvml([FakeGpu(t) for t in traces], clock)
    found = discover(DiscoverConfig(nvml=nvml, probe_s=0, monitor="off", estimate="never", rapl_root=clock and _nowhere()))
    try:
        assert [m.domains for m in found.meters] == [("gpu:0",), ("gpu:1",)]
        with Profiler(found.meters, sampler_hz=None) as p:
            w = p.start()
            clock.advance(1.0)
            m = w.stop()
        ratio = m.domains["gpu:1"].energy_j / m.domains["gpu:0"].energy_j
        assert ratio == pytest.approx(3.0, rel=0.05)
        assert m.energy_j == pytest.approx(sum(d.energy_j for d in m.domains.values()))
    finally:
        found.close()
    assert nvml.init_count == 0  # every nvmlInit was matched by a shutdown


def _nowhere():
    from pathlib import Path

    return Path("/nonexistent/powercap")


def test_probe_recovers_counter_update_period(clock):
    trace = Trace()
    meter = NvmlMeter(0, monitor="off", nvml=FakeNvml([FakeGpu(trace, update_s=0.005)], clock))
    period = probe_update_period(meter.raw_counter_j, duration_s=0.2)
    assert period == pytest.approx(0.005, rel=0.2)


def test_missing_driver_is_reported_with_fix(clock):
    found = discover(DiscoverConfig(nvml=FakeNvml([], clock, library_found=False), estimate="never", rapl_root=_nowhere()))
    absent = {a.family: a for a in found.absent}
    assert "nvidia-smi" in absent["nvidia"].fix
    with pytest.raises(MeterUnavailable):
        NvmlMeter(0, monitor="off", nvml=FakeNvml([], clock, library_found=False))
