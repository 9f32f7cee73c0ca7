"""The background monitor: a GPU's energy counter and instant power, stamped with the driver's clock.

Why. On an H200 one read of the NVML energy counter costs 3.9 ms of CPU and the counter changes
only every 100 ms; the instant-power field costs 5.5 us and changes at the same rate. Reading the
counter at window edges puts 2 x 3.9 ms on the measured code's path and still leaves windows
shorter than 100 ms reading 0 J or a whole step. So window edges only stamp times (``now()``), and
this monitor keeps a timeline from which any window's energy is computed afterwards:

- the instant-power field (``NVML_FI_DEV_POWER_INSTANT``) is read ``field_hz`` times a second,
  at jittered times (so that reads do not lock onto the driver's phase);
- the energy counter (``NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION``, mJ) is read ``counter_hz`` times a
  second, through ``nvmlDeviceGetFieldValues`` so that it too carries the driver's timestamp.

Every field value carries ``timestamp``, the driver's time [us] at which it was taken; values are
deduplicated by it. :class:`DriverClock` maps driver time onto the one monotonic clock by an offset
bounded from reads: a value read by time ``t_after`` was taken at or before it
(``offset <= t_after - ts``), and a value not yet seen by a read that began at ``t_before`` was
taken after it (``offset >= t_before - ts``, assuming it is visible when taken). The offset is the
middle of the tightest bounds over the last ``horizon_s``; half their gap is the timing error. At
start the monitor polls the cheap field every millisecond until it has seen two new values, so the
offset is known to about a millisecond before the first window. Each value is placed on the
monotonic clock when it arrives, with the offset known then, and never moved: the timeline is one
fixed function of time, so windows resolved at different times still add up exactly.

Energy of a window. The counter's values ``(T_k, E_k)`` are exact at their timestamps. Between
two of them, the cumulative energy follows the *shape* ``s(t)`` of the instant power (linear
between its samples, held beyond them), scaled so that the span's energy is the counter's step:

    E(t) = E_{k-1} + (E_k - E_{k-1}) * S(T_{k-1}, t) / S(T_{k-1}, T_k),   S(a, b) = integral_a^b s   [J]

(uniform when ``S`` is 0). A window ``[a, b]`` gets ``E(b) - E(a)``; consecutive windows therefore
sum to the counter's change over their span (conservation), and a window much shorter than the
counter's 100 ms step gets the part of the step its time and the instant power say, not 0 J or a
whole step. The bound of an edge inside a span is the largest error a shape can make there:
``|E_est(e) - E(e)| <= max|s_hat - P| * min(e - T_{k-1}, T_k - e)``, with ``max|s_hat - P|``
taken as 1.5 x the range of the scaled instant samples around the span plus 5% of their largest
value (the power between two samples is not observed: this is an assumption, tested against known
traces). Both edges add ``P x`` the offset's error, and 1 mJ of counter resolution each. An edge
later than the last counter value is *extrapolated* with the shape and the last span's scale; the
part past the last instant sample is bounded by the power limit. :meth:`NvmlMonitor.wait_covered`
waits (about half an update period on average) until the counter has a value past a time, so that
windows are normally resolved without extrapolation.
"""

from __future__ import annotations

import bisect
import random
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from ipw.core import clock

US = 1e-6
SHAPE_RANGE_FACTOR = 1.5  # max|s_hat - P| taken as 1.5 x the range of the samples around a span ...
SHAPE_FLOOR = 0.05  # ... plus 5% of their largest value
RESOLUTION_J = 1e-3  # the counter counts mJ
FIRST_READ_ERR_S = 0.1  # before a second value is seen, its age is unknown up to one update (H200: 100 ms)
WAIT_COUNTER_GAP_S = 0.02  # while a window waits, the counter is re-read at most every 20 ms


class DriverClock:
    """Offset [s] from driver time to the monotonic clock, bounded by reads (see the module doc)."""

    def __init__(self, horizon_s: float = 10.0) -> None:
        self.horizon_s = horizon_s
        self._hi: deque[tuple[float, float]] = deque()  # (read time, upper bound of offset)
        self._lo: deque[tuple[float, float]] = deque()  # (read time, lower bound of offset)

    def observe(self, t_before: float, t_after: float, ts_s: float, prev_t_before: float | None) -> None:
        """A read in ``[t_before, t_after]`` saw a value stamped ``ts_s`` (driver s) for the first time;
        the read before it, which did not see it, began at ``prev_t_before``."""
        self._push(self._hi, t_after, t_after - ts_s, keep_min=True)
        if prev_t_before is not None:
            self._push(self._lo, t_after, prev_t_before - ts_s, keep_min=False)

    def _push(self, q: deque, t: float, bound: float, keep_min: bool) -> None:
        q.append((t, bound))
        while q and q[0][0] < t - self.horizon_s and len(q) > 1:
            q.popleft()

    def offset(self) -> tuple[float, float] | None:
        """(offset, error) in s, or None before any read."""
        if not self._hi:
            return None
        hi = min(b for _, b in self._hi)
        lo = max((b for _, b in self._lo), default=None)
        if lo is None:  # one value seen so far: it was taken at most about one update before its read
            return hi, FIRST_READ_ERR_S
        if lo > hi:  # a value became visible after it was taken: trust the hard bound
            return hi, lo - hi
        return 0.5 * (lo + hi), 0.5 * (hi - lo)


@dataclass(frozen=True)
class Span:
    """The energy of ``[a, b]`` on the monotonic clock, with its bound and what it rests on."""

    energy_j: float
    uncertainty_j: float
    peak_power_w: float | None
    extrapolated: bool
    counter_values: int  # counter values inside the window


class PowerShape:
    """Instant power samples (monotonic time, W): linear between samples, held beyond them."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.p: list[float] = []
        self.q: list[float] = []  # cumulative integral at each sample [J]

    def add(self, t: float, p: float) -> None:
        if self.t and t <= self.t[-1]:
            return
        if self.t:
            self.q.append(self.q[-1] + 0.5 * (self.p[-1] + p) * (t - self.t[-1]))
        else:
            self.q.append(0.0)
        self.t.append(t)
        self.p.append(p)

    def integral_to(self, t: float) -> float:
        """Q(t): the shape's integral from the first sample to ``t`` (negative before it)."""
        ts, ps = self.t, self.p
        if not ts:
            return 0.0
        i = bisect.bisect_right(ts, t) - 1
        if i < 0:
            return -ps[0] * (ts[0] - t)
        if i >= len(ts) - 1:
            return self.q[-1] + ps[-1] * (t - ts[-1])
        dt = t - ts[i]
        slope = (ps[i + 1] - ps[i]) / (ts[i + 1] - ts[i])
        return self.q[i] + ps[i] * dt + 0.5 * slope * dt * dt

    def between(self, a: float, b: float) -> float:
        return self.integral_to(b) - self.integral_to(a)

    def around(self, a: float, b: float, pad: float) -> list[float]:
        """Sample values in ``[a - pad, b + pad]`` (at least the nearest one on each side)."""
        ts = self.t
        if not ts:
            return []
        i = max(bisect.bisect_left(ts, a - pad) - 1, 0)
        j = min(bisect.bisect_right(ts, b + pad) + 1, len(ts))
        return self.p[i:j]

    def at(self, t: float) -> float | None:
        if not self.t:
            return None
        i = bisect.bisect_right(self.t, t) - 1
        if i < 0:
            return self.p[0]
        if i >= len(self.t) - 1:
            return self.p[-1]
        f = (t - self.t[i]) / (self.t[i + 1] - self.t[i])
        return self.p[i] + f * (self.p[i + 1] - self.p[i])


class CounterTimeline:
    """Counter values and instant power, placed on the monotonic clock; energy of any interval
    (module doc)."""

    def __init__(self, power_cap_w: float | None = None) -> None:
        self.ct: list[float] = []  # counter timestamps (monotonic s)
        self.ce: list[float] = []  # counter values [J]
        self.shape = PowerShape()
        self.power_cap_w = power_cap_w

    def add_counter(self, ts: float, energy_j: float) -> bool:
        if self.ct and ts <= self.ct[-1]:
            return False
        self.ct.append(ts)
        self.ce.append(max(energy_j, self.ce[-1]) if self.ce else energy_j)
        return True

    def add_power(self, ts: float, power_w: float) -> None:
        self.shape.add(ts, power_w)

    @property
    def last_counter_ts(self) -> float | None:
        return self.ct[-1] if self.ct else None

    def _span(self, k: int) -> tuple[float, float, float, float]:
        """(T0, T1, dE, scale) of the span ending at counter value k (k >= 1)."""
        t0, t1 = self.ct[k - 1], self.ct[k]
        de = self.ce[k] - self.ce[k - 1]
        s = self.shape.between(t0, t1)
        return t0, t1, de, (de / s if s > 0 else 0.0)

    def _pad(self) -> float:
        tail = self.shape.t[-20:]
        return statistics.median(b - a for a, b in zip(tail, tail[1:])) if len(tail) > 2 else 0.1

    def _edge(self, t: float) -> tuple[float, float, bool]:
        """(E(t), bound of E(t), extrapolated) for time t."""
        ct, ce, shape = self.ct, self.ce, self.shape
        k = bisect.bisect_left(ct, t)
        if k < len(ct) and ct[k] == t:
            return ce[k], 0.0, False
        if 0 < k < len(ct):  # inside span k
            t0, t1, de, scale = self._span(k)
            if scale > 0:
                e = ce[k - 1] + scale * shape.between(t0, t)
            else:  # no shape (all zero or absent): uniform
                e = ce[k - 1] + de * (t - t0) / (t1 - t0)
            vals = [scale * p for p in shape.around(t0, t1, self._pad())] if scale > 0 else []
            if vals:
                dev = SHAPE_RANGE_FACTOR * (max(vals) - min(vals)) + SHAPE_FLOOR * max(vals)
            else:
                dev = de / (t1 - t0)  # mean power: any placement within the span
            bound = min(dev * min(t - t0, t1 - t), max(e - ce[k - 1], ce[k] - e))
            return e, bound, False
        # outside the counter's values: extrapolate from the nearest span's scale (or its mean power)
        if len(ct) >= 2:
            j = 1 if k == 0 else len(ct) - 1
            t0, t1, de, scale = self._span(j)
            mean_w = de / (t1 - t0)
        else:
            scale, mean_w = 0.0, None
        anchor_t, anchor_e = (ct[0], ce[0]) if k == 0 else (ct[-1], ce[-1])
        if scale > 0:
            e = anchor_e + scale * shape.between(anchor_t, t)
        elif mean_w is not None:
            e = anchor_e + mean_w * (t - anchor_t)
        else:
            p = shape.at(t)
            e = anchor_e + (p or 0.0) * (t - anchor_t)
        vals = shape.around(min(anchor_t, t), max(anchor_t, t), self._pad())
        pmax = max(vals + ([mean_w] if mean_w else [])) if (vals or mean_w) else None
        cap = self.power_cap_w or (2.0 * pmax if pmax else None)
        if cap is None:
            return e, float("inf"), True
        # observed part: like an edge inside a span; unobserved part (past the last sample): up to the cap
        last_seen = shape.t[-1] if shape.t else anchor_t
        if k == 0:
            observed, unseen = abs(anchor_t - t), 0.0
        else:
            observed = max(min(t, last_seen) - anchor_t, 0.0)
            unseen = max(t - max(last_seen, anchor_t), 0.0)
        dev = SHAPE_RANGE_FACTOR * ((max(vals) - min(vals)) if vals else pmax) + SHAPE_FLOOR * pmax
        hold = shape.at(t) or 0.0
        return e, dev * observed + max(hold, cap - hold) * unseen, True

    def energy(self, a: float, b: float, offset_err_s: float = 0.0) -> Span:
        """Energy [J] over ``[a, b]`` with its bound; ``offset_err_s`` is the timing error of the
        timeline's placement on the clock."""
        if not self.ct:
            return Span(0.0, float("inf"), None, True, 0)
        ea, ua, xa = self._edge(a)
        eb, ub, xb = self._edge(b)
        vals = [v for v in (self.shape.at(a), self.shape.at(b)) if v is not None]
        i, j = bisect.bisect_left(self.shape.t, a), bisect.bisect_right(self.shape.t, b)
        inside = self.shape.p[i:j]
        peak = max(inside + vals) if (inside or vals) else None
        timing = sum(vals) * offset_err_s
        n = bisect.bisect_right(self.ct, b) - bisect.bisect_left(self.ct, a)
        return Span(eb - ea, ua + ub + timing + 2 * RESOLUTION_J, peak, xa or xb, n)


def field_ts_s(value) -> float:
    return value.timestamp * US


class NvmlMonitor:
    """Reads one GPU's instant power and energy counter in the background (module doc).

    ``mode="thread"`` starts a daemon thread; ``mode="manual"`` leaves the polling to the caller
    (:meth:`poll`), for tests on a simulated clock, where ``sleep`` advances that clock.
    """

    def __init__(
        self,
        nvml: ModuleType,
        handle,
        counter_hz: float = 4.0,
        field_hz: float = 20.0,
        mode: str = "thread",
        sleep: Callable[[float], None] = time.sleep,
        power_cap_w: float | None = None,
        fast_poll_s: float = 0.005,
    ) -> None:
        if counter_hz <= 0 or field_hz <= 0:
            raise ValueError("monitor rates must be > 0 Hz")
        self._nvml, self._handle = nvml, handle
        self.counter_hz, self.field_hz, self.mode = counter_hz, field_hz, mode
        self._sleep = sleep
        self._fast_poll_s = fast_poll_s
        self.timeline = CounterTimeline(power_cap_w)
        self.clock = DriverClock()
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by a waiter: the thread stops sleeping and polls fast
        self._wanted: float | None = None  # a waiter wants a counter value at or after this (monotonic)
        self._next_counter = 0.0
        self._last_counter_read = -1e9
        self._last_field_ts: float | None = None
        self._last_counter_ts: float | None = None
        self._prev_field_before: float | None = None
        self._prev_counter_before: float | None = None
        self._energy0: float | None = None
        self.errors: list[str] = []
        self.counter_reads = 0
        self.field_reads = 0
        self.counter_read_s = 0.0  # wall time spent in counter reads (perf_counter)
        self.field_read_s = 0.0
        self.cpu_s = 0.0  # the monitor thread's own CPU time
        self._t_started = time.perf_counter()
        self._thread: threading.Thread | None = None
        self.has_field = True
        try:
            self._calibrate()
        except Exception:  # noqa: BLE001 - no instant field: spans are spread uniformly
            self.has_field = False
        self.poll(force_counter=True)
        if self.timeline.last_counter_ts is None:
            raise ValueError("the energy counter field gave no timestamped value")
        if mode == "thread":
            self._thread = threading.Thread(target=self._run, name="ipw-nvml-monitor", daemon=True)
            self._thread.start()

    # --- reads -------------------------------------------------------------------------------
    def _read(self, field_id: int):
        nvml = self._nvml
        t_before = clock.now()
        c0 = time.perf_counter()
        (value,) = nvml.nvmlDeviceGetFieldValues(self._handle, [field_id])
        cost = time.perf_counter() - c0
        t_after = clock.now()
        if value.nvmlReturn != nvml.NVML_SUCCESS or value.timestamp <= 0:
            raise ValueError(f"field {field_id}: no timestamped value (return code {value.nvmlReturn})")
        return value, t_before, t_after, cost

    def read_field(self) -> None:
        value, t_before, t_after, cost = self._read(self._nvml.NVML_FI_DEV_POWER_INSTANT)
        self.field_reads += 1
        self.field_read_s += cost
        ts = field_ts_s(value)
        with self._lock:
            if ts != self._last_field_ts:
                self.clock.observe(t_before, t_after, ts, self._prev_field_before)
                self.timeline.add_power(ts + self.clock.offset()[0], value.value.uiVal * 1e-3)
                self._last_field_ts = ts
            self._prev_field_before = t_before

    def _calibrate(self, max_s: float = 0.5, every_s: float = 0.001) -> None:
        """Poll the cheap field every millisecond until two new values were seen (module doc)."""
        self.read_field()
        changes = 0
        end = clock.now() + max_s
        while changes < 2 and clock.now() < end:
            self._sleep(every_s)
            last = self._last_field_ts
            self.read_field()
            changes += self._last_field_ts != last

    def read_counter(self) -> None:
        value, t_before, t_after, cost = self._read(self._nvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION)
        self.counter_reads += 1
        self.counter_read_s += cost
        ts = field_ts_s(value)
        energy = value.value.ullVal * 1e-3
        with self._lock:
            if self._energy0 is None:
                self._energy0 = energy
            if ts != self._last_counter_ts:
                self.clock.observe(t_before, t_after, ts, self._prev_counter_before)
                self.timeline.add_counter(ts + self.clock.offset()[0], energy - self._energy0)
                self._last_counter_ts = ts
            self._prev_counter_before = t_before
            self._lock.notify_all()

    def poll(self, force_counter: bool = False) -> None:
        """One round: the instant field, and the counter when it is due or a waiter needs it."""
        if self.has_field:
            try:
                self.read_field()
            except Exception as e:  # noqa: BLE001 - a failed read leaves a gap; the timeline goes on
                self._note(e)
        try:
            t = clock.now()
            wanted = self._wanted
            need = wanted is not None and not self.covers(wanted) and t - self._last_counter_read >= WAIT_COUNTER_GAP_S
            if need and self.timeline.shape.t:  # read the counter once the driver has moved past
                need = self.timeline.shape.t[-1] >= wanted
            if force_counter or t >= self._next_counter or need:
                self._last_counter_read = t
                self._next_counter = t + 1.0 / self.counter_hz
                self.read_counter()
        except Exception as e:  # noqa: BLE001
            self._note(e)
            if force_counter:
                raise

    def _note(self, e: Exception) -> None:
        if len(self.errors) < 100:
            self.errors.append(str(e))

    def _run(self) -> None:
        cpu0 = time.thread_time()
        while not self._stop.is_set():
            self.poll()
            self.cpu_s = time.thread_time() - cpu0
            waiting = self._wanted is not None and not self.covers(self._wanted)
            period = self._fast_poll_s if waiting else random.uniform(0.7, 1.3) / self.field_hz
            self._wake.wait(period)
            self._wake.clear()

    # --- time and energy ---------------------------------------------------------------------
    def covers(self, t: float) -> bool:
        """Whether the counter has a value stamped at or after monotonic time ``t``."""
        last = self.timeline.last_counter_ts
        return last is not None and last >= t

    def wait_covered(self, t: float, timeout_s: float = 1.0) -> bool:
        """Wait until the counter has a value past ``t`` (the monitor reads it as soon as the driver's
        timestamps say it changed); False on timeout."""
        if self.covers(t):
            return True
        deadline = clock.now() + timeout_s
        if self._thread is None:  # manual: poll here, on the caller's clock
            self._wanted = t
            try:
                while not self.covers(t) and clock.now() < deadline:
                    self._sleep(self._fast_poll_s)
                    self.poll()
            finally:
                self._wanted = None
            return self.covers(t)
        with self._lock:
            self._wanted = t if self._wanted is None else min(self._wanted, t)
            self._wake.set()
            while not self.covers(t):
                left = deadline - clock.now()
                if left <= 0:
                    break
                self._lock.wait(min(left, 0.05))
            if self._wanted == t:
                self._wanted = None
            return self.covers(t)

    def energy_between(self, t0: float, t1: float) -> Span:
        """Energy [J] of monotonic ``[t0, t1]`` from the timeline (waiting is the caller's choice)."""
        with self._lock:
            off = self.clock.offset()
            return self.timeline.energy(t0, t1, off[1] if off else float("inf"))

    # --- reporting ---------------------------------------------------------------------------
    def stats(self) -> dict:
        """What the monitor costs and sees: reads, mean read cost, its thread's CPU share."""
        wall = time.perf_counter() - self._t_started
        off = self.clock.offset()
        ts = self.timeline.ct
        tail = ts[-50:]
        gaps = [b - a for a, b in zip(tail, tail[1:])]
        return {
            "counter_hz": self.counter_hz,
            "field_hz": self.field_hz,
            "counter_reads": self.counter_reads,
            "field_reads": self.field_reads,
            "counter_read_s": self.counter_read_s / self.counter_reads if self.counter_reads else None,
            "field_read_s": self.field_read_s / self.field_reads if self.field_reads else None,
            "thread_cpu_s": self.cpu_s,
            "thread_cpu_share": self.cpu_s / wall if wall > 0 and self._thread is not None else None,
            "clock_offset_err_s": off[1] if off else None,
            "counter_values": len(ts),
            "min_counter_gap_s": min(gaps) if gaps else None,
            "errors": len(self.errors),
        }

    def samples(self) -> list[tuple[float, str, float]]:
        """(monotonic t, kind, value): counter values in J and instant power in W."""
        with self._lock:
            out = [(t, "energy_j", e) for t, e in zip(self.timeline.ct, self.timeline.ce)]
            out += [(t, "power_w", p) for t, p in zip(self.timeline.shape.t, self.timeline.shape.p)]
        return sorted(out)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=1.0)
        self._thread = None
