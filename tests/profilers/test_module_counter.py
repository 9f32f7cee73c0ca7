"""Grace Hopper's module counter (NVML faked at the pynvml boundary): the host is counted once, and
windows, records and summaries name the module scope; an H100 keeps today's behaviour."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from ipw.science.intelligence.metrics import summarize
from ipw.devices.discover import DiscoverConfig, discover
from ipw.devices.nvidia.module import ModuleOverrideError, decide
from ipw.profilers.windows import Profiler
from ipw.core.records import MODULE_COUNTER_FLAG
from ipw.engines.base import Generation
from ipw.queries.grading import Grade
from ipw.run.record import make_record
from tests.fakes.nvml import FakeGpu, FakeNvml, Trace, gh200
from tests.fakes.powercap import PowercapTree

MODULE_W = 430.0  # the module: GPU, Grace CPU and memory together
GPU_W = 310.0  # an H100 alone
PACKAGE_J, DRAM_J = 37.0, 11.0  # what RAPL would add over the window


def _machine(tmp_path, clock, gpu: FakeGpu, environ=None, **cfg):
    """Discovery on a machine with ``gpu`` and a RAPL package + DRAM (which a module counter makes moot)."""
    tree = PowercapTree(tmp_path / "powercap", {"intel-rapl:0": "package-0", "intel-rapl:0:0": "dram"})
    config = DiscoverConfig(nvml=FakeNvml([gpu], clock), rapl_root=tree.root, jetson_root=tmp_path / "sys",
                            probe_s=0, monitor="off", environ=environ or {}, **cfg)  # fmt: skip
    return discover(config), tree


def _window(found, tree, clock, seconds=2.0):
    with Profiler(found.meters, sampler_hz=None) as p:
        w = p.start("q")
        clock.advance(seconds)
        tree.set_uj("intel-rapl:0", int(PACKAGE_J * 1e6))
        tree.set_uj("intel-rapl:0:0", int(DRAM_J * 1e6))
        return w.stop()


def _record(m, correct=True):
    q = SimpleNamespace(id=f"q{correct}", domain="math", difficulty=None, grader="exact", answer="4")
    gen = Generation("4", 5, 3, m.start_s, m.end_s, m.start_s + 0.1, m.end_s - 0.1)
    return make_record(q, gen, Grade(correct, "4", "exact", "ok"), m, 0, None)


def test_gh200_counter_is_the_module_and_the_host_is_counted_once(tmp_path, clock):
    found, tree = _machine(tmp_path, clock, gh200(Trace(base_w=MODULE_W, amp_w=0.0)))
    try:
        assert [m.family for m in found.meters] == ["nvidia"]  # no RAPL, no estimate: not even opened
        absent = {a.family: a.reason for a in found.absent}
        assert "covers its module" in absent["rapl"] and "covers its module" in absent["estimate"]
        m = _window(found, tree, clock)
    finally:
        found.close()
    module = MODULE_W * 2.0
    assert set(m.scopes) == {"module", "system"}
    assert m.scope_energy_j("module") == pytest.approx(module, rel=1e-4) == m.energy_j  # once, never + RAPL
    assert m.scope_energy_j("accelerator") is None and m.scope_energy_j("host") is None
    assert f"{MODULE_COUNTER_FLAG}gpu:0" in m.flags and m.to_dict()["domains"]["gpu:0"]["scope"] == "module"

    records = [_record(m, True), _record(m, False)]
    r = records[0]
    assert r.accelerator_energy_j is None and r.host_energy_j is None
    assert r.energy_j == pytest.approx(module, rel=1e-4) and r.domains["gpu:0"]["scope"] == "module"
    assert "module-counter:gpu:0" in r.flags and r.power_w == pytest.approx(MODULE_W, rel=1e-3)
    summary = summarize(pd.DataFrame([x.to_dict() for x in records]), n_boot=50).iloc[0]
    assert summary["energy_scope"] == "module"
    assert summary["ipj_per_j"] == pytest.approx(0.5 / module, rel=1e-4)  # IPJ on the module's energy
    assert summary["measured"]


def test_h100_keeps_accelerator_plus_host(tmp_path, clock):
    found, tree = _machine(tmp_path, clock, FakeGpu(Trace(base_w=GPU_W, amp_w=0.0)))
    try:
        assert [m.family for m in found.meters] == ["nvidia", "rapl"]
        m = _window(found, tree, clock)
    finally:
        found.close()
    assert set(m.scopes) == {"accelerator", "host", "system"} and not any(f.startswith(MODULE_COUNTER_FLAG) for f in m.flags)
    assert m.scope_energy_j("accelerator") == pytest.approx(GPU_W * 2.0, rel=1e-4)
    assert m.scope_energy_j("host") == pytest.approx(PACKAGE_J + DRAM_J)
    assert m.energy_j == pytest.approx(GPU_W * 2.0 + PACKAGE_J + DRAM_J, rel=1e-4)
    r = _record(m)
    assert r.accelerator_energy_j == pytest.approx(GPU_W * 2.0, rel=1e-4) and r.host_energy_j == pytest.approx(48.0)
    assert summarize(pd.DataFrame([r.to_dict()]), n_boot=50).iloc[0]["energy_scope"] == "accelerator"


def test_override_by_environment_both_ways(tmp_path, clock):
    found, _ = _machine(tmp_path / "a", clock, gh200(Trace()), environ={"IPW_NVML_MODULE": "0"})
    try:
        assert [m.family for m in found.meters] == ["nvidia", "rapl"]
        assert found.meters[0].describe()["module"] == {"module": False, "covers": "GPU", "decided_by": "IPW_NVML_MODULE",
                                                        "why": "set by IPW_NVML_MODULE=0"}  # fmt: skip
    finally:
        found.close()
    found, _ = _machine(tmp_path / "b", clock, FakeGpu(Trace()), environ={"IPW_NVML_MODULE": "1"})
    try:
        assert [m.family for m in found.meters] == ["nvidia"] and found.meters[0].infos["gpu:0"].scope == "module"
    finally:
        found.close()
    found, _ = _machine(tmp_path / "c", clock, gh200(Trace()), environ={"IPW_NVML_MODULE": "1"}, nvml_module=False)
    try:
        assert found.meters[0].infos["gpu:0"].scope is None  # the option beats the environment
    finally:
        found.close()
    with pytest.raises(ModuleOverrideError, match="IPW_NVML_MODULE='maybe'"):
        _machine(tmp_path / "d", clock, gh200(Trace()), environ={"IPW_NVML_MODULE": "maybe"})


def test_table_by_name_and_architecture():
    assert decide("NVIDIA GH200 480GB", 9).module and decide("NVIDIA GH200 144G HBM3e", None).module
    assert not decide("NVIDIA GH200 480GB", 10).module  # a name that does not match its architecture
    assert not decide("NVIDIA H100 80GB HBM3", 9).module and not decide("NVIDIA GB200", 10).module
    assert "zeus PR #172" in decide("NVIDIA GH200 480GB", 9).why


def test_devices_says_module_counter(tmp_path, clock):
    from ipw.cli.devices import _format_devices

    found, _ = _machine(tmp_path, clock, gh200(Trace()))
    try:
        text = _format_devices(found)
    finally:
        found.close()
    assert "NVIDIA GH200 480GB" in text and "module counter: GPU + CPU + memory" in text
    assert "gpu:0" in text and " module " in text


def test_architecture_unknown_to_the_driver_is_not_an_error(clock):
    from ipw.devices.nvidia.meter import NvmlMeter

    meter = NvmlMeter(0, nvml=FakeNvml([FakeGpu(Trace(), architecture=None)], clock), monitor="off")
    try:
        assert meter.architecture is None and meter.infos["gpu:0"].scope is None
    finally:
        meter.close()
