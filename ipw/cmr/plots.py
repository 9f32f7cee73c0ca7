"""Figures of a CMR analysis (matplotlib, Agg backend): loss curves, feasible region, CMR against T."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ipw.cmr.analysis import CmrAnalysis, ModelAnalysis  # noqa: E402
from ipw.cmr.laws import cmr_law  # noqa: E402
from ipw.plotting import save_figure  # noqa: E402

_EXTRAPOLATE = 2.5  # CMR panel runs to this multiple of the largest fitted budget (paper Fig. 5: 250/100)


def plot_analysis(result: CmrAnalysis, path: str | Path) -> Path:
    """One row per model: general and domain loss change over T, feasible region, CMR over T."""
    models = result.models
    fig, axes = plt.subplots(len(models), 4, figsize=(18, 4.2 * len(models)), squeeze=False)
    for row, m in zip(axes, models):
        data = result.changes[result.changes["model"] == m.model]
        _loss_panel(row[0], m, data, "general")
        _loss_panel(row[1], m, data, "domain")
        _region_panel(row[2], m, result.config.eps)
        _cmr_panel(row[3], m)
    return save_figure(fig, path, dpi=110)


def plot_constants(constants: pd.DataFrame, tokens: np.ndarray, token_unit: float, path: str | Path) -> Path:
    """CMR law curves (Eq. 8) for a table of constants, with the asked budgets marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    t_req = np.asarray(tokens, float) / token_unit
    t = np.linspace(min(1.0, t_req.min()), max(250.0, 1.1 * t_req.max()), 400)
    for c in constants.itertuples(index=False):
        line, = ax.plot(t, cmr_law(t, c.a4, c.s4, c.b3), label=str(c.model))
        ax.plot(t_req, cmr_law(t_req, c.a4, c.s4, c.b3), "o", color=line.get_color())
    ax.set(xlabel=f"T (units of {token_unit:.3g} tokens)", ylabel="critical mixture ratio R_CMR",
           title="CMR law R_CMR(T) = a4 T^s4 + b3 (Eq. 8)", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path, dpi=110)


def _loss_panel(ax, m: ModelAnalysis, data: pd.DataFrame, target: str) -> None:
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(m.token_fits)))
    for f, color in zip(m.token_fits, colors):
        run = data[data["ratio"] == f.ratio]
        t = np.geomspace(min(f.t_values), f.t_max, 200)
        ax.plot(run["T"], run[f"d_{target}"], "o", ms=3, color=color)
        ax.plot(t, getattr(f, target).predict(t), "-", color=color, label=f"R = {f.ratio:.3g}")
    law = "a2 T^s2 + a3 T^s3 + b2" if target == "general" and m.token_fits[0].general.law == "two_term" \
        else "a T^s + b"
    ax.set(xlabel="T (token units)", ylabel=f"{target} loss change (nats)",
           title=f"{m.model}: {target} loss over T, {law} (Eq. 6)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _region_panel(ax, m: ModelAnalysis, eps: float) -> None:
    region = m.region
    r = np.linspace(0.0, 1.0, 400)[1:]
    ax.plot(r, m.general_over_r.predict(r), "-", label="general change, a R^s + b (Sec. 5.1)")
    ratios = [f.ratio for f in m.token_fits if f.ratio > 0]
    ax.plot(ratios, [f.general.predict(region.t)[()] for f in m.token_fits if f.ratio > 0], "o",
            label="Eq. 6 at this T, per ratio")
    ax.axhline(eps, color="red", ls="--", label=f"eps = {eps:g}")
    for lo, hi in region.intervals:
        ax.axvspan(lo, hi, color="green", alpha=0.12)
    ax.axvline(region.cmr, color="green", label=f"CMR = {region.cmr:.3f}")
    ax.set(xlabel="domain ratio R", ylabel="general loss change (nats)",
           title=f"{m.model}: feasible region at T = {region.t:.4g}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _cmr_panel(ax, m: ModelAnalysis) -> None:
    ok = m.curve[m.curve["status"] == "ok"]
    ax.errorbar(ok["T"], ok["cmr"], yerr=ok["cmr_stderr"], fmt="o", ms=3, label="CMR at each budget")
    if m.cmr_law is not None and len(ok):
        t_fit = float(ok["T"].max())
        t = np.linspace(float(ok["T"].min()), _EXTRAPOLATE * t_fit, 300)
        inside = t <= t_fit
        ax.plot(t[inside], m.cmr_law.predict(t[inside]), "-", label="a4 T^s4 + b3 (Eq. 8)")
        ax.plot(t[~inside], m.cmr_law.predict(t[~inside]), "--", label="extrapolated")
    ax.set(xlabel="budget T (token units)", ylabel="critical mixture ratio",
           title=f"{m.model}: CMR against T")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
