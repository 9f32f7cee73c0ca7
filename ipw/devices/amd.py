"""AMD GPU energy through amdsmi (optional: ``pip install 'ipw[amd]'``).

``amdsmi_get_energy_count`` returns an accumulator and its resolution in uJ per count; the product
is the GPU's energy since the driver loaded. The accumulator key is ``energy_accumulator`` in
amdsmi 6.2 and later and ``power`` before; both are read. One meter per GPU, never a sum.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

from ipw.core.errors import MeterReadError, MeterUnavailable
from ipw.devices.base import CounterTrack, Domain, DomainInfo, Meter

SOURCE = "amdsmi.energy_count"
DEFAULT_UPDATE_PERIOD_S = 0.001  # replaced by discover()'s probe where the GPU is present


def import_amdsmi() -> ModuleType:
    try:
        import amdsmi
    except ImportError as e:
        raise MeterUnavailable("amd", "amdsmi is not installed.", "pip install 'ipw[amd]'") from e
    return amdsmi


@contextlib.contextmanager
def amdsmi_errors(amdsmi: ModuleType, what: str) -> Iterator[None]:
    try:
        yield
    except amdsmi.AmdSmiException as e:
        raise MeterReadError(f"amd: {what}: {e}") from e


def gpu_handles(amdsmi: ModuleType) -> list:
    try:
        amdsmi.amdsmi_init()
    except amdsmi.AmdSmiException as e:
        raise MeterUnavailable(
            "amd", f"amdsmi could not start: {e}.", "Install the ROCm driver so that `amd-smi` works."
        ) from e
    return list(amdsmi.amdsmi_get_processor_handles())


class AmdSmiMeter(Meter):
    """Energy of AMD GPU ``index`` [J] from its energy accumulator."""

    family = "amd"

    def __init__(self, index: int, amdsmi: ModuleType | None = None, update_period_s: float | None = None) -> None:
        self._amdsmi = amdsmi = amdsmi or import_amdsmi()
        handles = gpu_handles(amdsmi)
        if index >= len(handles):
            amdsmi.amdsmi_shut_down()
            raise MeterUnavailable("amd", f"no AMD GPU with index {index} ({len(handles)} found).")
        self.index, self._handle = index, handles[index]
        self._track = CounterTrack(wrap=None)
        period = update_period_s or DEFAULT_UPDATE_PERIOD_S
        super().__init__([DomainInfo(Domain.GPU.at(index), SOURCE, True, period, 1e-6)])
        self._read_energy_j()

    def raw_counter_j(self) -> float:
        with amdsmi_errors(self._amdsmi, f"GPU {self.index} energy count"):
            info = self._amdsmi.amdsmi_get_energy_count(self._handle)
        count = info.get("energy_accumulator", info.get("power"))
        return float(count) * float(info["counter_resolution"]) * 1e-6

    def _read_energy_j(self) -> dict[str, float]:
        return {Domain.GPU.at(self.index): self._track.update(self.raw_counter_j())}

    def close(self) -> None:
        if self._handle is not None:
            self._handle = None
            self._amdsmi.amdsmi_shut_down()
