"""Energy by scope (accelerator / host / system), the estimate's process-tree scope, CUDA sync."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

import ipw
from ipw.devices.base import DomainInfo, scope_of
from ipw.devices.estimate import SOURCE, SOURCE_PROCESS_TREE, CpuEstimateMeter
from ipw.devices.nvidia.meter import NvmlMeter
from ipw.devices.rapl import RaplMeter
from ipw.profilers.windows import Profiler
from tests.fakes.nvml import FakeGpu, FakeNvml, Trace
from tests.fakes.powercap import PowercapTree


def _infos(*specs):
    return {d: DomainInfo(d, "s", True, 0.001, parent=p) for d, p in specs}


def test_scope_rules():
    gpu_box = _infos(("gpu:0", None), ("gpu:1", None), ("cpu-package:0", None), ("cpu-core:0", "cpu-package:0"), ("dram:0", None))
    assert {d: scope_of(i, gpu_box) for d, i in gpu_box.items()} == {
        "gpu:0": "accelerator", "gpu:1": "accelerator",
        "cpu-package:0": "host", "cpu-core:0": "host", "dram:0": "host",
    }  # fmt: skip
    cpu_box = _infos(("cpu-package:0", None), ("cpu-core:0", "cpu-package:0"), ("dram:0", None))
    assert {d: scope_of(i, cpu_box) for d, i in cpu_box.items()} == {
        "cpu-package:0": "accelerator", "cpu-core:0": "accelerator", "dram:0": "host",
    }  # fmt: skip
    apple = _infos(("soc", None), ("cpu", "soc"), ("gpu:0", "soc"), ("ane", "soc"), ("dram", None))
    assert {d: scope_of(i, apple) for d, i in apple.items()} == {
        "soc": "accelerator", "cpu": "accelerator", "gpu:0": "accelerator", "ane": "accelerator", "dram": "host",
    }  # fmt: skip
    estimate_only = _infos(("cpu", None))
    assert scope_of(estimate_only["cpu"], estimate_only) == "accelerator"


def test_measured_gpu_stays_measured_beside_a_host_estimate(clock):
    trace = Trace(base_w=300.0, amp_w=0.0)
    gpu = NvmlMeter(0, monitor="off", nvml=FakeNvml([FakeGpu(trace)], clock))
    with Profiler([gpu, CpuEstimateMeter()], sampler_hz=None) as p:
        w = p.start()
        clock.advance(2.0)
        m = w.stop()
    acc, host, system = m.scopes["accelerator"], m.scopes["host"], m.scopes["system"]
    assert acc.measured and acc.kind == "measured" and acc.domains == ("gpu:0",)
    assert acc.energy_j == pytest.approx(600.0, rel=1e-3) == m.scope_energy_j("accelerator")
    assert not host.measured and host.sources == (SOURCE,) and m.scope_measured("host") is False
    assert not system.measured and not m.measured and "estimate" in m.flags
    assert system.energy_j == pytest.approx(acc.energy_j + host.energy_j) == m.energy_j
    assert system.uncertainty_j == pytest.approx(acc.uncertainty_j + host.uncertainty_j)
    d = m.to_dict()
    assert d["scopes"]["accelerator"]["kind"] == "measured" and d["scopes"]["host"]["kind"] == "estimate"
    assert d["domains"]["gpu:0"]["scope"] == "accelerator" and d["domains"]["cpu"]["scope"] == "host"


def test_cpu_only_machine_the_cpu_is_the_accelerator(tmp_path):
    tree = PowercapTree(tmp_path, {"intel-rapl:0": "package-0", "intel-rapl:0:0": "core", "intel-rapl:0:1": "dram"})
    with Profiler([RaplMeter(tmp_path)], sampler_hz=None) as p:
        w = p.start()
        tree.set_uj("intel-rapl:0", 5_000_000)
        tree.set_uj("intel-rapl:0:0", 3_000_000)
        tree.set_uj("intel-rapl:0:1", 1_000_000)
        m = w.stop()
    assert m.scope_energy_j("accelerator") == pytest.approx(5.0)  # the package (the core is inside it)
    assert m.scope_energy_j("host") == pytest.approx(1.0)  # DRAM
    assert m.scope_energy_j("system") == pytest.approx(6.0) == m.energy_j
    assert all(s.measured for s in m.scopes.values())
    with pytest.raises(ValueError, match="unknown scope"):
        m.scope_energy_j("gpu")


def test_estimate_alone_is_the_accelerator_and_says_estimate(estimate_only):
    with ipw.measure("sleep") as m:
        time.sleep(0.02)
    assert set(m.scopes) == {"accelerator", "system"} and m.scope_energy_j("host") is None
    assert m.scope_measured("accelerator") is False


def test_process_tree_scope_ignores_other_processes_and_counts_children():
    machine = CpuEstimateMeter(tdp_w=20.0, cpu_scope="machine")
    tree = CpuEstimateMeter(tdp_w=20.0, cpu_scope="process-tree")
    assert tree.infos["cpu"].source == SOURCE_PROCESS_TREE and machine.infos["cpu"].source == SOURCE
    assert tree.describe()["cpu_scope"] == "process-tree" and "process tree" in tree.describe()["note"]
    busy = "import time\nwhile time.process_time() < 0.6: pass"  # CPU time, however loaded the machine
    with Profiler([machine, tree], sampler_hz=None) as p:
        # another process's work (not our child: started through a shell that exits at once)
        subprocess.run(["sh", "-c", f"{sys.executable} -c '{busy}' >/dev/null 2>&1 &"], check=True)
        w = p.start()
        time.sleep(0.5)
        idle_tree = w.stop().domains["cpu"]
        w = p.start()
        subprocess.run([sys.executable, "-c", busy.replace("0.6", "0.3")], check=True)  # our child
        busy_tree = w.stop().domains["cpu"]
    floor = tree.n_logical * tree.p_idle_core_w
    # while only a stranger worked, the tree's dynamic energy is tiny; with our own child it is not
    assert idle_tree.energy_j - floor * idle_tree.duration_s < 0.2 * tree.p_dynamic_core_w * 0.5
    assert busy_tree.energy_j - floor * busy_tree.duration_s > tree.p_dynamic_core_w * 0.25  # the child: 0.3 s of CPU


def test_bad_cpu_scope_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="cpu_scope"):
        CpuEstimateMeter(cpu_scope="cluster")
    monkeypatch.setenv("IPW_CPU_ESTIMATE_SCOPE", "process-tree")
    assert CpuEstimateMeter().cpu_scope == "process-tree"


class FakeCuda:
    """The torch.cuda boundary: ``synchronize`` waits (advances the clock) for queued work."""

    def __init__(self, clock, queued_s: float, available: bool = True) -> None:
        self.clock, self.queued_s, self.available = clock, queued_s, available
        self.calls: list[tuple[int, float]] = []

    def is_available(self) -> bool:
        return self.available

    def is_initialized(self) -> bool:
        return self.available

    def device_count(self) -> int:
        return 2

    def synchronize(self, device=None) -> None:
        self.clock.advance(self.queued_s)
        self.queued_s = 0.0
        self.calls.append((device, self.clock.t))


def test_sync_cuda_waits_for_queued_work_at_both_edges(clock, monkeypatch):
    cuda = FakeCuda(clock, queued_s=0.0)
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))
    meter = NvmlMeter(0, monitor="off", nvml=FakeNvml([FakeGpu(Trace(base_w=100.0, amp_w=0.0))], clock))
    with Profiler([meter], sampler_hz=None) as p:
        with p.window("synced", sync_cuda=True) as w:
            clock.advance(0.1)
            cuda.queued_s = 0.25  # kernels launched, still running when the block ends
        assert [d for d, _ in cuda.calls] == [0, 1, 0, 1]  # every device, at start and at stop
        assert w.end_s >= cuda.calls[-1][1]  # the end is stamped after the kernels finished
        assert w.duration_s == pytest.approx(0.35, abs=1e-3)
        cuda.calls.clear()
        with p.window("unsynced") as w2:
            cuda.queued_s = 0.25
        assert cuda.calls == [] and w2.duration_s < 0.01
    meter = NvmlMeter(0, monitor="off", nvml=FakeNvml([FakeGpu(Trace())], clock))
    with ipw.measure(meters=[meter], sampler_hz=None, sync_cuda=True):
        pass
    assert len(cuda.calls) == 4


def test_sync_cuda_without_torch_or_cuda_is_a_no_op(clock, monkeypatch):
    meter = NvmlMeter(0, monitor="off", nvml=FakeNvml([FakeGpu(Trace())], clock))
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    with ipw.measure(meters=[meter], sampler_hz=None, sync_cuda=True) as m:
        clock.advance(0.1)
    assert m.energy_j > 0
    cuda = FakeCuda(clock, 0.0, available=False)
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))
    with ipw.measure(meters=[meter], sampler_hz=None, sync_cuda=True):
        pass
    assert cuda.calls == []


def test_pinned_scopes_win_and_a_whole_system_figure_is_not_added_to_its_parts():
    from ipw.profilers.measurement import DomainEnergy, Measurement

    infos = {"gpu:0": DomainInfo("gpu:0", "s", True, 0.1, scope="module"), "cpu": DomainInfo("cpu", "s", False, 0.01)}
    assert scope_of(infos["gpu:0"], infos) == "module" and scope_of(infos["cpu"], infos) == "host"

    def part(domain, joules, scope, parent=None):
        return DomainEnergy(domain, joules, 1.0, joules, None, 0.1, "s", True, 0.05, parent, None, scope)

    rails = [part("rail:VDD_IN", 9.0, "system"), part("rail:GPU", 5.0, "accelerator"), part("rail:CPU", 2.0, "host")]
    m = Measurement("w", 0.0, 1.0, {d.domain: d for d in rails})
    assert m.energy_j == 9.0 and m.scopes["system"].domains == ("rail:VDD_IN",)
    assert m.scope_energy_j("accelerator") == 5.0 and m.scope_energy_j("host") == 2.0
    no_input = Measurement("w", 0.0, 1.0, {d.domain: d for d in rails[1:] + [part("rail:DDR", 1.0, "host", "rail:CPU")]})
    assert no_input.energy_j == 7.0  # the top-level rails; DDR is inside CPU here
