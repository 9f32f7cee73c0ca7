"""Active time and the steady state of a serving run, on the same curves the attribution rule reads (:mod:`ipw.profilers.attribution`): active energy, ML.ENERGY's steady-state window, tokens and J/token inside it."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence

import numpy as np

from ipw.profilers.attribution import INF, AttributionError, Curve, QueryEvents


def active_intervals(events: Sequence[QueryEvents]) -> list[tuple[float, float]]:
    """The union of the queries' spans, as disjoint sorted intervals (the run's active time)."""
    spans = sorted((e.t_start_s, e.t_end_s) for e in events if e.t_end_s > e.t_start_s)
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def active_energy(events: Sequence[QueryEvents], curves: Mapping[str, Curve]) -> tuple[float, dict[str, float]]:
    """(active time [s], energy per domain over it [J]) on the same curves the rule reads."""
    spans = active_intervals(events)
    if not spans:
        return 0.0, {d: 0.0 for d in curves}
    a, b = np.array(spans).T
    return float((b - a).sum()), {d: float((c.at(b) - c.at(a)).sum()) for d, c in curves.items()}


def steady_window(events: Sequence[QueryEvents], level: int) -> tuple[float, float] | None:
    """The steady state of a run at ``level`` queries in flight, as ML.ENERGY defines it
    (Chung et al., arXiv 2505.06371; ``mlenergy/llm/benchmark.py``): from the moment ``level``
    queries have received their first token to the moment ``n - level`` have, n the queries with a
    first token. Before it the server ramps up; after it fewer than ``level`` remain and it ramps
    down. None when ``n - level <= level`` (no steady state: too few queries for the level)."""
    if level < 1:
        raise AttributionError(f"level must be >= 1, got {level}")
    firsts = sorted({e.key: e.t_first_s for e in events if e.t_first_s is not None}.values())
    n = len(firsts)
    if n - level < level:
        return None
    a, b = firsts[level - 1], firsts[n - level - 1]
    return (a, b) if b > a else None


def tokens_between(events: Sequence[QueryEvents], a: float, b: float) -> float:
    """Output tokens emitted in ``[a, b)``: each query's token times counted, weighted by
    output tokens / timed tokens where a server sends several tokens per chunk."""
    total = 0.0
    for e in events:
        times = e.token_times_s
        if not times:
            continue
        inside = bisect.bisect_left(times, b) - bisect.bisect_left(times, a)
        total += inside * (e.output_tokens / len(times) if e.output_tokens else 1.0)
    return total


def steady_state(events: Sequence[QueryEvents], curves: Mapping[str, Curve], level: int) -> dict | None:
    """Steady-state figures (:func:`steady_window`): duration [s], output tokens, tokens/s, and per
    domain energy [J] with its bound [J], J/token and mean power [W]. None without a steady state."""
    window = steady_window(events, level)
    if window is None:
        return None
    a, b = window
    tokens = tokens_between(events, a, b)
    out = {"start_s": a, "end_s": b, "duration_s": b - a, "output_tokens": tokens,
           "tokens_per_s": tokens / (b - a), "level": level, "domains": {}}  # fmt: skip
    for d, c in curves.items():
        energy = float(c.at(np.array([b]))[0] - c.at(np.array([a]))[0])
        bound = _edge_bound(c, a) + _edge_bound(c, b)
        out["domains"][d] = {"energy_j": energy, "uncertainty_j": bound, "power_w": energy / (b - a),
                             "j_per_token": energy / tokens if tokens else None}  # fmt: skip
    return out


def _edge_bound(c: Curve, t: float) -> float:
    """Worst-case error [J] of the curve's estimate at ``t``: the values known reached by ``t``
    and known not yet reached after it bracket the true cumulative energy."""
    if not c.covers(t, t):
        return INF
    before = int(np.searchsorted(c.t_hi, t, side="right")) - 1  # current no later than t
    after = int(np.searchsorted(c.t_lo, t, side="left"))  # current only at or after t
    lo, hi = c.energy_j[before], c.energy_j[min(after, len(c) - 1)]
    e = float(c.at(np.array([t]))[0])
    return max(e - lo, hi - e, 0.0) + c.resolution_j
