"""A GPU's cumulative energy rebuilt from its counter's steps, with a bound that says what it rests on.

Pure maths over values already placed on the monotonic clock (``ipw.devices.nvidia.monitor`` reads them
in its thread): counter values ``(T_k, E_k)``, exact at their timestamps, and instant-power samples.
A window ``[a, b]`` gets ``E(b) - E(a)``, so consecutive windows sum to the counter's change over
their span (conservation). Between two counter values (a *span*) the estimate follows the *shape*
``s(t)`` of the instant power (linear between its samples, held beyond them), scaled so that the
span's energy is the counter's step,

    E(t) = E_{k-1} + (E_k - E_{k-1}) * S(T_{k-1}, t) / S(T_{k-1}, T_k),   S(a, b) = integral_a^b s   [J]

(the linear share ``E_{k-1} + dE * (t - T_{k-1}) / T`` where there is no shape, or it is 0). The
shape is used even where the field changes only when the counter does: the monitor reads the
counter a few times a second, so one of its spans holds several counter updates, and the field's
values at those updates still say how the span divides among them. What the shape may be trusted
for differs, and so does the bound; there are two cases.

*Placement* spans (the field changes only when the counter does, as on an H200; or there is no
field, or no sample inside the span): nothing is known for sure of the power inside the span, and
the bound covers every placement of the span's energy ``dE`` (over ``T`` seconds) that the counter
and the power limit ``P_max`` allow. With power between 0 and ``P_max``, the energy in any part of
length ``w`` lies in

    [max(0, dE - P_max * (T - w)),  min(dE, P_max * w)]   [J]

(``P_max`` unknown: ``[0, dE]``, a whole step either way), and the bound is the larger distance from
the estimate to either end, which holds whatever the estimate. A window whose two edges lie in one
span is bounded as one part of it (its edges' errors are not independent); any other window adds
its two edges' bounds (the spans in between are exact). A span whose mean power exceeds ``P_max``
shows that the limit did not bound the power there, and is bounded as if no limit were known.

*Shaped* spans (the instant field updates inside the counter's steps, ``shape_inside_steps``, and
the span holds an instant sample): an edge's bound is the smaller of the placement bound and the
largest error a shape can make there,
``|E_est(e) - E(e)| <= max|s_hat - P| * min(e - T_{k-1}, T_k - e)``, with ``max|s_hat - P|`` taken as
1.5 x the range of the scaled instant samples around the span plus 5% of their largest value (the
power between two samples is not observed: this is an assumption, tested against known traces).

Both edges add ``P x`` the clock offset's error (``P``: the shape's power in shaped spans, else the
power limit, or without one the larger of the instant power and the span's mean power) and 1 mJ of
counter resolution each. An edge later than the last counter value (or before the first) is
*extrapolated* from the nearest span; the part past the last instant sample (all of it, for
placement) is bounded by the power limit, or without one by 2 x the largest power seen (an
assumption, which the span's ``basis`` then states).
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass

SHAPE_RANGE_FACTOR = 1.5  # max|s_hat - P| taken as 1.5 x the range of the samples around a span ...
SHAPE_FLOOR = 0.05  # ... plus 5% of their largest value
RESOLUTION_J = 1e-3  # the counter counts mJ
UNKNOWN_CAP_FACTOR = 2.0  # extrapolating without a power limit: power taken to stay under 2 x the largest seen

BASIS_SHAPE = "instant-power shape (assumed: power between instant samples within 1.5x their range + 5%)"
BASIS_NO_LIMIT = "step placement, no power limit known (any part of a step may hold all of it)"


def basis_placement(cap_w: float | None) -> str:
    """What a placement bound rests on (module doc)."""
    return f"step placement, power <= {cap_w:.0f} W (the power limit)" if cap_w else BASIS_NO_LIMIT


def placement_range_j(de_j: float, span_s: float, part_s: float, cap_w: float | None) -> tuple[float, float]:
    """[lo, hi] of the energy [J] in a part of ``part_s`` s of a span of ``span_s`` s that holds
    ``de_j`` J, with power between 0 and ``cap_w`` W (None: no limit; module doc)."""
    part = min(max(part_s, 0.0), span_s)
    if cap_w is None or de_j > cap_w * span_s:
        return 0.0, de_j
    return max(0.0, de_j - cap_w * (span_s - part)), min(de_j, cap_w * part)


def placement_bound_j(est_j: float, de_j: float, span_s: float, part_s: float, cap_w: float | None) -> float:
    """Bound [J] of an estimate ``est_j`` of the energy in a part of a span: the larger distance from
    it to either end of :func:`placement_range_j`."""
    lo, hi = placement_range_j(de_j, span_s, part_s, cap_w)
    return max(est_j - lo, hi - est_j, 0.0)


@dataclass(frozen=True)
class Span:
    """The energy of ``[a, b]`` on the monotonic clock, with its bound and what it rests on."""

    energy_j: float
    uncertainty_j: float
    peak_power_w: float | None
    extrapolated: bool
    counter_values: int  # counter values inside the window
    basis: str = ""  # what the bound rests on (BASIS_SHAPE, basis_placement(...), ...; "; "-joined)


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

    def inside(self, a: float, b: float) -> bool:
        """Whether a sample lies strictly inside ``(a, b)``."""
        i = bisect.bisect_right(self.t, a)
        return i < len(self.t) and self.t[i] < b

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
    (module doc). ``power_cap_w`` is the power limit [W] (None: unknown); ``shape_inside_steps``
    whether the instant field updates inside the counter's steps (the monitor decides it)."""

    def __init__(self, power_cap_w: float | None = None, shape_inside_steps: bool = False) -> None:
        self.ct: list[float] = []  # counter timestamps (monotonic s)
        self.ce: list[float] = []  # counter values [J]
        self.shape = PowerShape()
        self.power_cap_w = power_cap_w
        self.shape_inside_steps = shape_inside_steps

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

    def _shaped(self, k: int) -> bool:
        """Whether span k is shaped by the instant field (module doc), else bounded by placement."""
        t0, t1, _, scale = self._span(k)
        return self.shape_inside_steps and scale > 0 and self.shape.inside(t0, t1)

    def _estimate(self, k: int, t: float) -> float:
        """Estimated energy [J] from the start of span k to ``t`` inside it (module doc)."""
        t0, t1, de, scale = self._span(k)
        return scale * self.shape.between(t0, t) if scale > 0 else de * (t - t0) / (t1 - t0)

    def _inside(self, t: float) -> int | None:
        """The span t lies strictly inside, or None (at a counter value, or outside them all)."""
        k = bisect.bisect_left(self.ct, t)
        return k if 0 < k < len(self.ct) and self.ct[k] != t else None

    def _pad(self) -> float:
        tail = self.shape.t[-20:]
        return statistics.median(b - a for a, b in zip(tail, tail[1:])) if len(tail) > 2 else 0.1

    def _edge(self, t: float) -> tuple[float, float, bool, str]:
        """(E(t), bound of E(t), extrapolated, basis of the bound) for time t."""
        ct, ce, shape, cap = self.ct, self.ce, self.shape, self.power_cap_w
        k = bisect.bisect_left(ct, t)
        if k < len(ct) and ct[k] == t:
            return ce[k], 0.0, False, ""
        if 0 < k < len(ct):  # inside span k
            t0, t1, de, scale = self._span(k)
            part = self._estimate(k, t)
            e = ce[k - 1] + part
            placed = placement_bound_j(part, de, t1 - t0, t - t0, cap)
            if self._shaped(k):  # the shape's bound where it is the smaller (both hold)
                vals = [scale * p for p in shape.around(t0, t1, self._pad())]
                dev = SHAPE_RANGE_FACTOR * (max(vals) - min(vals)) + SHAPE_FLOOR * max(vals)
                if dev * min(t - t0, t1 - t) < placed:
                    return e, dev * min(t - t0, t1 - t), False, BASIS_SHAPE
            return e, placed, False, basis_placement(cap)
        return self._extrapolate(t, k)

    def _extrapolate(self, t: float, k: int) -> tuple[float, float, bool, str]:
        """An edge outside the counter's values: from the nearest span's scale (or its mean power)."""
        ct, ce, shape = self.ct, self.ce, self.shape
        if len(ct) >= 2:
            t0, t1, de, scale = self._span(1 if k == 0 else len(ct) - 1)
            mean_w = de / (t1 - t0)
        else:
            scale, mean_w = 0.0, None
        shaped = self.shape_inside_steps and scale > 0  # the shape bounds the observed part too
        anchor_t, anchor_e = (ct[0], ce[0]) if k == 0 else (ct[-1], ce[-1])
        if scale > 0:
            e = anchor_e + scale * shape.between(anchor_t, t)
            p_est = shape.at(t) or 0.0
        else:
            p_est = mean_w if mean_w is not None else (shape.at(t) or 0.0)
            e = anchor_e + p_est * (t - anchor_t)
        vals = shape.around(min(anchor_t, t), max(anchor_t, t), self._pad())
        pmax = max(vals + ([mean_w] if mean_w else [])) if (vals or mean_w) else None
        cap = self.power_cap_w or (UNKNOWN_CAP_FACTOR * pmax if pmax else None)
        if cap is None:
            return e, float("inf"), True, "extrapolated, no power known"
        basis = f"extrapolated: power <= {cap:.0f} W " + (
            "(the power limit)" if self.power_cap_w else f"(assumed: {UNKNOWN_CAP_FACTOR:g} x the largest power seen)"
        )
        if not shaped:  # placement: the energy between the anchor and t lies in [0, cap x |t - anchor|]
            part, most = abs(e - anchor_e), cap * abs(t - anchor_t)
            return e, max(part, most - part), True, basis
        # shaped: the observed part (up to the last sample) like an edge inside a span, the rest up
        # to the cap
        last_seen = shape.t[-1] if shape.t else anchor_t
        if k == 0:
            observed, unseen = abs(anchor_t - t), 0.0
        else:
            observed = max(min(t, last_seen) - anchor_t, 0.0)
            unseen = max(t - max(last_seen, anchor_t), 0.0)
        dev = SHAPE_RANGE_FACTOR * ((max(vals) - min(vals)) if vals else pmax) + SHAPE_FLOOR * pmax
        return e, dev * observed + max(p_est, cap - p_est) * unseen, True, f"{basis}; {BASIS_SHAPE}"

    def _power_w(self, t: float) -> float:
        """The power [W] that turns the clock offset's error at ``t`` into energy (module doc)."""
        k = self._inside(t)
        here = self.shape.at(t) or 0.0
        if k is not None and self._shaped(k):
            return here
        if self.power_cap_w:
            return self.power_cap_w
        if k is not None:
            t0, t1, de, _ = self._span(k)
            return max(here, de / (t1 - t0))
        return here

    def energy(self, a: float, b: float, offset_err_s: float = 0.0) -> Span:
        """Energy [J] over ``[a, b]`` with its bound; ``offset_err_s`` is the timing error of the
        timeline's placement on the clock."""
        if not self.ct:
            return Span(0.0, float("inf"), None, True, 0)
        ea, ua, xa, ba = self._edge(a)
        eb, ub, xb, bb = self._edge(b)
        energy, bound, extrapolated = eb - ea, ua + ub, xa or xb
        basis = "; ".join(dict.fromkeys(x for x in (ba, bb) if x))
        k = self._inside(a)
        if k is not None and k == self._inside(b):  # one part of one span: bounded as such where smaller
            t0, t1, de, _ = self._span(k)
            placed = placement_bound_j(energy, de, t1 - t0, b - a, self.power_cap_w)
            if placed < bound:
                bound, basis = placed, basis_placement(self.power_cap_w)
        vals = [v for v in (self.shape.at(a), self.shape.at(b)) if v is not None]
        i, j = bisect.bisect_left(self.shape.t, a), bisect.bisect_right(self.shape.t, b)
        inside = self.shape.p[i:j]
        peak = max(inside + vals) if (inside or vals) else None
        timing = (self._power_w(a) + self._power_w(b)) * offset_err_s
        n = bisect.bisect_right(self.ct, b) - bisect.bisect_left(self.ct, a)
        return Span(energy, bound + timing + 2 * RESOLUTION_J, peak, extrapolated, n, basis)
