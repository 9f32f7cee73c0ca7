"""A fake NVML at the pynvml boundary.

Only the calls that touch hardware are replaced; error classes and constants are the real
pynvml's, so the code under test handles exactly the exceptions it would get from a GPU. Each fake
GPU follows a known power trace (by default P(t) = base_w + amp_w * sin(2*pi*t/period_s)); its
energy counter is the trace's exact integral, refreshed every ``update_s`` (0 = always fresh) and
kept in whole mJ, as NVML reports it.

:func:`gh200` builds a Grace Hopper module ("NVIDIA GH200 480GB", Hopper architecture) whose
counter, as on the real module (zeus PR #172), covers GPU, CPU and memory: its trace is the
module's power. :func:`h200` builds a GPU that behaves as an H200 measured on this project (driver 580): the
energy counter and the instant-power field both change every 100 ms, at the same instants; field
values carry the driver's timestamp of that change (microseconds on the driver's own clock, here
the simulated clock plus a fixed epoch); a counter read costs 3.9 ms and an instant-field read
5.5 us. The cost is spent according to the fake's ``cost`` mode: "none", "simulated" (the
simulated clock advances by it: tests stay fast) or "real" (CPU time spent in one hash call,
which, like the real NVML call through ctypes, runs without holding the GIL).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml

DRIVER_EPOCH_S = 1_700_000_000.0  # the fake driver clock = the simulated clock + this
H200_UPDATE_S = 0.1
H200_COUNTER_READ_S = 3.9e-3
H200_FIELD_READ_S = 5.5e-6


@dataclass
class Trace:
    base_w: float = 200.0
    amp_w: float = 80.0
    period_s: float = 0.5

    def power_w(self, t: float) -> float:
        return self.base_w + self.amp_w * math.sin(2 * math.pi * t / self.period_s)

    def energy_j(self, t: float) -> float:
        """Integral of power_w from 0 to t [J]."""
        w = 2 * math.pi / self.period_s
        return self.base_w * t + self.amp_w * (1 - math.cos(w * t)) / w

    def between_j(self, t0: float, t1: float) -> float:
        return self.energy_j(t1) - self.energy_j(t0)


@dataclass
class StepTrace:
    """Piecewise-constant power: ``levels_w[i]`` from ``times_s[i]`` on (before the first: the first)."""

    times_s: list[float]
    levels_w: list[float]

    def __post_init__(self) -> None:  # cumulative energy at each step's start, from times_s[0] [J]
        self._cum = [0.0]
        for (a, w), b in zip(zip(self.times_s, self.levels_w), self.times_s[1:]):
            self._cum.append(self._cum[-1] + w * (b - a))

    def power_w(self, t: float) -> float:
        return self.levels_w[max(bisect.bisect_right(self.times_s, t) - 1, 0)]

    def _from_first(self, t: float) -> float:
        i = max(bisect.bisect_right(self.times_s, t) - 1, 0)
        return self._cum[i] + self.levels_w[i] * (t - self.times_s[i])

    def energy_j(self, t: float) -> float:
        """Integral of power_w from 0 to t [J] (level i holds on [times_s[i], times_s[i+1]))."""
        return self._from_first(t) - self._from_first(0.0)

    def between_j(self, t0: float, t1: float) -> float:
        return self._from_first(t1) - self._from_first(t0)


def random_steps(start_s: float, end_s: float, seed: int, min_s: float = 0.005, max_s: float = 0.08,
                 low_w: float = 60.0, high_w: float = 690.0) -> StepTrace:  # fmt: skip
    """Power that jumps to a random level in ``[low_w, high_w]`` every ``min_s``..``max_s`` seconds."""
    rng = random.Random(seed)
    times, t = [], start_s
    while t < end_s:
        times.append(t)
        t += rng.uniform(min_s, max_s)
    return StepTrace(times, [rng.uniform(low_w, high_w) for _ in times])


@dataclass
class SquareTrace:
    """Power ``high_w`` for the first half of every ``period_s`` (counted from ``phase_s``), ``low_w``
    for the second half."""

    low_w: float
    high_w: float
    period_s: float
    phase_s: float = 0.0

    def power_w(self, t: float) -> float:
        return self.high_w if ((t - self.phase_s) / self.period_s) % 1.0 < 0.5 else self.low_w

    def _cum(self, t: float) -> float:
        n, x = divmod((t - self.phase_s) / self.period_s, 1.0)
        whole = n * 0.5 * (self.high_w + self.low_w)
        return (whole + self.high_w * min(x, 0.5) + self.low_w * max(x - 0.5, 0.0)) * self.period_s

    def energy_j(self, t: float) -> float:
        """Integral of power_w from 0 to t [J]."""
        return self._cum(t) - self._cum(0.0)

    def between_j(self, t0: float, t1: float) -> float:
        return self._cum(t1) - self._cum(t0)


@dataclass
class FakeGpu:
    trace: Trace
    name: str = "NVIDIA Fake H100"
    update_s: float = 0.0  # the energy counter's refresh period
    has_counter: bool = True
    has_instant_field: bool = True
    field_update_s: float | None = None  # the instant field's refresh period (None: always fresh)
    timestamps: bool = True  # field values carry the driver's timestamp
    counter_read_s: float = 0.0
    field_read_s: float = 0.0
    uuid: str | None = None
    mig: bool = False
    mig_uuids: tuple[str, ...] = ()
    power_limit_w: float | None = 700.0
    architecture: int | None = pynvml.NVML_DEVICE_ARCH_HOPPER  # None: nvmlDeviceGetArchitecture unsupported
    counter_reads: int = field(default=0, compare=False)
    field_reads: int = field(default=0, compare=False)


def h200(trace, **kw) -> FakeGpu:
    """A GPU that behaves as the measured H200 (module docstring)."""
    args = dict(
        name="NVIDIA H200", update_s=H200_UPDATE_S, field_update_s=H200_UPDATE_S,
        counter_read_s=H200_COUNTER_READ_S, field_read_s=H200_FIELD_READ_S,
    )  # fmt: skip
    return FakeGpu(trace, **(args | kw))


def gh200(trace, **kw) -> FakeGpu:
    """A Grace Hopper module as NVML shows it: the name, Hopper, and a module-wide counter (``trace``)."""
    return FakeGpu(trace, **(dict(name="NVIDIA GH200 480GB", power_limit_w=900.0) | kw))


@dataclass(frozen=True)
class FakeMig:
    parent: FakeGpu
    uuid: str


_HASH_BYTES_PER_S: float | None = None


def spend_cpu_without_gil(seconds: float) -> None:
    """Spend about ``seconds`` of CPU in one C call that releases the GIL (sha256 of a buffer)."""
    global _HASH_BYTES_PER_S
    if _HASH_BYTES_PER_S is None:
        buf = b"\0" * (1 << 22)
        t0 = time.perf_counter()
        hashlib.sha256(buf).digest()
        _HASH_BYTES_PER_S = len(buf) / max(time.perf_counter() - t0, 1e-6)
    hashlib.sha256(b"\0" * max(int(seconds * _HASH_BYTES_PER_S), 1)).digest()


class FakeNvml:
    """Stands in for the ``pynvml`` module; ``clock`` is the time source of the traces."""

    def __init__(self, gpus: list[FakeGpu], clock, library_found: bool = True, cost: str = "simulated") -> None:
        if cost not in ("none", "simulated", "real"):
            raise ValueError(cost)
        self.gpus = gpus
        self.clock = clock
        self.library_found = library_found
        self.cost = cost
        self.init_count = 0
        self.calls = 0
        for i, g in enumerate(gpus):
            if g.uuid is None:
                g.uuid = f"GPU-{i:08x}-fake-{i:04d}"

    def __getattr__(self, name: str):
        if name.startswith("NVML"):  # error classes and constants: the real ones
            return getattr(pynvml, name)
        raise AttributeError(name)

    def _raise(self, code: int):
        raise pynvml.NVMLError(code)

    def _spend(self, seconds: float) -> None:
        if not seconds or self.cost == "none":
            return
        if self.cost == "simulated":
            if hasattr(self.clock, "advance"):
                self.clock.advance(seconds)
        else:
            spend_cpu_without_gil(seconds)

    @property
    def counter_reads(self) -> int:
        return sum(g.counter_reads for g in self.gpus)

    def nvmlInit(self) -> None:
        if not self.library_found:
            self._raise(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self.init_count -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return "fake"

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if not 0 <= index < len(self.gpus):
            self._raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[index]

    def nvmlDeviceGetIndex(self, gpu: FakeGpu) -> int:
        return self.gpus.index(gpu)

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:
        return gpu.uuid

    def nvmlDeviceGetHandleByUUID(self, uuid: str):
        for g in self.gpus:
            if g.uuid == uuid:
                return g
            if uuid in g.mig_uuids:
                return FakeMig(g, uuid)
        self._raise(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, mig: FakeMig) -> FakeGpu:
        return mig.parent

    def nvmlDeviceGetMigMode(self, gpu: FakeGpu):
        return (1, 1) if gpu.mig else (0, 0)

    def nvmlDeviceGetEnforcedPowerLimit(self, gpu: FakeGpu) -> int:
        if gpu.power_limit_w is None:
            self._raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return int(gpu.power_limit_w * 1e3)

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        return gpu.name

    def nvmlDeviceGetArchitecture(self, gpu: FakeGpu) -> int:
        if gpu.architecture is None:
            self._raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu.architecture

    @staticmethod
    def _updated(t: float, period: float | None) -> float:
        return math.floor(t / period) * period if period else t

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGpu) -> int:
        self.calls += 1
        if not gpu.has_counter:
            self._raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        gpu.counter_reads += 1
        t = self._updated(self.clock(), gpu.update_s)
        self._spend(gpu.counter_read_s)
        return int(gpu.trace.energy_j(t) * 1e3)

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        return int(gpu.trace.power_w(self.clock()) * 1e3)

    def nvmlDeviceGetFieldValues(self, gpu: FakeGpu, field_ids: list[int]):
        t = self.clock()
        out, cost = [], 0.0
        for fid in field_ids:
            ok, ts, value = False, t, SimpleNamespace(uiVal=0, ullVal=0)
            if fid == pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION and gpu.has_counter:
                ts = self._updated(t, gpu.update_s)
                ok, value.ullVal = True, int(gpu.trace.energy_j(ts) * 1e3)
                gpu.counter_reads += 1
                cost += gpu.counter_read_s
            elif fid == pynvml.NVML_FI_DEV_POWER_INSTANT and gpu.has_instant_field:
                ts = self._updated(t, gpu.field_update_s)
                ok, value.uiVal = True, int(gpu.trace.power_w(ts) * 1e3)
                gpu.field_reads += 1
                cost += gpu.field_read_s
            elif fid == pynvml.NVML_FI_DEV_POWER_AVERAGE and gpu.has_instant_field:
                ok, value.uiVal = True, int(getattr(gpu.trace, "base_w", gpu.trace.power_w(t)) * 1e3)
            out.append(
                SimpleNamespace(
                    fieldId=fid,
                    nvmlReturn=pynvml.NVML_SUCCESS if ok else pynvml.NVML_ERROR_NOT_SUPPORTED,
                    timestamp=int(round((ts + DRIVER_EPOCH_S) * 1e6)) if ok and gpu.timestamps else 0,
                    latencyUsec=0,
                    value=value,
                )
            )
        self._spend(cost)
        return out
