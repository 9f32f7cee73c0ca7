"""The profiler's timeline as per-domain :class:`ipw.profilers.attribution.Curve` slices: the sampler's readings for edge-read meters, a GPU monitor's counter values for monitored ones."""

from __future__ import annotations

import bisect
import math

import numpy as np

from ipw.profilers import attribution


READ_ERR_S = 0.005
"""Half-width [s] of a timeline reading's time: the sampler keeps no read duration, and the slowest
counter read seen (NVML on an H200) takes 3.9 ms."""


class Curves:
    """Per-domain :class:`ipw.profilers.attribution.Curve` slices from the profiler's timeline: the sampler's
    readings for edge-read meters, the monitor's counter values for monitored ones."""

    def __init__(self, profiler) -> None:
        self.profiler = profiler
        self.infos = {d: i for m in profiler.meters for d, i in m.infos.items()}
        self.monitored = {next(iter(m.infos)): m.monitor for m in profiler.meters if m.monitor is not None}
        self._t: dict[str, list[float]] = {}
        self._e: dict[str, list[float]] = {}
        self._seen = 0

    def _pull(self) -> None:
        sampler = self.profiler.sampler
        if sampler is None:
            return
        samples = sampler.samples
        n = len(samples)
        for s in samples[self._seen:n]:
            ts, es = self._t.setdefault(s.domain, []), self._e.setdefault(s.domain, [])
            if not ts or s.t_s > ts[-1]:
                ts.append(s.t_s)
                es.append(s.energy_j)
        self._seen = n

    def domains(self) -> list[str]:
        self._pull()
        return [d for d in self.infos if d in self._t or d in self.monitored]

    def get(self, lo: float = -math.inf, hi: float = math.inf) -> dict[str, attribution.Curve]:
        """Curves covering ``[lo, hi]`` (one reading beyond each end, where there is one)."""
        self._pull()
        out = {}
        for d, info in self.infos.items():
            if d in self.monitored:
                out[d] = _monitor_curve(self.monitored[d])
                continue
            ts, es = self._t.get(d), self._e.get(d)
            if not ts:
                continue
            pad = info.update_period_s + READ_ERR_S
            i = max(bisect.bisect_left(ts, lo - pad) - 1, 0) if lo > -math.inf else 0
            j = min(bisect.bisect_right(ts, hi + pad) + 1, len(ts)) if hi < math.inf else len(ts)
            out[d] = attribution.Curve.from_samples(ts[i:j], es[i:j], info.update_period_s, READ_ERR_S, info.resolution_j)
        return out

    def covers(self, lo: float, hi: float) -> bool:
        """Whether every domain's timeline knows ``[lo, hi]`` (cheap: no curve is built). True when
        there is no domain at all (nothing to wait for)."""
        self._pull()
        for d, info in self.infos.items():
            if d in self.monitored:
                monitor = self.monitored[d]
                off = monitor.clock.offset()
                err = off[1] if off else math.inf
                ct = monitor.timeline.ct
                if not ct or ct[0] + err > lo or ct[-1] - err < hi:
                    return False
                continue
            ts = self._t.get(d)
            if ts is None:  # not read yet (a meter whose every read fails waits for the end's timeout)
                return False
            if ts[0] + READ_ERR_S > lo or ts[-1] - info.update_period_s - READ_ERR_S < hi:
                return False
        return True


def _monitor_curve(monitor) -> attribution.Curve:
    """The monitor's counter values, exact at their driver timestamps (kept on the monotonic clock,
    give or take the clock offset's error); the estimate between them follows the monitor's
    rebuilt power curve (``NvmlMonitor.energy_between``)."""
    with monitor._lock:
        off = monitor.clock.offset()
        ct, ce = np.array(monitor.timeline.ct, dtype=float), np.array(monitor.timeline.ce, dtype=float)
    err = off[1] if off else math.inf
    t0 = float(ct[0]) if len(ct) else 0.0

    def spans(t: np.ndarray) -> list:
        return [monitor.energy_between(t0, float(x)) for x in np.ravel(t)]

    def estimate(t: np.ndarray) -> np.ndarray:
        return np.array([s.energy_j for s in spans(t)]).reshape(np.shape(t))

    def edge_error(t: np.ndarray) -> np.ndarray:
        return np.array([s.uncertainty_j for s in spans(t)]).reshape(np.shape(t))

    return attribution.Curve(ct - err, ct + err, ce, 1e-3, estimate, edge_error)
