"""Figures for the Densing Law: fitted laws and the density trend (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ipw.density.fitting import FitResult  # noqa: E402
from ipw.density.laws import loss_law, score_law  # noqa: E402
from ipw.density.trend import TrendFit  # noqa: E402
from ipw.plotting import save_figure  # noqa: E402


def plot_fit(frame: pd.DataFrame, loss_fit: FitResult, score_fit: FitResult | None, path: Path | str) -> Path:
    """Observed vs predicted loss, and (if fitted) score against loss with the sigmoid."""
    panels = 2 if score_fit is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2), squeeze=False)
    predicted = loss_law(frame["params"], frame["tokens"], **loss_fit.params)
    ax = axes[0][0]
    ax.scatter(predicted, frame["loss"], s=14)
    lims = [min(predicted.min(), frame["loss"].min()), max(predicted.max(), frame["loss"].max())]
    ax.plot(lims, lims, "k--", lw=1)
    ax.set(xlabel="predicted loss a*N^-alpha + b*D^-beta [nats/token]",
           ylabel="observed loss [nats/token]", title=f"loss law, R^2 = {loss_fit.r2:.4f}")
    if score_fit is not None:
        ax = axes[0][1]
        grid = np.linspace(frame["loss"].min(), frame["loss"].max(), 200)
        ax.scatter(frame["loss"], frame["score"], s=14)
        ax.plot(grid, score_law(grid, **score_fit.params), "r-")
        ax.set(xlabel="loss [nats/token]", ylabel="score [fraction]",
               title=f"score law, R^2 = {score_fit.r2:.4f}")
    return save_figure(fig, path, dpi=120)


def plot_trend(frame: pd.DataFrame, fits: dict[str, TrendFit], path: Path | str) -> Path:
    """ln(density) against release date, the fitted lines, and the points each fit used."""
    fig, ax = plt.subplots(figsize=(8, 5))
    dates = pd.to_datetime(frame["release_date"])
    ax.scatter(dates, np.log(frame["density"]), s=16, color="0.6", label="all models")
    for label, fit in fits.items():
        used = frame[frame["model"].isin(fit.models)] if "model" in frame else frame
        ax.scatter(pd.to_datetime(used["release_date"]), np.log(used["density"]), s=30)
        t = pd.date_range(pd.to_datetime(used["release_date"]).min(),
                          pd.to_datetime(used["release_date"]).max(), periods=50)
        days = (t - pd.Timestamp(fit.epoch)).days.to_numpy(dtype=float)
        ax.plot(t, fit.slope_per_day * days + fit.intercept,
                label=f"{label}: doubling {fit.doubling_months:.2f} months, R^2 {fit.r2:.2f}")
    if "model" in frame:
        for row in frame.itertuples():
            ax.annotate(str(row.model), (pd.Timestamp(row.release_date), np.log(row.density)),
                        fontsize=6, alpha=0.7)
    ax.set(xlabel="release date", ylabel="ln(density)", title="Densing law: ln(rho) = A*t + B")
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=120)
