"""What a measurement window costs the code it measures, on an H200-like fake GPU; and whether the
NVML monitor needs a process of its own (the GIL).

The fake follows the H200 measured on this project (tests/fakes/nvml.py): counter and instant
field change every 100 ms with driver timestamps; a counter read spends 3.9 ms and a field read
5.5 us of CPU in one C call that releases the GIL, as the real NVML call through ctypes does.

Part 1, window edges. A unit of work (pure Python, holding the GIL, about 2 ms) runs N times bare
and N times inside a window, in interleaved blocks; the added time per window is the difference of
the medians. Conditions: the monitor with windows that only stamp their edges (results read after
the block), the monitor with windows resolved at once (``stop()`` waits until the counter has a
value past the end: time between windows, not inside them), and the counter read at the edges
(``monitor="off"``, what ipw did before).

Part 2, the GIL. A pure-Python loop counts iterations in 0.25 s blocks: alone; beside the monitor
polling in a thread of this process (4 Hz counter, 20 Hz jittered field); beside a thread reading
the counter back to back; beside the monitor in a separate process (stopped with SIGSTOP between
its blocks). The four conditions run in random order within each round, and each ratio is to the
same round's "alone", so slow drifts of the machine's load cancel.
Usage: python benchmarks/window_edge_cost.py [--repeats 5] [--rounds 40] [--skip-gil]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipw.devices.nvidia.meter import NvmlMeter  # noqa: E402
from ipw.profilers.windows import Profiler  # noqa: E402
from tests.fakes.nvml import FakeNvml, Trace, h200  # noqa: E402

TRACE = Trace(base_w=300.0, amp_w=20.0, period_s=0.37)


def work(ms: float = 2.0) -> int:
    end, n = time.perf_counter() + ms * 1e-3, 0
    while time.perf_counter() < end:
        n += 1
    return n


def meter(monitor: str) -> NvmlMeter:
    return NvmlMeter(0, nvml=FakeNvml([h200(TRACE)], time.monotonic, cost="real"), monitor=monitor)


def block(profiler: Profiler | None, n: int, wait: bool) -> float:
    """Seconds to run n units, each in its own window (or bare)."""
    windows = []
    t0 = time.perf_counter()
    for _ in range(n):
        if profiler is None:
            work()
            continue
        w = profiler.start(wait=wait)
        work()
        w.stop()
        windows.append(w)
    elapsed = time.perf_counter() - t0
    for w in windows:  # resolved outside the timed block (wait=False) or already (wait=True)
        assert w.result is not None
    return elapsed


def part1(repeats: int, n: int) -> None:
    mon, edges = meter("thread"), meter("off")
    p_mon = Profiler([mon], sampler_hz=None)
    p_edges = Profiler([edges], sampler_hz=None)
    time.sleep(0.3)
    conditions = {
        "bare": (None, False),
        "monitor, edges only": (p_mon, False),
        "monitor, resolved at stop": (p_mon, True),
        "counter read at edges": (p_edges, True),
    }
    times = {k: [] for k in conditions}
    for _ in range(repeats):
        for name, (p, wait) in conditions.items():
            times[name].append(block(p, n, wait) / n)
    bare = statistics.median(times["bare"])
    print(f"Part 1: added time per window (unit of work {bare * 1e3:.2f} ms, {n} windows x {repeats} interleaved blocks)")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<28} {med * 1e3:8.3f} ms per unit   added {(med - bare) * 1e3:+8.3f} ms per window   ratio {bare / med:.3f}")
    stats = mon.monitor.stats()
    print(
        f"  monitor: {stats['counter_reads']} counter reads ({stats['counter_read_s'] * 1e3:.2f} ms each), "
        f"{stats['field_reads']} field reads, its thread used {stats['thread_cpu_share']:.1%} of a core"
    )
    p_mon.close()
    p_edges.close()


def count_loop(seconds: float) -> float:
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    return n / seconds


class Toggled:
    """A background reader that runs only while enabled, so that conditions can alternate quickly.

    ``kind="monitor"`` drives a monitor's own ``poll`` on its thread's schedule (20 Hz jittered
    field reads, the counter at 4 Hz); ``kind="flat-out"`` reads the counter back to back."""

    def __init__(self, kind: str) -> None:
        import random

        self.kind, self.rng = kind, random.Random(0)
        self.meter = meter("manual")
        self.on = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        mon, gpu = self.meter.monitor, self.meter._nvml.gpus[0]
        while not self.stop.is_set():
            if not self.on.wait(0.05):
                continue
            if self.kind == "flat-out":
                self.meter._nvml.nvmlDeviceGetTotalEnergyConsumption(gpu)
            else:
                mon.poll()
                time.sleep(self.rng.uniform(0.7, 1.3) / mon.field_hz)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.meter.close()


def _child_monitor(ready, done) -> None:
    m = meter("thread")
    ready.set()
    done.wait(600)
    m.close()


def part2(rounds: int, seconds: float = 0.25) -> None:
    import os
    import random
    import signal

    ctx = mp.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_child_monitor, args=(ready, done))
    proc.start()
    ready.wait(30)
    os.kill(proc.pid, signal.SIGSTOP)
    thread, flat = Toggled("monitor"), Toggled("flat-out")
    conds = ["alone", "monitor thread", "counter flat out (thread)", "monitor process"]
    ratios = {k: [] for k in conds}
    rng = random.Random(1)
    try:
        for _ in range(rounds):
            rates = {}
            for name in rng.sample(conds, len(conds)):
                if name == "monitor thread":
                    thread.on.set()
                elif name == "counter flat out (thread)":
                    flat.on.set()
                elif name == "monitor process":
                    os.kill(proc.pid, signal.SIGCONT)
                time.sleep(0.02)
                rates[name] = count_loop(seconds)
                thread.on.clear()
                flat.on.clear()
                if name == "monitor process":
                    os.kill(proc.pid, signal.SIGSTOP)
            for name in conds:
                ratios[name].append(rates[name] / rates["alone"])
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        done.set()
        proc.join()
        thread.close()
        flat.close()
    print(f"Part 2: a pure-Python loop's rate beside the monitor ({rounds} rounds of {seconds:g} s blocks, "
          "conditions in random order within each round; ratio to the same round's 'alone')")
    for name in conds[1:]:
        r = sorted(ratios[name])
        q1, q3 = r[len(r) // 4], r[(3 * len(r)) // 4]
        print(f"  {name:<28} median ratio {statistics.median(r):.3f}   (quartiles {q1:.3f} .. {q3:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--windows", type=int, default=100, help="windows per block in part 1")
    parser.add_argument("--rounds", type=int, default=40, help="rounds of part 2")
    parser.add_argument("--skip-gil", action="store_true", help="skip part 2")
    args = parser.parse_args()
    part1(args.repeats, args.windows)
    if not args.skip_gil:
        part2(args.rounds)


if __name__ == "__main__":
    main()
