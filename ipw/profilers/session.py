"""Measurement windows over a set of meters: the API everything else measures with.

>>> import ipw
>>> with ipw.measure() as m:            # doctest: +SKIP
...     run_my_model()
>>> m.energy_j, m.duration_s, m.to_dict()  # doctest: +SKIP

A window reads every meter at its own start and end; its energy per domain is the difference of
the two reads (never the previous window's last sample), so time between windows is charged to no
window. Each domain also gets an uncertainty bound from its counter's update period and resolution:
either edge may be stale by up to one update period, so

    uncertainty_j = 2 * (P * update_period_s + resolution_j) + P * (t_err_start + t_err_end)

with P the largest of the window's mean power, its peak power and the counter's recent power
(:meth:`Meter.recent_power_w`: a window too short to see its counter change reads 0 J, and its
bound must not be 0 too). Where none is known yet the bound is infinite and the window is flagged
``unbounded:<domain>``. Windows shorter than a domain's update period are flagged
``short-window:<domain>``; a window that includes an estimate is flagged ``estimate``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

from ipw.profilers.base import Meter, Reading, now
from ipw.profilers.sampler import Sampler


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

    @property
    def energy_above_idle_j(self) -> float | None:
        """Energy above the idle baseline [J] (may be negative within noise); None without a baseline."""
        if self.idle_power_w is None:
            return None
        return self.energy_j - self.idle_power_w * self.duration_s


@dataclass(frozen=True)
class Measurement:
    """The result of one window: per-domain energy, timing, and flags."""

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

    @property
    def energy_j(self) -> float:
        """Total energy [J] over top-level domains (sub-domains such as RAPL core are inside their parent)."""
        return sum(d.energy_j for d in self._top())

    @property
    def energy_above_idle_j(self) -> float | None:
        parts = [d.energy_above_idle_j for d in self._top()]
        return None if not parts or any(p is None for p in parts) else sum(parts)

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else float("nan")

    @property
    def measured(self) -> bool:
        """True when no domain is an estimate."""
        return all(d.measured for d in self.domains.values())

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


class Window:
    """An open window; :meth:`stop` closes it. After the ``with`` block, its attributes are the
    :class:`Measurement`'s (``m.energy_j``, ``m.to_dict()``, ...)."""

    def __init__(self, profiler: Profiler, name: str | None) -> None:
        self._profiler = profiler
        self.name = name
        self.result: Measurement | None = None
        self._start = profiler.read_all()

    def stop(self) -> Measurement:
        if self.result is None:
            self.result = self._profiler.finish(self.name, self._start, self._profiler.read_all())
        return self.result

    def __enter__(self) -> Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __getattr__(self, name: str):
        result = self.__dict__.get("result")
        if result is None:
            raise AttributeError(f"{name!r}: the window is still open; read results after it ends")
        return getattr(result, name)


class Profiler:
    """A set of meters, an optional timeline sampler, and an idle baseline.

    ``meters=None`` uses whatever :func:`ipw.profilers.discover.discover` finds. ``sampler_hz``
    (default 20 Hz; None or 0 turns the timeline off) sets the timeline rate; window energies do not
    depend on it. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        meters: Sequence[Meter] | None = None,
        sampler_hz: float | None = 20.0,
        power_fields: bool = False,
    ) -> None:
        if meters is None:
            from ipw.profilers.discover import discover

            meters = discover().meters
        self.meters = list(meters)
        self.idle: IdleBaseline | None = None
        self.sampler = Sampler(self.meters, sampler_hz, power_fields).start() if sampler_hz else None

    def read_all(self) -> dict[str, Reading]:
        return {r.domain: r for m in self.meters for r in m.read()}

    def start(self, name: str | None = None) -> Window:
        """Open a window now; windows may overlap and nest."""
        return Window(self, name)

    @contextlib.contextmanager
    def window(self, name: str | None = None) -> Iterator[Window]:
        w = Window(self, name)
        try:
            yield w
        finally:
            w.stop()

    def measure_idle(self, duration_s: float = 5.0) -> IdleBaseline:
        """Measure mean power per domain while this process sleeps; later windows report above-idle energy."""
        import time

        with self.window("idle-baseline") as w:
            time.sleep(duration_s)
        m = w.result
        self.idle = IdleBaseline({d: e.avg_power_w for d, e in m.domains.items()}, m.duration_s, m)
        return self.idle

    def finish(self, name: str | None, start: dict[str, Reading], end: dict[str, Reading]) -> Measurement:
        infos = {d: i for m in self.meters for d, i in m.infos.items()}
        recent = {d: m.recent_power_w(d) for m in self.meters for d in m.infos}
        domains, flags = {}, []
        t0 = min((r.t_s for r in start.values()), default=now())
        t1 = max((r.t_s for r in end.values()), default=t0)
        samples = self.sampler.between(t0, t1) if self.sampler else []
        for domain, r1 in end.items():
            r0, info = start[domain], infos[domain]
            dt = r1.t_s - r0.t_s
            energy = r1.energy_j - r0.energy_j
            avg = energy / dt if dt > 0 else 0.0
            powers = [s.power_w for s in samples if s.domain == domain and s.power_w is not None]
            peak = max(powers) if powers else None
            power = max(avg, peak or 0.0, recent[domain] or 0.0)
            edges_s = 2 * info.update_period_s + r0.t_err_s + r1.t_err_s
            bound = power * edges_s + 2 * info.resolution_j if power > 0 else float("inf")
            if bound == float("inf"):
                flags.append(f"unbounded:{domain}")
            idle = self.idle.power_w.get(domain) if self.idle else None
            domains[domain] = DomainEnergy(
                domain, energy, dt, avg, peak, bound, info.source, info.measured,
                info.update_period_s, info.parent, idle,
            )  # fmt: skip
            if dt < info.update_period_s:
                flags.append(f"short-window:{domain}")
        if any(not d.measured for d in domains.values()):
            flags.append("estimate")
        if self.sampler is None:
            flags.append("no-timeline")
        return Measurement(name, t0, t1, domains, len(samples), tuple(flags))

    def timeline(self):
        """The sampler's timeline as a DataFrame (empty when the sampler is off)."""
        import pandas as pd

        return self.sampler.to_frame() if self.sampler else pd.DataFrame()

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        for m in self.meters:
            m.close()

    def __enter__(self) -> Profiler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def measure(
    name: str | None = None, meters: Sequence[Meter] | None = None, sampler_hz: float | None = 20.0
) -> Iterator[Window]:
    """Measure the ``with`` block on every meter this machine has (or ``meters``).

    Meters passed in stay open (the caller owns them); discovered ones are closed on exit.
    """
    owned = meters is None
    profiler = Profiler(meters, sampler_hz=sampler_hz)
    try:
        with profiler.window(name) as w:
            yield w
    finally:
        if profiler.sampler is not None:
            profiler.sampler.stop()
        if owned:
            profiler.close()
