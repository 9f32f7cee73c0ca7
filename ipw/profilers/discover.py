"""Which meters this machine has, and for each family it lacks, why and how to fix it.

Order: NVIDIA and AMD GPUs (one meter each), RAPL, Apple Silicon (zeus-apple-silicon, else
powermetrics), and the labelled CPU estimate only when no measured CPU counter was found. The
update period of GPU counters is measured here (:func:`probe_update_period`), since it differs
between GPU generations and drivers.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from ipw.errors import IpwError, MeterUnavailable
from ipw.profilers import base
from ipw.profilers.base import Meter
from ipw.profilers.rapl import DEFAULT_ROOT


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

    rapl_root: Path = DEFAULT_ROOT
    nvml: ModuleType | None = None
    amdsmi: ModuleType | None = None
    probe_s: float = 0.2
    estimate: str = "auto"  # "auto": only without a measured CPU counter; "always"; "never"


def probe_update_period(read_raw: Callable[[], float], duration_s: float = 0.2) -> float | None:
    """Median time [s] between changes of a raw counter, polled as fast as possible for ``duration_s``.

    None when the counter changed fewer than three times (idle, or slower than the probe).
    """
    changes, last = [], read_raw()
    end = base.now() + duration_s
    while base.now() < end:
        value = read_raw()
        if value != last:
            changes.append(base.now())
            last = value
    gaps = [b - a for a, b in zip(changes, changes[1:])]
    return statistics.median(gaps) if len(gaps) >= 2 else None


def _with_probed_period(meter: Meter, read_raw: Callable[[], float], duration_s: float) -> Meter:
    period = probe_update_period(read_raw, duration_s) if duration_s > 0 else None
    if period is not None:
        meter.infos = {d: dataclasses.replace(i, update_period_s=period) for d, i in meter.infos.items()}
    return meter


def _nvidia(cfg: DiscoverConfig, found: Discovery) -> None:
    from ipw.profilers.nvidia import NvmlMeter, gpu_count, import_pynvml

    nvml = cfg.nvml or import_pynvml()
    count = gpu_count(nvml)
    if count == 0:
        raise MeterUnavailable("nvidia", "NVML found no GPU.")
    for index in range(count):
        meter = NvmlMeter(index, nvml=nvml)
        if meter.has_counter:
            _with_probed_period(meter, meter.raw_counter_j, cfg.probe_s)
        found.meters.append(meter)


def _amd(cfg: DiscoverConfig, found: Discovery) -> None:
    from ipw.profilers.amd import AmdSmiMeter, gpu_handles, import_amdsmi

    amdsmi = cfg.amdsmi or import_amdsmi()
    count = len(gpu_handles(amdsmi))
    amdsmi.amdsmi_shut_down()
    if count == 0:
        raise MeterUnavailable("amd", "amdsmi found no GPU.")
    for index in range(count):
        meter = AmdSmiMeter(index, amdsmi=amdsmi)
        found.meters.append(_with_probed_period(meter, meter.raw_counter_j, cfg.probe_s))


def _rapl(cfg: DiscoverConfig, found: Discovery) -> None:
    from ipw.profilers.rapl import RaplMeter

    found.meters.append(RaplMeter(cfg.rapl_root))


def _apple(cfg: DiscoverConfig, found: Discovery) -> None:
    from ipw.profilers.apple import PowermetricsMeter, ZeusAppleMeter

    if sys.platform != "darwin":
        raise MeterUnavailable("apple", "not macOS.")
    try:
        found.meters.append(ZeusAppleMeter())
    except MeterUnavailable:
        found.meters.append(PowermetricsMeter())


def _estimate(cfg: DiscoverConfig, found: Discovery) -> None:
    from ipw.profilers.estimate import CpuEstimateMeter

    has_cpu_counter = any(m.family in ("rapl", "apple") for m in found.meters)
    if cfg.estimate == "never" or (cfg.estimate == "auto" and has_cpu_counter):
        raise MeterUnavailable("estimate", "not needed: a measured CPU counter is present.")
    found.meters.append(CpuEstimateMeter())


FAMILIES = {"nvidia": _nvidia, "amd": _amd, "rapl": _rapl, "apple": _apple, "estimate": _estimate}


def discover(config: DiscoverConfig | None = None) -> Discovery:
    """Open every meter this machine supports; record why each other family is absent."""
    cfg = config or DiscoverConfig()
    found = Discovery()
    for family, add in FAMILIES.items():
        try:
            add(cfg, found)
        except MeterUnavailable as e:
            found.absent.append(Absent(family, e.reason, e.fix))
        except IpwError as e:
            found.absent.append(Absent(family, str(e)))
    return found
