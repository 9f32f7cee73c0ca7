"""Per-query energy when queries overlap: the attribution rule, its bound, and steady-state figures.

Pure functions over numbers: query events (times on the one monotonic clock, token counts) and
cumulative energy curves (one per domain). Nothing here reads a meter or a clock.

The rule: ``token-rate-share``, version 2
------------------------------------------
Each query ``i`` has a *work rate* ``w_i(t)`` [tokens/s], constant within each of its phases:

- queued, ``[t_start, t_served)``: ``w_i = 0``, where the server says when it began the query
  (``t_served``: the first token's arrival less the server's own prefill time, from llama.cpp's
  per-answer timings, :mod:`ipw.engines.server_timing`); without it ``t_served = t_start`` and
  there is no queued phase (version 1, which had none, gives the same figures then);
- prefill, ``[t_served, t_first)``: ``w_i = alpha * n_in / (t_first - t_served)``
  (the prompt's ``n_in`` tokens, each weighted ``alpha``, spread over the time to first token);
- decode, ``[t_first, t_last)``: ``w_i = (n_out - 1) / (t_last - t_first)``
  (the tokens after the first, spread over the time they took);
- after the last token until the answer ends (stream teardown, detokenising): ``w_i = 0``.

A query with no first token (an attempt that failed before answering) is in prefill over its whole
span. The power ``P(t)`` measured at each instant is split among the queries in flight in
proportion to their work rates; where all of them have zero rate it is split equally among them:

    E_i = integral over the active time of  P(t) * w_i(t) / sum_j w_j(t)   dt      [J]

Every instant of *active time* (some query in flight) is charged to the queries in flight at that
instant and to no other; idle time between queries is charged to none. So the per-query energies
of a run sum to the energy over its active time (conservation), and, computed on the same curve,
exactly (tests check it to the counter's resolution). The split point of a query's prefill and
decode energy is its first token.

Why tokens, and ``alpha = 1`` by default. A forward step's work grows with the tokens it processes:
about 2N FLOPs per token for a model of N parameters, prompt and generated tokens alike (Kaplan et
al. 2020, arXiv 2001.08361, section 2.1, C_forward ~ 2N + 2 n_layer n_ctx d_attn); servers with
continuous batching budget each step by tokens, prompt and generated counted alike (vLLM's
``max_num_batched_tokens`` under chunked prefill; Agrawal et al., Sarathi-Serve, OSDI 2024, section
4). Prompt tokens in a compute-bound prefill cost less energy each than generated tokens in a
memory-bound decode (Patel et al., Splitwise, ISCA 2024, section 3): pass ``alpha < 1`` to say so;
the value used is recorded with the rule. The attention term that grows with context length is not
modelled.

What the rule cannot see. Where the server does not say when it began a query, only client-side
times are known: a server that queues a request before starting it makes the queue time part of that
query's prefill, so a waiting query is charged part of the power of the queries being served (a
server that serves one request at a time, such as llama-cpp-python's, does this). vLLM's metrics
give queue times per level only (a mean), not per request, so they are recorded
(``ipw.engines.server_timing``) but cannot move a query's phases. ML.ENERGY (Chung et al., arXiv 2505.06371, NeurIPS 2025 D&B)
avoids per-request attribution altogether: per-request energy = steady-state J/token x output
tokens. :func:`steady_state` gives those figures too.

The bound (which applies, and why it is honest at the counter's update period)
-----------------------------------------------------------------------------
A :class:`Curve` holds cumulative energy values ``E_k`` with, for each, the interval
``[t_lo_k, t_hi_k]`` within which the counter held that value: a reading taken at ``t_r`` with read
half-width ``e`` from a counter that updates every ``u`` seconds was current at some instant in
``[t_r - u - e, t_r + e]``. The energy ``E_k - E_{k-1}`` was therefore spent inside
``X_k = [t_lo_{k-1}, t_hi_k]``, and whatever the power did inside it, query ``i`` received between
``min_{X_k} s_i`` and ``max_{X_k} s_i`` of it (``s_i = w_i / sum_j w_j``, zero outside the query).
Summing over ``k`` gives a hard interval ``[lo, hi]`` for the query's energy under the rule; the
reported ``uncertainty_j = max(E - lo, hi - E)`` plus the counter's resolution at each end. It is a
worst case, not a standard deviation: a query or a phase shorter than ``u`` gets a bound of the
size of the counter step it sits in, never a silent 0. Outside the curve (no reading before the
query starts, or none known to be taken after it ends) the bound is infinite.
The estimate itself reads the curve at the midpoints ``(t_lo_k + t_hi_k) / 2`` and interpolates
linearly between them (a timeline of the monitor's rebuilt power curve can be passed instead
through ``Curve.estimate``).

Where the curve also knows a bound ``e(t)`` on its estimate at every instant (``Curve.edge_error``:
a GPU's monitor, see ``ipw.devices.nvidia.curve``: where the instant-power field updates inside the
counter's steps, a bound that assumes the power between instant samples stays within 1.5 x their
range plus 5%; where it does not, as on an H200, one that covers every placement of each step's
energy under the power limit), the query's energy ``sum_k s_k (E(t_{k+1}) - E(t_k))`` is rewritten as
``sum_k E(t_k) (s_{k-1} - s_k)``, and its bound is ``sum_k |s_{k-1} - s_k| e(t_k)`` over the
instants where its share changes (its own start, first token, last token and end, and those of
the queries overlapping it). The smaller of the two bounds is reported (both hold, this one on what
the monitor's bound rests on); records say which kind of curve they came from (``attribution.bound``).

Both are worst cases, not standard deviations. A query of a few hundred milliseconds that shares a
100 ms counter step with others can have a bound larger than its energy while its actual error,
measured against known traces, is a few percent (``benchmarks/attribution_overlap.py``,
docs/serving.md): the counter cannot say where inside a step the energy went, and the bound says so.
Sums over many queries and long steady-state windows have bounds only at their two ends.

Active time and the steady state are in :mod:`ipw.profilers.steady`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ipw.core.errors import IpwError


RULE_NAME = "token-rate-share"


RULE_VERSION = 2
"""1: prefill from the request's start; 2: from the server's own start of the query where it says
(a queued phase of rate 0 before it), otherwise as 1."""


INF = float("inf")


class AttributionError(IpwError, ValueError):
    """Events or curves that the rule cannot use (times out of order, negative counts, ...)."""


@dataclass(frozen=True)
class Rule:
    """The attribution rule and its one parameter, as recorded in a run's manifest."""

    prefill_weight: float = 1.0  # alpha: energy weight of one prompt token against one generated token
    name: str = RULE_NAME
    version: int = RULE_VERSION

    def __post_init__(self) -> None:
        if not (isinstance(self.prefill_weight, (int, float)) and math.isfinite(self.prefill_weight)
                and self.prefill_weight >= 0):  # fmt: skip
            raise AttributionError(f"prefill_weight must be a finite number >= 0, got {self.prefill_weight!r}")

    def to_dict(self) -> dict:
        return asdict(self) | {"module": "ipw.profilers.attribution"}


@dataclass(frozen=True)
class QueryEvents:
    """One query's span on the monotonic clock [s] and its token counts.

    ``key`` names the query (several attempts of one query share it). ``input_tokens`` may be an
    estimate (a server that reports no usage); ``token_times_s`` (optional) are the output tokens'
    times, used for steady-state token counts and inter-token latencies, not by the rule.
    ``t_served_s`` (optional): when the server began working on the query, by its own account; the
    time before it is queue (rate 0).
    """

    key: str
    t_start_s: float
    t_end_s: float
    t_first_s: float | None = None
    t_last_s: float | None = None
    input_tokens: float = 0.0
    output_tokens: int = 0
    token_times_s: tuple[float, ...] = ()
    t_served_s: float | None = None

    def __post_init__(self) -> None:
        times = [t for t in (self.t_start_s, self.t_served_s, self.t_first_s, self.t_last_s, self.t_end_s) if t is not None]
        if not all(math.isfinite(t) for t in times):
            raise AttributionError(f"query {self.key}: times must be finite, got {times}")
        if times != sorted(times):
            raise AttributionError(f"query {self.key}: times must satisfy start <= first token <= last token <= end "
                                   f"and start <= served <= first token, got start={self.t_start_s}, "
                                   f"served={self.t_served_s}, first={self.t_first_s}, last={self.t_last_s}, "
                                   f"end={self.t_end_s}")  # fmt: skip
        if (self.t_first_s is None) != (self.t_last_s is None):
            raise AttributionError(f"query {self.key}: a first token time needs a last token time and back")
        if self.input_tokens < 0 or self.output_tokens < 0:
            raise AttributionError(f"query {self.key}: token counts must be >= 0")

    def phases(self, rule: Rule) -> list[tuple[float, float, float, str]]:
        """(start, end, work rate [tokens/s], phase) of the query's working phases."""
        out = []
        first = self.t_end_s if self.t_first_s is None else self.t_first_s
        served = self.t_start_s if self.t_served_s is None else self.t_served_s
        work = rule.prefill_weight * self.input_tokens
        if first > served and work > 0:
            out.append((served, first, work / (first - served), "prefill"))
        if self.t_first_s is not None and self.output_tokens >= 2 and self.t_last_s > self.t_first_s:
            out.append((self.t_first_s, self.t_last_s, (self.output_tokens - 1) / (self.t_last_s - self.t_first_s), "decode"))
        return out

    @property
    def split_s(self) -> float:
        """Where prefill ends and decode begins: the first token (the end, without one)."""
        return self.t_end_s if self.t_first_s is None else self.t_first_s


@dataclass(frozen=True)
class Curve:
    """Cumulative energy of one domain: value ``energy_j[k]`` was current at some unknown instant
    in ``[t_lo[k], t_hi[k]]`` (monotonic s). ``estimate`` (optional) maps times to cumulative J on
    the same origin; by default the values are interpolated linearly between the midpoints."""

    t_lo: np.ndarray
    t_hi: np.ndarray
    energy_j: np.ndarray
    resolution_j: float = 0.0
    estimate: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)
    edge_error: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        lo, hi, e = (np.asarray(x, dtype=float) for x in (self.t_lo, self.t_hi, self.energy_j))
        object.__setattr__(self, "t_lo", lo)
        object.__setattr__(self, "t_hi", hi)
        object.__setattr__(self, "energy_j", e)
        if not (lo.shape == hi.shape == e.shape) or lo.ndim != 1:
            raise AttributionError("a curve needs equally long 1-D arrays of t_lo, t_hi and energy_j")
        if len(e) and (np.any(hi < lo) or np.any(np.diff(lo) < 0) or np.any(np.diff(hi) < 0)):
            raise AttributionError("curve times must be non-decreasing with t_lo <= t_hi")
        if len(e) and (np.any(~np.isfinite(e)) or np.any(np.diff(e) < -1e-12)):
            raise AttributionError("cumulative energy must be finite and non-decreasing")

    @classmethod
    def from_samples(cls, t_s, energy_j, update_period_s: float = 0.0, t_err_s=0.0, resolution_j: float = 0.0) -> Curve:
        """A curve from a timeline of readings taken at ``t_s`` (read half-width ``t_err_s``) of a
        counter that updates every ``update_period_s``: each value was current within
        ``[t - update_period - t_err, t + t_err]``."""
        t = np.asarray(t_s, dtype=float)
        err = np.broadcast_to(np.asarray(t_err_s, dtype=float), t.shape)
        order = np.argsort(t, kind="stable")
        t, err, e = t[order], err[order], np.asarray(energy_j, dtype=float)[order]
        return cls(t - update_period_s - err, t + err, np.maximum.accumulate(e) if len(e) else e, resolution_j)

    def __len__(self) -> int:
        return len(self.energy_j)

    def at(self, t) -> np.ndarray:
        """Estimated cumulative energy [J] at times ``t``."""
        t = np.asarray(t, dtype=float)
        if self.estimate is not None:
            return np.asarray(self.estimate(t), dtype=float)
        mid = 0.5 * (self.t_lo + self.t_hi)
        if len(mid) == 0:
            return np.zeros_like(t)
        if len(mid) == 1:
            return np.full_like(t, self.energy_j[0])
        # extrapolate with the nearest span's mean power (np.interp would hold the end value)
        out = np.interp(t, mid, self.energy_j)
        for end, (a, b) in (("lo", (0, 1)), ("hi", (-2, -1))):
            dt = mid[b] - mid[a]
            slope = (self.energy_j[b] - self.energy_j[a]) / dt if dt > 0 else 0.0
            sel = t < mid[0] if end == "lo" else t > mid[-1]
            anchor = 0 if end == "lo" else -1
            out = np.where(sel, self.energy_j[anchor] + slope * (t - mid[anchor]), out)
        return out

    def covers(self, a: float, b: float) -> bool:
        """Whether ``[a, b]`` lies inside what the curve knows: a value current by ``a`` and one
        current only after ``b``."""
        return len(self) >= 2 and self.t_hi[0] <= a and self.t_lo[-1] >= b


def curve_from_frame(frame, domain: str, update_period_s: float, resolution_j: float = 0.0) -> Curve:
    """The :class:`Curve` of one domain of a sampler timeline frame (``t_s``, ``domain``, ``energy_j``)."""
    rows = frame[frame["domain"] == domain]
    return Curve.from_samples(rows["t_s"].to_numpy(float), rows["energy_j"].to_numpy(float),
                              update_period_s, 0.0, resolution_j)  # fmt: skip


@dataclass(frozen=True)
class QueryEnergy:
    """One query's attributed energy per domain [J], split at its first token, with bounds [J].

    ``share_s`` is the query's share of active time (the same rule applied to time instead of
    energy): idle power [W] x ``share_s`` is its share of the idle energy.
    """

    key: str
    energy_j: dict[str, float]
    prefill_j: dict[str, float]
    decode_j: dict[str, float]
    uncertainty_j: dict[str, float]
    prefill_uncertainty_j: dict[str, float]
    decode_uncertainty_j: dict[str, float]
    share_s: float
    prefill_share_s: float
    covered: dict[str, bool]


class _Grid:
    """Event times of a set of queries, the work rate and in-flight count of every segment."""

    def __init__(self, events: Sequence[QueryEvents], rule: Rule) -> None:
        pts = [t for e in events for t in (e.t_start_s, e.t_end_s, e.t_first_s, e.t_last_s, e.t_served_s) if t is not None]
        self.t = np.unique(np.asarray(pts, dtype=float))
        n = max(len(self.t) - 1, 0)
        self.work = np.zeros(n)
        self.rule = rule
        spans = np.searchsorted(self.t, np.array([[e.t_start_s, e.t_end_s] for e in events], dtype=float).reshape(-1, 2))
        steps = np.zeros(len(self.t) + 1, dtype=np.int64)  # integer counts: exact
        np.add.at(steps, spans[:, 0], 1)
        np.add.at(steps, spans[:, 1], -1)
        self.inflight = np.cumsum(steps)[:n].astype(float)
        self._spans = {id(e): (int(i0), int(i1)) for e, (i0, i1) in zip(events, spans.tolist())}
        phases = [(id(e), a, b, rate) for e in events for a, b, rate, _ in e.phases(rule)]
        idx = np.searchsorted(self.t, [x for _, a, b, _ in phases for x in (a, b)]).tolist() if phases else []
        self._phases: dict[int, list[tuple[int, int, float]]] = {id(e): [] for e in events}
        for k, (owner, _, _, rate) in enumerate(phases):
            ia, ib = idx[2 * k], idx[2 * k + 1]
            self._phases[owner].append((ia, ib, rate))
            self.work[ia:ib] += rate

    def index(self, t: float) -> int:
        return int(np.searchsorted(self.t, t))

    def shares(self, e: QueryEvents) -> tuple[int, int, np.ndarray, int]:
        """(first segment, end segment, the query's share of each segment, first decode segment)."""
        i0, i1 = self._spans[id(e)]
        rate = np.zeros(i1 - i0)
        for ia, ib, r in self._phases[id(e)]:
            rate[ia - i0:ib - i0] += r
        work, flight = self.work[i0:i1], self.inflight[i0:i1]
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(work > 0, rate / np.where(work > 0, work, 1.0), 1.0 / np.maximum(flight, 1.0))
        return i0, i1, s, self.index(e.split_s)


def _bound(curve: Curve, grid: _Grid, i0: int, i1: int, s: np.ndarray, estimate: float) -> float:
    """Worst-case deviation [J] of the rule's energy for a share function ``s`` on segments
    ``[i0, i1)`` (zero elsewhere), given where each counter value was current (module docstring)."""
    if i1 <= i0 or not np.any(s > 0):
        return 0.0
    t0, t1 = grid.t[i0], grid.t[i1]
    if not curve.covers(t0, t1):
        return INF
    shape_bound = INF
    if curve.edge_error is not None:  # a bound on the estimate at each instant: telescope the shares
        edges = grid.t[i0:i1 + 1]
        jumps = np.abs(np.diff(np.concatenate([[0.0], s, [0.0]])))
        keep = jumps > 0
        shape_bound = float(np.dot(jumps[keep], np.asarray(curve.edge_error(edges[keep]), dtype=float)))
    # counter spans k (values k-1 -> k) whose window X_k = [t_lo[k-1], t_hi[k]] meets [t0, t1]
    k_first = max(int(np.searchsorted(curve.t_hi, t0, side="left")), 1)
    k_last = min(int(np.searchsorted(curve.t_lo, t1, side="right")), len(curve) - 1)
    ks = np.arange(k_first, k_last + 1)
    xa, xb = curve.t_lo[ks - 1], curve.t_hi[ks]
    meet = (xb > t0) & (xa < t1)
    ks, xa, xb = ks[meet], xa[meet], xb[meet]
    de = curve.energy_j[ks] - curve.energy_j[ks - 1]
    ja = np.maximum(np.searchsorted(grid.t, xa, side="right") - 1, i0) - i0
    jb = np.minimum(np.searchsorted(grid.t, xb, side="left"), i1) - i0
    outside = (xa < t0) | (xb > t1)
    lo = hi = 0.0
    changes = 0
    for a, b, d, out in zip(ja.tolist(), jb.tolist(), de.tolist(), outside.tolist()):
        if b <= a:
            continue
        part = s[a:b]
        smax = float(part.max())
        smin = 0.0 if out else float(part.min())
        lo += d * smin
        hi += d * smax
        changes += smax > smin
    return min(max(estimate - lo, hi - estimate, 0.0) + curve.resolution_j * (2 + changes), shape_bound)


def attribute(events: Sequence[QueryEvents], curves: Mapping[str, Curve], rule: Rule = Rule(),
              keys: Sequence[str] | None = None) -> list[QueryEnergy]:  # fmt: skip
    """Energy of each query (of each of ``keys``, default all) under ``rule``, per domain of ``curves``.

    ``events`` must hold every query that overlaps the ones asked for (their rates decide the
    shares); attempts sharing a key are summed into one :class:`QueryEnergy`.
    """
    grid = _Grid(events, rule)
    if len(grid.t) < 2:
        return []
    est = {d: c.at(grid.t) for d, c in curves.items()}
    d_e = {d: np.diff(v) for d, v in est.items()}
    d_t = np.diff(grid.t)
    wanted = None if keys is None else set(keys)
    out: dict[str, dict] = {}
    for e in events:
        if wanted is not None and e.key not in wanted:
            continue
        i0, i1, s, isplit = grid.shares(e)
        pre = np.where(np.arange(i0, i1) < isplit, s, 0.0)
        dec = s - pre
        acc = out.setdefault(e.key, {"energy_j": {}, "prefill_j": {}, "decode_j": {}, "uncertainty_j": {},
                                     "prefill_uncertainty_j": {}, "decode_uncertainty_j": {},
                                     "share_s": 0.0, "prefill_share_s": 0.0, "covered": {}})  # fmt: skip
        acc["share_s"] += float(np.dot(s, d_t[i0:i1]))
        acc["prefill_share_s"] += float(np.dot(pre, d_t[i0:i1]))
        for d, c in curves.items():
            seg = d_e[d][i0:i1]
            e_pre, e_dec = float(np.dot(pre, seg)), float(np.dot(dec, seg))
            for name, value in (("prefill_j", e_pre), ("decode_j", e_dec), ("energy_j", e_pre + e_dec)):
                acc[name][d] = acc[name].get(d, 0.0) + value
            for name, share, value in (("uncertainty_j", s, e_pre + e_dec), ("prefill_uncertainty_j", pre, e_pre),
                                       ("decode_uncertainty_j", dec, e_dec)):  # fmt: skip
                acc[name][d] = acc[name].get(d, 0.0) + _bound(c, grid, i0, i1, share, value)
            acc["covered"][d] = acc["covered"].get(d, True) and c.covers(e.t_start_s, e.t_end_s)
    return [QueryEnergy(key, **v) for key, v in out.items()]
