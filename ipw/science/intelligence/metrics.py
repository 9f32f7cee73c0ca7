"""Intelligence per Watt metrics (Saad-Falcon, Narayan et al., arXiv 2511.07885, section 3).

Per query q: energy E_q [J] over the query's own meter window of length w_q [s], and mean power
P_q = E_q / w_q [W] (one span for both: the window brackets the engine's end-to-end time, so
dividing window energy by e2e would read high on short queries; records without ``window_s`` fall
back to e2e). Over a set of queries:

- accuracy = correct / scored. Not scored: queries that could not be graded (``correct`` None) and
  queries the engine failed on after its retries (``error`` set): an infrastructure fault says
  nothing about the model's answer. They are counted in ``errors``/``n`` and retried by
  ``ipw profile --resume RUN --retry-errors``.
- **IPW = accuracy / mean(P_q)**  [1/W]
- **IPJ = accuracy / mean(E_q)**  [1/J]

with every mean over the same scored queries, as the paper's released harness computes them
(its unit test: 10 J and 20 J over 2 s and 4 s, one of two correct: IPJ = 1/30, IPW = 0.1).

In the serving regime (N queries in flight, or batches of N: ``ipw.run.serving``) a query's power
is its attributed energy over its own span, and N queries share the device at every instant, so
mean(P_q) falls about N-fold with the level while the device draws the same or more: IPW so
defined grows with the number in flight by construction (at concurrency 4 on the project's VM,
5.2 W per query while the machine drew 19.9 W: IPW 3.8x that of concurrency 1 for the same answers).
There, one definition holds at every level, so that levels compare like with like:

- **IPW (serving) = accuracy / P_serving**, P_serving = the device's energy over the active time of
  the run's sessions / that active time [W] (:func:`serving_power_w`; the manifest's
  ``serving.sessions[].active_basis``): the device's mean power while it serves. At batch 1 this is
  the mean power over the queries' windows, weighted by their length.

The per-query attributed figure is kept as its own column (``ipw_attributed_per_w``), and IPJ needs
no change: a query's attributed energy is what batching makes smaller, and IPJ rightly improves with
it. The interval of the serving IPW is the accuracy's interval over P_serving (one power for the run).
E_q is accelerator energy by default (the paper counts the accelerator only), or system energy, or
system energy above the idle baseline (``energy=`` one of :data:`ipw.core.basis.ENERGY_BASES`; the rule is :mod:`ipw.core.basis`); the
basis is the ``energy_scope`` column, the metric columns keep stable names (on records of a module
counter, Grace Hopper's, the accelerator basis is the module's energy and is named ``module``:
:func:`energy_scope`). Confidence intervals
are percentile bootstrap intervals over queries (resampling queries with replacement, recomputing
accuracy, mean power and mean energy together), :data:`N_BOOT` resamples unless asked otherwise,
recorded in the ``n_boot`` column.

Coverage (section 4): the share of queries that at least one of several local models answers
correctly, over the queries every run scored (so a model's accuracy there is :func:`accuracy` on
the same rows). Best-of-local routing sends each query to a model that answers it correctly; where
several do, to the one that used the least energy on it (the paper's oracle leaves the choice open;
least energy is ours), and where none does, to the model of least energy on it (counted wrong).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ipw.core.errors import IpwError
from ipw.core import basis as basis_rule
from ipw.core.records import MODULE_COUNTER_FLAG, Col, finite

BOOTSTRAP_CELLS = 4_000_000  # resampled indices held at once (32 MB of int64)
N_BOOT = 1000
"""Bootstrap resamples of every interval, in profile, compare and report alike (see :func:`n_boot_for`)."""
BOOT_CELLS = 100_000_000
"""The bootstrap's time grows with n_boot x n (about 1 s per 1e8 resampled indices on one core).
Past 100,000 queries the number of resamples shrinks so that n_boot x n stays near 1e8 (at least
50; the interval of a mean over that many queries is narrow and changes little with more)."""


def n_boot_for(n: int) -> int:
    """Bootstrap resamples for a group of ``n`` queries: :data:`N_BOOT` up to 100,000 queries."""
    return int(min(N_BOOT, max(50, BOOT_CELLS // max(n, 1))))
DEFAULT_ENERGY = basis_rule.DEFAULT_BASIS


class NoCommonQueries(IpwError, ValueError):
    """Runs compared for coverage share no scored query id."""


class NoCoverageEnergy(IpwError, ValueError):
    """A run compared for coverage lacks the energy of some common query on the basis (energy above
    idle of a run profiled with ``--idle 0``): best-of-local cannot pick the least-energy run."""


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def accuracy(correct: pd.Series) -> float:
    """correct / scored; NaN when nothing was scored."""
    scored = correct.dropna().astype(bool)
    return float(scored.mean()) if len(scored) else float("nan")


def ipw(acc: float, mean_power_w: float) -> float:
    """Intelligence per watt [1/W] = accuracy / mean per-query power."""
    return acc / mean_power_w if mean_power_w > 0 else float("nan")


def ipj(acc: float, mean_energy_j: float) -> float:
    """Intelligence per joule [1/J] = accuracy / mean per-query energy."""
    return acc / mean_energy_j if mean_energy_j > 0 else float("nan")


METRIC_COLUMNS = (
    Col.ID, Col.CORRECT, Col.ERROR, Col.FLAGS, Col.ENERGY_J, Col.ENERGY_ABOVE_IDLE_J, Col.ACCELERATOR_ENERGY_J,
    Col.ACCELERATOR_ENERGY_ABOVE_IDLE_J,
    Col.ACCELERATOR_MEASURED, Col.MEASURED, Col.WINDOW_S, Col.E2E_S, Col.TTFT_S, Col.TPOT_S,
)
"""The columns :func:`summarize` reads."""


def flagged(frame: pd.DataFrame, prefix: str) -> pd.Series:
    """Whether each record has a flag starting with ``prefix`` (``meter-gap:``, ``sub-update-period:``);
    flags may be tuples, lists, arrays or JSON text. Each distinct flag set is looked at once."""
    if Col.FLAGS not in frame or frame.empty:
        return pd.Series(False, index=frame.index)
    try:  # tuples (as the store loads them) and JSON text hash as they are: no pass over the rows in Python
        codes, uniques = pd.factorize(frame[Col.FLAGS].to_numpy(object))
        uniques = [f if isinstance(f, (str, tuple)) else tuple(f) for f in uniques]
    except TypeError:  # lists or arrays: made tuples first
        codes, uniques = pd.factorize(frame[Col.FLAGS].map(lambda f: f if isinstance(f, (str, tuple)) else tuple(f)
                                                           if f is not None and not isinstance(f, float) else ()))
    hits = np.array([prefix in f if isinstance(f, str) else any(str(x).startswith(prefix) for x in f) for f in uniques]
                    + [False], dtype=bool)  # code -1 (a missing flags value) reads the False at the end
    return pd.Series(hits[codes], index=frame.index)


def scored_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows accuracy, IPW and IPJ are computed over: graded, and not an engine error."""
    keep = frame[Col.CORRECT].notna()
    if Col.ERROR in frame:
        keep &= frame[Col.ERROR].isna()
    return frame[keep]


def query_energy_j(frame: pd.DataFrame, energy: str = DEFAULT_ENERGY) -> pd.Series:
    """Per-query energy [J] on ``energy``'s basis (the rule: :func:`ipw.core.basis.frame_energy_j`)."""
    return basis_rule.frame_energy_j(frame, energy)


def query_span_s(frame: pd.DataFrame) -> pd.Series:
    """The span [s] a query's energy was measured over: its window, else its end-to-end time."""
    if Col.WINDOW_S in frame:
        return frame[Col.WINDOW_S].astype(float).fillna(frame[Col.E2E_S].astype(float))
    return frame[Col.E2E_S].astype(float)


def _arrays(frame: pd.DataFrame, energy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correct (0/1), energy [J] and power [W] of the scored rows of ``frame``."""
    return _scored_arrays(scored_rows(frame), energy)


def _scored_arrays(scored: pd.DataFrame, energy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    e = query_energy_j(scored, energy).to_numpy(float)
    t = query_span_s(scored).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return scored[Col.CORRECT].astype(bool).to_numpy(float), e, e / t


def bootstrap(frame: pd.DataFrame, energy: str = DEFAULT_ENERGY, n_boot: int | None = None, seed: int = 0) -> dict[str, Interval]:
    """95% percentile intervals of accuracy, IPW and IPJ, resampling scored queries
    (``n_boot`` None: :func:`n_boot_for` the number of scored queries)."""
    return _bootstrap(*_arrays(frame, energy), n_boot, seed)


def _bootstrap(c: np.ndarray, e: np.ndarray, p: np.ndarray, n_boot: int | None, seed: int) -> dict[str, Interval]:
    n_boot = n_boot_for(len(c)) if n_boot is None else n_boot
    if len(c) < 2:
        nan = Interval(float("nan"), float("nan"))
        return {"accuracy": nan, "ipw": nan, "ipj": nan}
    rng = np.random.default_rng(seed)
    stats: dict[str, list[np.ndarray]] = {"accuracy": [], "ipw": [], "ipj": []}
    chunk = max(1, BOOTSTRAP_CELLS // len(c))  # resamples per chunk: memory stays bounded on big runs
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, len(c), size=(min(chunk, n_boot - start), len(c)))
        acc = c[idx].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            stats["accuracy"].append(acc)
            stats["ipw"].append(acc / p[idx].mean(axis=1))
            stats["ipj"].append(acc / e[idx].mean(axis=1))
    stats = {k: np.concatenate(v) for k, v in stats.items()}
    with warnings.catch_warnings():  # an all-NaN statistic (no energy on the basis) is a NaN interval, said once
        warnings.simplefilter("ignore", RuntimeWarning)
        return {k: Interval(*np.nanpercentile(v, [2.5, 97.5])) for k, v in stats.items()}


def _mean(values: pd.Series) -> float:
    """The mean of the figures that exist (NaN where none does), without numpy's empty-slice warning."""
    values = values.dropna()
    return float(values.mean()) if len(values) else float("nan")


def _latency(frame: pd.DataFrame) -> dict:
    return {f"{k}_mean": frame[k].mean() for k in ("ttft_s", "tpot_s", "e2e_s") if k in frame}


def _measured(frame: pd.DataFrame, energy: str) -> bool:
    """True when every energy on this basis was measured (:func:`ipw.core.basis.frame_measured`)."""
    return basis_rule.frame_measured(frame, energy)


def energy_scope(frame: pd.DataFrame, energy: str) -> str:
    """The name of the scope the energies of ``frame`` are on (:func:`ipw.core.basis.frame_scope`)."""
    module = flagged(frame, MODULE_COUNTER_FLAG) if basis_rule.canonical(energy) == "accelerator" else None
    return basis_rule.frame_scope(frame, energy, module)


def serving_power_w(serving: dict | None, energy: str = DEFAULT_ENERGY) -> float | None:
    """The device's mean power while serving [W]: the energy over the active time of every session
    of a serving run, on ``energy``'s basis, over their active time (the manifest's ``serving``
    entry, ``sessions[].active_basis``, written by ``ipw.run.serving``). None for a run that is not a
    serving run, or whose sessions predate ``active_basis``, or above idle without an idle baseline."""
    energy = basis_rule.canonical(energy)
    sessions = [x for x in (serving or {}).get("sessions", []) if x.get("active_basis") and x.get("active_s")]
    if not sessions:
        return None
    total_j = 0.0
    for x in sessions:
        a = x["active_basis"]
        if energy == "accelerator":
            total_j += a["energy_j"]
        elif energy == "system":
            total_j += a["system_energy_j"]
        elif a.get("idle_power_w") is None:
            return None
        else:
            total_j += a["system_energy_j"] - a["idle_power_w"] * x["active_s"]
    return total_j / sum(x["active_s"] for x in sessions)


def summarize(frame: pd.DataFrame, by: str | None = None, energy: str = DEFAULT_ENERGY, n_boot: int | None = None, seed: int = 0,
              serving_power: float | None = None) -> pd.DataFrame:
    """One row per group (or one row): n, scored, errors, accuracy, IPW [1/W], IPJ [1/J] with 95% CIs,
    the energy basis (``energy_scope``), mean energy on that basis, system and above idle [J], mean
    power [W], latencies [s], and whether every energy on the basis was measured (False where any
    came from the estimate). Every mean is over the scored rows, the rows accuracy counts.
    ``n_boot`` None: :func:`n_boot_for` the whole frame's size, one count for the run and each group.
    ``serving_power`` [W] (:func:`serving_power_w`, for a serving run): IPW is accuracy over it, the
    serving definition (module doc), and the per-query figure is kept as ``ipw_attributed_per_w``."""
    basis_rule.energy_column(energy)  # an unknown basis is an error before any work
    frame = frame[[c for c in (*METRIC_COLUMNS, by) if c is not None and c in frame]]  # no copy of the rest
    groups = [("all", frame)] if by is None else list(frame.groupby(by, sort=True))
    if n_boot is None:
        n_boot = n_boot_for(len(frame))
    rows = []
    for key, g in groups:
        s = scored_rows(g)
        c, e, p = _scored_arrays(s, energy)
        acc = float(c.mean()) if len(c) else float("nan")
        ci = _bootstrap(c, e, p, n_boot, seed)
        rows.append(
            {
                (by or "group"): key,
                Col.N: len(g),
                Col.SCORED: len(c),
                Col.ERRORS: int(g[Col.ERROR].notna().sum()) if Col.ERROR in g else 0,
                Col.METER_GAPS: int(flagged(g, "meter-gap:").sum()),
                Col.SUB_UPDATE_PERIOD: int((flagged(g, "sub-update-period:") | flagged(g, "short-window:")).sum()),
                Col.ACCURACY: acc,
                "accuracy_ci": (ci["accuracy"].low, ci["accuracy"].high),
                Col.IPW: ipw(acc, p.mean()) if len(p) else float("nan"),
                "ipw_ci": (ci["ipw"].low, ci["ipw"].high),
                Col.IPJ: ipj(acc, e.mean()) if len(e) else float("nan"),
                "ipj_ci": (ci["ipj"].low, ci["ipj"].high),
                Col.ENERGY_SCOPE: energy_scope(s, energy),
                "scope_energy_j_mean": float(e.mean()) if len(e) else float("nan"),
                Col.ENERGY_J_MEAN: float(s[Col.ENERGY_J].mean()) if len(s) else float("nan"),
                "energy_above_idle_j_mean": float(s[Col.ENERGY_ABOVE_IDLE_J].mean()) if Col.ENERGY_ABOVE_IDLE_J in s and len(s) else float("nan"),
                # above idle on the basis's own scope: the accelerator's beside accelerator energy
                "scope_energy_above_idle_j_mean": _mean(basis_rule.frame_above_idle_j(s, energy)),
                Col.POWER_W_MEAN: float(np.mean(p)) if len(p) else float("nan"),
                **_latency(s),
                Col.MEASURED: _measured(g, energy),
                "system_measured": basis_rule.frame_measured(g, "system"),  # the system figure's own label
                Col.N_BOOT: n_boot,
            }
        )
        if serving_power is not None:
            _serving_ipw(rows[-1], serving_power)
    return pd.DataFrame(rows)


def _serving_ipw(row: dict, power_w: float) -> None:
    """Turn a summary row's IPW into the serving definition; keep the per-query one beside it."""
    row["ipw_attributed_per_w"], row["ipw_attributed_ci"] = row[Col.IPW], row["ipw_ci"]
    row[Col.IPW] = ipw(row[Col.ACCURACY], power_w)
    low, high = row["accuracy_ci"]
    row["ipw_ci"] = (ipw(low, power_w), ipw(high, power_w))
    row["serving_power_w"] = power_w


def summarize_run(run, by: str | None = None, energy: str = DEFAULT_ENERGY, n_boot: int | None = None) -> pd.DataFrame:
    """:func:`summarize` of a loaded run (``ipw.store.load``): its records, and for a serving run
    the serving IPW (its manifest's ``serving`` entry), as ``ipw profile``, ``compare``, ``report``
    and ``sweep`` show it."""
    power = serving_power_w((run.manifest or {}).get("serving"), energy)
    return summarize(run.queries, by=by, energy=energy, n_boot=n_boot, serving_power=power)


def run_summary(frame: pd.DataFrame, energy: str = DEFAULT_ENERGY, serving: dict | None = None) -> dict:
    """The figures of one run, overall and per domain, as strict-JSON dicts (``summary.json``: a
    missing figure, NaN in :func:`summarize`, is None); empty for a run with no records. ``serving``: the manifest's serving entry, for a serving run
    (IPW by the serving definition, see the module doc)."""
    if frame.empty:
        return {}
    power = serving_power_w(serving, energy)
    overall = summarize(frame, energy=energy, serving_power=power)
    by_domain = summarize(frame, by=Col.DOMAIN, energy=energy, serving_power=power) if Col.DOMAIN in frame else overall.iloc[:0]
    return finite({"overall": overall.to_dict(orient="records")[0], "by_domain": by_domain.to_dict(orient="records")})


@dataclass(frozen=True)
class Aligned:
    """Runs on their common queries: ``ids`` (sorted), and per run (columns in ``names`` order)
    whether each query was answered correctly and its energy [J] on the basis."""

    ids: pd.Index
    names: list[str]
    correct: np.ndarray  # bool, queries x runs
    energy_j: np.ndarray  # float, queries x runs


def aligned(runs: dict[str, pd.DataFrame], energy_basis: str = DEFAULT_ENERGY) -> Aligned:
    """The queries every run scored (matched by ``id``, the later record of an id winning), as
    arrays. The ids of all runs are factorized together once, and each run's are then integers:
    160 runs of 10,000 queries align in a fraction of a second, where a set of ids and a ``loc``
    per run took seconds."""
    cols = (Col.ID, Col.CORRECT, Col.ERROR, Col.ENERGY_J, Col.ACCELERATOR_ENERGY_J, Col.ENERGY_ABOVE_IDLE_J)
    scored = {name: scored_rows(f[[c for c in cols if c in f]]) for name, f in runs.items()}
    none = [name for name, f in scored.items() if f.empty]
    if none:  # not "no common ids": the runs may share every id, and one of them scored none
        raise NoCommonQueries(f"no query was scored in run {', '.join(none)} (every record an error or ungraded); "
                              "coverage needs scored queries in every run")  # fmt: skip
    codes, uniques = pd.factorize(pd.concat([f[Col.ID] for f in scored.values()], ignore_index=True)) if scored \
        else (np.empty(0, np.int64), pd.Index([]))
    present, last = np.zeros(len(uniques), dtype=np.int64), []
    start = 0
    for f in scored.values():
        mine = codes[start: start + len(f)]
        start += len(f)
        ids, rev = np.unique(mine[::-1], return_index=True)  # each id once, at its last row
        last.append((ids, len(mine) - 1 - rev))
        present[ids] += 1
    common = np.flatnonzero(present == len(scored)) if scored else np.empty(0, np.int64)
    if not len(common):
        raise NoCommonQueries("the runs share no query ids that every run scored; coverage needs runs over the same query set")
    names = pd.Index(np.asarray(uniques[common], dtype=object))
    order = np.argsort(names.to_numpy(), kind="stable")
    common, names = common[order], names[order]
    correct = np.empty((len(common), len(scored)), dtype=bool)
    energy = np.empty((len(common), len(scored)), dtype=float)
    for j, (f, (ids, rows)) in enumerate(zip(scored.values(), last)):
        at = rows[np.searchsorted(ids, common)]
        correct[:, j] = f[Col.CORRECT].to_numpy()[at].astype(bool)
        energy[:, j] = query_energy_j(f, energy_basis).to_numpy(float)[at]
    return Aligned(names, list(scored), correct, energy)


def coverage(runs: dict[str, pd.DataFrame] | Aligned, energy_basis: str = DEFAULT_ENERGY) -> dict:
    """Coverage and best-of-local routing over runs on the same queries (matched by ``id``).

    Returns the share of common scored queries some model answers correctly, per-model accuracy and
    mean energy [J] (on ``energy_basis``) on them, and the routed accuracy, mean energy [J] and IPJ
    [1/J]. ``runs``: query frames by name, or their :func:`aligned` arrays.
    """
    al = runs if isinstance(runs, Aligned) else aligned(runs, energy_basis)
    lacking = [name for j, name in enumerate(al.names) if np.isnan(al.energy_j[:, j]).any()]
    if lacking:
        basis = basis_rule.canonical(energy_basis)
        what = "energy above idle" if basis == "above_idle" else f"{basis} energy"
        why = " (no idle baseline: profiled with --idle 0)" if basis == "above_idle" else ""
        raise NoCoverageEnergy(f"no {what} for some common queries of run(s) {', '.join(lacking)}{why}; "
                               f"coverage and best-of-local need it for every query")
    correct, energy = al.correct, al.energy_j
    any_correct = correct.any(axis=1)
    # the least-energy run among the correct ones, else the least-energy run (argmin: the first on a tie)
    chosen = np.where(any_correct, np.where(correct, energy, np.inf).argmin(axis=1), energy.argmin(axis=1))
    routed_energy = energy[np.arange(len(chosen)), chosen]
    routed_acc = float(any_correct.mean())
    names = np.array(al.names, dtype=object)
    return {
        "queries": len(al.ids),
        "coverage": routed_acc,
        "accuracy": {name: float(correct[:, j].mean()) for j, name in enumerate(al.names)},
        "energy_j_mean": {name: float(energy[:, j].mean()) for j, name in enumerate(al.names)},
        "best_of_local": {
            "accuracy": routed_acc,
            "energy_j_mean": float(routed_energy.mean()),
            "ipj_per_j": ipj(routed_acc, float(routed_energy.mean())),
            "routed_to": pd.Series(names[chosen]).value_counts().to_dict(),
        },
    }
