"""Figures of the science results, as matplotlib ``Figure`` objects (no pyplot, no backend switch).

The same functions draw for the report (embedded as PNG) and for the ``--plot`` options of
``ipw density``, ``ipw cmr`` and ``ipw capacity`` (written with :func:`ipw.reports.savefig.save_figure`).
They draw from saved results (:mod:`ipw.science.capacity.results`, :mod:`ipw.science.cmr.results`,
:mod:`ipw.science.density.results`) and their tables, and refit nothing: every line is a law evaluated
at the parameters that were saved.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ipw.science.cmr.laws import LAWS, POWER, cmr_law
from ipw.reports.run_figures import STYLE, new_figure, new_grid

_EXTRAPOLATE = 2.5  # CMR panel runs to this multiple of the largest fitted budget (paper Fig. 5: 250/100)


def _finish(fig: Figure) -> Figure:
    with mpl.rc_context(STYLE):
        fig.tight_layout()
    return fig


# -- Information Capacity (Yuan et al., arXiv 2511.08066) ------------------------------------------

def capacity_figure(frame: pd.DataFrame) -> Figure | None:
    """IC per corpus (one bar per model) and IC against bytes per token (tokenizer efficiency)."""
    if frame.empty or "information_capacity" not in frame:
        return None
    fig, (ax, ax2) = new_figure(2, width=5.2, height=3.6)
    with mpl.rc_context(STYLE):
        table = frame.pivot_table(index="corpus", columns="model", values="information_capacity", sort=True)
        width = 0.8 / max(len(table.columns), 1)
        pos = np.arange(len(table.index))
        for i, model in enumerate(table.columns):
            ax.bar(pos + i * width, table[model].to_numpy(float), width, label=str(model), color=f"C{i % 10}")
        ax.set_xticks(pos + width * (len(table.columns) - 1) / 2, [str(c) for c in table.index], rotation=30, ha="right")
        ax.set(ylabel="information capacity", title="IC per corpus")
        ax.legend(fontsize=7)
        if "bytes_per_token" in frame:
            for i, (model, g) in enumerate(frame.groupby("model", sort=False)):
                ax2.scatter(g["bytes_per_token"], g["information_capacity"], s=25, color=f"C{i % 10}", label=str(model))
            ax2.set(xlabel="bytes per token (tokenizer efficiency)", ylabel="information capacity",
                    title="IC against tokenizer efficiency")
    return _finish(fig)


# -- CMR scaling law (Gu et al., arXiv 2407.17467) -------------------------------------------------

def _params(row, law_name: str) -> list[float]:
    return [float(getattr(row, n)) for n in LAWS[law_name].names]


def cmr_curve_figure(curve: pd.DataFrame | None) -> Figure | None:
    """The CMR at each budget T per model, with its standard error as a band."""
    if curve is None or not {"model", "T", "cmr"} <= set(curve.columns):
        return None
    fig, (ax,) = new_figure(width=6.4, height=3.6)
    with mpl.rc_context(STYLE):
        for i, (model, g) in enumerate(curve.groupby("model", sort=False)):
            g = g.sort_values("T")
            ax.plot(g["T"], g["cmr"], "o-", ms=3, color=f"C{i % 10}", label=str(model))
            if "cmr_stderr" in g:
                err = g["cmr_stderr"].to_numpy(float)
                ax.fill_between(g["T"], g["cmr"] - err, g["cmr"] + err, color=f"C{i % 10}", alpha=0.2)
        ax.set(xlabel="T [token units]", ylabel="critical mixture ratio", title="CMR against training tokens")
        ax.legend(fontsize=7)
    return _finish(fig)


def cmr_constants_figure(constants: pd.DataFrame, tokens, token_unit: float) -> Figure:
    """CMR law curves (Eq. 8) for a table of constants (model, a4, s4, b3), asked budgets marked."""
    fig, (ax,) = new_figure(width=7, height=4.5)
    t_req = np.atleast_1d(np.asarray(tokens, float)) / token_unit
    t = np.linspace(min(1.0, t_req.min()), max(250.0, 1.1 * t_req.max()), 400)
    with mpl.rc_context(STYLE):
        for i, c in enumerate(constants.itertuples(index=False)):
            ax.plot(t, cmr_law(t, c.a4, c.s4, c.b3), color=f"C{i % 10}", label=str(c.model))
            ax.plot(t_req, cmr_law(t_req, c.a4, c.s4, c.b3), "o", color=f"C{i % 10}")
        ax.set(xlabel=f"T (units of {token_unit:.3g} tokens)", ylabel="critical mixture ratio R_CMR",
               title="CMR law R_CMR(T) = a4 T^s4 + b3 (Eq. 8)", ylim=(0, 1))
        ax.legend()
    return _finish(fig)


def cmr_fit_figure(tables: Mapping[str, pd.DataFrame], eps: float) -> Figure:
    """One row per model: general and domain loss change over T with their Eq. 6 laws, the feasible
    region at the largest budget (Sec. 5.1 law, eps, CMR), and the CMR against T with Eq. 8 and its
    extrapolation. ``tables``: those of :class:`ipw.science.cmr.results.CmrResults`."""
    models = list(dict.fromkeys(tables["feasible"]["model"].astype(str)))
    fig, axes = new_grid(len(models), 4, width=4.5, height=4.2)
    with mpl.rc_context(STYLE):
        for row, model in zip(axes, models):
            fits = tables["token_fits"][tables["token_fits"]["model"].astype(str) == model]
            changes = tables["changes"][tables["changes"]["model"].astype(str) == model]
            for ax, target in zip(row[:2], ("general", "domain")):
                _loss_panel(ax, model, fits[fits["target"] == target], changes, target)
            _region_panel(row[2], model, tables, fits[fits["target"] == "general"], eps)
            _cmr_panel(row[3], model, tables)
    return _finish(fig)


def _loss_panel(ax, model: str, fits: pd.DataFrame, changes: pd.DataFrame, target: str) -> None:
    colors = mpl.colormaps["viridis"](np.linspace(0, 0.9, max(len(fits), 1)))
    for f, color in zip(fits.itertuples(index=False), colors):
        run = changes[np.isclose(changes["ratio"], f.ratio)]
        t = np.geomspace(run["T"].min(), run["T"].max(), 200)
        ax.plot(run["T"], run[f"d_{target}"], "o", ms=3, color=color)
        ax.plot(t, LAWS[f.law](t, *_params(f, f.law)), "-", color=color, label=f"R = {f.ratio:.3g}")
    two = len(fits) and fits["law"].iloc[0] == "two_term"
    law = "a2 T^s2 + a3 T^s3 + b2" if two else "a T^s + b"
    ax.set(xlabel="T (token units)", ylabel=f"{target} loss change (nats)",
           title=f"{model}: {target} loss over T, {law} (Eq. 6)")
    ax.legend(fontsize=7)


def _region_panel(ax, model: str, tables: Mapping[str, pd.DataFrame], general: pd.DataFrame, eps: float) -> None:
    ratio_fits = tables["ratio_fits"]
    law = ratio_fits[(ratio_fits["model"].astype(str) == model) & (ratio_fits["target"] == "general")].iloc[0]
    t = float(law["T"])
    r = np.linspace(0.0, 1.0, 400)[1:]
    ax.plot(r, POWER(r, *_params(law, "power")), "-", label="general change, a R^s + b (Sec. 5.1)")
    pos = general[general["ratio"] > 0]
    at_t = [float(LAWS[f.law](t, *_params(f, f.law))) for f in pos.itertuples(index=False)]
    ax.plot(pos["ratio"], at_t, "o", label="Eq. 6 at this T, per ratio")
    ax.axhline(eps, color="red", ls="--", label=f"eps = {eps:g}")
    regions = tables.get("regions")
    if regions is not None and len(regions):
        for lo, hi in regions.loc[regions["model"].astype(str) == model, ["lo", "hi"]].itertuples(index=False):
            ax.axvspan(lo, hi, color="green", alpha=0.12)
    feasible = tables["feasible"]
    cmr = float(feasible.loc[feasible["model"].astype(str) == model, "cmr"].iloc[0])
    ax.axvline(cmr, color="green", label=f"CMR = {cmr:.3f}")
    ax.set(xlabel="domain ratio R", ylabel="general loss change (nats)", title=f"{model}: feasible region at T = {t:.4g}")
    ax.legend(fontsize=7)


def _cmr_panel(ax, model: str, tables: Mapping[str, pd.DataFrame]) -> None:
    curve = tables["cmr_curve"]
    ok = curve[(curve["model"].astype(str) == model) & (curve["status"] == "ok")]
    ax.errorbar(ok["T"], ok["cmr"], yerr=ok["cmr_stderr"], fmt="o", ms=3, label="CMR at each budget")
    law = tables["cmr_law"]
    law = law[law["model"].astype(str) == model]
    if len(law) and len(ok) and np.isfinite(law[["a4", "s4", "b3"]].to_numpy(float)).all():
        a4, s4, b3 = law[["a4", "s4", "b3"]].iloc[0].to_numpy(float)
        t_fit = float(ok["T"].max())
        t = np.linspace(float(ok["T"].min()), _EXTRAPOLATE * t_fit, 300)
        inside = t <= t_fit
        ax.plot(t[inside], cmr_law(t[inside], a4, s4, b3), "-", label="a4 T^s4 + b3 (Eq. 8)")
        ax.plot(t[~inside], cmr_law(t[~inside], a4, s4, b3), "--", label="extrapolated")
    ax.set(xlabel="budget T (token units)", ylabel="critical mixture ratio", title=f"{model}: CMR against T")
    ax.legend(fontsize=7)


# -- Densing Law (Xiao et al., arXiv 2412.04315) ---------------------------------------------------

def density_fit_figure(points: pd.DataFrame, loss_fit, score_fit=None, score_points: pd.DataFrame | None = None) -> Figure:
    """Observed against predicted loss, and (if fitted) score against loss with the sigmoid.
    ``points``: the runs the loss law was fitted on (params, tokens, loss); ``score_points``: the
    models the score law was fitted on (loss, score; default: ``points`` if it has a score)."""
    from ipw.science.density.laws import loss_law, score_law

    if score_points is None and "score" in points:
        score_points = points
    panels = 2 if score_fit is not None and score_points is not None else 1
    fig, axes = new_figure(panels, width=5.5, height=4.2)
    with mpl.rc_context(STYLE):
        predicted = np.asarray(loss_law(points["params"], points["tokens"], **loss_fit.params), float)
        observed = points["loss"].to_numpy(float)
        ax = axes[0]
        ax.scatter(predicted, observed, s=14)
        lims = [min(predicted.min(), observed.min()), max(predicted.max(), observed.max())]
        ax.plot(lims, lims, "k--", lw=1)
        ax.set(xlabel="predicted loss a*N^-alpha + b*D^-beta [nats/token]", ylabel="observed loss [nats/token]",
               title=f"loss law, R^2 = {loss_fit.r2:.4f}")
        if panels == 2:
            ax = axes[1]
            loss = score_points["loss"].to_numpy(float)
            grid = np.linspace(loss.min(), loss.max(), 200)
            ax.scatter(loss, score_points["score"], s=14)
            ax.plot(grid, score_law(grid, **score_fit.params), "r-")
            ax.set(xlabel="loss [nats/token]", ylabel="score [fraction]", title=f"score law, R^2 = {score_fit.r2:.4f}")
    return _finish(fig)


def density_trend_figure(frame: pd.DataFrame, fits: Mapping) -> Figure:
    """ln(density) against release date, each saved trend line, and the points each fit used."""
    fig, (ax,) = new_figure(width=8, height=5)
    with mpl.rc_context(STYLE):
        dates = pd.to_datetime(frame["release_date"])
        density = frame["density"].to_numpy(float)
        ax.scatter(dates, np.log(density), s=16, color="0.6", label="all models")
        for i, (label, fit) in enumerate(fits.items()):
            used = frame[frame["model"].astype(str).isin(fit.models)] if "model" in frame else frame
            if used.empty:
                continue
            when = pd.to_datetime(used["release_date"])
            ax.scatter(when, np.log(used["density"].to_numpy(float)), s=30, color=f"C{i % 10}")
            t = pd.date_range(when.min(), when.max(), periods=50)
            days = (t - pd.Timestamp(fit.epoch)).days.to_numpy(dtype=float)
            ax.plot(t, fit.slope_per_day * days + fit.intercept, color=f"C{i % 10}",
                    label=f"{label}: doubling {fit.doubling_months:.2f} months, R^2 {fit.r2:.2f}")
        if "model" in frame:
            for name, when, rho in zip(frame["model"].astype(str), dates, density):
                ax.annotate(name, (when, np.log(rho)), fontsize=6, alpha=0.7)
        ax.set(xlabel="release date", ylabel="ln(density)", title="Densing law: ln(rho) = A*t + B")
        ax.legend(fontsize=8)
    return _finish(fig)


# -- Release-date trend (IPW paper, arXiv 2511.07885) ----------------------------------------------

def release_trend_figure(points: pd.DataFrame, trend: pd.DataFrame) -> Figure | None:
    """Best IPW [1/W] and best accuracy of the runs available at each period's end, over release
    date, each run's own value marked at its release date. ``points``: :func:`ipw.science.intelligence.trend.model_points`
    (run, release_date, accuracy, ipw_per_w); ``trend``: :attr:`ipw.science.intelligence.trend.Trend.table`."""
    if points.empty or trend.empty:
        return None
    fig, axes = new_figure(2, width=5.4, height=3.8)
    when = pd.to_datetime(points["release_date"])
    as_of = pd.to_datetime(trend["as_of"])
    panels = (("ipw_per_w", "best_ipw_per_w", "IPW [1/W]", "Best IPW by release date"),
              ("accuracy", "best_accuracy", "accuracy", "Best accuracy by release date"))
    with mpl.rc_context(STYLE):
        for ax, (own, best, label, title) in zip(axes, panels):
            ax.scatter(when, points[own].to_numpy(float), s=22, color="0.55", label="each run, at its release date")
            for name, x, y in zip(points["run"].astype(str), when, points[own].to_numpy(float)):
                if np.isfinite(y):
                    ax.annotate(name, (x, y), fontsize=7, alpha=0.8, xytext=(3, 3), textcoords="offset points")
            ax.plot(as_of, trend[best].to_numpy(float), "o-", color="C0", drawstyle="steps-post",
                    label="best available at the period's end")
            if own == "accuracy" and "union_coverage" in trend and trend["union_coverage"].notna().any():
                ax.plot(as_of, trend["union_coverage"].to_numpy(float), "s--", color="C1", drawstyle="steps-post",
                        label="union coverage (some available run correct)")
            ax.set(xlabel="release date", ylabel=label, title=title)
            ax.legend(fontsize=7)
        fig.autofmt_xdate()
    return _finish(fig)
