"""Which NVML energy counters cover a whole module (GPU + CPU + memory), not the GPU alone.

On a Grace Hopper superchip (GH200) the GPU's NVML total-energy counter
(``nvmlDeviceGetTotalEnergyConsumption``) measures the module: the Grace CPU and its LPDDR5X as
well as the Hopper GPU and its HBM. Source: zeus, pull request #172 "Grace Hopper support"
(ml-energy/zeus, merged 2025-06-21): "On GH200 (Grace Hopper), the cumulative energy counter is for
the entire chip/module, which includes not only the GPU, but also CPU, memory, and likely other
parts"; zeus's ``NVIDIAGPU._resolve_power_field_scope`` falls back to ``NVML_POWER_SCOPE_MODULE``
for power fields there, because GPU-scope power queries are not supported on these C2C superchips.
Adding a host estimate (or RAPL) to that counter counts the CPU twice, and calling it
"accelerator" puts IPW on a basis that is not the GPU's.

:data:`MODULE_COUNTERS` is the table: a GPU is a module counter when its NVML name contains the
rule's ``name`` and its architecture (``nvmlDeviceGetArchitecture``; values of nvml.h's
``nvmlDeviceArchitecture_t``) is the rule's, or is unknown. What is not in it, and why:

- Grace Blackwell (GB200, GB300): NVML reports the GPU's power and the module's power as separate
  scopes there ("GPU Power Readings" and "Module Power Readings" in ``nvidia-smi -q``;
  NVIDIA/k8s-test-infra issue #676 models them with separate limits, 1400 W GPU against 2900 W
  module), and one Grace serves two GPUs, so a module-wide counter per GPU would count the Grace
  twice. No source we found says the GB200 energy counter covers the module, so it is taken as the
  GPU's. A machine that shows otherwise sets the override.

The override, strongest first: ``DiscoverConfig(nvml_module=True/False)`` (or ``NvmlMeter(module=)``),
then the environment variable ``IPW_NVML_MODULE=1`` (every selected GPU's counter covers its module)
or ``=0`` (the GPU only), then the table. The decision and what made it are in ``ipw devices``.

Our own table rather than zeus's C2C probe (``nvmlDeviceGetC2cModeInfoV``, which zeus used first):
the probe needs a recent driver and pynvml, says "C2C link" rather than "module counter", and zeus
itself replaced it by probing power scopes; a name and architecture table is explicit, testable at
the pynvml boundary and overridable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ipw.core.errors import IpwError

ENV = "IPW_NVML_MODULE"
HOPPER, BLACKWELL = 9, 10  # nvml.h: NVML_DEVICE_ARCH_HOPPER, NVML_DEVICE_ARCH_BLACKWELL
COVERS = "GPU + CPU + memory"


@dataclass(frozen=True)
class ModuleRule:
    """GPUs whose NVML name contains ``name`` and whose architecture is ``architecture``."""

    name: str
    architecture: int
    why: str
    source: str


MODULE_COUNTERS = (
    ModuleRule(
        "GH200", HOPPER,
        "Grace Hopper superchip: the counter covers the Grace CPU and its memory as well as the GPU",
        "zeus PR #172 (ml-energy/zeus, 2025-06-21)",
    ),
)  # fmt: skip


class ModuleOverrideError(IpwError, ValueError):
    """``IPW_NVML_MODULE`` holds something other than 1 or 0."""


@dataclass(frozen=True)
class ModuleDecision:
    """Whether a GPU's counter covers its module, what decided it, and why."""

    module: bool
    decided_by: str  # "table", "IPW_NVML_MODULE" or "nvml_module option"
    why: str

    def to_dict(self) -> dict:
        return {"module": self.module, "covers": COVERS if self.module else "GPU", "decided_by": self.decided_by,
                "why": self.why}  # fmt: skip


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def env_override(environ: dict | None = None) -> bool | None:
    """``IPW_NVML_MODULE`` as a bool, None when unset or empty; any other value is an error."""
    raw = (os.environ if environ is None else environ).get(ENV, "").strip().lower()
    if not raw:
        return None
    if raw in _TRUE + _FALSE:
        return raw in _TRUE
    raise ModuleOverrideError(
        f"{ENV}={raw!r}: use 1 (the NVML counter covers the module: GPU, CPU and memory) or 0 (the GPU "
        f"alone), or unset it to follow the table in ipw/devices/nvidia/module.py."
    )


def decide(name: str, architecture: int | None, override: bool | None = None, environ: dict | None = None) -> ModuleDecision:
    """Whether the NVML counter of a GPU named ``name`` covers its module (module docstring)."""
    if override is not None:
        return ModuleDecision(override, "nvml_module option", "set by the caller")
    env = env_override(environ)
    if env is not None:
        return ModuleDecision(env, ENV, f"set by {ENV}={int(env)}")
    for rule in MODULE_COUNTERS:
        if rule.name.lower() in name.lower() and architecture in (rule.architecture, None):
            return ModuleDecision(True, "table", f"{rule.why} ({rule.source})")
    return ModuleDecision(False, "table", "not a module counter in ipw's table")
