"""Apple Silicon meters: a running ``powermetrics`` process (root), or zeus-apple-silicon's IOReport
counters (no root) when installed. The parsers and what they accept are in
:mod:`ipw.devices.apple.powermetrics`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable

from ipw.core.clock import now
from ipw.core.errors import MeterReadError, MeterUnavailable
from ipw.devices.apple.powermetrics import (ANE, CPU, DEFAULT_SAMPLERS, GPU, PARENTS, SOC, SOURCE_POWERMETRICS,
                                            SOURCE_ZEUS, PowerSample, iter_plist_stream)
from ipw.devices.base import Domain, DomainInfo, Meter


class PowermetricsMeter(Meter):
    """Cumulative energy [J] from a running ``powermetrics`` process (needs root).

    The energy of a record is known once the record ends, so this meter behaves like a counter that
    updates every ``interval_ms``: windows shorter than that are flagged, and each window edge can be
    off by up to one interval. ``command`` replaces the powermetrics invocation (tests replay a
    recording through ``cat``). A record that cannot be read stops the stream: every read after it
    raises :class:`MeterReadError` (the runner flags the query as a meter gap), never frozen totals.
    """

    family = "apple"

    def __init__(self, interval_ms: int = 100, command: list[str] | None = None) -> None:
        if command is None:
            command = self._command(interval_ms)
        super().__init__(
            [
                DomainInfo(d, SOURCE_POWERMETRICS, True, interval_ms * 1e-3, 1e-3, PARENTS.get(d))
                for d in (SOC, CPU, GPU, ANE)
            ]
        )
        self._totals = dict.fromkeys(self.infos, 0.0)
        self.records = 0
        self.error: Exception | None = None
        self._proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._thread = threading.Thread(target=self._pump, name="ipw-powermetrics", daemon=True)
        self._thread.start()

    @staticmethod
    def _command(interval_ms: int) -> list[str]:
        if sys.platform != "darwin" or shutil.which("powermetrics") is None:
            raise MeterUnavailable("apple", "powermetrics is not available (macOS only).")
        if os.geteuid() != 0:
            raise MeterUnavailable(
                "apple",
                "powermetrics needs root.",
                "Run ipw with sudo, or install zeus-apple-silicon (pip install 'ipw[apple]'), "
                "which reads IOReport energy counters without root.",
            )
        return ["powermetrics", "--format", "plist", "--samplers", DEFAULT_SAMPLERS, "-i", str(interval_ms)]

    def _pump(self) -> None:
        source = f"powermetrics (pid {self._proc.pid})"
        try:
            self.add_samples(iter_plist_stream(self._proc.stdout, source=source))
        except Exception as e:  # noqa: BLE001 - kept, and raised by every read from now on
            self.error = e

    def add_samples(self, samples: Iterable[PowerSample]) -> None:
        for sample in samples:
            with self._lock:
                for domain, joules in sample.energy_j.items():
                    self._totals[domain] += joules
                self.records += 1

    def _read_energy_j(self) -> dict[str, float]:
        if self.error is not None:
            raise MeterReadError(
                f"apple: the powermetrics stream stopped after {self.records} records: {self.error}"
            ) from self.error
        return dict(self._totals)

    def wait_for_records(self, n: int, timeout_s: float = 5.0) -> bool:
        """Block until ``n`` records have arrived or the stream ended (used by tests and probes)."""
        deadline = now() + timeout_s
        while self.records < n and self._thread.is_alive() and now() < deadline:
            time.sleep(0.01)
        return self.records >= n

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._thread.join(timeout=2)


class ZeusAppleMeter(Meter):
    """Cumulative energy [J] from IOReport counters through zeus-apple-silicon (no root needed).

    zeus-apple-silicon measures named windows; we keep one window open and, at each read, close it
    and open the next, adding what it measured. The gap between the two calls is microseconds.
    Fields the chip does not report come back as None and are left out.
    """

    family = "apple"
    FIELDS = {CPU: "cpu_total_mj", GPU: "gpu_mj", ANE: "ane_mj", Domain.DRAM.value: "dram_mj"}

    def __init__(self, monitor: object | None = None) -> None:
        if monitor is None:
            try:
                from zeus_apple_silicon import AppleEnergyMonitor
            except ImportError as e:
                raise MeterUnavailable(
                    "apple", "zeus-apple-silicon is not installed.", "pip install 'ipw[apple]'"
                ) from e
            monitor = AppleEnergyMonitor()
        self._monitor = monitor
        self._totals = dict.fromkeys(self.FIELDS, 0.0)
        self._key = "ipw-cumulative"
        self._monitor.begin_window(self._key)
        super().__init__([DomainInfo(d, SOURCE_ZEUS, True, 1e-3, 1e-3) for d in self.FIELDS])

    def _read_energy_j(self) -> dict[str, float]:
        metrics = self._monitor.end_window(self._key)
        self._monitor.begin_window(self._key)
        for domain, name in self.FIELDS.items():
            value = getattr(metrics, name, None)
            if value is not None:
                self._totals[domain] += value * 1e-3
        return dict(self._totals)
