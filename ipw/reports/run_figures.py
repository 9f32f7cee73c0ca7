"""The report's plots as matplotlib Figures (built outside pyplot; no display, no backend switch).

Each function returns a ``matplotlib.figure.Figure`` (or None when there is nothing to draw), for a
notebook or for :mod:`ipw.reports.html`, which embeds them as PNG. Titles and legends say
"estimate" wherever an energy shown is one. Large runs stay fast: timelines are averaged into at
most ``max_points`` bins per curve, distributions are drawn from arrays (histograms, ECDF on a
quantile grid), never point by point.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ipw.core import basis as basis_rule
from ipw.core.basis import DEFAULT_BASIS
from ipw.reports.tables import ESTIMATE, MEASURED, energy_kind, pareto_front
from ipw.science.intelligence.metrics import energy_scope
from ipw.store import Run

# User strings (run names, models) may contain '$': never parse them as mathtext.
STYLE = {"text.parse_math": False, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}


LINESTYLES = ("-", "-.", ":")


def _tag(kind: str) -> str:
    return " [estimate]" if kind == ESTIMATE else ""


def _title(base: str, estimate: bool) -> str:
    return f"{base} (estimate)" if estimate else base


def new_figure(ncols: int = 1, width: float = 6.4, height: float = 3.8) -> tuple[Figure, list]:
    """A Figure outside pyplot's registry: nothing to close, collected like any object."""
    fig, rows = new_grid(1, ncols, width, height)
    return fig, rows[0]


def new_grid(nrows: int, ncols: int, width: float = 6.4, height: float = 3.8) -> tuple[Figure, list[list]]:
    """A Figure of ``nrows`` x ``ncols`` axes (each ``width`` x ``height`` inches), outside pyplot."""
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(width * ncols, height * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [list(row) for row in axes]


def downsample(t: np.ndarray, y: np.ndarray, max_points: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``y`` in ``max_points`` equal-width bins of ``t`` (empty bins dropped); unchanged
    when there are fewer points. Millions of samples are binned without copies of the input beyond
    one float and one int32 array (a run of a million queries has ten million timeline samples)."""
    t, y = np.asarray(t, float), np.asarray(y, float)
    ok = np.isfinite(t) & np.isfinite(y)
    if not ok.all():
        t, y = t[ok], y[ok]
    del ok
    if len(t) <= max_points:
        return t, y
    lo, hi = float(t.min()), float(t.max())
    scaled = np.subtract(t, lo)
    scaled *= max_points / (hi - lo) if hi > lo else 0.0
    b = scaled.astype(np.int32)
    del scaled
    np.minimum(b, max_points - 1, out=b)
    n = np.bincount(b, minlength=max_points)
    keep = n > 0
    tb = np.bincount(b, weights=t, minlength=max_points)[keep] / n[keep]
    yb = np.bincount(b, weights=y, minlength=max_points)[keep] / n[keep]
    return tb, yb


def _session_time(t: np.ndarray, session: np.ndarray | None) -> np.ndarray:
    """Seconds since the run's first sample, sessions placed one after another (each session has
    its own monotonic clock origin). One new array; a mask per session only where there are several."""
    sessions = np.unique(session[~np.isnan(session)] if session.dtype.kind == "f" else session) if session is not None else []
    if len(sessions) <= 1:
        return t - np.nanmin(t)
    out = np.empty_like(t)
    offset = 0.0
    for s in sessions:
        m = session == s
        ts = t[m]
        out[m] = ts - ts.min() + offset
        offset = out[m].max() + 1.0
    return out


def _timeline_arrays(run: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(time since the first sample [s], power [W], domain code, domain names) of a run's timeline,
    read for this figure alone: four columns, the domains as a categorical, each column let go as
    soon as it is an array (ten million samples are half a gigabyte each way)."""
    several = len(run.manifest.get("sessions") or []) > 1  # else no session column to read (a sixth of it all)
    tl = run.read_timeline(("t_s", "power_w", "domain", "session") if several else ("t_s", "power_w", "domain"), lean=True)
    domain = tl.pop("domain")
    if isinstance(domain.dtype, pd.CategoricalDtype):
        codes, names = domain.cat.codes.to_numpy(), [str(c) for c in domain.cat.categories]
    else:  # a timeline already in memory
        codes, uniques = pd.factorize(domain.astype(str))
        names = [str(u) for u in uniques]
    del domain
    session = tl.pop("session").to_numpy() if "session" in tl else None
    t = _session_time(tl.pop("t_s").to_numpy(float), session)
    return t, tl.pop("power_w").to_numpy(float), codes, names


def _domain_kinds(run: Run) -> dict[str, str]:
    """``measured`` or ``estimate`` per meter domain, from the run's manifest: a GPU measured beside a
    host estimate is labelled apart from it."""
    return {d.get("domain"): MEASURED if d.get("measured") else ESTIMATE
            for m in run.manifest.get("meters", []) or [] for d in m.get("domains", []) or []}


def power_timeline(runs: Mapping[str, Run], max_points: int = 1500) -> Figure | None:
    """Power [W] over time per run and domain, with the idle baseline dashed; None when no run has
    a timeline (``ipw profile --hz``)."""
    with_tl = {n: r for n, r in runs.items() if r.has_timeline}
    if not with_tl:
        return None
    fig, (ax,) = new_figure(width=10, height=3.8)
    estimate, curves = False, 0
    with mpl.rc_context(STYLE):
        for i, (name, run) in enumerate(runs.items()):  # color i for run i, as in every plot
            if name not in with_tl:
                continue
            t_all, power, codes, names = _timeline_arrays(run)  # one run's samples at a time: binned, then let go
            kinds = _domain_kinds(run)
            estimate |= ESTIMATE in kinds.values()
            present = sorted(set(np.unique(codes[codes >= 0]).tolist()), key=lambda k: names[k])
            for j, k in enumerate(present):
                domain = names[k]
                if len(present) == 1:  # the common case: no mask, no copy of ten million samples
                    t, p = downsample(t_all, power, max_points)
                else:
                    m = codes == k
                    t, p = downsample(t_all[m], power[m], max_points)
                ax.plot(t, p, lw=1, ls=LINESTYLES[j % len(LINESTYLES)], color=f"C{i % 10}",
                        label=f"{name} {domain}{_tag(kinds.get(domain, ESTIMATE))}")
                curves += 1
                idle = [s.get("power_w", {}).get(domain) for s in run.idle or []]
                idle = [w for w in idle if isinstance(w, (int, float))]
                if idle:
                    ax.axhline(float(np.mean(idle)), ls="--", lw=0.8, alpha=0.7, color=f"C{i % 10}")
        ax.set(xlabel="time since the run's first sample [s]", ylabel="power [W]",
               title=_title("Power timeline (dashed: idle baseline)", estimate))
        _legend(fig, curves, ax, ax, loc="upper right")
        fig.tight_layout()
    return fig


LEGEND_INSIDE = 6  # legend entries that fit inside an axes 3.8 in tall without hiding the curves


def _legend(fig: Figure, entries: int, inside, beside, loc: str = "best") -> None:
    """A legend inside the axes ``inside`` for a few entries; past :data:`LEGEND_INSIDE`, to the right
    of the axes ``beside`` (the last), the figure made wider and tall enough for every entry, so
    that the tight layout always fits (up to :data:`ipw.reports.grouped.MANY_RUNS` runs: past that the
    report draws grouped figures)."""
    if entries <= LEGEND_INSIDE:
        inside.legend(fontsize=7, loc=loc)
        return
    beside.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    width, height = fig.get_size_inches()
    fig.set_size_inches(width + 2.5, max(height, 0.8 + 0.16 * entries))


def _ecdf(values: np.ndarray, points: int = 512) -> tuple[np.ndarray, np.ndarray]:
    v = np.sort(values)
    if len(v) <= points:
        return v, np.arange(1, len(v) + 1) / len(v)
    q = np.linspace(0, 1, points)
    return np.quantile(v, q), q


def energy_distribution(runs: Mapping[str, Run], energy: str = DEFAULT_BASIS) -> Figure | None:
    """Histogram and ECDF of energy per query [J] per run on the basis ``energy`` (:mod:`ipw.core.basis`:
    the accelerator's by default, or ``system``, ``above_idle``), its scope and label named; None when
    no run has energies on it."""
    data, scopes = {}, {}
    for name, run in runs.items():
        q = run.queries
        if q.empty or "energy_j" not in q:
            continue
        v = basis_rule.frame_energy_j(q, energy).to_numpy(float)
        v = v[np.isfinite(v)]
        if len(v):
            data[name] = (v, energy_kind(q, energy))
            scopes[energy_scope(q, energy)] = None
    if not data:
        return None
    estimate = any(k == ESTIMATE for _, k in data.values())
    fig, (ax_h, ax_e) = new_figure(2, width=5.2)
    allv = np.concatenate([v for v, _ in data.values()])
    lo, hi = float(allv.min()), float(allv.max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 51)
    with mpl.rc_context(STYLE):
        for name, (v, kind) in data.items():
            i = list(runs).index(name)
            counts, _ = np.histogram(v, bins=bins)
            ax_h.stairs(counts / len(v), bins, label=f"{name}{_tag(kind)}", color=f"C{i % 10}")
            x, y = _ecdf(v)
            ax_e.step(x, y, where="post", label=f"{name}{_tag(kind)}", color=f"C{i % 10}")
        scope = "+".join(scopes)
        what = "energy per query above idle (accelerator, else system)" if scope == "above_idle" else f"{scope} energy per query"
        ax_h.set(xlabel=f"{what} [J]", ylabel="share of queries", title=_title(f"Distribution of {what}", estimate))
        ax_e.set(xlabel=f"{what} [J]", ylabel="share of queries <= x", title=_title("ECDF", estimate), ylim=(0, 1.02))
        _legend(fig, len(data), ax_h, ax_e)
        fig.tight_layout()
    return fig


def _scopes(table: pd.DataFrame) -> str:
    """The scope(s) of a table's ``energy_j_mean`` ("accelerator "), from its ``energy_scope`` column."""
    if "energy_scope" not in table or table.empty:
        return ""
    return "+".join(dict.fromkeys(table["energy_scope"].astype(str))) + " "


def accuracy_vs_energy(summary: pd.DataFrame) -> Figure | None:
    """Accuracy (95% CI bars) against mean energy per query [J], one point per run; the Pareto
    frontier (no other run more accurate for less energy) drawn as a step line."""
    s = summary.dropna(subset=["accuracy", "energy_j_mean"])
    if s.empty:
        return None
    estimate = bool((s["energy"] == ESTIMATE).any()) if "energy" in s else True
    fig, (ax,) = new_figure(width=7, height=4.2)
    front = pareto_front(s["accuracy"].to_numpy(), s["energy_j_mean"].to_numpy())
    with mpl.rc_context(STYLE):
        x, y = s["energy_j_mean"].to_numpy(float), s["accuracy"].to_numpy(float)
        if {"accuracy_ci_low", "accuracy_ci_high"} <= set(s):
            err = np.vstack([y - s["accuracy_ci_low"].to_numpy(float), s["accuracy_ci_high"].to_numpy(float) - y])
            ax.errorbar(x, y, yerr=np.clip(np.nan_to_num(err), 0, None), fmt="none", ecolor="0.6", lw=1)
        ax.scatter(x[~front], y[~front], color="0.45", s=30, label="run", zorder=3)
        ax.scatter(x[front], y[front], color="C3", s=40, label="on the Pareto frontier", zorder=4)
        order = np.argsort(x[front])
        if front.sum() > 1:
            ax.step(x[front][order], y[front][order], where="post", color="C3", lw=1.2)
        for xi, yi, name, kind in zip(x, y, s["run"], s.get("energy", [""] * len(s))):
            ax.annotate(f"{name}{_tag(kind)}", (xi, yi), fontsize=7, xytext=(4, 4), textcoords="offset points")
        ax.set(xlabel=f"mean {_scopes(s)}energy per query [J]", ylabel="accuracy", ylim=(-0.02, 1.05),
               title=_title("Accuracy against energy per query, Pareto frontier", estimate))
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
    return fig


def domain_bars(domains: pd.DataFrame) -> Figure | None:
    """Accuracy and mean energy per query [J] per domain, one bar per run."""
    if domains.empty or "domain" not in domains:
        return None
    estimate = bool((domains["energy"] == ESTIMATE).any()) if "energy" in domains else True
    order = list(dict.fromkeys(domains["run"]))  # runs in report order: same colors as the other plots
    acc = domains.pivot_table(index="domain", columns="run", values="accuracy", sort=True).reindex(columns=order)
    energy = domains.pivot_table(index="domain", columns="run", values="energy_j_mean", sort=True).reindex(columns=order)
    fig, (ax_a, ax_e) = new_figure(2, width=5.6, height=3.8)
    with mpl.rc_context(STYLE):
        runs = list(acc.columns)
        width = 0.8 / max(len(runs), 1)
        pos = np.arange(len(acc.index))
        for i, run in enumerate(runs):
            ax_a.bar(pos + i * width, acc[run].to_numpy(float), width, label=run, color=f"C{i % 10}")
            ax_e.bar(pos + i * width, energy[run].reindex(acc.index).to_numpy(float), width, label=run, color=f"C{i % 10}")
        for ax in (ax_a, ax_e):
            ax.set_xticks(pos + width * (len(runs) - 1) / 2, [str(d) for d in acc.index], rotation=30, ha="right")
        ax_a.set(ylabel="accuracy", ylim=(0, 1.05), title="Accuracy per domain")
        ax_e.set(ylabel=f"mean {_scopes(domains)}energy per query [J]", title=_title("Energy per query per domain", estimate))
        _legend(fig, len(runs), ax_a, ax_e)
        fig.tight_layout()
    return fig
