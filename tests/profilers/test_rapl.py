"""The RAPL meter on a fake powercap tree on disk."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest

import ipw.devices.amd  # noqa: F401 - imported before privileges are dropped below
import ipw.devices.apple.meters  # noqa: F401
import ipw.devices.estimate  # noqa: F401
from ipw.core.errors import MeterPermissionError, MeterUnavailable
from ipw.devices.discover import DiscoverConfig, discover
from ipw.devices.rapl import RaplMeter, find_zones
from ipw.profilers.windows import Profiler
from tests.fakes.powercap import PowercapTree, two_socket_tree


def test_zones_map_to_domains_and_psys_is_left_out(tmp_path):
    two_socket_tree(tmp_path)
    zones = {z.domain: z.parent for z in find_zones(tmp_path)}
    assert zones == {
        "cpu-package:0": None,
        "cpu-core:0": "cpu-package:0",
        "uncore:0": "cpu-package:0",
        "dram:0": None,  # beside the package, not inside it
        "cpu-package:1": None,
        "cpu-core:1": "cpu-package:1",
    }


def test_window_energy_per_zone_and_total_without_double_counting(tmp_path, clock):
    tree = two_socket_tree(tmp_path)
    with Profiler([RaplMeter(tmp_path)], sampler_hz=None) as p:
        w = p.start()
        for folder, uj in {"intel-rapl:0": 30_000_000, "intel-rapl:0:0": 20_000_000, "intel-rapl:0:1": 5_000_000,
                           "intel-rapl:0:2": 4_000_000, "intel-rapl:1": 10_000_000, "intel-rapl:1:0": 6_000_000}.items():
            tree.set_uj(folder, uj)
        clock.advance(1.0)
        m = w.stop()
    assert m.domains["cpu-package:0"].energy_j == pytest.approx(30.0)
    assert m.domains["cpu-core:0"].energy_j == pytest.approx(20.0)
    assert m.energy_j == pytest.approx(30.0 + 4.0 + 10.0)  # packages + dram; core/uncore are inside
    assert m.domains["dram:0"].source == "rapl.energy_uj" and m.measured


def test_wraparound_mid_window(tmp_path, clock):
    wrap = 1_000_000  # 1 J range: wraps fast
    tree = PowercapTree(tmp_path, {"intel-rapl:0": "package-0"}, max_range_uj=wrap)
    tree.set_uj("intel-rapl:0", 900_000)
    with Profiler([RaplMeter(tmp_path)], sampler_hz=None) as p:
        w = p.start()
        tree.set_uj("intel-rapl:0", 100_000)  # went past the range: +0.2 J
        clock.advance(0.5)
        p.read_all()  # a timeline read between (the sampler does this on long runs)
        tree.set_uj("intel-rapl:0", 50_000)  # wrapped again: +0.95 J
        clock.advance(0.5)
        m = w.stop()
    assert m.domains["cpu-package:0"].energy_j == pytest.approx(0.2 + 0.95)


@contextlib.contextmanager
def as_unprivileged_user():
    """Drop the effective uid to nobody (when root) so that file permissions apply, as for a user."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_root_only_energy_file_names_file_and_fix():
    root = Path(tempfile.mkdtemp(prefix="ipw-powercap-"))
    os.chmod(root, 0o755)
    tree = PowercapTree(root, {"intel-rapl:0": "package-0", "intel-rapl:0:0": "core"})
    for folder in tree.paths.values():
        os.chmod(folder, 0o755)
    denied = tree.energy_file("intel-rapl:0:0")
    os.chmod(denied, 0o400)  # as the kernel has it since 5.10
    config = DiscoverConfig(rapl_root=root, estimate="never", nvml=_no_nvml())
    with as_unprivileged_user():  # nothing may be imported in here: site-packages may be root-only
        with pytest.raises(MeterPermissionError) as info:
            RaplMeter(root)
        found = discover(config)
    assert str(denied) in str(info.value) and "chmod" in info.value.fix
    rapl = [a for a in found.absent if a.family == "rapl"][0]
    assert str(denied) in rapl.reason and "root" in rapl.fix
    assert not any(m.family == "rapl" for m in found.meters)  # never a silent zero


def _no_nvml():
    from tests.fakes.clock import FakeClock
    from tests.fakes.nvml import FakeNvml

    return FakeNvml([], FakeClock(), library_found=False)


def test_no_tree_is_unavailable_with_a_reason(tmp_path):
    with pytest.raises(MeterUnavailable, match="no RAPL package zones"):
        RaplMeter(tmp_path / "absent")


def test_estimate_is_used_only_without_a_measured_cpu_counter(tmp_path):
    two_socket_tree(tmp_path)
    with_rapl = discover(DiscoverConfig(rapl_root=tmp_path, nvml=_no_nvml(), probe_s=0))
    without = discover(DiscoverConfig(rapl_root=tmp_path / "none", nvml=_no_nvml(), probe_s=0))
    try:
        assert [m.family for m in with_rapl.meters] == ["rapl"]
        assert [m.family for m in without.meters] == ["estimate"]
    finally:
        with_rapl.close()
        without.close()
