"""The attribution rule (ipw.profilers.attribution): hand-worked cases, conservation, honest bounds, steady state.

Expectations are computed two ways that share no code with the module: by hand for small cases, and
by a brute-force integral of the rule's definition on a fine grid against a known power trace.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ipw.profilers.attribution import AttributionError, Curve, QueryEvents, Rule, attribute
from ipw.profilers.steady import active_energy, active_intervals, steady_state, steady_window, tokens_between


def exact(power_w: float = 10.0) -> Curve:
    """A counter read every ms with no update period: constant power, cumulative = P t."""
    t = np.arange(-1.0, 10.0, 0.001)
    return Curve.from_samples(t, power_w * t)


A = QueryEvents("A", 0.0, 3.0, 1.0, 3.0, input_tokens=10, output_tokens=21)  # prefill 10 tok/s, decode 10 tok/s
B = QueryEvents("B", 1.0, 4.0, 2.0, 3.0, input_tokens=10, output_tokens=11)  # prefill 10 tok/s, decode 10 tok/s, tail [3, 4)


def by_key(results):
    return {r.key: r for r in results}


def test_hand_worked_case_alpha_one():
    # [0,1): A alone, 10 J. [1,2): A decode 10/s, B prefill 10/s: 5 J each. [2,3): 5 J each.
    # [3,4): B in flight with no work left: all 10 J to B (equal split among those in flight).
    r = by_key(attribute([A, B], {"gpu": exact()}))
    assert r["A"].energy_j["gpu"] == pytest.approx(20.0) and r["B"].energy_j["gpu"] == pytest.approx(20.0)
    assert r["A"].prefill_j["gpu"] == pytest.approx(10.0) and r["A"].decode_j["gpu"] == pytest.approx(10.0)
    assert r["B"].prefill_j["gpu"] == pytest.approx(5.0) and r["B"].decode_j["gpu"] == pytest.approx(15.0)
    assert r["A"].share_s == pytest.approx(2.0) and r["B"].share_s == pytest.approx(2.0)


def test_hand_worked_case_prefill_weight_half():
    # [1,2): A decode rate 10, B prefill rate 0.5 * 10 = 5: A gets 2/3 of 10 J, B 1/3
    r = by_key(attribute([A, B], {"gpu": exact()}, Rule(prefill_weight=0.5)))
    assert r["A"].energy_j["gpu"] == pytest.approx(10 + 20 / 3 + 5)
    assert r["B"].energy_j["gpu"] == pytest.approx(10 / 3 + 5 + 10)
    assert Rule(0.5).to_dict() == {"prefill_weight": 0.5, "name": "token-rate-share", "version": 2, "module": "ipw.profilers.attribution"}


def test_a_query_the_server_says_was_queued_shares_nothing_while_it_waits():
    # B is sent at 1 s but the server starts it at 2.5 s (t_served): [1, 2.5) is queue, rate 0, so A,
    # at work there, takes all of it. [2.5, 3): A decode 10/s, B prefill 10 tok / 0.5 s = 20/s.
    queued = QueryEvents("B", 1.0, 4.0, 3.0, 3.5, input_tokens=10, output_tokens=6, t_served_s=2.5)
    a = QueryEvents("A", 0.0, 3.0, 1.0, 3.0, input_tokens=10, output_tokens=21)
    r = by_key(attribute([a, queued], {"gpu": exact()}))
    assert r["A"].energy_j["gpu"] == pytest.approx(10 + 15 + 5 / 3)
    assert r["B"].energy_j["gpu"] == pytest.approx(10 / 3 + 10)  # its prefill share, then alone from 3 s
    assert r["B"].prefill_j["gpu"] == pytest.approx(10 / 3)
    version_1 = by_key(attribute([a, QueryEvents("B", 1.0, 4.0, 3.0, 3.5, 10, 6)], {"gpu": exact()}))
    assert version_1["B"].energy_j["gpu"] == pytest.approx(20 / 3 + 10)  # without t_served: a third of [1, 3)
    same = by_key(attribute([a, QueryEvents("B", 1.0, 4.0, 3.0, 3.5, 10, 6, t_served_s=1.0)], {"gpu": exact()}))
    assert same["B"].energy_j["gpu"] == pytest.approx(version_1["B"].energy_j["gpu"])  # served at once: as version 1
    with pytest.raises(AttributionError, match="start <= served <= first token, got start=1.0, served=3.2"):
        QueryEvents("B", 1.0, 4.0, 3.0, 3.5, 10, 6, t_served_s=3.2)


def test_idle_time_between_queries_is_charged_to_no_query():
    a = QueryEvents("a", 0.0, 1.0, 0.5, 1.0, 4, 5)
    b = QueryEvents("b", 2.0, 3.0, 2.5, 3.0, 4, 5)
    r = by_key(attribute([a, b], {"gpu": exact()}))
    assert r["a"].energy_j["gpu"] == pytest.approx(10.0) and r["b"].energy_j["gpu"] == pytest.approx(10.0)
    active_s, energy = active_energy([a, b], {"gpu": exact()})
    assert active_s == pytest.approx(2.0) and energy["gpu"] == pytest.approx(20.0)
    assert active_intervals([a, b]) == [(0.0, 1.0), (2.0, 3.0)]


def test_attempts_of_one_query_are_summed():
    failed = QueryEvents("q", 0.0, 0.5, None, None, 8, 0)  # refused: prefill work over its whole span
    retry = QueryEvents("q", 1.0, 2.0, 1.2, 2.0, 8, 9)
    (r,) = attribute([failed, retry], {"gpu": exact()})
    assert r.energy_j["gpu"] == pytest.approx(15.0) and r.prefill_j["gpu"] == pytest.approx(5.0 + 2.0)


# -- a known trace and a coarse counter --------------------------------------------------------------

DT = 1e-4


def trace(seed: int):
    """(fine time grid, power [W] on it, cumulative energy [J]): slow wave, fast wave and load steps."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 6.0, DT)
    steps = np.repeat(rng.uniform(0, 120, 60), len(t) // 60 + 1)[: len(t)]
    p = 80 + 40 * np.sin(2 * np.pi * t / 0.9 + seed) + 30 * np.sin(2 * np.pi * t / 0.07) ** 2 + steps
    e = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * DT)])
    return t, p, e


def counter_curve(t, e, update_s: float, every_s: float, seed: int) -> Curve:
    """What a timeline sees: a counter that takes a new value every ``update_s`` (at a random phase),
    read every ``every_s`` with jitter."""
    rng = np.random.default_rng(seed + 100)
    phase = rng.uniform(0, update_s) if update_s else 0.0
    reads = np.arange(0.02, t[-1] - 0.02, every_s) + rng.uniform(0, every_s / 3, size=int((t[-1] - 0.04) / every_s) + 1)[: len(np.arange(0.02, t[-1] - 0.02, every_s))]
    held = np.floor((reads - phase) / update_s) * update_s + phase if update_s else reads
    values = np.interp(held, t, e)
    return Curve.from_samples(reads, values, update_s, 0.0, 1e-3)


def random_events(seed: int, n: int = 12) -> list[QueryEvents]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        start = rng.uniform(0.3, 4.5)
        ttft = rng.uniform(0.01, 0.4)
        n_out = int(rng.integers(1, 40))
        tpot = rng.uniform(0.005, 0.05)
        last = start + ttft + tpot * (n_out - 1)
        end = last + rng.uniform(0, 0.05)
        out.append(QueryEvents(f"q{i}", start, end, start + ttft, last, float(rng.integers(1, 200)), n_out))
    return out


def brute(events, t, p, alpha=1.0):
    """The rule's definition, integrated on the fine grid: {key: (total, prefill, decode)} [J]."""
    rates, inside, split = {}, {}, {}
    flight = np.zeros_like(t)
    for e in events:
        live = (t >= e.t_start_s) & (t < e.t_end_s)
        flight += live
        first = e.t_end_s if e.t_first_s is None else e.t_first_s
        r = np.where((t >= e.t_start_s) & (t < first), alpha * e.input_tokens / max(first - e.t_start_s, 1e-12), 0.0)
        if e.t_first_s is not None and e.output_tokens >= 2 and e.t_last_s > e.t_first_s:
            r = r + np.where((t >= e.t_first_s) & (t < e.t_last_s), (e.output_tokens - 1) / (e.t_last_s - e.t_first_s), 0.0)
        rates[e.key], inside[e.key], split[e.key] = r, live, t < first
    total = sum(rates.values())
    out = {}
    for k in rates:
        s = np.where(total > 0, rates[k] / np.where(total > 0, total, 1.0), inside[k] / np.maximum(flight, 1))
        de = s * p * DT
        out[k] = (de.sum(), de[split[k]].sum(), de[~split[k]].sum())
    return out


@pytest.mark.parametrize("seed", range(8))
def test_conservation_on_overlapping_queries(seed):
    t, p, e = trace(seed)
    curve = counter_curve(t, e, 0.1, 0.05, seed)
    events = random_events(seed)
    results = attribute(events, {"gpu": curve})
    _, active = active_energy(events, {"gpu": curve})
    assert sum(r.energy_j["gpu"] for r in results) == pytest.approx(active["gpu"], rel=1e-12, abs=1e-9)
    for r in results:
        assert r.prefill_j["gpu"] + r.decode_j["gpu"] == pytest.approx(r.energy_j["gpu"], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("update_s,every_s", [(0.1, 0.05), (0.0, 0.01), (0.02, 0.25)])
def test_bounds_hold_against_the_true_trace(seed, update_s, every_s):
    t, p, e = trace(seed)
    curve = counter_curve(t, e, update_s, every_s, seed)
    events = random_events(seed)
    truth = brute(events, t, p)
    for r in attribute(events, {"gpu": curve}):
        total, pre, dec = truth[r.key]
        assert abs(r.energy_j["gpu"] - total) <= r.uncertainty_j["gpu"] + 1e-6
        assert abs(r.prefill_j["gpu"] - pre) <= r.prefill_uncertainty_j["gpu"] + 1e-6
        assert abs(r.decode_j["gpu"] - dec) <= r.decode_uncertainty_j["gpu"] + 1e-6


def test_a_fine_timeline_is_close_and_its_bounds_are_tight():
    t, p, e = trace(3)
    curve = counter_curve(t, e, 0.0, 0.002, 3)
    events = random_events(3)
    truth = brute(events, t, p)
    for r in attribute(events, {"gpu": curve}):
        assert r.energy_j["gpu"] == pytest.approx(truth[r.key][0], rel=0.01, abs=0.05)
        assert r.uncertainty_j["gpu"] < 0.25 * truth[r.key][0] + 0.5


def test_a_query_shorter_than_the_update_period_gets_a_real_bound_not_zero():
    t, p, e = trace(1)
    curve = counter_curve(t, e, 0.1, 0.05, 1)
    short = QueryEvents("s", 2.013, 2.041, 2.02, 2.04, 10, 3)  # 28 ms inside a 100 ms counter step
    (r,) = attribute([short], {"gpu": curve})
    truth = brute([short], t, p)["s"][0]
    assert r.uncertainty_j["gpu"] > 0 and abs(r.energy_j["gpu"] - truth) <= r.uncertainty_j["gpu"]


def test_outside_the_timeline_the_bound_is_infinite():
    curve = Curve.from_samples([0.0, 1.0, 2.0], [0.0, 10.0, 20.0], 0.1)
    (r,) = attribute([QueryEvents("late", 1.5, 2.5, 1.6, 2.4, 3, 4)], {"gpu": curve})
    assert math.isinf(r.uncertainty_j["gpu"]) and not r.covered["gpu"]


@pytest.mark.parametrize("kwargs,match", [
    ({"t_start_s": 2.0, "t_end_s": 1.0}, "start <= first token"),
    ({"t_first_s": 0.5, "t_last_s": 0.4}, "start <= first token"),
    ({"t_first_s": 0.5}, "first token time needs a last"),
    ({"output_tokens": -1}, "token counts"),
    ({"t_end_s": float("nan")}, "finite"),
])  # fmt: skip
def test_bad_events_are_errors(kwargs, match):
    base = {"key": "x", "t_start_s": 0.0, "t_end_s": 1.0}
    with pytest.raises(AttributionError, match=match):
        QueryEvents(**(base | kwargs))


def test_bad_curves_and_rules_are_errors():
    with pytest.raises(AttributionError, match="non-decreasing"):
        Curve(np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([5.0, 4.0]))
    with pytest.raises(AttributionError, match="equally long"):
        Curve(np.array([0.0]), np.array([0.0, 1.0]), np.array([5.0]))
    with pytest.raises(AttributionError, match="prefill_weight"):
        Rule(prefill_weight=-1)


def test_steady_window_follows_ml_energy():
    # 10 queries with first tokens at 1..10 s; at level 3 the steady state runs from the 3rd
    # first token to the (10 - 3) = 7th
    events = [QueryEvents(f"q{i}", 0.0, i + 0.5, float(i), i + 0.5, 1, 2) for i in range(1, 11)]
    assert steady_window(events, 3) == (3.0, 7.0)
    assert steady_window(events, 5) is None  # n - level = 5: the ramp-down starts as the ramp-up ends
    assert steady_window(events, 1) == (1.0, 9.0)
    with pytest.raises(AttributionError):
        steady_window(events, 0)


def test_steady_state_figures():
    events = [QueryEvents(f"q{i}", float(i), i + 2.0, i + 0.5, i + 1.5, 5, 11,
                          tuple(np.linspace(i + 0.5, i + 1.5, 11))) for i in range(8)]  # fmt: skip
    s = steady_state(events, {"gpu": exact(10.0)}, 2)
    assert (s["start_s"], s["end_s"]) == (1.5, 5.5)
    assert s["output_tokens"] == tokens_between(events, 1.5, 5.5) == 44
    assert s["domains"]["gpu"]["energy_j"] == pytest.approx(40.0)
    assert s["domains"]["gpu"]["j_per_token"] == pytest.approx(40.0 / 44)
    assert s["domains"]["gpu"]["power_w"] == pytest.approx(10.0) and s["tokens_per_s"] == pytest.approx(11.0)


def test_a_curve_that_bounds_its_estimate_telescopes_the_shares():
    # A's share steps 0 -> 1 at t=0, 1 -> 1/2 at t=1, 1/2 -> 0 at t=3: sum of jumps 2, each edge within 0.01 J
    t = np.arange(-1.0, 6.0, 0.5)
    coarse = Curve.from_samples(t, 10 * t, update_period_s=0.5)
    shaped = Curve(coarse.t_lo, coarse.t_hi, coarse.energy_j, 0.0, edge_error=lambda x: np.full(np.shape(x), 0.01))
    a_coarse = by_key(attribute([A, B], {"gpu": coarse}))["A"].uncertainty_j["gpu"]
    a_shaped = by_key(attribute([A, B], {"gpu": shaped}))["A"].uncertainty_j["gpu"]
    assert a_coarse == pytest.approx(5.0) and a_shaped == pytest.approx(0.02)
    loose = Curve(coarse.t_lo, coarse.t_hi, coarse.energy_j, 0.0, edge_error=lambda x: np.full(np.shape(x), 100.0))
    assert by_key(attribute([A, B], {"gpu": loose}))["A"].uncertainty_j["gpu"] == pytest.approx(5.0)  # the smaller one
