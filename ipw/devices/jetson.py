"""NVIDIA Jetson power rails (INA3221 / INA238 monitors) read through sysfs and integrated into energy.

Jetson modules have no NVML energy counter; their power monitors give instant voltage, current or
power per rail, so the meter polls every rail together (:class:`~ipw.devices.base.ChannelIntegrator`,
20 Hz in a thread, plus one sample at each window edge) and integrates by the trapezoid rule, as
the NVML power fallback does. Each rail is a domain ``rail:<label>`` with a scope (:data:`RAILS`).

Layouts (root injectable; ``/sys`` by default):

- **hwmon, mainline ``ina3221`` driver** (JetPack 5 and later: Orin, Xavier on JP5):
  ``bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmon<N>/in<n>_label``, ``in<n>_input`` (bus voltage,
  mV), ``curr<n>_input`` (mA) for channels n = 1..3, ``update_interval`` (conversion time, ms); power
  = mV x mA x 1e-6 W. in4..in6 are shunt voltages and in7 "sum of shunt voltages" (no ``curr7``):
  not rails. Sources: Linux Documentation/hwmon/ina3221.rst; NVIDIA Jetson Linux Developer Guide
  r36.4.3, "Software-based power consumption modeling" (AGX Orin: INA3221 at 1-0040 and 1-0041);
  the rail labels of the AGX Orin module are those of the device tree (tegra234-p3701.dtsi,
  "arm64: tegra: Add power-sensors for Tegra234 boards", J. Hunter, linux-tegra, 2023-09-21), and
  L4T labels unconnected channels "NC" (jetson-stats skips them the same way).
- **iio, L4T ``ina3221x`` driver** (JetPack 4 and earlier: Xavier, Nano, TX2):
  ``bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:device<N>/rail_name_<n>``, ``in_power<n>_input`` (mW),
  else ``in_voltage<n>_input`` (mV) x ``in_current<n>_input`` (mA), n = 0..2. Sources: the same
  guide for L4T 32.x ("Power Management for Jetson Xavier NX and AGX Xavier"), as read by energymon
  (jetson/ina3221x.c) and jetson-stats (jtop/core/power.py).
- **hwmon, ``ina238`` driver** (Jetson Thor's input monitor): ``power1_input`` (uW;
  Documentation/hwmon/ina238.rst). The driver gives no label; NVIDIA's answer on the developer forum
  ("Question about power monitor with additional load on Jetson Thor", 2026) says it measures the
  module's VIN, so an unlabelled INA238 is the rail ``VIN``. Untested on a Thor.

Scopes (:data:`RAILS`; rails of the carrier board and unknown labels are listed as skipped, never
guessed): rails with the GPU (or the SoC core and the CV engines) are accelerator, CPU and memory
rails host, and the module's input rail (VDD_IN, POM_5V_IN, VIN) is system: a measured
whole-system figure, so where it exists the system energy is that rail alone and the other rails
are parts of it, never added on top (:meth:`ipw.profilers.measurement.Measurement._system`). Where no
input rail exists (AGX Orin, AGX Xavier) the system energy is the sum of the top-level rails:
converter losses and the carrier board are then not in it.

**VIN_SYS_5V0 is not the AGX Orin's input.** NVIDIA's r36.4.3 guide: "Power consumed by system 5V
rail which supplies to various IOs e.g. HDMI, USB, UPHY, UFS, SDMMC, EMMC, DDR etc.
VDDQ_VDD2_1V8AO power is also included in VIN_SYS_5V0 power." VDD_GPU_SOC and VDD_CPU_CV are fed
beside it (the device tree sets ``ti,summation-disable`` on it), so it is a host rail summed with
them, and VDDQ_VDD2_1V8AO is a sub-domain of it (never summed twice). Likewise AGX Xavier's SYS5V.

**Why not jetson-stats (jtop):** it reads these same files, but through its own root service
(``jtop.service``, a socket at ``/run/jtop.sock``) that must be installed and running, at 1 s by
default, and gives instant power with a running average, not energy; it would add a service, a
process boundary and a second clock for nothing the files do not give directly. Reading sysfs
ourselves keeps the descriptors open (one ``pread`` per file, microseconds), stamps every poll on
ipw's clock, and lets tests build the tree on disk.

Bound: a rail's update period is the poll period plus the chip's conversion time where the driver
states it (``update_interval``): a reading may be that stale, and the trapezoid bridges one poll
period. Windows bound their energy from it as for every edge-read domain (docs/profilers.md).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ipw.core.errors import MeterPermissionError, MeterReadError, MeterUnavailable
from ipw.devices.base import ACCELERATOR, HOST, SYSTEM, ChannelIntegrator, Domain, DomainInfo, Meter

DEFAULT_ROOT = Path("/sys")
DRIVERS = ("ina3221", "ina3221x", "ina238")
DEFAULT_POLL_HZ = 20.0
PERMISSION_FIX = "Run as root, or grant read access with: sudo chmod o+r {path} (this resets at reboot)."

RAILS: dict[str, tuple[str, str | None]] = {
    # label: (scope, the rail it is inside). Sources in the module docstring.
    # AGX Orin (p3701): 1-0040 VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0; 1-0041 NC, VDDQ_VDD2_1V8AO, NC
    "VDD_GPU_SOC": (ACCELERATOR, None),  # GPU and SoC core (memory subsystem, nvdec, nvenc, vi, vic, isp)
    "VDD_CPU_CV": (HOST, None),  # CPU and CV cores (DLA, PVA)
    "VIN_SYS_5V0": (HOST, None),  # system 5 V rail: IO and DDR; not the module input (docstring)
    "VDDQ_VDD2_1V8AO": (HOST, "VIN_SYS_5V0"),  # DDR core and IO, always-on 1V8: inside VIN_SYS_5V0
    # Orin NX / Orin Nano (p3767) and Xavier NX: VDD_IN, VDD_CPU_GPU_CV, VDD_SOC
    "VDD_IN": (SYSTEM, None),  # the module's input
    "VDD_CPU_GPU_CV": (ACCELERATOR, None),  # CPU, GPU and CV share one rail: it cannot be split
    "VDD_SOC": (ACCELERATOR, None),  # SoC core, which shares the GPU's rail on AGX Orin
    # AGX Xavier (L4T 32.x): 1-0040 GPU, CPU, SOC; 1-0041 CV, VDDRQ, SYS5V
    "GPU": (ACCELERATOR, None),
    "CPU": (HOST, None),
    "SOC": (ACCELERATOR, None),
    "CV": (ACCELERATOR, None),  # DLA and PVA
    "VDDRQ": (HOST, None),  # DDR
    "SYS5V": (HOST, None),  # system 5 V rail: IO (all but DDR, CPU, GPU and CV)
    # Nano (L4T 32.x): 6-0040 POM_5V_IN, POM_5V_GPU, POM_5V_CPU
    "POM_5V_IN": (SYSTEM, None),
    "POM_5V_GPU": (ACCELERATOR, None),
    "POM_5V_CPU": (HOST, None),
    # TX1, TX2, TX2 NX modules (their carrier-board rails are skipped)
    "VDD_GPU": (ACCELERATOR, None),
    "VDD_CPU": (HOST, None),
    "VDD_CPU_GPU": (ACCELERATOR, None),
    "VDD_SYS_GPU": (ACCELERATOR, None),
    "VDD_SYS_SOC": (ACCELERATOR, None),
    "VDD_SYS_CPU": (HOST, None),
    "VDD_SYS_DDR": (HOST, None),
    "VDD_4V0_WIFI": (HOST, None),
    # Thor: the INA238 on the module's input
    "VIN": (SYSTEM, None),
}
NOT_RAILS = ("NC", "sum of shunt voltages")


@dataclass(frozen=True)
class Rail:
    """One monitor channel: its label, where it is, the files whose product is its power, and the
    factor that makes that product watts (mW: 1e-3; mV x mA: 1e-6; uW: 1e-6)."""

    label: str
    driver: str
    device: str  # the I2C "<bus>-<addr>" folder, e.g. 1-0040
    files: tuple[Path, ...]
    to_w: float
    update_interval_s: float | None = None

    @property
    def domain(self) -> str:
        return f"{Domain.RAIL.value}:{self.label}"


def _text(path: Path) -> str:
    try:
        return path.read_text().strip().strip("\0")
    except PermissionError as e:
        raise MeterPermissionError("jetson", f"cannot read {path}: permission denied.", PERMISSION_FIX.format(path=path)) from e


def _interval_s(folder: Path) -> float | None:
    f = folder / "update_interval"
    try:
        return float(_text(f)) * 1e-3 if f.is_file() else None
    except ValueError:
        return None


def _channels(driver: str, folder: Path) -> list[tuple[str, tuple[Path, ...], float]]:
    """(label, files, factor to W) of every channel in one hwmon or iio folder."""
    out = []
    if driver == "ina3221x":
        for name in sorted(folder.glob("rail_name_*")):
            n = name.name.removeprefix("rail_name_")
            power = folder / f"in_power{n}_input"
            files = (power,) if power.is_file() else (folder / f"in_voltage{n}_input", folder / f"in_current{n}_input")
            out.append((_text(name), files, 1e-3 if power.is_file() else 1e-6))
    elif driver == "ina3221":
        for label in sorted(folder.glob("in*_label")):
            n = re.fullmatch(r"in(\d+)_label", label.name)
            if n and (folder / f"curr{n[1]}_input").is_file():
                out.append((_text(label), (folder / f"in{n[1]}_input", folder / f"curr{n[1]}_input"), 1e-6))
    elif (folder / "power1_input").is_file():  # ina238
        label = folder / "power1_label"
        out.append((_text(label) if label.is_file() else "VIN", (folder / "power1_input",), 1e-6))
    return out


def find_rails(root: Path = DEFAULT_ROOT) -> tuple[list[Rail], list[str]]:
    """The rails under ``root`` (module docstring), and what was skipped and why."""
    rails: list[Rail] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for driver in DRIVERS:
        for device in sorted((root / "bus/i2c/drivers" / driver).glob("*-*")):
            pattern = "iio:device*" if driver == "ina3221x" else "hwmon/hwmon*"
            for folder in sorted(device.glob(pattern)):
                interval = _interval_s(folder)
                for label, files, to_w in _channels(driver, folder):
                    where = f"{label} ({driver} {device.name})"
                    if label in NOT_RAILS or not label:
                        continue
                    if label not in RAILS:
                        skipped.append(f"{where}: not in ipw's rail table, so its place in the power tree is unknown")
                    elif label in seen:
                        skipped.append(f"{where}: a second rail of that name")
                    else:
                        seen.add(label)
                        rails.append(Rail(label, driver, device.name, files, to_w, interval))
    return rails, skipped


def board_model(root: Path = DEFAULT_ROOT) -> str | None:
    """The device tree's model string ("NVIDIA Jetson AGX Orin Developer Kit"), where there is one."""
    path = root / "firmware/devicetree/base/model"
    try:
        return path.read_bytes().strip(b"\0\n ").decode(errors="replace") or None
    except OSError:
        return None


class JetsonMeter(Meter):
    """Energy [J] of every known Jetson power rail under ``root``, polled at ``poll_hz`` and integrated.

    ``poll``: "thread" (default; a daemon thread polls) or "manual" (nothing polls but the reads:
    a sampler ticking at ``poll_hz`` on a simulated clock, in tests).
    """

    family = "jetson"

    def __init__(self, root: Path | str = DEFAULT_ROOT, poll_hz: float = DEFAULT_POLL_HZ, poll: str = "thread") -> None:
        if poll not in ("thread", "manual"):
            raise ValueError(f"poll must be 'thread' or 'manual', not {poll!r}")
        self.root = Path(root)
        self.rails, self.skipped = find_rails(self.root)
        if not self.rails:
            raise MeterUnavailable(
                "jetson",
                f"no Jetson power rails (INA3221 or INA238 with a known label) under {self.root / 'bus/i2c/drivers'}"
                + (f"; skipped: {'; '.join(self.skipped)}." if self.skipped else "."),
                "Only NVIDIA Jetson modules have them, with the ina3221 (JetPack 5+), ina3221x (JetPack 4) or "
                "ina238 driver loaded." if not self.skipped else "",
            )
        self.model = board_model(self.root)
        self.poll_hz = poll_hz
        self._fds: dict[Path, int] = {}
        self._integrator: ChannelIntegrator | None = None
        found = {r.label for r in self.rails}
        infos = []
        for r in self.rails:
            scope, inside = RAILS[r.label]
            parent = f"{Domain.RAIL.value}:{inside}" if inside in found else None
            period = 1.0 / poll_hz + (r.update_interval_s or 0.0)
            infos.append(DomainInfo(r.domain, f"jetson.{r.driver}.power_integrated", True, period, 0.0, parent, scope))
        super().__init__(infos)
        try:
            for r in self.rails:
                for f in r.files:
                    self._fds[f] = self._open(f)
            self._integrator = ChannelIntegrator(self._powers_w, hz=poll_hz, thread=poll == "thread")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _open(path: Path) -> int:
        try:
            fd = os.open(path, os.O_RDONLY)
        except PermissionError as e:
            raise MeterPermissionError("jetson", f"cannot read {path}: permission denied.", PERMISSION_FIX.format(path=path)) from e
        except OSError as e:
            raise MeterUnavailable("jetson", f"cannot open {path}: {e.strerror or e}.", "Check that the power monitor's driver is loaded (dmesg | grep -i ina).") from e
        return fd

    def _value(self, path: Path) -> float:
        try:
            return float(os.pread(self._fds[path], 32, 0))
        except PermissionError as e:
            raise MeterPermissionError("jetson", f"cannot read {path}: permission denied.", PERMISSION_FIX.format(path=path)) from e
        except (OSError, ValueError) as e:
            raise MeterReadError(
                f"jetson: reading {path} failed ({e}); check the power monitor with `cat {path}` and `dmesg | grep -i ina`."
            ) from e

    def _powers_w(self) -> dict[str, float]:
        out = {}
        for r in self.rails:
            product = 1.0
            for f in r.files:
                product *= self._value(f)
            out[r.domain] = product * r.to_w
        return out

    def _read_energy_j(self) -> dict[str, float]:
        if self._integrator is None:
            raise MeterReadError("jetson: the meter is closed")
        return self._integrator.energies_j()

    def _power_w(self, domain: str) -> float | None:
        last = self._integrator.last_powers_w if self._integrator else None
        return None if last is None else last.get(domain)

    def describe(self) -> dict:
        return super().describe() | {
            "device": self.model or "NVIDIA Jetson",
            "poll_hz": self.poll_hz,
            "rails": [
                {"domain": r.domain, "label": r.label, "scope": RAILS[r.label][0], "inside": RAILS[r.label][1],
                 "driver": r.driver, "device": r.device, "files": [str(f) for f in r.files],
                 "update_interval_s": r.update_interval_s}
                for r in self.rails
            ],
            "skipped": list(self.skipped),
        }  # fmt: skip

    def close(self) -> None:
        if self._integrator is not None:
            self._integrator.close()
            self._integrator = None
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
