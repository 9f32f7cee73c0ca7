"""A fake NVML at the pynvml boundary.

Only the calls that touch hardware are replaced; error classes and constants are the real
pynvml's, so the code under test handles exactly the exceptions it would get from a GPU. Each fake
GPU follows a known power trace P(t) = base_w + amp_w * sin(2*pi*t/period_s); its energy counter is
the trace's exact integral, refreshed every ``update_s`` (0 = always fresh) and kept in whole mJ, as
NVML reports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import pynvml


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
class FakeGpu:
    trace: Trace
    name: str = "NVIDIA Fake H100"
    update_s: float = 0.0
    has_counter: bool = True
    has_instant_field: bool = True


class FakeNvml:
    """Stands in for the ``pynvml`` module; ``clock`` is the time source of the traces."""

    def __init__(self, gpus: list[FakeGpu], clock, library_found: bool = True) -> None:
        self.gpus = gpus
        self.clock = clock
        self.library_found = library_found
        self.init_count = 0
        self.calls = 0

    def __getattr__(self, name: str):
        if name.startswith("NVML"):  # error classes and constants: the real ones
            return getattr(pynvml, name)
        raise AttributeError(name)

    def _raise(self, code: int):
        raise pynvml.NVMLError(code)

    def nvmlInit(self) -> None:
        if not self.library_found:
            self._raise(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self.init_count -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if not 0 <= index < len(self.gpus):
            self._raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[index]

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        return gpu.name

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGpu) -> int:
        self.calls += 1
        if not gpu.has_counter:
            self._raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        t = self.clock()
        if gpu.update_s:
            t = math.floor(t / gpu.update_s) * gpu.update_s
        return int(gpu.trace.energy_j(t) * 1e3)

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        return int(gpu.trace.power_w(self.clock()) * 1e3)

    def nvmlDeviceGetFieldValues(self, gpu: FakeGpu, field_ids: list[int]):
        t = self.clock()
        out = []
        for fid in field_ids:
            ok = gpu.has_instant_field and fid in (pynvml.NVML_FI_DEV_POWER_INSTANT, pynvml.NVML_FI_DEV_POWER_AVERAGE)
            mw = int(gpu.trace.power_w(t) * 1e3) if fid == pynvml.NVML_FI_DEV_POWER_INSTANT else int(gpu.trace.base_w * 1e3)
            out.append(
                SimpleNamespace(
                    fieldId=fid,
                    nvmlReturn=pynvml.NVML_SUCCESS if ok else pynvml.NVML_ERROR_NOT_SUPPORTED,
                    value=SimpleNamespace(uiVal=mw if ok else 0),
                )
            )
        return out
