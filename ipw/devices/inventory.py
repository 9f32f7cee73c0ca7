"""What a run records about the machine it ran on (manifest ``hardware``)."""

from __future__ import annotations

import platform
from pathlib import Path


def hardware_inventory(meters) -> dict:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = [m.describe().get("device") for m in meters if m.family in ("nvidia", "amd", "jetson")]
    mem_gib = psutil.virtual_memory().total / 2**30
    cores = psutil.cpu_count(logical=True)
    summary = f"{cpu} x{cores}, {mem_gib:.0f} GiB" + (f", {', '.join(map(str, gpus))}" if gpus else "")
    return {"platform": platform.platform(), "cpu": cpu, "logical_cores": cores, "memory_gib": round(mem_gib, 1),
            "gpus": gpus, "summary": summary}  # fmt: skip
