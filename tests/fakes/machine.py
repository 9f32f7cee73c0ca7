"""A whole fake machine at the vendor boundaries: one H200-like GPU behind pynvml and a two-socket
RAPL tree on disk whose counters move in real time, both visible to ``ipw.devices.discover``.

``IPW_TEST_MACHINE=fake-gpu-rapl python -m pytest`` runs the suite as if on the machines ipw is for
(tests/conftest.py installs this for the whole session); tests/test_any_machine.py does so for the
suites that discover meters. The figures differ on purpose: the GPU follows a 200 W +- 80 W trace,
each package draws 30 W and 45 W and DRAM 6 W, so a figure on the wrong scope shows.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.fakes.nvml import FakeNvml, Trace, h200
from tests.fakes.powercap import PowercapTree, two_socket_tree

PACKAGE_W = {"intel-rapl:0": 30.0, "intel-rapl:1": 45.0, "intel-rapl:0:2": 6.0, "intel-rapl:0:0": 20.0,
             "intel-rapl:0:1": 4.0, "intel-rapl:1:0": 33.0, "intel-rapl:2": 120.0}  # fmt: skip
"""Power [W] of each fake zone (psys: the platform, drawn well above the packages)."""
RAPL_PERIOD_S = 0.001  # the real counters update about every millisecond


class FakeMachine:
    """Start with :meth:`start`, undo with :meth:`stop`; ``patch`` is a ``pytest.MonkeyPatch``.
    ``zones`` (folder -> name, as :class:`~tests.fakes.powercap.PowercapTree` takes them) and
    ``watts`` (folder -> W) make another RAPL tree; ``gpu=False`` a machine without NVML."""

    def __init__(self, root: Path, zones: dict[str, str] | None = None, watts: dict[str, float] | None = None,
                 gpu: bool = True) -> None:  # fmt: skip
        self.tree = PowercapTree(root / "powercap", zones) if zones else two_socket_tree(root / "powercap")
        self.watts = dict(watts or PACKAGE_W)
        self.nvml = FakeNvml([h200(Trace())], time.monotonic, cost="none") if gpu else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="fake-rapl", daemon=True)

    def _tick(self) -> None:
        """Counters rise in place: one pwrite at offset 0 per update (a value never gets shorter, and a
        reader never sees the empty file a truncate would leave). 120 W wraps after about 36 minutes."""
        import os

        fds = {z: os.open(self.tree.energy_file(z), os.O_WRONLY) for z in self.watts}
        t0 = time.monotonic()
        try:
            while not self._stop.wait(RAPL_PERIOD_S):
                dt = time.monotonic() - t0
                for zone, watts in self.watts.items():
                    os.pwrite(fds[zone], f"{int(watts * dt * 1e6)}\n".encode(), 0)
        finally:
            for fd in fds.values():
                os.close(fd)

    def start(self, patch) -> None:
        from ipw.devices import rapl
        from ipw.devices.nvidia import nvml as nvml_access

        patch.setattr(nvml_access, "import_pynvml", lambda: self.nvml if self.nvml is not None else _no_nvml())
        patch.setattr(rapl, "DEFAULT_ROOT", self.tree.root)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


def _no_nvml():
    from ipw.core.errors import MeterUnavailable

    raise MeterUnavailable("nvidia", "nvmlInit: NVML Shared Library Not Found (a fake machine without a GPU).")
