"""Honest bounds when the load changes faster than the counter (ipw.devices.nvidia.curve, docs/profilers.md).

An H200-like fake at the pynvml boundary: the energy counter and the instant-power field change
together every 100 ms, so nothing is known of power inside a step. Loads change faster than that:
square waves of 150/450 W at 50 ms and 0.37 s periods and random steps of 5 to 80 ms. Every window
of 10 ms to 1 s, and every query's attributed energy under overlap, must lie inside its bound, with
the power limit known (700 W) or not. Where the field updates every millisecond the bound must stay
much tighter than the placement bound on a steady load, so that making every bound huge fails here.
Time is simulated (the ``clock`` fixture); the test plays the monitor's thread as in test_monitor.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict

import pandas as pd
import pytest

from ipw.profilers.attribution import QueryEvents, Rule, attribute
from ipw.science.intelligence.metrics import summarize
from ipw.devices.nvidia.curve import BASIS_NO_LIMIT, BASIS_SHAPE, CounterTimeline, basis_placement, placement_range_j
from ipw.devices.nvidia.meter import NvmlMeter
from ipw.profilers.windows import Profiler
from ipw.run.serving.curves import _monitor_curve
from tests.fakes.nvml import FakeNvml, SquareTrace, Trace, h200, random_steps
from tests.profilers.test_monitor import Driver

SQUARE_50MS = SquareTrace(150.0, 450.0, 0.05, phase_s=0.013)
SQUARE_370MS = SquareTrace(150.0, 450.0, 0.37, phase_s=0.013)
STEPS = random_steps(999.0, 1100.0, seed=4)  # 60..690 W, a new level every 5..80 ms
LOADS = {"square 50 ms": SQUARE_50MS, "square 0.37 s": SQUARE_370MS, "random steps": STEPS}
STEADY = Trace(base_w=300.0, amp_w=10.0, period_s=0.37)
WINDOWS_S = (0.01, 0.03, 0.1, 0.3, 1.0)


def meter(clock, trace, power_limit_w: float | None = 700.0, field_update_s: float | None = 0.1):
    nvml = FakeNvml([h200(trace, power_limit_w=power_limit_w, field_update_s=field_update_s)], clock)
    return NvmlMeter(0, nvml=nvml, monitor="manual", sleep=clock.advance)


def windows(clock, m, trace, n: int = 8, seed: int = 0):
    """``n`` windows of each length at random phases: (measurement, its gpu:0 domain, true J)."""
    drive, rng, out = Driver(clock, m, seed), random.Random(seed + 1), []
    with Profiler([m], sampler_hz=None) as p:
        drive.run(0.6)
        for seconds in WINDOWS_S:
            for _ in range(n):
                drive.run(rng.uniform(0.0, 0.2))
                w = p.start()
                drive.run(seconds, step_s=min(seconds / 4, 0.005))
                w.stop(wait=False)
                r = w.result
                out.append((r, r.domains["gpu:0"], trace.between_j(r.start_s, r.end_s)))
    return out


@pytest.mark.parametrize("limit_w", [700.0, None])
@pytest.mark.parametrize("load", list(LOADS))
def test_every_window_lies_inside_its_bound_under_loads_faster_than_the_counter(clock, load, limit_w):
    m = meter(clock, LOADS[load], limit_w)
    assert not m.monitor.field_inside_steps and m.monitor.field_period_s == pytest.approx(0.1, abs=0.002)
    got = windows(clock, m, LOADS[load])
    outside = [(round(r.duration_s, 3), d.energy_j - truth, d.uncertainty_j) for r, d, truth in got
               if abs(d.energy_j - truth) > d.uncertainty_j]  # fmt: skip
    assert not outside
    # the bound says what it rests on: the power limit where known, else nothing but the counter
    assert {d.bound_basis for _, d, _ in got} == {basis_placement(700.0) if limit_w else BASIS_NO_LIMIT}
    assert basis_placement(700.0) == "step placement, power <= 700 W (the power limit)"
    # and it is not infinite, nor the same everywhere: longer windows have relatively smaller bounds
    rel = {s: statistics.median(d.uncertainty_j / t for r, d, t in got if abs(r.duration_s - s) < 1e-3) for s in WINDOWS_S}
    assert rel[1.0] < 0.3 < rel[0.01] < float("inf")


def test_a_known_power_limit_narrows_short_windows(clock):
    """10 ms windows in 100 to 300 ms spans of 300 W: the limit allows at most 7 J in the window (plus
    the clock's error at 700 W), without it the whole span."""
    with_limit = [d.uncertainty_j for r, d, _ in windows(clock, meter(clock, STEADY, 700.0), STEADY, n=4)
                  if r.duration_s < 0.02]  # fmt: skip
    without = [d.uncertainty_j for r, d, _ in windows(clock, meter(clock, STEADY, None), STEADY, n=4)
               if r.duration_s < 0.02]  # fmt: skip
    assert max(with_limit) < 8.0 < 15.0 < statistics.median(without)


def test_placement_range_is_what_the_counter_and_limit_allow():
    assert placement_range_j(30.0, 0.1, 0.01, None) == (0.0, 30.0)
    assert placement_range_j(30.0, 0.1, 0.01, 700.0) == pytest.approx((0.0, 7.0))
    assert placement_range_j(60.0, 0.1, 0.05, 700.0) == pytest.approx((25.0, 35.0))  # 700 W at most elsewhere
    assert placement_range_j(80.0, 0.1, 0.05, 700.0) == (0.0, 80.0)  # the step's mean power beat the limit: no limit


def test_a_timeline_whose_field_moves_with_the_counter_spreads_and_bounds_by_placement():
    tl = CounterTimeline(power_cap_w=None)
    tl.add_counter(0.0, 0.0)
    tl.add_counter(0.1, 30.0)
    tl.add_power(0.0, 100.0)
    tl.add_power(0.1, 500.0)  # the field, only at the counter's instants
    span = tl.energy(0.0, 0.01)
    assert 0 < span.energy_j < 3.0 and span.uncertainty_j >= 30.0 - span.energy_j  # all 30 J may be in it
    tl.power_cap_w = 700.0
    assert tl.energy(0.0, 0.01).uncertainty_j == pytest.approx(7.0 - span.energy_j + 2e-3)


def test_a_fast_field_keeps_the_shaped_bound_much_tighter_than_placement(clock):
    m = meter(clock, STEADY, 700.0, field_update_s=0.001)
    assert m.monitor.field_inside_steps and m.monitor.field_period_s < 0.005
    got = windows(clock, m, STEADY, n=6)
    assert all(abs(d.energy_j - t) <= d.uncertainty_j for _, d, t in got)
    tl, err = m.monitor.timeline, m.monitor.clock.offset()[1]
    ratios = []
    for r, d, _ in got:
        tl.shape_inside_steps = False  # the same timeline, bounded as if the field said nothing inside steps
        placed = tl.energy(r.start_s, r.end_s, err).uncertainty_j
        tl.shape_inside_steps = True
        ratios.append(d.uncertainty_j / placed)
    assert statistics.median(ratios) < 0.25
    assert any(BASIS_SHAPE in d.bound_basis for _, d, _ in got)


def test_no_instant_field_is_bounded_by_placement(clock):
    nvml = FakeNvml([h200(SQUARE_370MS, has_instant_field=False)], clock)
    m = NvmlMeter(0, nvml=nvml, monitor="manual", sleep=clock.advance)
    assert not m.monitor.has_field and not m.monitor.field_inside_steps
    got = windows(clock, m, SQUARE_370MS, n=4)
    assert all(abs(d.energy_j - t) <= d.uncertainty_j for _, d, t in got)


def test_windows_shorter_than_the_update_period_are_flagged_and_counted(clock):
    got = windows(clock, meter(clock, STEADY), STEADY, n=3)
    for r, _, _ in got:
        assert ("sub-update-period:gpu:0" in r.flags) == (r.duration_s < 0.1)
    spans = [r.duration_s for r, _, _ in got]
    frame = pd.DataFrame({"id": [str(i) for i in range(len(got))], "correct": True, "error": None,
                          "energy_j": [r.energy_j for r, _, _ in got], "window_s": spans, "e2e_s": spans,
                          "measured": True, "flags": [tuple(r.flags) for r, _, _ in got]})  # fmt: skip
    assert summarize(frame, n_boot=10).iloc[0]["sub_update_period"] == 2 * 3  # the 10 and 30 ms windows


# -- per-query bounds under overlap (ipw.profilers.attribution on the monitor's curve) ------------------------


def random_queries(rng: random.Random, t0: float, t1: float, n: int = 14) -> list[QueryEvents]:
    """Overlapping queries of 10 ms to 1 s (first token inside, some tokens) between t0 and t1."""
    out = []
    for i in range(n):
        length = rng.choice([0.01, 0.03, 0.1, 0.3, 1.0]) * rng.uniform(0.8, 1.2)
        start = rng.uniform(t0, t1 - length)
        first = start + rng.uniform(0.1, 0.5) * length
        last = first + rng.uniform(0.3, 0.9) * (start + length - first)
        out.append(QueryEvents(f"q{i}", start, start + length, first, last, rng.randint(1, 300), rng.randint(1, 60)))
    return out


def rule_truth(events: list[QueryEvents], trace) -> dict[str, float]:
    """The rule's definition (ipw.profilers.attribution's docstring) integrated exactly over the known trace:
    the shares are constant between event times, so each piece is share x the trace's integral."""
    cuts = sorted({t for e in events for t in (e.t_start_s, e.t_first_s, e.t_last_s, e.t_end_s)})
    out: dict[str, float] = defaultdict(float)
    for a, b in zip(cuts, cuts[1:]):
        mid = 0.5 * (a + b)
        live = [e for e in events if e.t_start_s <= mid < e.t_end_s]
        rates = {}
        for e in live:
            if mid < e.t_first_s:
                rates[e.key] = e.input_tokens / (e.t_first_s - e.t_start_s)
            elif mid < e.t_last_s and e.output_tokens >= 2:
                rates[e.key] = (e.output_tokens - 1) / (e.t_last_s - e.t_first_s)
            else:
                rates[e.key] = 0.0
        total = sum(rates.values())
        for e in live:
            out[e.key] += (rates[e.key] / total if total > 0 else 1.0 / len(live)) * trace.between_j(a, b)
    return out


@pytest.mark.parametrize("limit_w", [700.0, None])
@pytest.mark.parametrize("load", list(LOADS))
def test_per_query_energy_under_overlap_lies_inside_its_bound(clock, load, limit_w):
    trace = LOADS[load]
    m = meter(clock, trace, limit_w)
    drive = Driver(clock, m, seed=2)
    drive.run(0.5)
    t0 = clock.t
    drive.run(3.0)
    events = random_queries(random.Random(list(LOADS).index(load)), t0 + 0.2, clock.t - 0.3)
    curve = _monitor_curve(m.monitor)
    truth = rule_truth(events, trace)
    results = attribute(events, {"gpu:0": curve}, Rule())
    assert len(results) == len(events)
    for r in results:
        err = abs(r.energy_j["gpu:0"] - truth[r.key])
        assert err <= r.uncertainty_j["gpu:0"] < float("inf"), (r.key, err, r.uncertainty_j["gpu:0"])
    m.close()
