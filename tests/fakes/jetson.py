"""A fake Jetson sysfs tree on disk, laid out as the kernel lays out its power monitors.

Layouts and where they are published (the files, their units and the rail labels):

- :data:`AGX_ORIN` (JetPack 6, hwmon ``ina3221`` driver): NVIDIA Jetson Linux Developer Guide
  r36.4.3, "Software-based power consumption modeling": ``/sys/bus/i2c/drivers/ina3221/1-0040/
  hwmon/hwmon<x>/`` and ``.../1-0041/hwmon/hwmon<y>/`` with ``in<n>_label``, ``in<n>_input`` (mV),
  ``curr<n>_input`` (mA), ``curr<n>_crit``, ``curr<n>_max``; labels VDD_GPU_SOC, VDD_CPU_CV,
  VIN_SYS_5V0 (1-0040) and NC, VDDQ_VDD2_1V8AO, NC (1-0041) as in the module's device tree
  (tegra234-p3701.dtsi). The remaining files (shunt voltages in4..in6 in uV, ``in7_label`` "sum of
  shunt voltages", ``curr4_input``, ``update_interval`` in ms, ``samples``, ``shunt<n>_resistor``)
  are those of Linux Documentation/hwmon/ina3221.rst. The I2C devices are links into
  ``devices/platform/c240000.i2c/i2c-<bus>/``, the AGX Orin's controller (the i2c@c240000 node of
  its device tree; the fake uses that name for every layout, and the meter never looks at it).
- :data:`ORIN_NX` (JetPack 6, hwmon): one INA3221 at 1-0040 with VDD_IN, VDD_CPU_GPU_CV, VDD_SOC
  (tegra234-p3767.dtsi; the same guide, Orin NX and Orin Nano).
- :data:`AGX_XAVIER` (JetPack 4, L4T iio ``ina3221x`` driver): ``/sys/bus/i2c/drivers/ina3221x/
  1-0040/iio:device0/`` and ``1-0041/iio:device1/`` with ``rail_name_<n>``, ``in_power<n>_input``
  (mW), ``in_voltage<n>_input`` (mV), ``in_current<n>_input`` (mA), ``crit_current_limit_<n>``,
  ``warn_current_limit_<n>``, ``polling_delay_<n>``, n = 0..2 (L4T 32.x guide, "Power Management for
  Jetson Xavier NX and AGX Xavier"; the files energymon's jetson/ina3221x.c and jetson-stats'
  jtop/core/power.py read). Rails GPU, CPU, SOC and CV, VDDRQ, SYS5V (energymon's
  jetson/JetsonPowerRails.md, from the L4T 32.6.1 device trees).
- :data:`NANO` (JetPack 4, iio): ``ina3221x/6-0040/iio:device0`` with POM_5V_IN, POM_5V_GPU,
  POM_5V_CPU (same sources).

Each rail follows a power trace of simulated time (``power_w(t)``, ``t`` from ``origin``); the
monitor converts every ``conversion_s`` (the fake's ``update_interval``), and :meth:`JetsonTree.update`
writes what the chip would show at a given time: the last conversion's value, in the layout's units
(integers, as the drivers print them), in place (same inode, as sysfs updates do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

CONVERSION_S = 0.005


@dataclass(frozen=True)
class Chip:
    driver: str  # "ina3221" (hwmon) or "ina3221x" (iio)
    device: str  # "<bus>-<addr>"
    folder: str  # "hwmon3" or "iio:device0"
    rails: tuple[tuple[str, float], ...]  # (label, bus voltage mV) per channel; "NC": unconnected


AGX_ORIN = ("NVIDIA Jetson AGX Orin Developer Kit", (
    Chip("ina3221", "1-0040", "hwmon3", (("VDD_GPU_SOC", 843.0), ("VDD_CPU_CV", 780.0), ("VIN_SYS_5V0", 4968.0))),
    Chip("ina3221", "1-0041", "hwmon4", (("NC", 0.0), ("VDDQ_VDD2_1V8AO", 1800.0), ("NC", 0.0))),
))  # fmt: skip
ORIN_NX = ("NVIDIA Orin NX Developer Kit", (
    Chip("ina3221", "1-0040", "hwmon1", (("VDD_IN", 5056.0), ("VDD_CPU_GPU_CV", 5040.0), ("VDD_SOC", 5048.0))),
))  # fmt: skip
AGX_XAVIER = ("Jetson-AGX", (
    Chip("ina3221x", "1-0040", "iio:device0", (("GPU", 1016.0), ("CPU", 1020.0), ("SOC", 1024.0))),
    Chip("ina3221x", "1-0041", "iio:device1", (("CV", 1012.0), ("VDDRQ", 1104.0), ("SYS5V", 4960.0))),
))  # fmt: skip
NANO = ("NVIDIA Jetson Nano Developer Kit", (
    Chip("ina3221x", "6-0040", "iio:device0", (("POM_5V_IN", 5072.0), ("POM_5V_GPU", 5064.0), ("POM_5V_CPU", 5064.0))),
))  # fmt: skip


def _write(path: Path, text: str, cache: dict) -> None:
    """Write ``text`` in place (same inode), unless the file holds it already."""
    if cache.get(path) != text:
        with open(path, "r+") as f:
            f.truncate(0)
            f.write(text)
        cache[path] = text


class JetsonTree:
    """``layout`` is one of the constants above; ``traces`` maps a rail label to an object with
    ``power_w(t)`` [W] (rails without a trace draw nothing)."""

    def __init__(self, root: Path, layout, traces: dict, origin: float = 0.0, conversion_s: float = CONVERSION_S) -> None:
        self.root, self.traces, self.origin, self.conversion_s = root, traces, origin, conversion_s
        model, self.chips = layout
        (root / "firmware/devicetree/base").mkdir(parents=True, exist_ok=True)
        (root / "firmware/devicetree/base/model").write_bytes(model.encode() + b"\0")
        self.paths: dict[str, tuple[Chip, int, Path]] = {}
        self._written: dict[Path, str] = {}
        for chip in self.chips:
            bus = chip.device.split("-")[0]
            real = root / f"devices/platform/c240000.i2c/i2c-{bus}/{chip.device}"
            folder = real / ("hwmon" if chip.driver == "ina3221" else "") / chip.folder
            folder.mkdir(parents=True)
            (real / "name").write_text(("ina3221" if chip.driver == "ina3221" else "ina3221x") + "\n")
            link = root / "bus/i2c/drivers" / chip.driver / chip.device
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path("../../../..") / real.relative_to(root), target_is_directory=True)
            seen = link / folder.relative_to(real)  # the path the meter opens (and its errors name)
            if chip.driver == "ina3221":
                self._hwmon(seen, chip)
            else:
                self._iio(seen, chip)
        self.update(origin)

    def _hwmon(self, folder: Path, chip: Chip) -> None:
        (folder / "name").write_text("ina3221\n")
        (folder / "update_interval").write_text(f"{round(self.conversion_s * 1e3)}\n")
        (folder / "samples").write_text("1\n")
        (folder / "in7_label").write_text("sum of shunt voltages\n")
        (folder / "in7_input").write_text("0\n")
        (folder / "curr4_input").write_text("0\n")
        for n, (label, _) in enumerate(chip.rails, start=1):
            (folder / f"in{n}_label").write_text(label + "\n")
            (folder / f"in{n}_enable").write_text(("0" if label == "NC" else "1") + "\n")
            (folder / f"shunt{n}_resistor").write_text("2000\n")
            (folder / f"curr{n}_crit").write_text("32760\n")
            (folder / f"curr{n}_max").write_text("32760\n")
            for f in (f"in{n}_input", f"curr{n}_input", f"in{n + 3}_input"):
                (folder / f).write_text("0\n")
            self.paths[label] = (chip, n, folder)

    def _iio(self, folder: Path, chip: Chip) -> None:
        (folder / "name").write_text("ina3221x\n")
        for n, (label, _) in enumerate(chip.rails):
            (folder / f"rail_name_{n}").write_text(label + "\n")
            (folder / f"crit_current_limit_{n}").write_text("5000\n")
            (folder / f"warn_current_limit_{n}").write_text("3000\n")
            (folder / f"polling_delay_{n}").write_text("0 ms\n")
            for f in (f"in_power{n}_input", f"in_voltage{n}_input", f"in_current{n}_input"):
                (folder / f).write_text("0\n")
            self.paths[label] = (chip, n, folder)

    def shown_w(self, label: str, t: float) -> float:
        """The power [W] the chip shows at time ``t``: its last conversion's, as the files round it."""
        trace = self.traces.get(label)
        if trace is None:
            return 0.0
        t_conv = self.origin + math.floor((t - self.origin) / self.conversion_s + 1e-9) * self.conversion_s
        return trace.power_w(t_conv - self.origin)

    def update(self, t: float) -> None:
        """Write every rail's files as the chip shows them at simulated time ``t``."""
        c = self._written
        for label, (chip, n, folder) in self.paths.items():
            mv = dict(chip.rails)[label]
            w = self.shown_w(label, t)
            ma = round(w * 1e6 / mv) if mv else 0
            if chip.driver == "ina3221":
                _write(folder / f"in{n}_input", f"{round(mv)}\n", c)
                _write(folder / f"curr{n}_input", f"{ma}\n", c)
                _write(folder / f"in{n + 3}_input", f"{ma * 2}\n", c)  # uV across a 2 mOhm shunt
            else:
                _write(folder / f"in_voltage{n}_input", f"{round(mv)}\n", c)
                _write(folder / f"in_current{n}_input", f"{ma}\n", c)
                _write(folder / f"in_power{n}_input", f"{round(w * 1e3)}\n", c)

    def file(self, label: str, kind: str = "curr") -> Path:
        """The file of ``label`` that the meter reads for ``kind`` ("curr" on hwmon, "power" on iio)."""
        chip, n, folder = self.paths[label]
        return folder / (f"{kind}{n}_input" if chip.driver == "ina3221" else f"in_{kind}{n}_input")
