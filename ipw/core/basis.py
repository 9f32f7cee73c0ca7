"""The one rule that picks the energy a figure divides by (its *basis*), names it and labels it.

IPW and IPJ divide by accelerator energy by default, as the IPW paper does (Saad-Falcon, Narayan et
al., arXiv 2511.07885, section 3: the accelerator is what the paper meters). The rule, used by the
runner's records, both executors, ``ipw profile``'s progress bar and summary, ``ipw compare``,
``ipw report`` (every table), ``ipw sweep`` and the metrics alike:

- ``accelerator`` (default): a record's accelerator energy [J] (the GPUs, the Apple SoC, or the CPU
  on a machine with neither); where a record has none, its system energy. A record has none in two
  cases: records written before scopes existed, and a module counter (Grace Hopper's NVML counter
  covers the GPU, the Grace CPU and its memory, flagged ``module-counter:<domain>``), whose energy
  is the system figure and whose basis is then named ``module``.
- ``system``: the record's system energy (all top-level domains, or a measured whole-system figure).
- ``above_idle``: energy above the idle baseline measured before the run, on the same scope as the
  default: the accelerator's energy above its own idle power (records written before accelerators
  had their own above-idle figure, and records with no accelerator figure, use the system's above
  idle; a record with an accelerator figure but no above-idle one has none: n/a).

Each basis carries its own measured/estimate label: a measured accelerator figure is ``measured``
even where a host estimate sits beside it in the system figure (the accelerator's own flag decides;
the system flag only where the accelerator figure fell back to the system one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ipw.core.errors import IpwError
from ipw.core.records import MODULE_COUNTER_FLAG, Col

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_BASIS = "accelerator"
ENERGY_BASES = ("accelerator", "system", "above_idle")
"""What IPW/IPJ may divide by: accelerator energy (default), system energy, or system energy above
the idle baseline. ``total`` is accepted as the old name of ``system``."""
MEASURED, ESTIMATE = "measured", "estimate"


def canonical(basis: str) -> str:
    """``basis`` checked (``total`` read as ``system``); an unknown one is an :class:`IpwError`."""
    basis = "system" if basis == "total" else basis
    if basis not in ENERGY_BASES:
        raise IpwError(f"unknown energy basis {basis!r}; choose one of {', '.join(ENERGY_BASES)}")
    return basis


def energy_column(basis: str) -> str:
    """The query-frame column holding the energy [J] of ``basis``."""
    return {"accelerator": Col.ACCELERATOR_ENERGY_J, "system": Col.ENERGY_J,
            "above_idle": Col.ACCELERATOR_ENERGY_ABOVE_IDLE_J}[canonical(basis)]  # fmt: skip


@dataclass(frozen=True)
class BasisEnergy:
    """One query's (or one interval's) energy on the default basis: the value [J], the scope it is
    on (``accelerator``, ``module`` or ``system``) and whether it was measured."""

    energy_j: float | None
    scope: str
    measured: bool | None

    @property
    def label(self) -> str:
        return MEASURED if self.measured else ESTIMATE


def of_scopes(accelerator_j: float | None, accelerator_measured: bool | None, system_j: float | None,
              system_measured: bool | None, module: bool = False) -> BasisEnergy:  # fmt: skip
    """The default basis of one measurement or record, from its scope figures."""
    if accelerator_j is not None:
        return BasisEnergy(accelerator_j, "accelerator", accelerator_measured)
    return BasisEnergy(system_j, "module" if module else "system", system_measured)


def of_record(record) -> BasisEnergy:
    """The default basis of a :class:`~ipw.core.records.QueryRecord`."""
    module = any(f.startswith(MODULE_COUNTER_FLAG) for f in record.flags)
    return of_scopes(record.accelerator_energy_j, record.accelerator_measured, record.energy_j, record.measured, module)


def of_domains(domains, scope_of) -> tuple[list, str]:
    """The top-level domains the default basis sums, and its scope: the accelerator's domains, else
    every top-level domain (``scope_of(domain)`` gives a domain's scope)."""
    top = [d for d in domains if getattr(d, "parent", None) is None]
    acc = [d for d in top if scope_of(d) == "accelerator"]
    return (acc, "accelerator") if acc else (top, "system")


def frame_energy_j(frame: pd.DataFrame, basis: str = DEFAULT_BASIS) -> pd.Series:
    """Per-query energy [J] on ``basis``; accelerator falls back to system energy where a record has
    none (see the module doc)."""
    col = energy_column(basis)
    if col == Col.ACCELERATOR_ENERGY_J:
        if col not in frame:
            return frame[Col.ENERGY_J].astype(float)
        return frame[col].astype(float).fillna(frame[Col.ENERGY_J].astype(float))
    if col == Col.ACCELERATOR_ENERGY_ABOVE_IDLE_J:
        system = frame[Col.ENERGY_ABOVE_IDLE_J].astype(float) if Col.ENERGY_ABOVE_IDLE_J in frame else None
        if col not in frame or Col.ACCELERATOR_ENERGY_J not in frame:
            return system if system is not None else pd_nan(frame)
        own = frame[col].astype(float)
        return own.where(frame[Col.ACCELERATOR_ENERGY_J].notna(), system)
    return frame[col].astype(float)


def frame_above_idle_j(frame: pd.DataFrame, basis: str = DEFAULT_BASIS) -> pd.Series:
    """Per-query energy above idle [J] on the scope of ``basis``: the system's for ``system``, the
    accelerator's (with the fallback of ``above_idle``) otherwise; NaN where there is none."""
    if canonical(basis) == "system":
        return frame[Col.ENERGY_ABOVE_IDLE_J].astype(float) if Col.ENERGY_ABOVE_IDLE_J in frame else pd_nan(frame)
    return frame_energy_j(frame, "above_idle")


def frame_measured(frame: pd.DataFrame, basis: str = DEFAULT_BASIS) -> bool:
    """True when every energy of ``frame`` on ``basis`` was measured (False for an empty frame)."""
    if frame.empty:
        return False
    if energy_column(basis) in (Col.ACCELERATOR_ENERGY_J, Col.ACCELERATOR_ENERGY_ABOVE_IDLE_J) and Col.ACCELERATOR_MEASURED in frame:
        own = frame[Col.ACCELERATOR_MEASURED]
        if own.dtype == bool:  # every record has its own flag (no None): nothing falls back
            return bool(own.all())
        system = frame[Col.MEASURED] if Col.MEASURED in frame else False
        flags = own.where(own.notna(), system)
        return bool(flags.fillna(False).astype(bool).all())
    if Col.MEASURED not in frame:
        return False
    system = frame[Col.MEASURED]
    return bool(system.all() if system.dtype == bool else system.fillna(False).astype(bool).all())


def pd_nan(frame: pd.DataFrame) -> pd.Series:
    """A column of missing numbers, one per row of ``frame``."""
    import pandas as pd

    return pd.Series(float("nan"), index=frame.index)


def frame_label(frame: pd.DataFrame, basis: str = DEFAULT_BASIS) -> str:
    """``measured`` or ``estimate``, for the energies of ``frame`` on ``basis``."""
    return MEASURED if frame_measured(frame, basis) else ESTIMATE


def frame_scope(frame: pd.DataFrame, basis: str = DEFAULT_BASIS, module=None) -> str:
    """The name of the scope the energies of ``frame`` on ``basis`` are on: ``basis``, except that
    accelerator energy on records of a module counter is the module's (``module``;
    ``accelerator+module`` where only some records are). ``module``: a boolean Series marking
    module-counter records, where the caller has it (else none are)."""
    basis = canonical(basis)
    if basis == "accelerator" and module is not None and bool(module.any()):
        return "module" if bool(module.all()) else "accelerator+module"
    return basis
