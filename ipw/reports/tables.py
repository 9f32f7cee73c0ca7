"""The report's tables as pandas DataFrames (usable alone in a notebook).

Every function takes ``runs``: a mapping ``{name: ipw.store.Run}`` as :func:`load_runs` returns it.
Metrics come from :mod:`ipw.science.intelligence.metrics` (IPW paper, arXiv 2511.07885, section 3); this module only
arranges them. Column names carry units (``energy_j_mean``, ``ttft_s_mean``). Every energy is on the
report's basis (:mod:`ipw.core.basis`: the accelerator's by default) unless its name says
``system``; every table that shows one has an ``energy_scope`` column naming the scope it is on
(``accelerator``, ``module``, ``system``, ``above_idle``) and an ``energy`` column saying
``measured`` or ``estimate`` for that scope (``estimate`` as soon as one record of the run, or of
the group, has its scope's measured flag False or missing); the system figures beside them have
their own label, ``system_energy``.

No per-row Python loops over query records: a 100,000-query run is summarised with vectorised pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ipw.core import basis as basis_rule
from ipw.core.records import Col
from ipw.science.intelligence.metrics import DEFAULT_ENERGY, aligned, coverage, energy_scope, ipj, scored_rows, summarize_run
from ipw.store import Run, load

MEASURED, ESTIMATE = "measured", "estimate"


def load_runs(paths: Iterable[Path | str | Run]) -> dict[str, Run]:
    """Load run folders (or take loaded runs) keyed by a unique name: the folder's name. The
    record's JSON columns (``domains``, ``engine_extra``), which no table or figure reads, are left
    out (:func:`ipw.store.load`)."""
    runs: dict[str, Run] = {}
    for item in paths:
        run = item if isinstance(item, Run) else load(item, json_columns=False)
        base = Path(run.path).name or str(run.path)
        name, k = base, 2
        while name in runs:
            name, k = f"{base} #{k}", k + 1
        runs[name] = run
    return runs


def energy_kind(frame: pd.DataFrame, energy: str = DEFAULT_ENERGY) -> str:
    """``measured`` only when every energy of ``frame`` on the basis ``energy`` was measured (the
    rule: :func:`ipw.core.basis.frame_label`; a measured accelerator stays measured beside a host
    estimate)."""
    return basis_rule.frame_label(frame, energy)


def any_estimate(runs: Mapping[str, Run], energy: str = DEFAULT_ENERGY) -> bool:
    return any(energy_kind(r.queries, energy) == ESTIMATE for r in runs.values() if not r.queries.empty)


def model_name(run: Run) -> str:
    engine = run.manifest.get("engine", {}) or {}
    return str(engine.get("model") or (run.manifest.get("config", {}) or {}).get("engine_options", {}).get("model") or "?")


def hardware_name(run: Run) -> str:
    return str((run.manifest.get("hardware", {}) or {}).get("summary") or "?")


def run_names(run: Run, name: str) -> dict:
    """What names a run in a table of runs: ``run`` (its unique name), ``model``, ``hardware``,
    ``engine`` and ``status`` (``complete``, or what :attr:`Run.unfinished` says)."""
    return {"run": name, "model": model_name(run), "hardware": hardware_name(run),
            "engine": str((run.manifest.get("engine", {}) or {}).get("engine", "?")),
            "status": run.unfinished or "complete"}


def energy_label(measured: pd.Series) -> np.ndarray:
    """``measured`` or ``estimate`` for each of a summary's ``measured`` (or ``system_measured``) flags."""
    return np.where(measured.astype(bool), MEASURED, ESTIMATE)


def _ci(frame: pd.DataFrame, col: str) -> pd.DataFrame:
    lo_hi = np.array([tuple(v) if isinstance(v, (tuple, list)) else (np.nan, np.nan) for v in frame[col]], dtype=float)
    lo_hi = lo_hi.reshape(-1, 2)
    return pd.DataFrame({f"{col}_low": lo_hi[:, 0], f"{col}_high": lo_hi[:, 1]}, index=frame.index)


def _tidy(summary: pd.DataFrame) -> pd.DataFrame:
    """Flatten one :func:`ipw.science.intelligence.metrics.summarize` result: CIs into low/high columns."""
    out = summary
    names = [c for c in ("accuracy_ci", "ipw_ci", "ipj_ci", "ipw_attributed_ci") if c in out]
    cis = [_ci(out, c) for c in names]
    out = out.rename(columns={"energy_j_mean": "system_energy_j_mean", "scope_energy_j_mean": "energy_j_mean",
                              "energy_above_idle_j_mean": "system_energy_above_idle_j_mean",
                              "scope_energy_above_idle_j_mean": "energy_above_idle_j_mean"})  # the basis's scope first
    return pd.concat([out.drop(columns=names)] + cis, axis=1)


def _labelled(summary: pd.DataFrame) -> pd.DataFrame:
    """``energy`` and ``system_energy`` (measured or estimate) from the summary's own ``measured``
    and ``system_measured`` (:func:`ipw.science.intelligence.metrics.summarize` computes them with
    the rule of :func:`energy_kind`; a valid ``summary.json`` holds them): no second pass over the
    records."""
    out = summary.assign(energy=energy_label(summary["measured"]), system_energy=energy_label(summary["system_measured"]))
    return out.drop(columns=["measured", "system_measured"])


SUMMARY_COLUMNS = [
    "run", "model", "engine", "hardware", "n", "scored", "errors", "meter_gaps", "sub_update_period", "accuracy",
    "accuracy_ci_low", "accuracy_ci_high", "ipw_per_w", "ipw_ci_low", "ipw_ci_high", "ipj_per_j", "ipj_ci_low", "ipj_ci_high", "energy_j_mean",
    "energy_scope", "energy", "energy_above_idle_j_mean", "system_energy_j_mean", "system_energy_above_idle_j_mean",
    "system_energy", "power_w_mean", "ttft_s_mean",
    "tpot_s_mean", "e2e_s_mean", "n_boot", "status", "serving_power_w", "ipw_attributed_per_w",
]


STORED_KEYS = frozenset({"n", "scored", "accuracy", "accuracy_ci", "ipw_per_w", "ipw_ci", "ipj_per_j", "ipj_ci",
                         "energy_scope", "scope_energy_j_mean", "n_boot", "measured", "system_measured"})
"""What a ``summary.json`` row must hold to stand in for :func:`summarize` (older summaries lack some)."""


def stored_rows(run: Run, frame: pd.DataFrame, energy: str = DEFAULT_ENERGY, by: str | None = None) -> list[dict] | None:
    """The rows of the run's ``summary.json`` that stand for ``summarize(frame, by, energy)``
    (``frame``: the run's queries), where it is valid for that: written on the default basis (as the
    runner writes it), over exactly these records (its ``n`` equals theirs), by a version that wrote
    every key of :data:`STORED_KEYS`; else None. A report of many or large runs then does not
    resample them again."""
    stored = run.summary if isinstance(run.summary, dict) else {}
    overall = stored.get("overall") or {}
    rows = [overall] if by is None else stored.get("by_domain")
    valid = (energy == DEFAULT_ENERGY and by in (None, "domain") and STORED_KEYS <= overall.keys()
             and overall.get("n") == len(frame) and isinstance(rows, list)
             and all(isinstance(r, dict) and STORED_KEYS <= r.keys() for r in rows))  # fmt: skip
    return [dict(r) for r in rows] if valid else None


def _numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """JSON null is a missing number again (summary.json is strict JSON): a column of numbers and
    None becomes float."""
    for col in frame:
        values = frame[col]
        if values.dtype == object and values.isna().any() and values.map(lambda v: v is None or isinstance(v, (int, float))).all():
            frame[col] = values.astype(float)
    return frame


def summarized(run: Run, frame: pd.DataFrame, energy: str = DEFAULT_ENERGY, by: str | None = None) -> pd.DataFrame:
    """``summarize(frame, by, energy)``, taken from the run's ``summary.json`` where that is valid
    for it (:func:`stored_rows`), else computed."""
    rows = stored_rows(run, frame, energy, by)
    if rows is None:  # a serving run's IPW is the serving definition (summarize_run)
        return summarize_run(replace(run, queries=frame), by=by, energy=energy)
    return _numbers(pd.DataFrame(rows))


def _rows(run: Run, frame: pd.DataFrame, energy: str, by: str | None = None) -> list[dict]:
    rows = stored_rows(run, frame, energy, by)
    if rows is None:
        return summarize_run(replace(run, queries=frame), by=by, energy=energy).to_dict(orient="records")
    return rows


def summary_table(runs: Mapping[str, Run], energy: str = DEFAULT_ENERGY) -> pd.DataFrame:
    """One row per run (a model on a machine): accuracy, IPW [1/W], IPJ [1/J] with 95% bootstrap
    intervals, energy per query total and above idle [J], mean power [W], TTFT, TPOT, end-to-end [s].

    ``energy`` (``total`` or ``above_idle``) is the energy IPW and IPJ divide by. The rows are
    gathered as dicts and made one frame at the end: 160 runs cost one frame's work, not 160.
    """
    rows = []
    for name, run in runs.items():
        q = run.queries
        if q.empty:
            continue
        (row,) = _rows(run, q, energy)
        row.pop("group", None)
        rows.append(row | run_names(run, name) | {"errors": int(q["error"].notna().sum()) if "error" in q else 0})
    if not rows:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    table = _labelled(_tidy(_numbers(pd.DataFrame(rows))))
    return table[[c for c in SUMMARY_COLUMNS if c in table]]


def domain_table(runs: Mapping[str, Run], energy: str = DEFAULT_ENERGY) -> pd.DataFrame:
    """One row per run and query domain: the summary's metrics within the domain."""
    rows = []
    for name, run in runs.items():
        q = run.queries
        if q.empty or "domain" not in q:
            continue
        if q["domain"].isna().any():  # a copy of the run only where some record has no domain
            q = q.assign(domain=q["domain"].fillna("(none)").astype(str))
        rows += [r | {"run": name} for r in _rows(run, q, energy, by="domain")]
    if not rows:
        return pd.DataFrame(columns=["run", "domain"])
    table = _labelled(_tidy(_numbers(pd.DataFrame(rows))))
    first = ["run", "domain", "n", "scored", "accuracy", "ipw_per_w", "ipj_per_j", "energy_j_mean", "energy_scope", "energy",
             "energy_above_idle_j_mean", "system_energy_j_mean", "system_energy_above_idle_j_mean", "system_energy",
             "power_w_mean", "ttft_s_mean",
             "tpot_s_mean", "e2e_s_mean"]
    return table[[c for c in first if c in table] + [c for c in table if c not in first]]


def pareto_front(accuracy: np.ndarray, energy_j: np.ndarray) -> np.ndarray:
    """Mask of the points no other point beats: none has at least the accuracy for at most the
    energy, with one of the two strictly better. NaN points are never on the front."""
    acc = np.asarray(accuracy, dtype=float)
    e = np.asarray(energy_j, dtype=float)
    ok = np.isfinite(acc) & np.isfinite(e)
    mask = np.zeros(len(acc), dtype=bool)
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((-acc[idx], e[idx]))]  # energy ascending, then accuracy descending
    best = -np.inf
    for i in order:  # one pass over runs (a handful), not over queries
        if acc[i] > best:
            mask[i] = True
            best = acc[i]
    return mask


def hardware_front(summary: pd.DataFrame) -> np.ndarray:
    """Per run, whether it is on the Pareto frontier among the runs on its own hardware
    (:func:`pareto_front` within each ``hardware``): the models worth running on that machine."""
    mask = np.zeros(len(summary), dtype=bool)
    acc, energy = summary["accuracy"].to_numpy(float), summary["energy_j_mean"].to_numpy(float)
    for at in summary.groupby("hardware", sort=False).indices.values():
        mask[at] = pareto_front(acc[at], energy[at])
    return mask


def frontier_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Accuracy against energy per query, with ``on_front`` marking the Pareto frontier, and
    ``on_hardware_front`` the frontier within each hardware where the runs are on several."""
    cols = ["run", "model", "hardware", "accuracy", "energy_j_mean", "energy_scope", "energy", "ipj_per_j"]
    out = summary[[c for c in cols if c in summary]].copy()
    out["on_front"] = pareto_front(out["accuracy"].to_numpy(), out["energy_j_mean"].to_numpy())
    if "hardware" in out and out["hardware"].nunique() > 1:
        out["on_hardware_front"] = hardware_front(out)
    return out.sort_values("energy_j_mean", kind="stable").reset_index(drop=True)


def coverage_tables(runs: Mapping[str, Run], energy: str = DEFAULT_ENERGY) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Coverage and best-of-local routing (``ipw.science.intelligence.metrics.coverage``) over runs that share query
    ids: a table with one row per run plus the routed row, the routed-to counts, and the number of
    common queries. Raises ValueError when they share none."""
    frames = {n: r.queries for n, r in runs.items() if not r.queries.empty}
    al = aligned(frames, energy)
    cov = coverage(al, energy)
    rows = []
    for n, f in frames.items():
        scope = energy_scope(f, energy)
        if "+" in scope:  # some records of a module counter, some not: the scope of the common queries alone
            scored = scored_rows(f[[c for c in (Col.ID, Col.CORRECT, Col.ERROR, Col.FLAGS) if c in f]])
            scope = energy_scope(scored.drop_duplicates(Col.ID, keep="last").set_index(Col.ID).loc[al.ids], energy)
        rows.append({"run": n, "accuracy": cov["accuracy"][n], "energy_j_mean": cov["energy_j_mean"][n],
                     "energy_scope": scope, "energy": energy_kind(f, energy),
                     "ipj_per_j": ipj(cov["accuracy"][n], cov["energy_j_mean"][n])})
    b = cov["best_of_local"]
    scopes = "+".join(dict.fromkeys(r["energy_scope"] for r in rows))  # the routed energy mixes the runs' scopes
    rows.append({"run": "best-of-local (oracle routing)", "accuracy": b["accuracy"], "energy_j_mean": b["energy_j_mean"],
                 "energy_scope": scopes, "energy": ESTIMATE if any(r["energy"] == ESTIMATE for r in rows) else MEASURED,
                 "ipj_per_j": b["ipj_per_j"]})
    routed = pd.DataFrame(sorted(b["routed_to"].items(), key=lambda kv: -kv[1]), columns=["run", "queries_routed"])
    return pd.DataFrame(rows), routed, int(cov["queries"])


def samples_table(runs: Mapping[str, Run], per_run: int = 6, max_chars: int = 400,
                  energy: str = DEFAULT_ENERGY) -> pd.DataFrame:
    """A few answers per run, as the model wrote them (cut at ``max_chars``): the first
    ``per_run // 2`` correct and the first wrong ones, in file order, each with its energy [J] on
    the basis ``energy`` (``scope_energy_j``, its scope and label beside it)."""
    rows = []
    for name, run in runs.items():
        q = run.queries
        if q.empty:
            continue
        right = q["correct"].fillna(False).astype(bool).to_numpy() if "correct" in q else np.zeros(len(q), bool)
        rows_at = np.sort(np.concatenate([np.flatnonzero(right)[: per_run // 2],
                                          np.flatnonzero(~right)[: per_run - per_run // 2]]))  # no copy of the run
        cols = [c for c in ("id", "domain", "reference", "output", "correct") if c in q]
        need = [c for c in (*cols, Col.ENERGY_J, Col.ACCELERATOR_ENERGY_J, Col.ENERGY_ABOVE_IDLE_J, Col.FLAGS) if c in q]
        picked = q.iloc[rows_at, [q.columns.get_loc(c) for c in need]]  # the shown rows of the columns used
        part = {c: picked[c].tolist() for c in cols}
        if "output" in part:
            text = ["" if t is None or t != t else str(t) for t in part["output"]]
            part["output"] = [t if len(t) <= max_chars else t[:max_chars] + " [...]" for t in text]
        if "energy_j" in q:
            part |= {"scope_energy_j": basis_rule.frame_energy_j(picked, energy).to_numpy(),
                     "energy_scope": energy_scope(picked, energy), "energy": energy_kind(q, energy)}
        rows.append(pd.DataFrame(part | {"run": name}, index=range(len(rows_at))))
    if not rows:
        return pd.DataFrame(columns=["run", "id", "output"])
    table = pd.concat(rows, ignore_index=True)
    return table[["run"] + [c for c in table if c != "run"]]


def meters_table(runs: Mapping[str, Run]) -> pd.DataFrame:
    """One row per run and meter domain: family, domain, source, measured or estimate, update
    period [s], resolution [J], and the meter's note (from the manifest)."""
    rows = []
    for name, run in runs.items():
        for meter in run.manifest.get("meters", []) or []:
            for d in meter.get("domains", []) or []:
                rows.append({"run": name, "family": meter.get("family"), "domain": d.get("domain"),
                             "source": d.get("source"), "energy": MEASURED if d.get("measured") else ESTIMATE,
                             "update_period_s": d.get("update_period_s"), "resolution_j": d.get("resolution_j"),
                             "parent": d.get("parent"), "note": meter.get("note", "")})
    return pd.DataFrame(rows, columns=["run", "family", "domain", "source", "energy", "update_period_s",
                                       "resolution_j", "parent", "note"])


def absent_table(runs: Mapping[str, Run]) -> pd.DataFrame:
    """Meter families ipw looked for and did not find on each run's machine, with the reason."""
    rows = [{"run": name, "family": a.get("family"), "reason": a.get("reason"), "fix": a.get("fix")}
            for name, run in runs.items() for a in run.manifest.get("absent", []) or []]
    return pd.DataFrame(rows, columns=["run", "family", "reason", "fix"])


def idle_table(runs: Mapping[str, Run]) -> pd.DataFrame:
    """The idle baseline [W] per run, session and domain."""
    rows = [{"run": name, "session": i.get("session"), "domain": d, "idle_power_w": w, "duration_s": i.get("duration_s")}
            for name, run in runs.items() for i in run.idle or [] for d, w in (i.get("power_w") or {}).items()]
    return pd.DataFrame(rows, columns=["run", "session", "domain", "idle_power_w", "duration_s"])


def flags_table(runs: Mapping[str, Run]) -> pd.DataFrame:
    """How many records carry each flag (``estimate``, short windows, ...), per run."""
    parts = []
    for name, run in runs.items():
        q = run.queries
        if q.empty or "flags" not in q:
            continue
        values = q["flags"].to_numpy(object)
        try:  # each distinct set of flags counted once (a run has a handful), not each record's
            codes, uniques = pd.factorize(values)
        except TypeError:  # lists: made tuples first
            codes, uniques = pd.factorize(np.array([tuple(v) if isinstance(v, list) else v for v in values], dtype=object))
        counts: dict[str, int] = {}
        for flags, n in zip(uniques, np.bincount(codes[codes >= 0], minlength=len(uniques))):
            for f in (flags,) if isinstance(flags, str) else flags:
                counts[str(f)] = counts.get(str(f), 0) + int(n)
        if counts:
            counted = pd.Series(counts).sort_values(ascending=False, kind="stable")
            parts.append(pd.DataFrame({"run": name, "flag": counted.index, "records": counted.to_numpy()}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["run", "flag", "records"])


def versions_table(runs: Mapping[str, Run]) -> pd.DataFrame:
    """Versions and identity of each run: ipw, Python, engine and its libraries, query set hash,
    creation time, status, sessions and the first command line."""
    rows = []
    for name, run in runs.items():
        m = run.manifest
        engine = m.get("engine", {}) or {}
        qs = m.get("queryset", {}) or {}
        sessions = m.get("sessions", []) or []
        versions = engine.get("versions", {}) or {}
        rows.append({
            "run": name, "label": run.label, "ipw_version": m.get("ipw_version"), "python": m.get("python"),
            "engine": engine.get("engine"), "engine_versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
            "model": model_name(run), "queryset": qs.get("name"), "queryset_sha256": qs.get("sha256"),
            "platform": (m.get("hardware", {}) or {}).get("platform"), "created": m.get("created"),
            "status": m.get("status"), "sessions": len(sessions),
            "command": " ".join(map(str, sessions[0].get("command", []))) if sessions else "",
        })
    return pd.DataFrame(rows)


def _query_frames(runs: Mapping[str, Run], what: str) -> dict[str, pd.DataFrame]:
    empty = [n for n, r in runs.items() if r.queries.empty]
    if empty:
        from ipw.science.intelligence.routing import RoutingInputError

        which = f"run {empty[0]} has" if len(empty) == 1 else f"runs {', '.join(empty)} have"
        raise RoutingInputError(f"{which} no query records; {what} needs records of every run")
    return {n: r.queries for n, r in runs.items()}


def routing_tables(runs: Mapping[str, Run], reference: str, costs=None, accuracies: Iterable[float] = (1.0, 0.8),
                   misroute: str = "to_reference"):
    """Hybrid routing against ``reference`` (:mod:`ipw.science.intelligence.routing`; ``costs`` an
    :class:`ipw.science.intelligence.routing.CostModel`): the aligned :class:`~ipw.science.intelligence.routing.QueryTable`, the savings frame
    (one row per router accuracy, :func:`ipw.science.intelligence.routing.savings_frame`) and the expected number of
    queries each run answers under each router (one column per router)."""
    from ipw.science.intelligence.routing import router_savings, routing_table, savings_frame

    table = routing_table(_query_frames(runs, "hybrid routing"), reference, costs)
    accuracies = tuple(accuracies)
    frame = savings_frame(table, accuracies, misroute)
    routed = pd.DataFrame({"run": [*table.local, table.reference],
                           "role": ["local"] * len(table.local) + ["reference"]})
    for p, label in zip(accuracies, frame["router"]):
        counts = router_savings(table, p, misroute).routed_to
        routed[f"queries_{label}"] = [counts[n] for n in routed["run"]]
    return table, frame, routed


def trend_tables(runs: Mapping[str, Run], release_dates: Mapping[str, str] | None = None,
                 energy: str = DEFAULT_ENERGY, by: str = "year", summary: pd.DataFrame | None = None):
    """The release-date trend (:mod:`ipw.science.intelligence.routing`): one row per run (release date, accuracy, IPW
    [1/W], IPJ [1/J]; :func:`ipw.science.intelligence.trend.model_points`) and the :class:`~ipw.science.intelligence.trend.Trend` of the
    best available run per period (union coverage where 2+ runs are given). Each run's IPW is that of
    ``summary`` (:func:`summary_table` of these runs on this basis; computed when not given)."""
    from ipw.science.intelligence.trend import model_points, release_trend

    frames = _query_frames(runs, "the release-date trend")
    summary = summary_table(runs, energy) if summary is None else summary
    points = model_points(frames, release_dates, energy, dict(zip(summary["run"], summary["ipw_per_w"])))
    return points, release_trend(points, frames if len(frames) > 1 else None, by)
