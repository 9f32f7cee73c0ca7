"""How a missing number reads: ``n/a (reason)``, never ``nan``; in JSON, ``null``.

A figure is missing when it is None, NaN or infinite: an interval over one scored query, energy
above idle on a run profiled with ``--idle 0``, IPJ where the mean energy is not above 0 J, TPOT
where no answer had two tokens. ``ipw profile``, ``ipw compare`` and the report print such a figure
as ``n/a`` with the reason :func:`reasons` gives for it (docs/profile.md, "Missing numbers");
JSON output (``summary.json``, ``ipw compare --json``) writes ``null``
(:func:`ipw.core.records.finite`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ipw.core.records import Col

NA = "n/a"

NOTHING_SCORED = "nothing scored"
ONE_SCORED = "1 scored query: no bootstrap interval"
NO_IDLE = "no idle baseline: profiled with --idle 0"
NO_ENERGY = "no energy on this basis (meter gaps)"
NOT_ABOVE_ZERO = "mean energy on this basis is not above 0 J"
NO_POWER = "mean power on this basis is not above 0 W"
NO_TPOT = "no answer had 2 or more output tokens"
NO_TTFT = "no first-token time (the engine did not stream)"
NO_STEADY = "no steady state (it needs more than 2 x the level of queries)"
NO_INTERVAL = "no bootstrap interval (fewer than 2 scored queries, or no energy on this basis)"
UNDEFINED = "not given in the run's records or manifest"


INTERVAL_OF = {"accuracy_ci": Col.ACCURACY, "ipw_ci": Col.IPW, "ipj_ci": Col.IPJ}
"""An interval's field prefix -> the field of its value."""


def missing(x) -> bool:
    """True for None and for a float that is NaN or infinite (numpy floats too)."""
    if x is None:
        return True
    try:
        return not math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt(x, spec: str, reason: str = "", unit: str = "") -> str:
    """``format(x, spec) + unit``, or ``n/a (reason)`` where ``x`` is missing."""
    if missing(x):
        return f"{NA} ({reason})" if reason else NA
    return format(float(x), spec) + unit


def _gone(key: str, v) -> bool:
    """Whether the value ``v`` of summary field ``key`` is a missing figure (an interval: either end)."""
    if isinstance(v, (list, tuple)):
        return any(missing(x) for x in v)
    return v is None or (isinstance(v, float) and missing(v))


def reasons(row: Mapping) -> dict[str, str]:
    """Why each missing figure of one summary row (:func:`ipw.science.intelligence.metrics.summarize`,
    as a dict, a Series or ``summary.json``'s ``overall``) is missing: ``{field: reason}``; the
    report's flattened intervals (``accuracy_ci_low``, ...) are covered too."""
    get = row.get
    scored = get(Col.SCORED)
    scored = None if missing(scored) else int(scored)  # None: a table without the count (coverage, frontier)
    basis = get(Col.ENERGY_SCOPE)
    energy = get("scope_energy_j_mean", get("energy_j_mean"))  # the report names the basis mean energy_j_mean
    out: dict[str, str] = {}
    for key in row.keys():
        if not _gone(key, get(key)):
            continue
        is_ci = key.endswith(("_ci", "_ci_low", "_ci_high"))
        if scored == 0:
            out[key] = NOTHING_SCORED
        elif is_ci:
            value = next((v for p, v in INTERVAL_OF.items() if key.startswith(p)), None)
            if value is not None and _gone(value, get(value)):
                continue  # the value itself is missing: its reason says why
            out[key] = ONE_SCORED if scored == 1 else NO_INTERVAL
        elif key in (Col.ENERGY_ABOVE_IDLE_J + "_mean", "scope_energy_above_idle_j_mean", "system_energy_above_idle_j_mean") or (
                basis == "above_idle" and key in (
                "scope_energy_j_mean", Col.ENERGY_J_MEAN)):  # fmt: skip
            out[key] = NO_IDLE
        elif key in (Col.IPJ, Col.IPW):
            if missing(energy):
                out[key] = NO_IDLE if basis == "above_idle" else NO_ENERGY
            else:
                out[key] = NOT_ABOVE_ZERO if key == Col.IPJ else NO_POWER
        elif key.startswith(("tpot", "itl_")):
            out[key] = NO_TPOT
        elif key.startswith("ttft"):
            out[key] = NO_TTFT
        elif key.startswith("steady_"):
            out[key] = NO_STEADY
        elif key in ("ipw_vs_best", "ipj_vs_best"):
            out[key] = "this run's " + ("IPW" if key.startswith("ipw") else "IPJ") + " is n/a"
        elif key in ("scope_energy_j_mean", Col.ENERGY_J_MEAN, "system_energy_j_mean", Col.POWER_W_MEAN):
            out[key] = NO_IDLE if basis == "above_idle" else NO_ENERGY
        else:
            out[key] = UNDEFINED
    return out
