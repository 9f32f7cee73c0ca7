"""Measurement windows over a set of meters: the API everything else measures with.

>>> import ipw
>>> with ipw.measure() as m:            # doctest: +SKIP
...     run_my_model()
>>> m.energy_j, m.scope_energy_j("accelerator"), m.to_dict()  # doctest: +SKIP

A window stamps its start and end on the one clock. Meters with a background monitor (NVML GPUs
with the timestamped counter) read nothing at the edges: the window's energy is computed from the
monitor's timeline once the counter has a value past the window's end (``ipw.devices.nvidia.monitor``),
so resolving a window waits about half a counter update (H200: 100 ms steps) unless the caller
reads the result later (``stop(wait=False)``). Meters whose reads are cheap (RAPL, the estimate,
AMD, integrated NVML power) are read at the edges; their energy per domain is the difference of the
two reads (never the previous window's last sample), so time between windows is charged to no
window. Edge-read domains get an uncertainty bound from their counter's update period and
resolution: either edge may be stale by up to one update period, so

    uncertainty_j = 2 * (P * update_period_s + resolution_j) + P * (t_err_start + t_err_end)

with P the largest of the window's mean power, its peak power and the counter's recent power
(:meth:`Meter.recent_power_w`: a window too short to see its counter change reads 0 J, and its
bound must not be 0 too). Where none is known yet the bound is infinite and the window is flagged
``unbounded:<domain>``. Windows shorter than a domain's counter update period are flagged
``sub-update-period:<domain>`` (the energy is then a share of a counter step, and its bound says
how wide that share may be; older records say ``short-window:<domain>``); a window that includes an
estimate is flagged ``estimate``; a monitored domain whose end had to be extrapolated is flagged
``extrapolated:<domain>``. Each domain's ``bound_basis`` says what its bound rests on (for a
monitored GPU: the counter's steps and the power limit, or the instant field's shape; see
``ipw.devices.nvidia.curve``).

What a window gives back (:class:`~ipw.profilers.measurement.Measurement`, scopes, the idle
baseline) is in :mod:`ipw.profilers.measurement`. With ``sync_cuda=True`` a window waits for queued
CUDA work (``torch.cuda.synchronize``) before stamping each edge, so kernels launched inside the
window finish inside it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence

from ipw.core import clock
from ipw.core.records import MODULE_COUNTER_FLAG
from ipw.devices.base import MODULE, Meter, Reading
from ipw.profilers.measurement import DomainEnergy, IdleBaseline, Measurement
from ipw.profilers.sampler import Sampler


SUB_UPDATE_PERIOD = "sub-update-period"  # flag prefix: a window shorter than a domain's counter update period


EDGE_BASIS = "edge reads: each edge stale by up to one update period at the window's largest known power"


def cuda_synchronize() -> bool:
    """Wait for every CUDA device's queued work, where torch is imported and CUDA initialised.

    torch is taken from ``sys.modules``, never imported here: code that queued CUDA work has
    imported it already, and importing it otherwise would cost seconds. True when it synchronised.
    """
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is None or not cuda.is_available() or not cuda.is_initialized():
        return False
    for device in range(cuda.device_count()):
        cuda.synchronize(device)
    return True


class Window:
    """An open window; :meth:`stop` closes it. After the ``with`` block, its attributes are the
    :class:`Measurement`'s (``m.energy_j``, ``m.to_dict()``, ...).

    The edges stamp the clock (and read only the meters whose reads are cheap). ``stop(wait=False)``
    only stamps the end; the energy is then computed when :attr:`result` is first read.
    """

    def __init__(self, profiler: Profiler, name: str | None, sync_cuda: bool = False, wait: bool = True) -> None:
        self._profiler = profiler
        self.name = name
        self.sync_cuda = sync_cuda
        self.wait = wait
        self._result: Measurement | None = None
        self._t1: float | None = None
        self._end: dict[str, Reading] = {}
        if sync_cuda:
            cuda_synchronize()
        self._t0 = clock.now()
        self._start = profiler.read_edges()

    @property
    def closed(self) -> bool:
        return self._t1 is not None

    def stop(self, wait: bool | None = None) -> Measurement | None:
        """Close the window (stamp its end); return its Measurement, or None with ``wait=False``
        (read :attr:`result` later: the monitor's timeline then covers the end without waiting)."""
        if self._t1 is None:
            if self.sync_cuda:
                cuda_synchronize()
            self._end = self._profiler.read_edges()
            self._t1 = clock.now()
        if wait if wait is not None else self.wait:
            return self.result
        return None

    @property
    def result(self) -> Measurement | None:
        """The Measurement (None while the window is open); computed on first use."""
        if self._result is None and self._t1 is not None:
            self._result = self._profiler.finish(self)
        return self._result

    def __enter__(self) -> Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        result = self.result
        if result is None:
            raise AttributeError(f"{name!r}: the window is still open; read results after it ends")
        return getattr(result, name)


class Profiler:
    """A set of meters, an optional timeline sampler, and an idle baseline.

    ``meters=None`` uses whatever :func:`ipw.devices.discover.discover` finds. ``sampler_hz``
    (default 20 Hz; None or 0 turns the timeline off) sets the timeline rate of the edge-read meters;
    window energies do not depend on it, and monitored meters keep their own timeline.
    ``sync_cuda`` is the default of every window's CUDA synchronisation; ``wait`` whether a window's
    ``stop`` waits for its energy (False: it only stamps, and ``result`` resolves later);
    ``wait_timeout_s`` how long resolving waits for a monitor before it extrapolates.
    """

    def __init__(
        self,
        meters: Sequence[Meter] | None = None,
        sampler_hz: float | None = 20.0,
        power_fields: bool = False,
        sync_cuda: bool = False,
        wait: bool = True,
        wait_timeout_s: float = 1.0,
    ) -> None:
        if meters is None:
            from ipw.devices.discover import discover

            meters = discover().meters
        self.meters = list(meters)
        self.sync_cuda = sync_cuda
        self.wait = wait
        self.wait_timeout_s = wait_timeout_s
        self.idle: IdleBaseline | None = None
        self._edge_meters = [m for m in self.meters if m.monitor is None]
        self.sampler = Sampler(self._edge_meters, sampler_hz, power_fields).start() if sampler_hz else None

    def read_edges(self) -> dict[str, Reading]:
        """Read the meters that are read at window edges (not the monitored ones)."""
        return {r.domain: r for m in self._edge_meters for r in m.read()}

    def read_all(self) -> dict[str, Reading]:
        """Read every meter now, monitored ones included (a counter read each: not for window edges)."""
        return {r.domain: r for m in self.meters for r in m.read()}

    def start(self, name: str | None = None, sync_cuda: bool | None = None, wait: bool | None = None) -> Window:
        """Open a window now; windows may overlap and nest."""
        return Window(self, name, self.sync_cuda if sync_cuda is None else sync_cuda, self.wait if wait is None else wait)

    @contextlib.contextmanager
    def window(self, name: str | None = None, sync_cuda: bool | None = None, wait: bool | None = None) -> Iterator[Window]:
        w = self.start(name, sync_cuda, wait)
        try:
            yield w
        finally:
            w.stop()

    def measure_idle(self, duration_s: float = 5.0) -> IdleBaseline:
        """Measure mean power per domain while this process sleeps; later windows report above-idle energy."""
        import time

        with self.window("idle-baseline", wait=True) as w:
            time.sleep(duration_s)
        m = w.result
        self.idle = IdleBaseline({d: e.avg_power_w for d, e in m.domains.items()}, m.duration_s, m)
        return self.idle

    def _infos(self) -> dict:
        return {d: i for m in self.meters for d, i in m.infos.items()}

    def finish(self, window: Window) -> Measurement:
        infos = self._infos()
        recent = {d: m.recent_power_w(d) for m in self.meters for d in m.infos}
        domains, flags = {}, []
        t0, t1 = window._t0, window._t1
        start, end = window._start, window._end
        samples = self.sampler.between(min([t0] + [r.t_s for r in start.values()]), t1) if self.sampler else []
        n_samples = len(samples)
        for meter in self.meters:
            for domain, info in meter.infos.items():
                if meter.monitor is not None:
                    span = meter.window_energy(t0, t1, wait=True, timeout_s=self.wait_timeout_s)
                    dt, energy, bound, peak = t1 - t0, span.energy_j, span.uncertainty_j, span.peak_power_w
                    basis = span.basis or None
                    n_samples += span.counter_values
                    if span.extrapolated:
                        flags.append(f"extrapolated:{domain}")
                else:
                    r0, r1 = start[domain], end[domain]
                    dt = r1.t_s - r0.t_s
                    energy = r1.energy_j - r0.energy_j
                    avg = energy / dt if dt > 0 else 0.0
                    powers = [s.power_w for s in samples if s.domain == domain and s.power_w is not None]
                    peak = max(powers) if powers else None
                    power = max(avg, peak or 0.0, recent[domain] or 0.0)
                    edges_s = 2 * info.update_period_s + r0.t_err_s + r1.t_err_s
                    bound = power * edges_s + 2 * info.resolution_j if power > 0 else float("inf")
                    basis = EDGE_BASIS
                if bound == float("inf"):
                    flags.append(f"unbounded:{domain}")
                idle = self.idle.power_w.get(domain) if self.idle else None
                domains[domain] = DomainEnergy.of(info, infos, energy, dt, bound, peak, idle, basis)
                if dt < info.update_period_s:
                    flags.append(f"{SUB_UPDATE_PERIOD}:{domain}")
        flags += [MODULE_COUNTER_FLAG + d for d, e in domains.items() if e.scope == MODULE]
        if any(not d.measured for d in domains.values()):
            flags.append("estimate")
        if self.sampler is None and self._edge_meters:
            flags.append("no-timeline")
        return Measurement(window.name, t0, t1, domains, n_samples, tuple(flags))

    def timeline(self):
        """The timeline as a DataFrame: the sampler's rows (t_s, domain, energy_j, power_w) and each
        monitor's counter values (energy_j since it started) and instant power (power_w)."""
        import pandas as pd

        frames = [self.sampler.to_frame()] if self.sampler else []
        for m in self.meters:
            if m.monitor is not None:
                domain = next(iter(m.infos))
                rows = [
                    {"t_s": t, "domain": domain, "energy_j": v if kind == "energy_j" else None,
                     "power_w": v if kind == "power_w" else None}
                    for t, kind, v in m.monitor.samples()
                ]  # fmt: skip
                frames.append(pd.DataFrame(rows, columns=["t_s", "domain", "energy_j", "power_w"]))
        frames = [f for f in frames if not f.empty]
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True).sort_values("t_s", kind="stable").reset_index(drop=True)

    def monitor_stats(self) -> dict[str, dict]:
        """Each monitored meter's read counts, read costs and CPU share (see NvmlMonitor.stats)."""
        return {next(iter(m.infos)): m.monitor.stats() for m in self.meters if m.monitor is not None}

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
    name: str | None = None,
    meters: Sequence[Meter] | None = None,
    sampler_hz: float | None = 20.0,
    sync_cuda: bool = False,
) -> Iterator[Window]:
    """Measure the ``with`` block on every meter this machine has (or ``meters``).

    Meters passed in stay open (the caller owns them); discovered ones are closed on exit. With
    ``sync_cuda=True`` queued CUDA work is waited for at both edges.
    """
    owned = meters is None
    profiler = Profiler(meters, sampler_hz=sampler_hz, sync_cuda=sync_cuda)
    try:
        with profiler.window(name) as w:
            yield w
    finally:
        if profiler.sampler is not None:
            profiler.sampler.stop()
        if owned:
            profiler.close()
