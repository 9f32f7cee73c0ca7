"""GPU selection (gpus, CUDA_VISIBLE_DEVICES), MIG devices, GPUs without a counter, the probe."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipw.devices.discover import DiscoverConfig, discover
from ipw.devices.nvidia.meter import SOURCE_INTEGRATED, NvmlMeter
from ipw.devices.nvidia.selection import GpuSelectionError, select_gpus
from ipw.profilers.windows import Profiler
from tests.fakes.nvml import FakeGpu, FakeNvml, Trace, h200

NOWHERE = Path("/nonexistent/powercap")


def four_gpus(clock, **kw):
    gpus = [FakeGpu(Trace(base_w=100.0 * (i + 1), amp_w=0.0), uuid=f"GPU-{i}{i}aa0000-{i}", **kw) for i in range(4)]
    return FakeNvml(gpus, clock)


def picked(nvml, gpus=None, env=None):
    return [(g.nvml_index, g.cuda_index) for g in select_gpus(nvml, gpus, {} if env is None else env)]


def test_all_gpus_without_a_selection(clock):
    assert picked(four_gpus(clock)) == [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_cuda_visible_devices_indices_and_uuids_map_to_nvml(clock):
    nvml = four_gpus(clock)
    assert picked(nvml, env={"CUDA_VISIBLE_DEVICES": "2,0"}) == [(2, 0), (0, 1)]
    assert picked(nvml, env={"CUDA_VISIBLE_DEVICES": "GPU-33aa0000-3,GPU-11"}) == [(3, 0), (1, 1)]  # full, prefix
    assert picked(nvml, env={"CUDA_VISIBLE_DEVICES": "1,-1,3"}) == [(1, 0)]  # CUDA stops at an invalid entry
    assert picked(nvml, env={"CUDA_VISIBLE_DEVICES": ""}) == []


def test_gpus_pick_among_the_visible_by_cuda_index_or_uuid(clock):
    nvml = four_gpus(clock)
    env = {"CUDA_VISIBLE_DEVICES": "3,1"}
    assert picked(nvml, [1], env) == [(1, 1)]  # cuda:1 is NVML GPU 1 here
    assert picked(nvml, ["0"], env) == [(3, 0)]
    assert picked(nvml, ["GPU-33aa"], env) == [(3, 0)]
    with pytest.raises(GpuSelectionError, match="CUDA index 2 is not one of the 2 visible"):
        picked(nvml, [2], env)
    with pytest.raises(GpuSelectionError, match="hidden by CUDA_VISIBLE_DEVICES"):
        picked(nvml, ["GPU-00aa"], env)
    with pytest.raises(GpuSelectionError, match="matches no GPU"):
        picked(nvml, ["GPU-ffff"])
    with pytest.raises(GpuSelectionError, match="GPU 7 does not exist"):
        picked(nvml, env={"CUDA_VISIBLE_DEVICES": "7"})


def test_discovery_measures_the_selected_gpus_only(clock):
    nvml = four_gpus(clock)
    cfg = DiscoverConfig(nvml=nvml, probe_s=0, estimate="never", rapl_root=NOWHERE, monitor="off",
                         gpus=(1,), environ={"CUDA_VISIBLE_DEVICES": "2,3"})  # fmt: skip
    found = discover(cfg)
    try:
        assert [m.domains for m in found.meters] == [("gpu:3",)]
        d = found.meters[0].describe()
        assert (d["index"], d["cuda_index"], d["uuid"]) == (3, 1, "GPU-33aa0000-3")
    finally:
        found.close()
    with pytest.raises(GpuSelectionError, match="gpus=\\[0\\] asked for"):
        discover(DiscoverConfig(nvml=FakeNvml([], clock, library_found=False), gpus=(0,), rapl_root=NOWHERE))
    assert nvml.init_count == 0


def test_mig_instance_is_measured_by_its_parent_gpu_and_says_so(clock):
    nvml = four_gpus(clock)
    nvml.gpus[2].mig, nvml.gpus[2].mig_uuids = True, ("MIG-aaaa-1", "MIG-aaaa-2")
    env = {"CUDA_VISIBLE_DEVICES": "MIG-aaaa-2,MIG-aaaa-1"}
    sel = select_gpus(nvml, None, env)
    assert [(g.nvml_index, g.mig_instances) for g in sel] == [(2, ("MIG-aaaa-2", "MIG-aaaa-1"))]
    found = discover(DiscoverConfig(nvml=nvml, probe_s=0, estimate="never", rapl_root=NOWHERE, monitor="off", environ=env))
    try:
        (meter,) = found.meters
        d = meter.describe()
        assert d["mig"] and d["mig_instances"] == ["MIG-aaaa-2", "MIG-aaaa-1"]
        assert any("whole GPU, shared by all its MIG instances" in n for n in d["notes"])
    finally:
        found.close()
    with pytest.raises(GpuSelectionError, match="MIG-zzzz names no MIG device"):
        select_gpus(nvml, None, {"CUDA_VISIBLE_DEVICES": "MIG-zzzz"})


def test_gpu_without_counter_integrates_power_and_without_power_is_absent_with_reason(clock):
    gpus = [
        FakeGpu(Trace(base_w=150.0, amp_w=0.0), has_counter=False),  # power only
        FakeGpu(Trace(), has_counter=False, has_instant_field=False, mig=True),  # nothing readable
        FakeGpu(Trace(base_w=90.0, amp_w=0.0)),
    ]
    nvml = FakeNvml(gpus, clock)
    # the second GPU has no power usage either
    usage = nvml.nvmlDeviceGetPowerUsage
    nvml.nvmlDeviceGetPowerUsage = lambda g: nvml._raise(nvml.NVML_ERROR_NOT_SUPPORTED) if g is gpus[1] else usage(g)
    found = discover(DiscoverConfig(nvml=nvml, probe_s=0, estimate="never", rapl_root=NOWHERE, monitor="off"))
    try:
        assert [m.domains for m in found.meters] == [("gpu:0",), ("gpu:2",)]
        (absent,) = [a for a in found.absent if a.family == "nvidia"]
        assert "GPU 1" in absent.reason and "MIG mode" in absent.reason and "neither an energy counter" in absent.reason
        assert found.meters[0].describe()["domains"][0]["source"] == SOURCE_INTEGRATED
    finally:
        found.close()


def test_power_reading_that_fails_later_is_an_error_not_zero(clock):
    gpu = FakeGpu(Trace(base_w=150.0, amp_w=0.0), has_counter=False)
    nvml = FakeNvml([gpu], clock)
    meter = NvmlMeter(0, monitor="off", nvml=nvml, poll_hz=1e-3)
    gpu.has_instant_field = False
    nvml.nvmlDeviceGetPowerUsage = lambda g: nvml._raise(nvml.NVML_ERROR_GPU_IS_LOST)
    from ipw.core.errors import MeterReadError

    with pytest.raises(MeterReadError, match="power reading failed"):
        meter.read()
    meter.close()


def test_probe_sees_three_updates_of_a_100ms_counter(clock):
    meter = NvmlMeter(0, nvml=FakeNvml([h200(Trace())], clock), monitor="manual", sleep=clock.advance)
    probe = meter.run_probe(duration_s=1.0)
    assert probe.update_period_s == pytest.approx(0.1, abs=2e-3)
    assert probe.updates_seen >= 4 and probe.duration_s < 0.5  # stops once it has seen enough
    c = meter.describe()["counter"]
    assert c["update_period_probed"] and c["update_period_s"] == pytest.approx(0.1, abs=2e-3)
    assert c["read_s"] > 0 and c["field_read_s"] > 0 and c["read"].startswith("background monitor")
    short = NvmlMeter(0, nvml=FakeNvml([h200(Trace())], clock), monitor="off").run_probe(duration_s=0.2)
    assert short.update_period_s is None  # 0.2 s cannot show three 100 ms periods: no guess is made
    meter.close()


def test_probe_runs_in_discovery_and_windows_use_the_monitor(clock):
    nvml = FakeNvml([h200(Trace(base_w=250.0, amp_w=0.0))], clock)
    cfg = DiscoverConfig(nvml=nvml, probe_s=1.0, estimate="never", rapl_root=NOWHERE, monitor="manual", sleep=clock.advance)
    found = discover(cfg)
    try:
        (meter,) = found.meters
        assert meter.monitor is not None and meter.probe.update_period_s == pytest.approx(0.1, abs=2e-3)
        with Profiler(found.meters, sampler_hz=20) as p:
            assert p.sampler.meters == []  # the monitored GPU is not read by the timeline sampler
            w = p.start()
            for _ in range(10):
                clock.advance(0.05)
                meter.monitor.poll()
            m = w.stop()
        assert m.energy_j == pytest.approx(250.0 * m.duration_s, rel=0.01)
    finally:
        found.close()
