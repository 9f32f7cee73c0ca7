"""The labelled estimate, measured on this machine (which has no energy counter)."""

from __future__ import annotations

import time

import pytest

from ipw.devices.estimate import SOURCE, CpuEstimateMeter
from ipw.profilers.windows import Profiler


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_estimate_is_labelled_everywhere():
    with Profiler([CpuEstimateMeter()], sampler_hz=None) as p:
        with p.window("w") as w:
            time.sleep(0.05)
    m = w.result
    d = m.domains["cpu"]
    assert (d.source, d.measured) == (SOURCE, False)
    assert not m.measured and "estimate" in m.flags
    assert m.to_dict()["measured"] is False
    assert set(m.to_frame()["kind"]) == {"estimate"}


def test_estimate_follows_its_model_on_real_cpu_time():
    meter = CpuEstimateMeter(tdp_w=40.0, idle_fraction=0.25)
    n = meter.n_logical
    with Profiler([meter], sampler_hz=None) as p:
        with p.window() as w:
            cpu0 = time.process_time()
            spin(0.3)
            own_busy_s = time.process_time() - cpu0
    d = w.result.domains["cpu"]
    floor = n * meter.p_idle_core_w * d.duration_s
    ceiling = n * (meter.p_idle_core_w + meter.p_dynamic_core_w) * d.duration_s
    # at least our own busy time is charged at the dynamic rate; never more than all cores flat out
    tick = 2 * meter.infos["cpu"].update_period_s * n
    assert floor + meter.p_dynamic_core_w * (own_busy_s - tick) <= d.energy_j <= ceiling + meter.p_dynamic_core_w * tick


def test_model_energy_formula():
    meter = CpuEstimateMeter(tdp_w=80.0, idle_fraction=0.5)
    n = meter.n_logical
    # idle: n cores at 0.5 * 80/n W for 2 s = 80 J; plus 3 busy core-seconds at 40/n W each
    assert meter.model_energy_j(2.0, 3.0) == pytest.approx(80.0 + 3 * 40.0 / n)


def test_bad_model_parameters_are_rejected():
    with pytest.raises(ValueError):
        CpuEstimateMeter(tdp_w=0)
    with pytest.raises(ValueError):
        CpuEstimateMeter(tdp_w=10, idle_fraction=1.5)


def test_proc_stat_reader_agrees_with_psutil():
    import sys

    from ipw.devices.estimate import ProcStat, busy_cpu_seconds

    if not sys.platform.startswith("linux"):
        pytest.skip("/proc/stat is Linux only")
    reader = ProcStat()
    try:
        a, b, c = busy_cpu_seconds(), reader(), busy_cpu_seconds()
    finally:
        reader.close()
    assert a - 0.05 <= b <= c + 0.05  # same counter, read in between (ticks of 10 ms)
