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

Energy of a window comes from the curve these values rebuild (``ipw.devices.nvidia.curve``): the
counter's steps, divided as the instant power's shape says. Its bound rests on that shape only where
the field updates inside the counter's steps; elsewhere it covers every placement of each step's
energy under the power limit. Which of the two applies is measured here, not assumed: at start the monitor polls the field
every millisecond until it has seen two new values, and the gap between their driver timestamps is
the field's update period. The field is taken to carry information inside a counter step when it
updates at least twice per counter update period (``FIELD_INSIDE_STEPS``); an H200's field changes
with its counter, every 100 ms, and does not. The power limit (``nvmlDeviceGetEnforcedPowerLimit``)
is read once by the meter and passed in as ``power_cap_w``. An edge later than the last counter
value is *extrapolated*. :meth:`NvmlMonitor.wait_covered` waits (about half an update period on
average) until the counter has a value past a time, so that windows are normally resolved without
extrapolation.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from types import ModuleType

from ipw.core import clock
from ipw.devices.nvidia.curve import CounterTimeline, PowerShape, Span

__all__ = ["CounterTimeline", "DriverClock", "NvmlMonitor", "PowerShape", "Span"]

US = 1e-6
FIELD_INSIDE_STEPS = 0.5  # the field shapes the counter's steps when it updates within half their period
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


def field_ts_s(value) -> float:
    return value.timestamp * US


class NvmlMonitor:
    """Reads one GPU's instant power and energy counter in the background (module doc).

    ``mode="thread"`` starts a daemon thread; ``mode="manual"`` leaves the polling to the caller
    (:meth:`poll`), for tests on a simulated clock, where ``sleep`` advances that clock.
    ``power_cap_w`` is the GPU's power limit [W] (None: unknown); ``counter_period_s`` the counter's
    update period [s] (the meter's, probed or assumed), against which the field's is compared.
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
        counter_period_s: float = 0.1,
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
        self.field_period_s: float | None = None  # the instant field's update period (driver time)
        self.counter_period_s = counter_period_s
        try:
            self._calibrate()
        except Exception:  # noqa: BLE001 - no instant field: every span is bounded by placement
            self.has_field = False
        self.set_counter_period(counter_period_s)
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
        """Poll the cheap field every millisecond until two new values were seen; the gap between
        their driver timestamps is the field's update period (module doc)."""
        self.read_field()
        changes: list[float] = []
        end = clock.now() + max_s
        while len(changes) < 2 and clock.now() < end:
            self._sleep(every_s)
            last = self._last_field_ts
            self.read_field()
            if self._last_field_ts != last:
                changes.append(self._last_field_ts)
        self.field_period_s = changes[1] - changes[0] if len(changes) == 2 else None

    @property
    def field_inside_steps(self) -> bool:
        """Whether the instant field updates inside the counter's steps (at least twice per counter
        update period), so that its shape is used between counter values (module doc)."""
        return (self.has_field and self.field_period_s is not None
                and self.field_period_s <= FIELD_INSIDE_STEPS * self.counter_period_s)  # fmt: skip

    def set_counter_period(self, period_s: float) -> None:
        """The counter's update period [s] (the meter's probe measures it after the monitor starts)."""
        with self._lock:
            self.counter_period_s = period_s
            self.timeline.shape_inside_steps = self.field_inside_steps

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
            "field_period_s": self.field_period_s,
            "field_inside_steps": self.field_inside_steps,
            "power_cap_w": self.timeline.power_cap_w,
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
