"""Access to NVML (the ``pynvml`` module of ``nvidia-ml-py``): importing it, and NVML error codes turned into ipw's own types.

The error mapping follows zeus's ``_handle_nvml_errors`` idea: NVML error codes become ipw's own
types, raised ``from`` the original, with the fix in the message. Tests replace
:func:`import_pynvml` (tests/fakes/nvml.py stands in for the module)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

from ipw.core.errors import MeterPermissionError, MeterReadError, MeterUnavailable


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


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
