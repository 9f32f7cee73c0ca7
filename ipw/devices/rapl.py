"""CPU and DRAM energy from Linux RAPL through the powercap sysfs tree.

Why our own reader rather than zeus's RAPL class: the design requires (1) an injectable sysfs root
so that tests build a real tree on disk, (2) file descriptors held open and read with one
``pread`` each (no open/close per read, which costs more and perturbs short windows), and (3) every
zone of every socket read together under one timestamp. The wraparound and permission handling
follow zeus's: unwrap at ``max_energy_range_uj``, and name the file and the fix when ``energy_uj``
is root-only (the default since Linux 5.10, after CVE-2020-8694).

Zones mapped: ``package-N`` -> ``cpu-package:N``; its sub-zones ``core`` -> ``cpu-core:N`` and
``uncore`` -> ``uncore:N`` (both inside the package figure, so never summed twice), and ``dram``
-> ``dram:N`` (reported beside the package, not inside it, so it is summed). ``psys`` (the whole
platform, which overlaps everything else) is left out.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ipw.core.errors import MeterPermissionError, MeterReadError, MeterUnavailable
from ipw.devices.base import CounterTrack, Domain, DomainInfo, Meter

DEFAULT_ROOT = Path("/sys/class/powercap")
SOURCE = "rapl.energy_uj"
# RAPL's hardware counters update about every 976 us (Intel SDM vol. 3B, 15.10); the sysfs value is
# in uJ, the hardware unit is coarser (typically 15.3 or 61 uJ).
UPDATE_PERIOD_S = 0.001
RESOLUTION_J = 61e-6
PERMISSION_FIX = (
    "energy_uj is readable by root only since Linux 5.10. Run as root, or grant read access with: "
    "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj "
    "/sys/class/powercap/intel-rapl:*:*/energy_uj (this resets at reboot)."
)


@dataclass(frozen=True)
class Zone:
    """One powercap zone: its sysfs folder, the domain it maps to, and that domain's parent."""

    path: Path
    domain: str
    parent: str | None


def _zone_name(path: Path) -> str:
    return (path / "name").read_text().strip()


def find_zones(root: Path = DEFAULT_ROOT) -> list[Zone]:
    """The RAPL zones under ``root`` (``intel-rapl:N`` and ``intel-rapl:N:M``), mapped to domains."""
    zones: list[Zone] = []
    for pkg in sorted(root.glob("intel-rapl:*")):
        if not re.fullmatch(r"intel-rapl:\d+", pkg.name):
            continue
        name = _zone_name(pkg)
        match = re.fullmatch(r"package-(\d+)", name)
        if not match:
            continue  # psys and other platform zones overlap the packages
        socket = int(match.group(1))
        package = Domain.CPU_PACKAGE.at(socket)
        zones.append(Zone(pkg, package, None))
        for sub in sorted(pkg.glob(f"{pkg.name}:*")):
            kind = {"core": Domain.CPU_CORE, "uncore": Domain.UNCORE, "dram": Domain.DRAM}.get(
                _zone_name(sub)
            )
            if kind is not None:
                parent = None if kind is Domain.DRAM else package
                zones.append(Zone(sub, kind.at(socket), parent))
    return zones


class RaplMeter(Meter):
    """Cumulative energy [J] of every RAPL zone under ``root``, unwrapped per zone."""

    family = "rapl"

    def __init__(self, root: Path | str = DEFAULT_ROOT) -> None:
        root = Path(root)
        zones = find_zones(root) if root.is_dir() else []
        if not zones:
            raise MeterUnavailable(
                "rapl",
                f"no RAPL package zones under {root}.",
                "RAPL needs Linux on an Intel or AMD (Zen) CPU with the intel_rapl_common module "
                "loaded (sudo modprobe intel_rapl_common); virtual machines and containers often "
                "hide it.",
            )
        super().__init__(
            [
                DomainInfo(z.domain, SOURCE, True, UPDATE_PERIOD_S, RESOLUTION_J, z.parent)
                for z in zones
            ]
        )
        self._fds: dict[str, int] = {}
        self._tracks: dict[str, CounterTrack] = {}
        try:
            for z in zones:
                wrap_uj = float((z.path / "max_energy_range_uj").read_text())
                self._fds[z.domain] = self._open(z.path / "energy_uj")
                self._tracks[z.domain] = CounterTrack(wrap=wrap_uj)
        except BaseException:
            self.close()
            raise
        self._read_energy_j()  # prime the tracks: energy counts from construction

    @staticmethod
    def _open(path: Path) -> int:
        try:
            fd = os.open(path, os.O_RDONLY)
            os.pread(fd, 32, 0)  # some kernels refuse at read time, not open time
            return fd
        except PermissionError as e:
            raise MeterPermissionError(
                "rapl", f"cannot read {path}: permission denied.", PERMISSION_FIX
            ) from e

    def _read_energy_j(self) -> dict[str, float]:
        out = {}
        for domain, fd in self._fds.items():
            try:
                raw_uj = float(os.pread(fd, 32, 0))
            except (OSError, ValueError) as e:
                raise MeterReadError(f"rapl: reading {domain} failed: {e}") from e
            out[domain] = self._tracks[domain].update(raw_uj) * 1e-6
        return out

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
