"""The background power timeline.

A daemon thread reads every edge-read meter at a fixed rate (GPUs read by a background monitor
keep their own timeline: the profiler never hands them to the sampler); each sample keeps the time
at which it was read (not consumed) and the power over the interval since the previous sample of
the same domain, derived from the energy difference. Window energies never depend on it (they read
counters at their own edges); the timeline gives peak power, plots, and at least one read per
counter wrap period on long runs. Its cost on the measured workload is reported by ``benchmarks/sampler_overhead.py``.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ipw.core.clock import now
from ipw.devices.base import Meter

MAX_SLEEP_S = 0.1


@dataclass(frozen=True)
class Sample:
    """One domain at one instant: cumulative energy [J] and the mean power [W] since the last sample."""

    t_s: float
    domain: str
    energy_j: float
    power_w: float | None
    fields_w: tuple[tuple[str, float], ...] = ()


class Sampler:
    """Reads ``meters`` every ``1/hz`` seconds in a daemon thread, from :meth:`start` to :meth:`stop`.

    With ``power_fields=True`` it also records the power fields a meter reports beside its energy
    (NVML instant and averaged power), at one extra driver call per GPU per sample.
    """

    def __init__(self, meters: Sequence[Meter], hz: float = 20.0, power_fields: bool = False) -> None:
        if hz <= 0:
            raise ValueError(f"sampler rate must be > 0 Hz, got {hz}")
        self.meters = list(meters)
        self.hz = hz
        self.power_fields = power_fields
        self.samples: list[Sample] = []
        self._times: list[float] = []  # samples' t_s, in append order (non-decreasing): for bisect
        self.errors: list[str] = []
        self._last: dict[str, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Sampler:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ipw-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        # One time.sleep per tick: on the machines measured it costs half the CPU of Event.wait per
        # wake-up (benchmarks/sampler_overhead.py); stop() is seen within MAX_SLEEP_S.
        period = 1.0 / self.hz
        next_t = now()
        while not self._stop.is_set():
            self.tick()
            next_t += period
            delay = next_t - now()
            if delay < 0:  # fell behind (a slow read): skip the missed ticks, do not burst
                next_t, delay = now(), 0.0
            time.sleep(min(delay, MAX_SLEEP_S))
            while not self._stop.is_set() and next_t - now() > MAX_SLEEP_S / 2:  # long periods only
                time.sleep(min(next_t - now(), MAX_SLEEP_S))

    def tick(self) -> None:
        """Take one sample of every meter now."""
        for meter in self.meters:
            try:
                readings = meter.read()
                extra = meter.power_fields_w() if self.power_fields and hasattr(meter, "power_fields_w") else {}
            except Exception as e:  # noqa: BLE001 - a failed read is recorded, the timeline goes on
                self.errors.append(f"{meter.family}: {e}")
                continue
            for r in readings:
                prev = self._last.get(r.domain)
                power = (r.energy_j - prev[1]) / (r.t_s - prev[0]) if prev and r.t_s > prev[0] else None
                self._last[r.domain] = (r.t_s, r.energy_j)
                self.samples.append(Sample(r.t_s, r.domain, r.energy_j, power, tuple(extra.items())))
                self._times.append(r.t_s)

    def between(self, t0: float, t1: float, domain: str | None = None) -> list[Sample]:
        """Samples read in ``(t0, t1]``, optionally of one domain.

        Only this sampler's thread appends, in time order, so a window's samples are found by
        bisection: the cost of closing a window does not grow with the length of the run.
        """
        n = len(self._times)  # every sample up to n is already in self.samples
        lo, hi = bisect.bisect_right(self._times, t0, 0, n), bisect.bisect_right(self._times, t1, 0, n)
        return [s for s in self.samples[lo:hi] if domain is None or s.domain == domain]

    def to_frame(self):
        """The timeline as a pandas DataFrame (t_s, domain, energy_j, power_w, and power fields)."""
        import pandas as pd

        rows = [
            {"t_s": s.t_s, "domain": s.domain, "energy_j": s.energy_j, "power_w": s.power_w, **dict(s.fields_w)}
            for s in list(self.samples)
        ]
        return pd.DataFrame(rows, columns=None if rows else ["t_s", "domain", "energy_j", "power_w"])
