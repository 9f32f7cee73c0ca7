"""What a window measured: energy per domain and per scope (accelerator, host, module, system), each with its bound, source and measured flag, and the idle baseline.

Every domain has a scope (:func:`ipw.devices.base.scope_of`): accelerator, host, module (a counter
covering both, as NVML's on Grace Hopper; such a window is flagged ``module-counter:<domain>``), and
system. The system figure is the sum of the top-level domains, except where a domain is pinned to
the system scope (a measured whole-system figure, such as a Jetson's input rail): then it is the sum
of those alone, and the accelerator and host domains beside them are parts of it, never added on
top. :attr:`Measurement.scopes` gives each scope's energy, bound and whether it is measured; a
scope is measured when all its domains are, so a measured GPU figure stays measured beside a host
estimate. How windows are opened and bounded is in :mod:`ipw.profilers.windows`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ipw.devices.base import SCOPES, SYSTEM, scope_of


@dataclass(frozen=True)
class DomainEnergy:
    """One domain's share of a window. Energies in J, powers in W, times in s."""

    domain: str
    energy_j: float
    duration_s: float
    avg_power_w: float
    peak_power_w: float | None
    uncertainty_j: float
    source: str
    measured: bool
    update_period_s: float
    parent: str | None = None
    idle_power_w: float | None = None
    scope: str = "host"
    bound_basis: str | None = None  # what uncertainty_j rests on (module doc)

    @classmethod
    def of(cls, info, infos: dict, energy_j: float, duration_s: float, uncertainty_j: float,
           peak_power_w: float | None = None, idle_power_w: float | None = None,
           bound_basis: str | None = None) -> DomainEnergy:  # fmt: skip
        """A domain's share of a window from its meter's :class:`~ipw.devices.base.DomainInfo`
        (``infos``: every domain's, for its scope): the one place a DomainEnergy is built, by a
        window (ipw.profilers.windows) and by attribution (ipw.run.serving)."""
        avg = energy_j / duration_s if duration_s > 0 else 0.0
        return cls(info.domain, energy_j, duration_s, avg, peak_power_w, uncertainty_j, info.source, info.measured,
                   info.update_period_s, info.parent, idle_power_w, scope_of(info, infos), bound_basis)  # fmt: skip

    @property
    def energy_above_idle_j(self) -> float | None:
        """Energy above the idle baseline [J] (may be negative within noise); None without a baseline."""
        if self.idle_power_w is None:
            return None
        return self.energy_j - self.idle_power_w * self.duration_s


@dataclass(frozen=True)
class ScopeEnergy:
    """One scope's energy over a window [J]: the sum of its top-level domains, their bounds summed
    (each bound holds on its own, so the sum holds for the total), and ``measured`` when every one
    of them is measured. ``energy_above_idle_j`` is None unless every domain has a baseline."""

    scope: str
    energy_j: float
    uncertainty_j: float
    measured: bool
    domains: tuple[str, ...]
    sources: tuple[str, ...]
    energy_above_idle_j: float | None = None

    @property
    def kind(self) -> str:
        return "measured" if self.measured else "estimate"


def _scope(name: str, parts: list[DomainEnergy]) -> ScopeEnergy:
    above = [d.energy_above_idle_j for d in parts]
    return ScopeEnergy(
        name,
        sum(d.energy_j for d in parts),
        sum(d.uncertainty_j for d in parts),
        all(d.measured for d in parts),
        tuple(d.domain for d in parts),
        tuple(dict.fromkeys(d.source for d in parts)),
        None if any(a is None for a in above) else sum(above),
    )


@dataclass(frozen=True)
class Measurement:
    """The result of one window: per-domain energy, timing, flags, and energy by scope."""

    name: str | None
    start_s: float
    end_s: float
    domains: dict[str, DomainEnergy]
    samples: int = 0
    flags: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def _top(self) -> list[DomainEnergy]:
        return [d for d in self.domains.values() if d.parent is None]

    def _system(self) -> list[DomainEnergy]:
        """The domains the system figure sums: those pinned to the system scope (measured
        whole-system figures: the others are inside them) where there are any, else every top-level
        domain (sub-domains such as RAPL core are inside their parent)."""
        top = self._top()
        whole = [d for d in top if d.scope == SYSTEM]
        return whole or top

    @property
    def energy_j(self) -> float:
        """Total energy [J]: the system scope (:meth:`_system`)."""
        return sum(d.energy_j for d in self._system())

    @property
    def energy_above_idle_j(self) -> float | None:
        parts = [d.energy_above_idle_j for d in self._system()]
        return None if not parts or any(p is None for p in parts) else sum(parts)

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else float("nan")

    @property
    def measured(self) -> bool:
        """True when no domain is an estimate (the system scope's label)."""
        return all(d.measured for d in self.domains.values())

    @property
    def scopes(self) -> dict[str, ScopeEnergy]:
        """``{"accelerator": ..., "host": ..., "module": ..., "system": ...}``; a scope with no domain
        here is absent (on a GPU server without RAPL and with the estimate off, there is no host
        figure; on a Grace Hopper module counter, neither accelerator nor host, only module)."""
        top = self._top()
        out = {}
        for name in SCOPES:
            parts = self._system() if name == SYSTEM else [d for d in top if d.scope == name]
            if parts:
                out[name] = _scope(name, parts)
        return out

    def scope_energy_j(self, scope: str) -> float | None:
        """Energy [J] of ``scope`` ("accelerator", "host", "module", "system"); None when nothing here is in it."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; one of {', '.join(SCOPES)}")
        s = self.scopes.get(scope)
        return None if s is None else s.energy_j

    def scope_measured(self, scope: str) -> bool | None:
        """Whether ``scope``'s figure is measured (False: it includes an estimate; None: no such scope)."""
        s = self.scopes.get(scope)
        return None if s is None else s.measured

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "energy_above_idle_j": self.energy_above_idle_j,
            "avg_power_w": self.avg_power_w,
            "measured": self.measured,
            "samples": self.samples,
            "flags": list(self.flags),
            "scopes": {k: asdict(v) | {"kind": v.kind} for k, v in self.scopes.items()},
            "domains": {k: asdict(v) | {"energy_above_idle_j": v.energy_above_idle_j} for k, v in self.domains.items()},
        }

    def to_frame(self):
        """One row per domain, with a ``kind`` column that reads "measured" or "estimate"."""
        import pandas as pd

        rows = [
            asdict(d) | {"kind": "measured" if d.measured else "estimate", "energy_above_idle_j": d.energy_above_idle_j}
            for d in self.domains.values()
        ]
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class IdleBaseline:
    """Mean power per domain [W] over a quiet period of ``duration_s`` seconds."""

    power_w: dict[str, float]
    duration_s: float
    measurement: Measurement = field(repr=False)
