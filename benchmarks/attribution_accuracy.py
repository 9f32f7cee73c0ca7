"""Accuracy of per-window energy against a known power trace, on an H200-like counter, 10 ms to 3 s.

Fake GPUs at the pynvml boundary behave as the H200 measured on this project (tests/fakes/nvml.py):
the energy counter and the instant-power field change every 100 ms, field values carry driver
timestamps, a counter read spends 3.9 ms of CPU (without the GIL, as the real call) and a field
read 5.5 us. For each of three loads (steady: 300 W with a 10 W ripple; varying: 300 W +- 150 W with
a 0.37 s period; square: 150/450 W with a 50 ms period, faster than the counter) two fake GPUs follow
the same trace: one read by the background monitor (windows
stamp their edges; energy from the rebuilt power curve), one read at the window edges (what ipw did
before). Windows run in real time (real sleeps, the real clock) at random phases through the real
Profiler, all four GPUs in the same windows, window lengths interleaved. For each load, window
length and method it prints the median and worst relative error against the trace's integral over
the window's own edges, the median bound relative to that integral, and the share of windows inside
their reported bound. (benchmarks/bound_coverage.py gives the same on a simulated clock, for more
loads, with and without a power limit.)
Goals (monitor, steady load): median error under 5% at 30 ms, under 1% from 300 ms.
Usage: python benchmarks/attribution_accuracy.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipw.devices.nvidia.meter import NvmlMeter  # noqa: E402
from ipw.profilers.windows import Profiler  # noqa: E402
from tests.fakes.nvml import FakeNvml, SquareTrace, Trace, h200  # noqa: E402

LOADS = {"steady": Trace(base_w=300.0, amp_w=10.0, period_s=0.37), "varying": Trace(base_w=300.0, amp_w=150.0, period_s=0.37),
         "square": SquareTrace(150.0, 450.0, 0.05)}  # fmt: skip
METHODS = ("monitor", "edge reads")
WINDOWS_S = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    gpus = [h200(trace) for trace in LOADS.values() for _ in METHODS]
    nvml = FakeNvml(gpus, time.monotonic, cost="real")
    meters, which = [], {}
    for i, (load, method) in enumerate((load, method) for load in LOADS for method in METHODS):
        meters.append(NvmlMeter(i, nvml=nvml, monitor="thread" if method == "monitor" else "off", update_period_s=0.1))
        which[f"gpu:{i}"] = (load, method)
    keys = [(load, method, s) for load in LOADS for method in METHODS for s in WINDOWS_S]
    errors = {k: [] for k in keys}
    bounds = {k: [] for k in keys}
    within = {k: 0 for k in keys}
    rng = random.Random(0)
    with Profiler(meters, sampler_hz=None) as profiler:
        time.sleep(0.5)
        for _ in range(args.repeats):
            for seconds in rng.sample(WINDOWS_S, len(WINDOWS_S)):
                time.sleep(rng.uniform(0.0, 0.1))  # a random phase against the 100 ms steps
                with profiler.window() as w:
                    time.sleep(seconds)
                m = w.result
                for domain, d in m.domains.items():
                    load, method = which[domain]
                    if method == "monitor":  # the window is the span between its stamps
                        truth = LOADS[load].between_j(m.start_s, m.end_s)
                    else:  # edge reads: the span between the window's own reads of this counter
                        truth = LOADS[load].between_j(w._start[domain].t_s, w._end[domain].t_s)
                    errors[(load, method, seconds)].append(abs(d.energy_j - truth) / truth)
                    bounds[(load, method, seconds)].append(d.uncertainty_j / truth)
                    within[(load, method, seconds)] += abs(d.energy_j - truth) <= d.uncertainty_j
        stats = meters[0].monitor.stats()
    print(f"{'load':<8} {'window':>7} {'method':<11} {'median err':>10} {'worst err':>10} {'median bound':>12} {'within bound':>13}")
    for load in LOADS:
        for seconds in WINDOWS_S:
            for method in METHODS:
                e = errors[(load, method, seconds)]
                print(
                    f"{load:<8} {seconds * 1e3:>5.0f}ms {method:<11} {statistics.median(e):>10.2%} {max(e):>10.2%}"
                    f" {statistics.median(bounds[(load, method, seconds)]):>12.1%} {within[(load, method, seconds)]:>7}/{len(e)}"
                )
    print(
        f"monitor: {stats['counter_reads']} counter reads, {stats['field_reads']} field reads, "
        f"clock offset error {stats['clock_offset_err_s'] * 1e3:.2f} ms, thread {stats['thread_cpu_share']:.1%} of a core"
    )


if __name__ == "__main__":
    main()
