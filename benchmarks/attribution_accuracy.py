"""Accuracy of per-window energy against a known power trace, for windows from 5 ms to 10 s.

Four fake GPUs at the pynvml boundary follow the same known trace; their energy counters refresh
every 0 (always fresh), 1, 10 and 100 ms. Windows run in real time (real sleeps, the real clock)
through the real Profiler, so timer jitter counts. For each window length and counter it prints the
median and worst relative error against the trace's integral over the window's own recorded edges,
and the share of windows whose error stayed within their reported uncertainty bound.
Usage: python benchmarks/attribution_accuracy.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipw.profilers.nvidia import NvmlMeter  # noqa: E402
from ipw.profilers.session import Profiler  # noqa: E402
from tests.fakes.nvml import FakeGpu, FakeNvml, Trace  # noqa: E402

UPDATES_S = [0.0, 0.001, 0.01, 0.1]
WINDOWS_S = [0.005, 0.01, 0.05, 0.1, 1.0, 10.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    trace = Trace(base_w=250.0, amp_w=100.0, period_s=0.37)
    nvml = FakeNvml([FakeGpu(trace, update_s=u) for u in UPDATES_S], time.monotonic)
    meters = [NvmlMeter(i, nvml=nvml, update_period_s=u or 1e-6) for i, u in enumerate(UPDATES_S)]
    errors = {(w, u): [] for w in WINDOWS_S for u in UPDATES_S}
    within = {(w, u): 0 for w in WINDOWS_S for u in UPDATES_S}
    with Profiler(meters, sampler_hz=20) as profiler:
        time.sleep(0.3)  # let the timeline give every counter a recent power
        for _ in range(args.repeats):
            for seconds in WINDOWS_S:
                window = profiler.start()
                starts = {d: r.t_s for d, r in window._start.items()}
                time.sleep(seconds)
                m = window.stop()
                for i, u in enumerate(UPDATES_S):
                    d = m.domains[f"gpu:{i}"]
                    truth = trace.between_j(starts[d.domain], starts[d.domain] + d.duration_s)
                    errors[(seconds, u)].append(abs(d.energy_j - truth) / truth)
                    within[(seconds, u)] += abs(d.energy_j - truth) <= d.uncertainty_j
    print(f"{'window':>8} {'counter refresh':>15} {'median err':>11} {'worst err':>10} {'within bound':>13}")
    for seconds in WINDOWS_S:
        for u in UPDATES_S:
            e = errors[(seconds, u)]
            print(
                f"{seconds * 1e3:>6.0f}ms {u * 1e3:>13.0f}ms {statistics.median(e):>10.2%} {max(e):>10.2%}"
                f" {within[(seconds, u)]:>7}/{len(e)}"
            )


if __name__ == "__main__":
    main()
