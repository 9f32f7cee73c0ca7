"""Which meters this machine has, and for each family it lacks, why and how to fix it.

Order: NVIDIA and AMD GPUs (one meter each), RAPL, Apple Silicon (zeus-apple-silicon, else
powermetrics), NVIDIA Jetson power rails, and the labelled CPU estimate only when no measured CPU
counter (RAPL, Apple, Jetson rails) was found. Where an NVIDIA GPU's counter covers its module
(Grace Hopper: :mod:`ipw.devices.nvidia.module`, with ``nvml_module`` / ``IPW_NVML_MODULE`` as the
override), neither RAPL nor the estimate is opened: the module counter already holds the CPU and
its memory, and adding either would count them twice. The
update period of GPU counters is measured here (:func:`probe_update_period`), since it differs
between GPU generations and drivers: the probe runs until it has seen the counter change four
times (three whole periods between changes), up to ``probe_s`` (1 s: a 100 ms counter needs about
0.4 s). NVIDIA GPUs are chosen by ``gpus`` and ``CUDA_VISIBLE_DEVICES``
(:func:`ipw.devices.nvidia.selection.select_gpus`); a selection that names no GPU is an error, not an
absent family.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from ipw.core.errors import IpwError, MeterUnavailable
from ipw.devices import jetson
from ipw.devices.nvidia import module as nvml_module
from ipw.devices.base import MODULE, Meter
from ipw.devices.nvidia.selection import GpuSelectionError
from ipw.devices import rapl


@dataclass(frozen=True)
class Absent:
    """A counter family that is not usable here."""

    family: str
    reason: str
    fix: str = ""


@dataclass
class Discovery:
    meters: list[Meter] = field(default_factory=list)
    absent: list[Absent] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "meters": [m.describe() for m in self.meters],
            "absent": [dataclasses.asdict(a) for a in self.absent],
        }

    def close(self) -> None:
        for m in self.meters:
            m.close()


@dataclass(frozen=True)
class DiscoverConfig:
    """Where discovery looks; tests point these at fakes."""

    rapl_root: Path | None = None  # None: ipw.devices.rapl.DEFAULT_ROOT, read when discovery runs
    nvml: ModuleType | None = None
    amdsmi: ModuleType | None = None
    probe_s: float = 1.0  # at most; the probe stops once it has seen four changes
    estimate: str = "auto"  # "auto": only without a measured CPU counter; "always"; "never"
    cpu_scope: str | None = None  # the estimate's CPU time: "machine", "process-tree" or "server" (None: env or machine)
    server_pid: int | None = None  # with cpu_scope "server": the server process whose tree is counted too
    gpus: tuple[int | str, ...] | None = None  # CUDA indices or UUIDs among the visible GPUs; None: all visible
    environ: dict | None = None  # where CUDA_VISIBLE_DEVICES is read (None: os.environ)
    monitor: str = "thread"  # NVML background monitor: "thread", "manual" (tests; Jetson rails then polled by the caller) or "off" (edge reads)
    sleep: Callable[[float], None] = time.sleep  # how a manual monitor waits (tests: the simulated clock)
    nvml_module: bool | None = None  # NVML counters cover their module (GPU + CPU + memory)? None: IPW_NVML_MODULE, then the table
    jetson_root: Path | None = None  # where the Jetson meter looks for bus/i2c/drivers/ina* (None: jetson.DEFAULT_ROOT)


def probe_update_period(read_raw: Callable[[], float], duration_s: float = 1.0) -> float | None:
    """Median time [s] between changes of a raw counter, polled as fast as possible until it changed
    four times or ``duration_s`` passed; None with fewer than four changes (idle, or slower than the
    probe)."""
    from ipw.devices.nvidia.meter import probe_counter

    return probe_counter(read_raw, duration_s).update_period_s


def _with_probed_period(meter: Meter, read_raw: Callable[[], float], duration_s: float) -> Meter:
    period = probe_update_period(read_raw, duration_s) if duration_s > 0 else None
    if period is not None:
        meter.infos = {d: dataclasses.replace(i, update_period_s=period) for d, i in meter.infos.items()}
    return meter


def _nvidia(cfg: DiscoverConfig, found: Discovery) -> None:
    from ipw.devices.nvidia.meter import NvmlMeter
    from ipw.devices.nvidia.nvml import import_pynvml, nvml_errors
    from ipw.devices.nvidia.selection import select_gpus

    nvml = cfg.nvml or import_pynvml()
    with nvml_errors(nvml, "nvmlInit"):
        nvml.nvmlInit()
    try:
        selected = select_gpus(nvml, cfg.gpus, cfg.environ)
    finally:
        nvml.nvmlShutdown()
    if not selected:
        env = (os.environ if cfg.environ is None else cfg.environ).get("CUDA_VISIBLE_DEVICES")
        raise MeterUnavailable("nvidia", "NVML found no GPU" + (f" visible (CUDA_VISIBLE_DEVICES={env!r})." if env is not None else "."))
    meters = []
    for gpu in selected:
        try:
            meter = NvmlMeter(gpu.nvml_index, nvml=nvml, monitor=cfg.monitor, sleep=cfg.sleep,
                              module=cfg.nvml_module, environ=cfg.environ)  # fmt: skip
        except MeterUnavailable as e:  # this GPU cannot be measured; the others still can
            found.absent.append(Absent("nvidia", e.reason, e.fix))
            continue
        meter.cuda_index, meter.mig_instances = gpu.cuda_index, gpu.mig_instances
        meters.append(meter)
    if cfg.probe_s > 0:  # GPUs probe at once: each probe spins on its own counter (GIL released in NVML)
        with ThreadPoolExecutor(max_workers=max(len(meters), 1)) as pool:
            list(pool.map(lambda m: m.run_probe(cfg.probe_s) if m.has_counter else None, meters))
    found.meters.extend(meters)


def _amd(cfg: DiscoverConfig, found: Discovery) -> None:
    from ipw.devices.amd import AmdSmiMeter, gpu_handles, import_amdsmi

    amdsmi = cfg.amdsmi or import_amdsmi()
    count = len(gpu_handles(amdsmi))
    amdsmi.amdsmi_shut_down()
    if count == 0:
        raise MeterUnavailable("amd", "amdsmi found no GPU.")
    for index in range(count):
        meter = AmdSmiMeter(index, amdsmi=amdsmi)
        found.meters.append(_with_probed_period(meter, meter.raw_counter_j, cfg.probe_s))


def _module_counter(found: Discovery) -> str | None:
    """The first module counter found ("gpu:0 (NVIDIA GH200 480GB)"), or None."""
    for m in found.meters:
        for d, info in m.infos.items():
            if info.scope == MODULE:
                return f"{d} ({getattr(m, 'name', m.family)})"
    return None


def _not_on_a_module(family: str, found: Discovery) -> None:
    module = _module_counter(found)
    if module is not None:
        raise MeterUnavailable(family, f"not used: the NVML counter of {module} covers its module "
                               f"({nvml_module.COVERS}); {family} on top would count the CPU twice.")  # fmt: skip


def _rapl(cfg: DiscoverConfig, found: Discovery) -> None:
    from ipw.devices.rapl import RaplMeter

    _not_on_a_module("rapl", found)
    found.meters.append(RaplMeter(cfg.rapl_root or rapl.DEFAULT_ROOT))


def _apple(cfg: DiscoverConfig, found: Discovery) -> None:
    from ipw.devices.apple.meters import PowermetricsMeter, ZeusAppleMeter

    if sys.platform != "darwin":
        raise MeterUnavailable("apple", "not macOS.")
    try:
        found.meters.append(ZeusAppleMeter())
    except MeterUnavailable:
        found.meters.append(PowermetricsMeter())


def _jetson(cfg: DiscoverConfig, found: Discovery) -> None:
    found.meters.append(jetson.JetsonMeter(cfg.jetson_root or jetson.DEFAULT_ROOT, poll="manual" if cfg.monitor == "manual" else "thread"))


def _estimate(cfg: DiscoverConfig, found: Discovery) -> None:
    from ipw.devices.estimate import CpuEstimateMeter

    _not_on_a_module("estimate", found)
    has_cpu_counter = any(m.family in ("rapl", "apple", "jetson") for m in found.meters)
    if cfg.estimate == "never" or (cfg.estimate == "auto" and has_cpu_counter):
        raise MeterUnavailable("estimate", "not needed: a measured CPU counter (RAPL, Apple, Jetson rails) is present.")
    found.meters.append(CpuEstimateMeter(cpu_scope=cfg.cpu_scope, server_pid=cfg.server_pid))


FAMILIES = {"nvidia": _nvidia, "amd": _amd, "rapl": _rapl, "apple": _apple, "jetson": _jetson, "estimate": _estimate}


def discover(config: DiscoverConfig | None = None) -> Discovery:
    """Open every meter this machine supports; record why each other family is absent."""
    cfg = config or DiscoverConfig()
    nvml_module.env_override(cfg.environ)  # a bad IPW_NVML_MODULE is an error, not an absent family
    found = Discovery()
    for family, add in FAMILIES.items():
        try:
            add(cfg, found)
        except GpuSelectionError:
            found.close()
            raise
        except MeterUnavailable as e:
            if family == "nvidia" and cfg.gpus is not None:  # GPUs were asked for by name: say so, loudly
                found.close()
                raise GpuSelectionError(f"gpus={list(cfg.gpus)} asked for, but {e}") from e
            found.absent.append(Absent(family, e.reason, e.fix))
        except IpwError as e:
            found.absent.append(Absent(family, str(e)))
    return found
