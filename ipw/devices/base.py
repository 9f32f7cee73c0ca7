"""What every meter speaks: domains, readings, and the Meter contract.

A meter turns one counter family into *cumulative energy per domain*, read on one monotonic clock
(:func:`ipw.core.clock.now`). Windows then take the difference of two reads, so every family looks the same to the
code above it:

- a hardware energy counter (NVML total energy, RAPL ``energy_uj``, amdsmi) is unwrapped by
  :class:`CounterTrack`;
- a family that gives only power (NVML on GPUs without a counter, Jetson rails) is integrated by
  :class:`PowerIntegrator` (one reading) or :class:`ChannelIntegrator` (several read together),
  which poll at a fixed rate in a thread of their own;
- the labelled estimate computes energy from CPU time, which is itself a counter.

A :class:`Reading` records where its number came from (``source``) and whether it was measured or
estimated, so that no table, file or report can show an estimate without saying so.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from ipw.core import clock




class Domain(str, Enum):
    """Kinds of energy domain. A domain id is ``"<kind>:<index>"`` (``gpu:0``) or the bare kind."""

    GPU = "gpu"
    CPU_PACKAGE = "cpu-package"
    CPU_CORE = "cpu-core"
    UNCORE = "uncore"
    DRAM = "dram"
    CPU = "cpu"  # Apple Silicon CPU clusters, or the estimate's whole CPU
    SOC = "soc"  # Apple Silicon combined CPU + GPU + ANE
    ANE = "ane"
    RAIL = "rail"  # a named power rail (Jetson INA3221/INA238 channels): "rail:VDD_GPU_SOC"

    def at(self, index: int | None = None) -> str:
        """The domain id for device ``index`` (or the bare kind when ``index`` is None)."""
        return self.value if index is None else f"{self.value}:{index}"


@dataclass(frozen=True)
class DomainInfo:
    """Static facts about one domain of a meter.

    ``parent`` names the domain whose energy already includes this one (RAPL core within package,
    Apple CPU within the combined SoC figure); totals sum only domains without a parent, so nothing
    is counted twice. ``update_period_s`` is how often the underlying counter changes and
    ``resolution_j`` its smallest step; both bound a window's uncertainty. ``scope`` pins the
    domain's energy scope; None lets :func:`scope_of` decide from the domain's kind.
    """

    domain: str
    source: str
    measured: bool
    update_period_s: float
    resolution_j: float = 0.0
    parent: str | None = None
    scope: str | None = None


ACCELERATOR, HOST, MODULE, SYSTEM = "accelerator", "host", "module", "system"
SCOPES = (ACCELERATOR, HOST, MODULE, SYSTEM)
"""Energy scopes (docs/profilers.md): accelerator = the GPUs, or the Apple SoC, or on a machine with
neither the CPU; host = CPU package and DRAM (RAPL, or the labelled estimate); module = a counter
that covers accelerator and host together (NVML on Grace Hopper: ``ipw.devices.nvidia.module``);
system = the sum of the top-level domains, or, where a domain is pinned to ``system`` (a measured
whole-system figure such as a Jetson's input rail), the sum of those alone: the others are parts
of it, not added to it (``ipw.profilers.measurement.Measurement.energy_j``)."""
_ACCELERATOR_KINDS = {Domain.GPU.value, Domain.SOC.value, Domain.ANE.value}
_CPU_KINDS = {Domain.CPU_PACKAGE.value, Domain.CPU_CORE.value, Domain.UNCORE.value, Domain.CPU.value}


def scope_of(info: DomainInfo, infos: dict[str, DomainInfo]) -> str:
    """The scope of one domain among all the domains measured together (``infos``).

    A scope pinned in the domain's info wins (an NVML module counter, a Jetson rail). A sub-domain takes its parent's scope (Apple's ``cpu`` inside ``soc`` is accelerator). The CPU
    (RAPL package and its parts, or the estimate's ``cpu``) is the accelerator when no GPU or SoC
    domain is measured, else host; DRAM is always host.
    """
    if info.scope is not None:
        return info.scope
    if info.parent is not None and info.parent in infos:
        return scope_of(infos[info.parent], infos)
    kind = info.domain.split(":")[0]
    if kind in _ACCELERATOR_KINDS:
        return ACCELERATOR
    if kind in _CPU_KINDS:
        has_accelerator = any(
            i.parent is None and i.domain.split(":")[0] in _ACCELERATOR_KINDS for i in infos.values()
        )
        return HOST if has_accelerator else ACCELERATOR
    return HOST


@dataclass(frozen=True)
class Reading:
    """One domain's cumulative energy [J] since its meter was opened, read at ``t_s`` (monotonic s).

    ``power_w`` is an instantaneous or averaged power the family reports beside its energy, when it
    does (None otherwise: windows never need it). The counter was read at some instant within
    ``t_s +- t_err_s``: ``t_s`` is the midpoint of the clock read just before and just after the
    counter read, and windows add ``t_err_s`` to their uncertainty.
    """

    domain: str
    t_s: float
    energy_j: float
    source: str
    measured: bool
    power_w: float | None = None
    t_err_s: float = 0.0


class Meter(ABC):
    """One counter family on one device (or one socket).

    Subclasses implement :meth:`_read_energy_j` returning ``{domain: cumulative J}``; the base class
    stamps the time, serialises reads (the sampler thread and window edges may read concurrently)
    and builds the :class:`Reading` objects.
    """

    family: str = "meter"
    monitor = None  # a background monitor whose timeline gives window energies (NVML); None: edge reads

    def __init__(self, infos: list[DomainInfo]) -> None:
        self.infos: dict[str, DomainInfo] = {i.domain: i for i in infos}
        self._lock = threading.Lock()
        self._changes: dict[str, tuple[float, float]] = {}  # domain -> (t, J) at the last change
        self._recent_w: dict[str, float] = {}

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.infos)

    def read(self) -> list[Reading]:
        """Read every domain once, stamped with the midpoint of clock reads around the counter read."""
        with self._lock:
            t_before = clock.now()
            values = self._read_energy_j()
            t_after = clock.now()
            t, t_err = 0.5 * (t_before + t_after), 0.5 * (t_after - t_before)
            for d, e in values.items():
                self._note_change(d, t, e)
        return [
            Reading(d, t, e, self.infos[d].source, self.infos[d].measured, self._power_w(d), t_err)
            for d, e in values.items()
        ]

    def _note_change(self, domain: str, t: float, energy_j: float) -> None:
        last = self._changes.get(domain)
        if last is None or energy_j != last[1]:
            if last is not None and t > last[0]:
                self._recent_w[domain] = (energy_j - last[1]) / (t - last[0])
            self._changes[domain] = (t, energy_j)

    def recent_power_w(self, domain: str) -> float | None:
        """Power [W] between the last two changes of the domain's counter, or None before two changes.

        A window too short to see its counter change reads zero energy; this is what bounds its
        uncertainty then.
        """
        return self._recent_w.get(domain)

    @abstractmethod
    def _read_energy_j(self) -> dict[str, float]:
        """Cumulative energy per domain in J (unwrapped, non-decreasing)."""

    def _power_w(self, domain: str) -> float | None:
        return None

    def close(self) -> None:
        """Release handles and threads. Safe to call twice."""

    def describe(self) -> dict:
        """A JSON-able description for manifests and ``ipw devices``."""
        return {
            "family": self.family,
            "domains": [
                {
                    "domain": i.domain,
                    "source": i.source,
                    "measured": i.measured,
                    "update_period_s": i.update_period_s,
                    "resolution_j": i.resolution_j,
                    "parent": i.parent,
                    "scope": i.scope,
                }
                for i in self.infos.values()
            ],
        }

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class CounterTrack:
    """Unwraps one raw hardware counter into a non-decreasing cumulative value.

    ``wrap`` is the counter's range (RAPL ``max_energy_range_uj``; None for counters that do not
    wrap in practice, such as NVML's 64-bit mJ counter). A counter that went backwards is taken to
    have wrapped once; reads must therefore come at least once per wrap period (minutes to hours
    for RAPL), which the sampler guarantees for long windows.
    """

    wrap: float | None = None
    total: float = 0.0
    wraps: int = 0
    _last: float | None = field(default=None, repr=False)

    def update(self, raw: float) -> float:
        if self._last is not None:
            delta = raw - self._last
            if delta < 0:
                delta = (self.wrap - self._last + raw) if self.wrap else 0.0
                self.wraps += 1
            self.total += delta
        self._last = raw
        return self.total


class ChannelIntegrator:
    """Integrates several power readings [W], read together, into cumulative energy per channel [J]
    by the trapezoid rule.

    Used where a family gives power but no energy counter. ``read_powers_w`` returns ``{channel: W}``
    (always the same channels); it is polled at ``hz`` in a daemon thread, and :meth:`energies_j`
    takes one more sample first, so a window edge always has a sample at its own time. Accuracy
    depends on the poll rate against how fast power changes; windows report the family's update
    period so that short ones are flagged. A sample is stamped with :func:`now` after its read.
    ``thread=False`` starts no thread: the caller polls (a sampler on a simulated clock, in tests).
    """

    def __init__(self, read_powers_w: Callable[[], dict[str, float]], hz: float = 20.0, thread: bool = True) -> None:
        self._read = read_powers_w
        self._period = 1.0 / hz
        self._lock = threading.Lock()
        self._energy_j: dict[str, float] = {}
        self._last: tuple[float, dict[str, float]] | None = None  # (t, {channel: W})
        self._stop = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="ipw-power-integrator", daemon=True)
        if thread:
            self._thread.start()

    def _sample(self) -> dict[str, float]:
        with self._lock:
            w = self._read()
            t = clock.now()
            if self._last is None:
                self._energy_j = {k: 0.0 for k in w}
            else:
                t0, w0 = self._last
                for k, p in w.items():
                    self._energy_j[k] += 0.5 * (w0[k] + p) * (t - t0)
            self._last = (t, w)
            return dict(self._energy_j)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self._sample()
            except Exception:  # noqa: BLE001 - a failed poll leaves a gap the trapezoid bridges
                continue

    def energies_j(self) -> dict[str, float]:
        return self._sample()

    @property
    def last_powers_w(self) -> dict[str, float] | None:
        return dict(self._last[1]) if self._last else None

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)


class PowerIntegrator(ChannelIntegrator):
    """:class:`ChannelIntegrator` of one power reading [W] (``read_power_w``)."""

    def __init__(self, read_power_w: Callable[[], float], hz: float = 20.0) -> None:
        super().__init__(lambda: {"": read_power_w()}, hz)

    def energy_j(self) -> float:
        return self.energies_j()[""]

    @property
    def last_power_w(self) -> float | None:
        return self._last[1][""] if self._last else None
