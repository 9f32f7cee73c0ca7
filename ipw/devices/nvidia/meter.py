"""NVIDIA GPU energy through NVML (the ``pynvml`` module of ``nvidia-ml-py``).

One :class:`NvmlMeter` per GPU, never a sum across GPUs. Where the GPU has the total-energy counter
(mJ since the driver loaded; Volta and later) a background :class:`~ipw.devices.nvidia.monitor.NvmlMonitor`
reads it, with the instant power, stamped with the driver's timestamps, and windows take their
energy from that timeline (source ``nvml.total_energy_counter``): window edges read nothing. Where
the driver gives no timestamped field values the counter is read at the window edges instead
(``monitor="off"`` forces this). Without a counter the meter polls power and integrates it (source
``nvml.power_integrated``): instant power (``NVML_FI_DEV_POWER_INSTANT``) where the driver has the
field, else ``nvmlDeviceGetPowerUsage``, which on recent GPUs is a one-second moving average and so
lags short bursts. A GPU with neither is reported absent with the reason, never read as 0 J.

GPU selection is :mod:`ipw.devices.nvidia.selection`. On a Grace Hopper module the counter covers
the GPU, the CPU and their memory: the domain then has the scope ``module``
(:mod:`ipw.devices.nvidia.module` decides, from a table or an override).

We talk to pynvml directly rather than through zeus's device layer because zeus keeps a
process-wide GPU singleton and wraps the counter without the read timestamp we need (NVML errors: :mod:`ipw.devices.nvidia.nvml`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from ipw.core import clock
from ipw.core.errors import MeterReadError, MeterUnavailable
from ipw.devices.base import MODULE, CounterTrack, Domain, DomainInfo, Meter, PowerIntegrator
from ipw.devices.nvidia import module as nvml_module
from ipw.devices.nvidia import nvml as nvml_access
from ipw.devices.nvidia.monitor import NvmlMonitor, Span
from ipw.devices.nvidia.nvml import _text, nvml_errors


SOURCE_COUNTER = "nvml.total_energy_counter"


SOURCE_INTEGRATED = "nvml.power_integrated"


# Until a probe says otherwise: the counter is documented in mJ; its refresh period differs by GPU
# generation (see docs/profilers.md), so discover() measures it; this is only the fallback.
DEFAULT_UPDATE_PERIOD_S = 0.1


RESOLUTION_J = 1e-3


@dataclass(frozen=True)
class Probe:
    """What probing a counter found: its update period, how many updates were seen, read cost."""

    update_period_s: float | None
    updates_seen: int
    read_s: float
    duration_s: float


def probe_counter(
    read_version: Callable[[], object],
    duration_s: float = 1.0,
    min_updates: int = 4,
    version_time: Callable[[object], float] | None = None,
) -> Probe:
    """Poll ``read_version`` (a value that changes when the counter updates: its driver timestamp,
    or the value itself) as fast as possible until it changed ``min_updates`` times or ``duration_s``
    passed. The period is the median gap between changes, measured only with at least three gaps
    (so that one full update period is seen between two observed changes, three times over). With
    ``version_time`` (driver timestamp -> s) the gaps are those of the driver's own timestamps, else
    of the reads that saw each change."""
    t_start = clock.now()
    end = t_start + duration_s
    c0 = time.perf_counter()
    last, reads, changes = read_version(), 1, []
    while clock.now() < end and len(changes) < min_updates:
        value = read_version()
        reads += 1
        if value != last:
            changes.append(version_time(value) if version_time else clock.now())
            last = value
    cost = (time.perf_counter() - c0) / reads
    gaps = [b - a for a, b in zip(changes, changes[1:])]
    period = statistics.median(gaps) if len(gaps) >= 3 else None
    return Probe(period, len(changes), cost, clock.now() - t_start)


class NvmlMeter(Meter):
    """Energy of NVML GPU ``index`` [J]: the counter through a background monitor, the counter at
    window edges, or integrated power, in that order of preference (module docstring).

    ``monitor``: "thread" (default; a daemon thread reads the counter ``counter_hz`` and the instant
    field ``field_hz`` times a second), "manual" (the caller polls ``meter.monitor``: tests on a
    simulated clock) or "off" (edge reads). ``sleep`` is what a manual monitor waits with.
    ``module``: whether the counter covers the GPU's whole module (True/False), or None to follow
    ``IPW_NVML_MODULE`` (read from ``environ``, default ``os.environ``) and then the table of
    :mod:`ipw.devices.nvidia.module`.
    """

    family = "nvidia"

    def __init__(
        self,
        index: int,
        nvml: ModuleType | None = None,
        poll_hz: float = 20.0,
        update_period_s: float | None = None,
        monitor: str = "thread",
        counter_hz: float = 4.0,
        field_hz: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        module: bool | None = None,
        environ: dict | None = None,
    ) -> None:
        if monitor not in ("thread", "manual", "off"):
            raise ValueError(f"monitor must be 'thread', 'manual' or 'off', not {monitor!r}")
        self._nvml = nvml = nvml or nvml_access.import_pynvml()
        self.index = index
        self.cuda_index: int | None = None
        self.mig_instances: tuple[str, ...] = ()
        self.notes: list[str] = []
        self.probe: Probe | None = None
        self.monitor: NvmlMonitor | None = None
        with nvml_errors(nvml, "nvmlInit"):
            nvml.nvmlInit()
        self._integrator: PowerIntegrator | None = None
        self._handle = None
        self._track = CounterTrack(wrap=None)
        try:
            with nvml_errors(nvml, f"GPU {index}"):
                self._handle = nvml.nvmlDeviceGetHandleByIndex(index)
                self.name = _text(nvml.nvmlDeviceGetName(self._handle))
            self.uuid = self._optional(lambda h: _text(nvml.nvmlDeviceGetUUID(h)))
            self.architecture = self._optional(nvml.nvmlDeviceGetArchitecture)
            self.module = nvml_module.decide(self.name, self.architecture, module, environ)
            if self.module.module:
                self.notes.append(f"module counter: {nvml_module.COVERS} ({self.module.why}; decided by {self.module.decided_by})")
            self.mig = self._optional(lambda h: nvml.nvmlDeviceGetMigMode(h)[0]) == getattr(
                nvml, "NVML_DEVICE_MIG_ENABLE", 1
            )
            if self.mig:
                self.notes.append("MIG mode: the energy of the whole GPU, shared by all its MIG instances")
            limit_mw = self._optional(nvml.nvmlDeviceGetEnforcedPowerLimit)
            self.power_limit_w = limit_mw * 1e-3 if limit_mw else None
            self.has_counter = self._probe_counter()
            if self.has_counter and monitor != "off":
                try:
                    self.monitor = NvmlMonitor(
                        nvml, self._handle, counter_hz=counter_hz, field_hz=field_hz,
                        mode=monitor, sleep=sleep, power_cap_w=self.power_limit_w,
                        counter_period_s=update_period_s or DEFAULT_UPDATE_PERIOD_S,
                    )  # fmt: skip
                except (ValueError, nvml.NVMLError) as e:
                    self.notes.append(f"no timestamped counter field ({e}): the counter is read at window edges")
            if not self.has_counter:
                self._check_power()
                self._integrator = PowerIntegrator(self._power_for_integration_w, hz=poll_hz)
                self.notes.append("no energy counter: power is polled and integrated")
        except BaseException:
            if self.monitor is not None:
                self.monitor.close()
            nvml.nvmlShutdown()
            raise
        period = update_period_s or (DEFAULT_UPDATE_PERIOD_S if self.has_counter else 1.0 / poll_hz)
        source = SOURCE_COUNTER if self.has_counter else SOURCE_INTEGRATED
        scope = MODULE if self.module.module else None
        super().__init__([DomainInfo(Domain.GPU.at(index), source, True, period, RESOLUTION_J, scope=scope)])
        if self.monitor is None:
            self._read_energy_j()

    def _optional(self, call):
        """A query some GPUs and drivers lack: None where NVML says so, or pynvml lacks it."""
        try:
            return call(self._handle)
        except (self._nvml.NVMLError, AttributeError, TypeError):
            return None

    def _probe_counter(self) -> bool:
        try:
            with nvml_errors(self._nvml, f"GPU {self.index} energy counter"):
                try:
                    self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
                except self._nvml.NVMLError_NotSupported:
                    return False
        except MeterReadError as e:  # e.g. refused on a MIG-mode GPU: fall back to power, say why
            self.notes.append(f"energy counter unreadable ({e})")
            return False
        return True

    def _check_power(self) -> None:
        if not self.power_fields_w():
            raise MeterUnavailable(
                "nvidia",
                f"GPU {self.index} ({self.name}{', MIG mode' if self.mig else ''}) has neither an energy counter "
                "nor a power reading through NVML, so its energy cannot be measured.",
                "Measure the whole GPU outside MIG mode, or use a GPU and driver with the energy counter (Volta or later).",
            )

    def raw_counter_j(self) -> float:
        """The NVML total-energy counter as read, in J (used to probe its update period)."""
        with nvml_errors(self._nvml, f"GPU {self.index} energy counter"):
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) * 1e-3

    def counter_version(self) -> object:
        """What changes when the counter updates: its driver timestamp where there is one, else its value."""
        nvml = self._nvml
        if self.monitor is not None:
            (v,) = nvml.nvmlDeviceGetFieldValues(self._handle, [nvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION])
            if v.nvmlReturn == nvml.NVML_SUCCESS and v.timestamp > 0:
                return int(v.timestamp)
        return self.raw_counter_j()

    def run_probe(self, duration_s: float = 1.0) -> Probe:
        """Measure the counter's update period (at least three updates) and read cost; the period
        then bounds windows. Also times the instant-power field."""
        stamped = self.monitor is not None and isinstance(self.counter_version(), int)
        self.probe = probe_counter(self.counter_version, duration_s, version_time=(lambda v: v * 1e-6) if stamped else None)
        if self.probe.update_period_s is not None:
            self.infos = {d: _replace_period(i, self.probe.update_period_s) for d, i in self.infos.items()}
            if self.monitor is not None:
                self.monitor.set_counter_period(self.probe.update_period_s)
        nvml, n = self._nvml, 50
        c0 = time.perf_counter()
        try:
            for _ in range(n):
                nvml.nvmlDeviceGetFieldValues(self._handle, [nvml.NVML_FI_DEV_POWER_INSTANT])
            self.field_read_s = (time.perf_counter() - c0) / n
        except nvml.NVMLError:
            self.field_read_s = None
        return self.probe

    def _read_energy_j(self) -> dict[str, float]:
        if self._integrator is not None:
            energy = self._integrator.energy_j()
        else:
            energy = self._track.update(self.raw_counter_j())
        return {Domain.GPU.at(self.index): energy}

    def window_energy(self, t0: float, t1: float, wait: bool = True, timeout_s: float = 1.0) -> Span:
        """Energy of monotonic ``[t0, t1]`` from the monitor's timeline; with ``wait``, first wait until
        the counter has a value past ``t1``."""
        assert self.monitor is not None
        if wait:
            self.monitor.wait_covered(t1, timeout_s)
        return self.monitor.energy_between(t0, t1)

    def power_fields_w(self) -> dict[str, float]:
        """Instant and averaged power [W] as NVML reports them; fields the driver lacks are left out."""
        nvml, out = self._nvml, {}
        fields = {"instant_w": nvml.NVML_FI_DEV_POWER_INSTANT, "average_w": nvml.NVML_FI_DEV_POWER_AVERAGE}
        try:
            values = nvml.nvmlDeviceGetFieldValues(self._handle, list(fields.values()))
        except nvml.NVMLError:
            values = []
        for key, value in zip(fields, values):
            if value.nvmlReturn == nvml.NVML_SUCCESS:
                out[key] = value.value.uiVal * 1e-3
        if not out:
            try:
                out["usage_w"] = nvml.nvmlDeviceGetPowerUsage(self._handle) * 1e-3
            except nvml.NVMLError:
                pass
        return out

    def _power_for_integration_w(self) -> float:
        fields = self.power_fields_w()
        for key in ("instant_w", "usage_w", "average_w"):
            if key in fields:
                return fields[key]
        raise MeterReadError(f"nvidia: GPU {self.index}: the power reading failed")

    def describe(self) -> dict:
        d = super().describe() | {
            "device": self.name,
            "index": self.index,
            "cuda_index": self.cuda_index,
            "uuid": self.uuid,
            "mig": self.mig,
            "power_limit_w": self.power_limit_w,
            "architecture": self.architecture,
            "module": self.module.to_dict(),
        }
        counter = {
            "source": SOURCE_COUNTER if self.has_counter else SOURCE_INTEGRATED,
            "read": "background monitor (driver timestamps)" if self.monitor else "window edges",
            "update_period_s": self.infos[Domain.GPU.at(self.index)].update_period_s,
            "update_period_probed": bool(self.probe and self.probe.update_period_s is not None),
        }
        if self.probe is not None:
            counter |= {"updates_seen": self.probe.updates_seen, "read_s": self.probe.read_s,
                        "probe_s": self.probe.duration_s, "field_read_s": getattr(self, "field_read_s", None)}  # fmt: skip
        d["counter"] = counter
        if self.monitor is not None:
            d["monitor"] = self.monitor.stats()
        if self.mig_instances:
            d["mig_instances"] = list(self.mig_instances)
        if self.notes:
            d["notes"] = list(self.notes)
        return d

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
        if self._integrator is not None:
            self._integrator.close()
            self._integrator = None
        if self._handle is not None:
            self._handle = None
            self._nvml.nvmlShutdown()


def _replace_period(info: DomainInfo, period: float) -> DomainInfo:
    import dataclasses

    return dataclasses.replace(info, update_period_s=period)
