"""Apple Silicon energy: ``powermetrics`` streams, or zeus-apple-silicon (IOReport) when installed.

``powermetrics`` is Apple's own sampler (root only). Each record covers ``elapsed_ns`` and reports,
in its ``processor`` dict, energy over that interval (``cpu_energy``, ``gpu_energy``,
``ane_energy``; mJ) and average power (``cpu_power``, ``gpu_power``, ``ane_power``,
``combined_power``; mW); with only the ``gpu_power`` sampler, the ``gpu`` dict carries
``gpu_energy`` alone. We read energy where a record has it and power x interval otherwise. The unit
of the ``*_energy`` keys is not documented by Apple; mJ is what makes them agree with the ``*_power``
keys of the same record (energy / elapsed = power), and is what we assume.

Domains: ``soc`` (combined CPU + GPU + ANE) and, inside it, ``cpu``, ``gpu:0`` and ``ane``. Where a
record has no combined figure but has all three parts, ``soc`` is their sum; where it has only the
GPU (``--samplers gpu_power``), ``gpu:0`` stands alone.

Why our own parser: no library parses the plist stream with its NUL separators and truncated last
record; :mod:`plistlib` decodes each record. The text format (``CPU Power: 947 mW``), which other
tools log, is parsed too, for analysing recorded logs.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from ipw.errors import MeterUnavailable
from ipw.profilers.base import Domain, DomainInfo, Meter, now

SOURCE_POWERMETRICS = "powermetrics"
SOURCE_ZEUS = "zeus_apple_silicon.ioreport"
SOC, CPU, GPU, ANE = Domain.SOC.value, Domain.CPU.value, Domain.GPU.at(0), Domain.ANE.value
PARENTS = {CPU: SOC, GPU: SOC, ANE: SOC}
DEFAULT_SAMPLERS = "cpu_power,gpu_power,ane_power"


@dataclass(frozen=True)
class PowerSample:
    """One powermetrics record: energy [J] per domain over ``elapsed_s`` seconds.

    ``keys`` says which field each figure came from (for provenance); ``power_w`` is derived.
    """

    elapsed_s: float
    energy_j: dict[str, float]
    keys: dict[str, str] = field(default_factory=dict)
    timestamp: datetime | None = None
    hw_model: str | None = None

    @property
    def power_w(self) -> dict[str, float]:
        return {d: e / self.elapsed_s for d, e in self.energy_j.items()}


def _figure(section: dict, name: str, elapsed_s: float) -> tuple[float, str] | None:
    """Energy [J] of ``name`` (cpu, gpu, ane, combined) in a plist section, with the key used."""
    if f"{name}_energy" in section:
        return section[f"{name}_energy"] * 1e-3, f"{name}_energy"
    if f"{name}_power" in section:
        return section[f"{name}_power"] * 1e-3 * elapsed_s, f"{name}_power"
    return None


def sample_from_plist(record: dict) -> PowerSample:
    """Decode one plist record (a dict from :func:`plistlib.loads`)."""
    elapsed_s = record["elapsed_ns"] * 1e-9
    if elapsed_s <= 0:
        raise ValueError("record with elapsed_ns <= 0")
    energy, keys = {}, {}
    processor = record.get("processor", {})
    for domain, name in ((CPU, "cpu"), (GPU, "gpu"), (ANE, "ane"), (SOC, "combined")):
        found = _figure(processor, name, elapsed_s)
        if found is None and domain == GPU:
            found = _figure(record.get("gpu", {}), "gpu", elapsed_s)
            found = found and (found[0], f"gpu.{found[1]}")
        elif found is not None:
            found = (found[0], f"processor.{found[1]}")
        if found is not None:
            energy[domain], keys[domain] = found
    if SOC not in energy and all(d in energy for d in (CPU, GPU, ANE)):
        energy[SOC], keys[SOC] = energy[CPU] + energy[GPU] + energy[ANE], "sum(cpu, gpu, ane)"
    return PowerSample(elapsed_s, energy, keys, record.get("timestamp"), record.get("hw_model"))


def iter_plist_stream(stream: IO[bytes], chunk: int = 65536) -> Iterator[PowerSample]:
    """Samples from a ``powermetrics --format plist`` byte stream, as records complete.

    Records are separated by NUL bytes. A record cut off at the end of the stream (powermetrics
    killed mid-write) is dropped, never half-parsed; one that is complete but not a valid plist
    raises :class:`ValueError` naming its position.
    """
    buffer, index = b"", 0
    while True:
        data = stream.read1(chunk) if hasattr(stream, "read1") else stream.read(chunk)
        if not data:
            break
        buffer += data
        *records, buffer = buffer.split(b"\0")
        for raw in records:
            if raw.strip():
                yield _decode(raw, index)
                index += 1
    if buffer.strip().endswith(b"</plist>"):
        yield _decode(buffer, index)


def _decode(raw: bytes, index: int) -> PowerSample:
    try:
        return sample_from_plist(plistlib.loads(raw.strip()))
    except (plistlib.InvalidFileException, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"powermetrics record {index}: {e}") from e


_ELAPSED = re.compile(r"\*\*\* Sampled system activity .*\(([\d.]+)ms elapsed\) \*\*\*")
_TEXT_POWER = {
    CPU: re.compile(r"^CPU Power: ([\d.]+) mW", re.M),
    GPU: re.compile(r"^GPU Power: ([\d.]+) mW", re.M),
    ANE: re.compile(r"^ANE Power: ([\d.]+) mW", re.M),
    SOC: re.compile(r"^Combined Power \(CPU \+ GPU \+ ANE\): ([\d.]+) mW", re.M),
}


def parse_text(text: str) -> list[PowerSample]:
    """Samples from ``powermetrics`` text output (one per ``*** Sampled system activity`` header).

    Only the first ``<X> Power:`` line of each kind in a record counts: the GPU sampler repeats
    ``GPU Power`` in its own section with the same figure.
    """
    headers = list(_ELAPSED.finditer(text))
    samples = []
    for i, head in enumerate(headers):
        body = text[head.end() : headers[i + 1].start() if i + 1 < len(headers) else len(text)]
        elapsed_s = float(head.group(1)) * 1e-3
        energy, keys = {}, {}
        for domain, pattern in _TEXT_POWER.items():
            match = pattern.search(body)
            if match:
                energy[domain] = float(match.group(1)) * 1e-3 * elapsed_s
                keys[domain] = match.group(0).split(":")[0]
        samples.append(PowerSample(elapsed_s, energy, keys))
    return samples


class PowermetricsMeter(Meter):
    """Cumulative energy [J] from a running ``powermetrics`` process (needs root).

    The energy of a record is known once the record ends, so this meter behaves like a counter that
    updates every ``interval_ms``: windows shorter than that are flagged, and each window edge can be
    off by up to one interval. ``command`` replaces the powermetrics invocation (tests replay a
    recording through ``cat``).
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
        try:
            self.add_samples(iter_plist_stream(self._proc.stdout))
        except Exception as e:  # noqa: BLE001 - kept and reported by read()
            self.error = e

    def add_samples(self, samples: Iterable[PowerSample]) -> None:
        for sample in samples:
            with self._lock:
                for domain, joules in sample.energy_j.items():
                    self._totals[domain] += joules
                self.records += 1

    def _read_energy_j(self) -> dict[str, float]:
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
