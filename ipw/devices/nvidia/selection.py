"""Which GPUs to measure: CUDA's view (``CUDA_VISIBLE_DEVICES``, a ``gpus`` list) turned into NVML devices.

``CUDA_VISIBLE_DEVICES`` entries (indices, ``GPU-`` UUIDs or their unique prefixes, ``MIG-`` UUIDs)
become NVML devices, and a ``gpus`` list picks among the visible ones by CUDA index or UUID. CUDA
numbers GPUs fastest first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; NVML numbers them in PCI bus
order, so an integer entry is taken as a PCI-order index, which is exact with
``CUDA_DEVICE_ORDER=PCI_BUS_ID`` or identical GPUs, and UUIDs are exact always. A MIG instance is
measured by its parent GPU's counter, which covers every instance on that GPU."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from ipw.core.errors import IpwError
from ipw.devices.nvidia.nvml import _text, nvml_errors


class GpuSelectionError(IpwError):
    """A ``gpus`` entry or ``CUDA_VISIBLE_DEVICES`` entry that names no GPU here."""


@dataclass(frozen=True)
class SelectedGpu:
    """One GPU to measure: its NVML index, CUDA index among the visible ones, UUID, and the MIG
    instances (UUIDs) asked for on it, if any."""

    nvml_index: int
    cuda_index: int | None
    uuid: str
    mig_instances: tuple[str, ...] = ()


def _resolve(nvml: ModuleType, entry: str, uuids: list[str], where: str) -> tuple[int, str | None]:
    """(NVML index, MIG UUID or None) of one entry: an index, a GPU UUID (or unique prefix), a MIG UUID."""
    entry = entry.strip()
    if entry.lstrip("-").isdigit():
        index = int(entry)
        if not 0 <= index < len(uuids):
            raise GpuSelectionError(f"{where}: GPU {index} does not exist (NVML sees {len(uuids)} GPU(s))")
        return index, None
    if entry.startswith("MIG-"):
        try:
            with nvml_errors(nvml, f"MIG device {entry}"):
                mig = nvml.nvmlDeviceGetHandleByUUID(entry)
                parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
                return int(nvml.nvmlDeviceGetIndex(parent)), entry
        except IpwError as e:
            raise GpuSelectionError(f"{where}: {entry} names no MIG device here ({e})") from e
    matches = [i for i, u in enumerate(uuids) if u.startswith(entry if entry.startswith("GPU-") else "GPU-" + entry)]
    if len(matches) != 1:
        what = "no GPU" if not matches else "more than one GPU"
        raise GpuSelectionError(f"{where}: {entry!r} matches {what} (UUIDs here: {', '.join(uuids) or 'none'})")
    return matches[0], None


def select_gpus(
    nvml: ModuleType, gpus: Sequence[int | str] | None = None, environ: dict | None = None
) -> list[SelectedGpu]:
    """The GPUs to measure, in CUDA order (module docstring). NVML must be initialised."""
    env = os.environ if environ is None else environ
    with nvml_errors(nvml, "nvmlDeviceGetCount"):
        count = int(nvml.nvmlDeviceGetCount())
    uuids = []
    for i in range(count):
        with nvml_errors(nvml, f"GPU {i}"):
            uuids.append(_text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))))
    visible_env = env.get("CUDA_VISIBLE_DEVICES")
    if visible_env is None:
        visible = [(i, None) for i in range(count)]
    else:
        visible = []
        for entry in (e for e in visible_env.split(",") if e.strip()):
            if entry.strip().startswith("-"):  # CUDA stops at the first invalid entry
                break
            visible.append(_resolve(nvml, entry, uuids, f"CUDA_VISIBLE_DEVICES={visible_env}"))
    if gpus is not None:
        chosen = []
        for g in gpus:
            if isinstance(g, int) or str(g).strip().isdigit():
                k = int(g)
                if not 0 <= k < len(visible):
                    raise GpuSelectionError(
                        f"gpus: CUDA index {k} is not one of the {len(visible)} visible GPU(s)"
                        + (f" (CUDA_VISIBLE_DEVICES={visible_env})" if visible_env is not None else "")
                    )
                chosen.append(visible[k])
            else:
                hit = _resolve(nvml, str(g), uuids, "gpus")
                if hit[0] not in [v[0] for v in visible]:
                    raise GpuSelectionError(f"gpus: {g} is hidden by CUDA_VISIBLE_DEVICES={visible_env}")
                chosen.append(hit)
    else:
        chosen = visible
    out: dict[int, SelectedGpu] = {}
    cuda_of = {}
    for pos, (index, _) in enumerate(visible):
        cuda_of.setdefault(index, pos)
    for index, mig in chosen:  # MIG instances on one GPU share its one meter
        prev = out.get(index)
        migs = (prev.mig_instances if prev else ()) + ((mig,) if mig else ())
        out[index] = SelectedGpu(index, cuda_of.get(index), uuids[index], migs)
    return list(out.values())
