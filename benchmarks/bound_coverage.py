"""How wide window bounds are, and whether every window lies inside its own, under loads faster than the counter.

An H200-like fake at the pynvml boundary (tests/fakes/nvml.py: the counter and the instant field
change together every 100 ms; or, with ``field 1 ms``, a field that updates every millisecond), on a
simulated clock, so that the figures are exact and the run takes seconds: the script plays the
monitor's thread (a poll about 20 times a second, jittered, as the real thread does) while it
advances the clock. Loads: steady 300 W with a 10 W ripple, a 150..450 W sine of 0.37 s, square
waves of 150/450 W at 50 ms and 0.37 s periods, and random levels of 60..690 W every 5..80 ms.
Windows of 10 ms to 1 s open at random phases through the real Profiler. For each load, power
limit (700 W, or unknown), field and window length it prints the median and worst relative error
against the trace's integral, the median bound relative to the window's true energy, and how many
windows lie inside their bound. Then the same for per-query energy under overlap (ipw.profilers.attribution on
the monitor's curve), 14 overlapping queries of 10 ms to 1 s per seed.
Usage: python benchmarks/bound_coverage.py [--windows 20] [--counter-hz 4] [--seeds 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipw.profilers.attribution import Rule, attribute  # noqa: E402
from ipw.core import clock  # noqa: E402
from ipw.devices.nvidia.meter import NvmlMeter  # noqa: E402
from ipw.profilers.windows import Profiler  # noqa: E402
from ipw.run.serving.curves import _monitor_curve  # noqa: E402
from tests.fakes.clock import FakeClock  # noqa: E402
from tests.fakes.nvml import FakeNvml, SquareTrace, Trace, h200, random_steps  # noqa: E402
from tests.profilers.test_bounds import random_queries, rule_truth  # noqa: E402

LOADS = {
    "steady": Trace(300.0, 10.0, 0.37), "sine 0.37 s": Trace(300.0, 150.0, 0.37),
    "square 50 ms": SquareTrace(150.0, 450.0, 0.05, 0.013), "square 0.37 s": SquareTrace(150.0, 450.0, 0.37, 0.013),
    "random steps": random_steps(999.0, 1200.0, seed=4),
}  # fmt: skip
WINDOWS_S = (0.01, 0.03, 0.1, 0.3, 1.0)
FIELDS = {"field 100 ms": 0.1, "field 1 ms": 0.001}


class Clocked:
    """A meter on a fresh simulated clock, and the monitor's thread played by :meth:`run`."""

    def __init__(self, trace, limit_w, field_s, counter_hz, seed) -> None:
        self.clock = FakeClock()
        clock.now = self.clock  # every stamp and read in ipw takes this clock
        gpu = h200(trace, power_limit_w=limit_w, field_update_s=field_s)
        self.meter = NvmlMeter(0, nvml=FakeNvml([gpu], self.clock), monitor="manual", sleep=self.clock.advance,
                               counter_hz=counter_hz)  # fmt: skip
        self.rng, self.next_poll = random.Random(seed), self.clock.t

    def run(self, seconds: float, step_s: float = 0.005) -> None:
        end = self.clock.t + seconds
        while self.clock.t < end - 1e-12:
            self.clock.advance(min(step_s, end - self.clock.t))
            if self.clock.t >= self.next_poll:
                self.meter.monitor.poll()
                self.next_poll = self.clock.t + self.rng.uniform(0.7, 1.3) / self.meter.monitor.field_hz


def windows(trace, limit_w, field_s, counter_hz, n, seed=1) -> dict[float, list[tuple[float, float, bool]]]:
    """Per window length: (relative error, bound / true energy, inside) of ``n`` windows."""
    c = Clocked(trace, limit_w, field_s, counter_hz, seed)
    rng, out = random.Random(seed + 10), {s: [] for s in WINDOWS_S}
    with Profiler([c.meter], sampler_hz=None) as p:
        c.run(0.6)
        for _ in range(n):
            for seconds in rng.sample(WINDOWS_S, len(WINDOWS_S)):
                c.run(rng.uniform(0.0, 0.2))
                w = p.start()
                c.run(seconds, step_s=min(seconds / 4, 0.005))
                w.stop(wait=False)
                m, d = w.result, w.result.domains["gpu:0"]
                truth = trace.between_j(m.start_s, m.end_s)
                out[seconds].append((abs(d.energy_j - truth) / truth, d.uncertainty_j / truth,
                                     abs(d.energy_j - truth) <= d.uncertainty_j))  # fmt: skip
    return out


def queries(trace, limit_w, field_s, counter_hz, seeds) -> tuple[int, int, float]:
    """(inside, total, median bound / true energy) of per-query energies under overlap."""
    inside = total = 0
    rel = []
    for seed in range(seeds):
        c = Clocked(trace, limit_w, field_s, counter_hz, seed)
        c.run(0.5)
        t0 = c.clock.t
        c.run(3.0)
        events = random_queries(random.Random(seed), t0 + 0.2, c.clock.t - 0.3)
        truth = rule_truth(events, trace)
        for r in attribute(events, {"gpu:0": _monitor_curve(c.meter.monitor)}, Rule()):
            total += 1
            inside += abs(r.energy_j["gpu:0"] - truth[r.key]) <= r.uncertainty_j["gpu:0"]
            rel.append(r.uncertainty_j["gpu:0"] / truth[r.key])
        c.meter.close()
    return inside, total, statistics.median(rel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=20, help="windows of each length per case")
    parser.add_argument("--counter-hz", type=float, default=4.0, help="the monitor's counter read rate")
    parser.add_argument("--seeds", type=int, default=5, help="query sets per case (14 queries each)")
    args = parser.parse_args()
    print(f"{'load':<14} {'limit':>6} {'field':<12} {'window':>7} {'median err':>10} {'worst err':>10}"
          f" {'median bound':>12} {'inside':>7}")  # fmt: skip
    for load, trace in LOADS.items():
        for limit in (700.0, None):
            for field, field_s in FIELDS.items():
                got = windows(trace, limit, field_s, args.counter_hz, args.windows)
                for s, rows in got.items():
                    print(f"{load:<14} {'700 W' if limit else 'none':>6} {field:<12} {s * 1e3:>5.0f}ms"
                          f" {statistics.median(r[0] for r in rows):>10.1%} {max(r[0] for r in rows):>10.1%}"
                          f" {statistics.median(r[1] for r in rows):>12.0%} {sum(r[2] for r in rows):>3}/{len(rows)}")  # fmt: skip
    print(f"\nper-query energy under overlap ({args.seeds} x 14 queries of 10 ms to 1 s)")
    for load, trace in LOADS.items():
        for limit in (700.0, None):
            for field, field_s in FIELDS.items():
                inside, total, rel = queries(trace, limit, field_s, args.counter_hz, args.seeds)
                print(f"{load:<14} {'700 W' if limit else 'none':>6} {field:<12} inside {inside}/{total},"
                      f" median bound {rel:.0%} of the query's energy")  # fmt: skip


if __name__ == "__main__":
    main()
