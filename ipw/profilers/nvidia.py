"""NVIDIA GPU energy through NVML (the ``pynvml`` module of ``nvidia-ml-py``).

One :class:`NvmlMeter` per GPU index, never a sum across GPUs. Where the GPU has the total-energy
counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ since the driver loaded; Volta and later) the
window energy is the counter's difference (source ``nvml.total_energy_counter``). Elsewhere the
meter polls power and integrates it (source ``nvml.power_integrated``): instant power
(``NVML_FI_DEV_POWER_INSTANT``) where the driver has the field, else ``nvmlDeviceGetPowerUsage``,
which on recent GPUs is a one-second moving average and so lags short bursts.

We talk to pynvml directly rather than through zeus's device layer because zeus keeps a
process-wide GPU singleton and wraps the counter without the read timestamp we need; the error
mapping below follows zeus's ``_handle_nvml_errors`` idea: NVML error codes become ipw's own types,
raised ``from`` the original, with the fix in the message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

from ipw.errors import MeterPermissionError, MeterReadError, MeterUnavailable
from ipw.profilers.base import CounterTrack, Domain, DomainInfo, Meter, PowerIntegrator

SOURCE_COUNTER = "nvml.total_energy_counter"
SOURCE_INTEGRATED = "nvml.power_integrated"
# Until a probe says otherwise: the counter is documented in mJ; its refresh period differs by GPU
# generation (see docs/profilers.md), so discover() measures it; this is only the fallback.
DEFAULT_UPDATE_PERIOD_S = 0.1
RESOLUTION_J = 1e-3
DRIVER_FIX = "Install the NVIDIA driver so that `nvidia-smi` works, then retry."


def import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as e:  # pragma: no cover - nvidia-ml-py is a base dependency
        raise MeterUnavailable("nvidia", "nvidia-ml-py is not installed.", "pip install nvidia-ml-py") from e
    return pynvml


@contextlib.contextmanager
def nvml_errors(nvml: ModuleType, what: str) -> Iterator[None]:
    """Turn an NVML error into an ipw error that says what to do."""
    try:
        yield
    except nvml.NVMLError as e:
        code = getattr(e, "value", None)
        if code in (nvml.NVML_ERROR_LIBRARY_NOT_FOUND, nvml.NVML_ERROR_DRIVER_NOT_LOADED):
            raise MeterUnavailable("nvidia", f"{what}: {e}.", DRIVER_FIX) from e
        if code == nvml.NVML_ERROR_NO_PERMISSION:
            raise MeterPermissionError(
                "nvidia", f"{what}: {e}.", "Run as a user allowed to query the GPU (or as root)."
            ) from e
        if code == nvml.NVML_ERROR_GPU_IS_LOST:
            raise MeterReadError(f"nvidia: {what}: the GPU fell off the bus ({e}).") from e
        raise MeterReadError(f"nvidia: {what}: {e}") from e


def gpu_count(nvml: ModuleType | None = None) -> int:
    nvml = nvml or import_pynvml()
    with nvml_errors(nvml, "nvmlInit"):
        nvml.nvmlInit()
    try:
        with nvml_errors(nvml, "nvmlDeviceGetCount"):
            return int(nvml.nvmlDeviceGetCount())
    finally:
        nvml.nvmlShutdown()


class NvmlMeter(Meter):
    """Energy of GPU ``index`` [J]: the NVML counter where there is one, else integrated power."""

    family = "nvidia"

    def __init__(
        self,
        index: int,
        nvml: ModuleType | None = None,
        poll_hz: float = 20.0,
        update_period_s: float | None = None,
    ) -> None:
        self._nvml = nvml = nvml or import_pynvml()
        self.index = index
        with nvml_errors(nvml, "nvmlInit"):
            nvml.nvmlInit()
        self._integrator: PowerIntegrator | None = None
        self._handle = None
        self._track = CounterTrack(wrap=None)
        try:
            with nvml_errors(nvml, f"GPU {index}"):
                self._handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = nvml.nvmlDeviceGetName(self._handle)
            self.name = name.decode() if isinstance(name, bytes) else str(name)
            self.has_counter = self._probe_counter()
            if not self.has_counter:
                self._integrator = PowerIntegrator(self._power_for_integration_w, hz=poll_hz)
        except BaseException:
            nvml.nvmlShutdown()
            raise
        period = update_period_s or (DEFAULT_UPDATE_PERIOD_S if self.has_counter else 1.0 / poll_hz)
        source = SOURCE_COUNTER if self.has_counter else SOURCE_INTEGRATED
        super().__init__([DomainInfo(Domain.GPU.at(index), source, True, period, RESOLUTION_J)])
        self._read_energy_j()

    def _probe_counter(self) -> bool:
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except self._nvml.NVMLError_NotSupported:
            return False
        return True

    def raw_counter_j(self) -> float:
        """The NVML total-energy counter as read, in J (used to probe its update period)."""
        with nvml_errors(self._nvml, f"GPU {self.index} energy counter"):
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) * 1e-3

    def _read_energy_j(self) -> dict[str, float]:
        if self._integrator is not None:
            energy = self._integrator.energy_j()
        else:
            energy = self._track.update(self.raw_counter_j())
        return {Domain.GPU.at(self.index): energy}

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
            with nvml_errors(nvml, f"GPU {self.index} power"):
                out["usage_w"] = nvml.nvmlDeviceGetPowerUsage(self._handle) * 1e-3
        return out

    def _power_for_integration_w(self) -> float:
        fields = self.power_fields_w()
        return fields.get("instant_w", fields.get("usage_w", fields.get("average_w", 0.0)))

    def describe(self) -> dict:
        return super().describe() | {"device": self.name, "index": self.index}

    def close(self) -> None:
        if self._integrator is not None:
            self._integrator.close()
            self._integrator = None
        if self._handle is not None:
            self._handle = None
            self._nvml.nvmlShutdown()
