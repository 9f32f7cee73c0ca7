from __future__ import annotations

import os
from pathlib import Path

import pytest

from ipw.core import clock as core_clock
from tests.fakes.clock import FakeClock

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """Simulated time, patched in where ipw stamps readings."""
    fake = FakeClock()
    monkeypatch.setattr(core_clock, "now", fake)
    return fake


MACHINE = os.environ.get("IPW_TEST_MACHINE", "")
"""``fake-gpu-rapl``: every test runs as if on a GPU server with RAPL (tests/fakes/machine.py)."""


@pytest.fixture(autouse=True, scope="session")
def _machine(tmp_path_factory):
    if MACHINE not in ("", "fake-gpu-rapl"):
        raise pytest.UsageError(f"IPW_TEST_MACHINE={MACHINE!r}: use fake-gpu-rapl or leave it unset")
    if not MACHINE:
        yield None
        return
    from tests.fakes.machine import FakeMachine

    machine = FakeMachine(tmp_path_factory.mktemp("machine"))
    with pytest.MonkeyPatch.context() as patch:
        machine.start(patch)
        yield machine
    machine.stop()


def _unavailable(family: str, reason: str, fix: str = ""):
    from ipw.core.errors import MeterUnavailable

    def refuse(*_a, **_k):
        raise MeterUnavailable(family, reason, fix)

    return refuse


@pytest.fixture
def estimate_only(monkeypatch, tmp_path):
    """Discovery on a machine with no energy counter, whatever this one has: no NVML, no AMD SMI, no
    RAPL tree, no Jetson rails, not macOS. Only the labelled CPU estimate is left."""
    from ipw.devices import amd, discover, jetson, rapl
    from ipw.devices.nvidia import nvml as nvml_access

    monkeypatch.setattr(nvml_access, "import_pynvml", _unavailable(
        "nvidia", "nvmlInit: NVML Shared Library Not Found.", "Install the NVIDIA driver so that `nvidia-smi` works, then retry."))
    monkeypatch.setattr(amd, "import_amdsmi", _unavailable("amd", "amdsmi is not installed.", "pip install amdsmi"))
    monkeypatch.setattr(rapl, "DEFAULT_ROOT", tmp_path / "no-powercap")
    monkeypatch.setattr(jetson, "DEFAULT_ROOT", tmp_path / "no-jetson")
    monkeypatch.setattr(discover.sys, "platform", "linux")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Once pytest has reported (and its own faulthandler is off): free what the tests left alive
    while every module is still whole, and keep faulthandler on through the interpreter's shutdown.

    A CI run ended with a segmentation fault (exit 139) after every test had passed and been
    reported: a native object (a llama.cpp model, a Ray client's threads) freed during interpreter
    finalization, when the Python objects its destructor uses may be gone already. Freeing them here
    makes that unlikely; if it happens still, the traceback of every thread is printed, naming it."""
    import faulthandler
    import gc
    import sys

    faulthandler.enable(file=sys.__stderr__, all_threads=True)
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    gc.collect()
