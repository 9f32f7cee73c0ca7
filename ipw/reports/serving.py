"""The serving sweep in a report: levels table and the energy-latency frontier figure.

``ipw report --extra DIR`` with a folder saved by ``ipw sweep --out DIR`` (kind ``serving.sweep``,
:class:`ipw.run.sweep.SweepResult`) shows one row per level (accuracy, IPW, IPJ, energy per query and
per token, steady-state throughput and power, latency) and a figure: steady-state J/token against
median TTFT and against median TPOT, one point per level, the frontier joined.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ipw.reports.run_figures import STYLE, new_figure
from ipw.reports.blocks import Section, Table, plots

SHOWN = ["mode", "level", "n", "scored", "errors", "accuracy", "ipw_per_w", "ipj_per_j", "energy_scope", "energy",
         "energy_per_query_j", "prefill_energy_per_query_j", "decode_energy_per_query_j", "j_per_token_run",
         "steady_j_per_token", "steady_tokens_per_s", "steady_power_w", "steady_energy_uncertainty_j",
         "ttft_p50_s", "ttft_p90_s", "tpot_p50_s", "tpot_p90_s", "tpot_vllm_mean_s", "itl_p50_s", "itl_p99_s",
         "queue_mean_s", "server_prefill_mean_s", "server_decode_mean_s", "frontier_ttft", "frontier_tpot"]


def _energy(frame: pd.DataFrame) -> pd.Series:
    return frame["steady_j_per_token"].astype(float).fillna(frame["j_per_token_run"].astype(float))


def frontier_figure(frame: pd.DataFrame) -> Figure | None:
    """Steady J/token (run J/token where a level had no steady state) against median TTFT and TPOT [ms]."""
    if frame is None or frame.empty:
        return None
    energy = _energy(frame)
    fig, axes = new_figure(2, width=4.6, height=3.6)
    with mpl.rc_context(STYLE):
        for ax, col, flag, label in ((axes[0], "ttft_p50_s", "frontier_ttft", "median TTFT [ms]"),
                                     (axes[1], "tpot_p50_s", "frontier_tpot", "median TPOT [ms/token]")):  # fmt: skip
            x = frame[col].astype(float) * 1e3
            ok = np.isfinite(x) & np.isfinite(energy)
            ax.scatter(x[ok], energy[ok], s=28, color="#1f77b4", zorder=3)
            for xi, yi, level in zip(x[ok], energy[ok], frame["level"][ok]):
                ax.annotate(str(int(level)), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
            front = frame[flag].astype(bool) & ok
            if front.sum() > 1:
                order = np.argsort(x[front].to_numpy())
                ax.plot(x[front].to_numpy()[order], energy[front].to_numpy()[order], color="#d62728", lw=1.2,
                        label="frontier", zorder=2)  # fmt: skip
                ax.legend(loc="upper right")
            ax.set_xlabel(label)
            scope = "+".join(dict.fromkeys(frame["energy_scope"].astype(str))) + " " if "energy_scope" in frame else ""
            ax.set_ylabel(f"{scope}energy per output token [J/token]")
        mode = str(frame["mode"].iloc[0]).replace("_", " ")
        fig.suptitle(f"Energy against latency, one point per {mode} level")
        fig.tight_layout()
    return fig


def serving_section(path: Path, only: str | None = None) -> Section:
    """The section of a saved sweep (``ipw sweep --out``)."""
    from ipw.run.sweep import SweepResult

    saved = SweepResult.load(path)
    frame = saved.levels
    if "energy" not in frame and "measured" in frame:  # a sweep saved before the label column
        frame = frame.assign(energy=frame["measured"].map(lambda m: "measured" if m is True or m == 1 else "estimate"))
    shown = frame[[c for c in SHOWN if c in frame]]
    energy = _energy(frame)
    lines = []
    if len(frame) and np.isfinite(energy).any():
        best = frame.loc[energy.idxmin()]
        lines.append(f"lowest energy per token: {energy.min():.4g} J/token at {str(best['mode']).replace('_', ' ')} "
                     f"{int(best['level'])} (median TTFT {best['ttft_p50_s'] * 1e3:.0f} ms)")  # fmt: skip
        if np.isfinite(energy.iloc[0]) and energy.iloc[0] > 0:
            lines.append(f"from level {int(frame['level'].iloc[0])} to {int(best['level'])}: "
                         f"{energy.iloc[0] / energy.min():.2f}x less energy per token")  # fmt: skip
    warnings = []
    if "measured" in frame and not frame["measured"].fillna(False).astype(bool).all():
        warnings.append("ESTIMATE: some levels' energy includes the labelled estimate (no energy counter for it)")
    if "steady_j_per_token" in frame and frame["steady_j_per_token"].isna().any():
        missing = frame.loc[frame["steady_j_per_token"].isna(), "level"].astype(int).tolist()
        warnings.append(f"levels {missing} had too few queries for a steady state (need more than 2 x level): "
                        "their J/token is over the whole run, ramp-up and ramp-down included")  # fmt: skip
    return Section(
        "Serving: energy against latency", key="serving", summary=tuple(lines), warnings=tuple(warnings),
        intro=("The same query set at several concurrencies or batch sizes. Per-query energy is attributed by the "
               "token-rate-share rule (ipw.profilers.attribution); J/token is over ML.ENERGY's steady-state window; TPOT is "
               f"(t_last - t_first)/(n - 1) (docs/serving.md). From {path}."),
        tables=(Table("One row per level", shown),),
        figures=plots(("Steady-state energy per token against median TTFT and TPOT", frontier_figure(frame))),
    )
