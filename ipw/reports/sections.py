"""Providers for the science results: what ``ipw density``, ``ipw capacity`` and ``ipw cmr`` write.

``ipw report RUN --extra PATH`` takes any of these outputs; :func:`load_extra` recognises them by
their content (not their names) and returns one :class:`~ipw.reports.section.Section`:

=====================================  =====================================================
PATH                                   written by
=====================================  =====================================================
folder with ``capacity.json``/``.csv``  ``ipw capacity --out DIR`` (Information Capacity)
``capacity.json`` or ``capacity.csv``  the same, one file
folder with ``cmr_law.csv`` etc.       ``ipw cmr fit --out DIR`` (CMR scaling law)
CSV with ``a4, s4, b3``                a CMR law table (``cmr_law.csv``, Table 5 style)
CSV with ``cmr`` and ``T``             ``cmr_curve.csv`` alone
JSON with ``loss_law``                 ``ipw density fit --out laws.json`` (Densing Law)
CSV with ``density``, ``release_date`` ``ipw density trend --out trend.csv``
CSV with ``loss_per_token``            ``ipw density model --out losses.csv``
=====================================  =====================================================

The science packages compute; this module only reads their outputs, re-fits nothing except the
density trend line (with :func:`ipw.density.fit_trend`, to print its doubling time).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ipw.errors import IpwError
from ipw.reports.plots import STYLE, new_figure
from ipw.reports.section import Section, Table, plots


class ExtraError(IpwError):
    """An --extra file that is not an output of the science commands."""


KNOWN = ("a folder or file written by `ipw capacity --out`, `ipw cmr fit --out`, `ipw density fit --out`, "
         "`ipw density trend --out` or `ipw density model --out`")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise ExtraError(f"{path}: cannot read as CSV: {e}") from e


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ExtraError(f"{path}: cannot read as JSON: {e}") from e


def load_extra(path: Path | str) -> Section:
    """The section for one science output (file or folder); :class:`ExtraError` if unrecognised."""
    path = Path(path)
    if path.is_dir():
        if (path / "capacity.json").is_file() or (path / "capacity.csv").is_file():
            return capacity_section(path)
        if any((path / f"{n}.csv").is_file() for n in ("cmr_law", "cmr_curve", "feasible")):
            return cmr_section(path)
        raise ExtraError(f"{path}: a folder with no capacity.json/.csv and no cmr_*.csv; expected {KNOWN}")
    if not path.is_file():
        raise ExtraError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".json":
        data = _read_json(path)
        if isinstance(data, dict) and "results" in data:
            return capacity_section(path)
        if isinstance(data, dict) and "loss_law" in data:
            return density_laws_section(path, data)
        raise ExtraError(f"{path}: JSON with neither 'results' (capacity) nor 'loss_law' (density); expected {KNOWN}")
    frame = _read_csv(path)
    cols = set(frame.columns)
    if "information_capacity" in cols:
        return capacity_section(path)
    if {"density", "release_date"} <= cols:
        return density_trend_section(path, frame)
    if "loss_per_token" in cols:
        return density_losses_section(path, frame)
    if {"a4", "s4", "b3"} <= cols or {"cmr", "T"} <= cols:
        return cmr_section(path)
    raise ExtraError(f"{path}: columns {sorted(cols)} match no known output; expected {KNOWN}")


# -- Information Capacity (Yuan et al., arXiv 2511.08066) ----------------------------------------

CAPACITY_COLUMNS = ["model", "corpus", "information_capacity", "text_size_bits_per_token", "nll_bits_per_token",
                    "bias_bits", "flops_per_token", "bytes_per_token", "bits_per_byte", "samples", "tokens_scored",
                    "truncated_samples"]


def _capacity_frame(path: Path) -> tuple[pd.DataFrame, dict]:
    if path.is_dir():
        path = path / "capacity.json" if (path / "capacity.json").is_file() else path / "capacity.csv"
    if path.suffix.lower() == ".json":
        data = _read_json(path)
        return pd.DataFrame(data.get("results", [])), data.get("settings", {}) or {}
    return _read_csv(path), {}


def capacity_section(path: Path) -> Section:
    """Information Capacity IC = (text size - NLL + b) / log2(FLOPs per token), per model x corpus."""
    frame, settings = _capacity_frame(Path(path))
    if frame.empty or "information_capacity" not in frame:
        raise ExtraError(f"{path}: no capacity results")
    shown = frame[[c for c in CAPACITY_COLUMNS if c in frame]]
    per_model = frame.groupby("model", sort=False).agg(
        ic_mean=("information_capacity", "mean"), corpora=("corpus", "nunique"),
        bytes_per_token_mean=("bytes_per_token", "mean")).reset_index()
    lines = [f"{r.model}: IC {r.ic_mean:.4f} (mean over {r.corpora} corpora), {r.bytes_per_token_mean:.3g} bytes/token"
             for r in per_model.itertuples(index=False)]
    if "bias_bits" in frame:
        lines.append("bias b [bits/token]: " + ", ".join(f"{b:g}" for b in sorted(frame["bias_bits"].unique())))
    if settings:
        lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items() if k not in ("models", "corpora")))
    warnings = []
    if "truncated_samples" in frame and frame["truncated_samples"].sum() > 0:
        warnings.append(f"{int(frame['truncated_samples'].sum())} samples were truncated to max_tokens")
    if "bias_bits" in frame and frame["bias_bits"].nunique() > 1:
        warnings.append("rows use different biases b: IC values across them are not comparable")
    return Section(
        "Information capacity", key="capacity", summary=tuple(lines), warnings=tuple(warnings),
        intro=("IC = (text size - NLL + b) / log2(F): bits per token saved over raw UTF-8, per doubling of decode "
               "FLOPs (Yuan et al., arXiv 2511.08066). Units: bits/token, FLOPs/token. From " + str(path) + "."),
        tables=(Table("Per model and corpus", shown), Table("Per model", per_model)),
        figures=plots(("IC per model and corpus", _capacity_figure(frame))),
    )


def _capacity_figure(frame: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = new_figure(2, width=5.2, height=3.6)
    with plt.rc_context(STYLE):
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
        fig.tight_layout()
    return fig


# -- CMR scaling law (Gu et al., arXiv 2407.17467) -------------------------------------------------

CMR_TABLES = (("cmr_law", "CMR law R_CMR(T) = a4*T^s4 + b3 (Eq. 8) per model"),
              ("feasible", "Feasible region and CMR at the largest budget"),
              ("cmr_curve", "CMR per token budget"), ("predict", "CMR law extrapolated"),
              ("ratio_fits", "Loss over the mixture ratio, L(R) = a*R^s + b"),
              ("token_fits", "Loss change over tokens (Eq. 6) per ratio"))


def cmr_section(path: Path) -> Section:
    """Critical mixture ratio: the tables ``ipw cmr fit --out`` writes, and R_CMR against T."""
    path = Path(path)
    found = {}
    if path.is_dir():
        for name, _ in CMR_TABLES:
            if (path / f"{name}.csv").is_file():
                found[name] = _read_csv(path / f"{name}.csv")
    else:
        frame = _read_csv(path)
        found["cmr_law" if {"a4", "s4", "b3"} <= set(frame.columns) else "cmr_curve"] = frame
    lines, warnings = [], []
    law = found.get("cmr_law")
    if law is not None and {"a4", "s4", "b3"} <= set(law.columns):
        for r in law.itertuples(index=False):
            r2 = getattr(r, "r2", float("nan"))
            lines.append(f"{r.model}: R_CMR(T) = {r.a4:.4g} * T^{r.s4:.4g} + {r.b3:.4g}" + (f" (R^2 {r2:.3f})" if np.isfinite(r2) else ""))
            note = getattr(r, "note", None)
            if isinstance(note, str) and note.strip():
                warnings.append(f"{r.model}: {note}")
    feas = found.get("feasible")
    if feas is not None and {"model", "cmr", "T"} <= set(feas.columns):
        for r in feas.itertuples(index=False):
            eps = getattr(r, "eps", float("nan"))
            lines.append(f"{r.model}: CMR {r.cmr:.1%} at T = {r.T:g}" + (f" (eps {eps:g} nats/token)" if np.isfinite(eps) else ""))
            if bool(getattr(r, "extrapolated", False)) or bool(getattr(r, "saturated", False)):
                warnings.append(f"{r.model}: the CMR at T = {r.T:g} is extrapolated or saturated; read it with care")
    tables = tuple(Table(caption, found[name]) for name, caption in CMR_TABLES if name in found)
    return Section(
        "Critical mixture ratio", key="cmr", summary=tuple(lines), warnings=tuple(warnings),
        intro=("CMR: the largest domain share R of a continual pre-training mixture whose general-loss rise stays "
               "within eps (Gu et al., arXiv 2407.17467). T counts tokens in the fit's token unit. From " + str(path) + "."),
        tables=tables, figures=plots(("CMR against training tokens", _cmr_figure(found.get("cmr_curve")))),
    )


def _cmr_figure(curve: pd.DataFrame | None):
    if curve is None or not {"model", "T", "cmr"} <= set(curve.columns):
        return None
    import matplotlib.pyplot as plt

    fig, (ax,) = new_figure(width=6.4, height=3.6)
    with plt.rc_context(STYLE):
        for i, (model, g) in enumerate(curve.groupby("model", sort=False)):
            g = g.sort_values("T")
            ax.plot(g["T"], g["cmr"], "o-", ms=3, color=f"C{i % 10}", label=str(model))
            if "cmr_stderr" in g:
                err = g["cmr_stderr"].to_numpy(float)
                ax.fill_between(g["T"], g["cmr"] - err, g["cmr"] + err, color=f"C{i % 10}", alpha=0.2)
        ax.set(xlabel="T [token units]", ylabel="critical mixture ratio", title="CMR against training tokens")
        ax.legend(fontsize=7)
        fig.tight_layout()
    return fig


# -- Densing Law (Xiao et al., arXiv 2412.04315) ---------------------------------------------------

def density_laws_section(path: Path, data: dict) -> Section:
    """The fitted loss law and score law (``ipw density fit --out``), parameter by parameter."""
    rows, lines = [], []
    for key in ("loss_law", "score_law"):
        law = data.get(key)
        if not law:
            continue
        stderr = law.get("stderr", {}) or {}
        rows += [{"law": key, "param": k, "value": v, "stderr": stderr.get(k)} for k, v in (law.get("params") or {}).items()]
        lines.append(f"{key}: R^2 {law.get('r2', float('nan')):.5f} over {law.get('n_points', '?')} points")
    if "tokens_d0" in data:
        lines.append(f"D0 (tokens used to invert the loss law): {float(data['tokens_d0']):.3g}")
    warnings = () if "score_law" in data else ("no score law in this file: no effective size can be computed",)
    return Section(
        "Densing law: fitted laws", key="density-laws", summary=tuple(lines), warnings=warnings,
        intro=("L(N, D) = a*N^-alpha + b*D^-beta [nats/token] and S = c/(1+exp(-gamma(L-l))) + d (Xiao et al., "
               "arXiv 2412.04315, section 2.2). From " + str(path) + "."),
        tables=(Table("Parameters and standard errors", pd.DataFrame(rows, columns=["law", "param", "value", "stderr"])),),
    )


def density_trend_section(path: Path, frame: pd.DataFrame) -> Section:
    """Density per model and the trend ln(rho_max) = A*t + B with its doubling time."""
    from ipw.density import fit_trend

    lines, warnings = [], []
    frame = frame.copy()
    frame["release_date"] = pd.to_datetime(frame["release_date"]).dt.date
    try:
        fit = fit_trend(frame, "frontier")
        lines.append(f"density doubles every {fit.doubling_months:.2f} +/- {fit.doubling_months_stderr:.2f} months "
                     f"(A = {fit.slope_per_day:.5f} per day, R^2 = {fit.r2:.3f}, {fit.n_points} frontier models)")
    except (IpwError, ValueError, KeyError) as e:
        fit = None
        warnings.append(f"no trend fitted: {e}")
    shown = frame[[c for c in ("model", "family", "release_date", "params", "score", "n_hat", "density") if c in frame]]
    return Section(
        "Densing law: density trend", key="density-trend", summary=tuple(lines), warnings=tuple(warnings),
        intro=("Density rho = N_hat / N, N_hat the parameters a reference model needs for the same score; "
               "ln(rho_max) = A*t + B over release dates (Xiao et al., arXiv 2412.04315). From " + str(path) + "."),
        tables=(Table("Density per model", shown.sort_values("release_date", kind="stable")),),
        figures=plots(("ln(density) against release date", _trend_figure(frame, fit))),
    )


def _trend_figure(frame: pd.DataFrame, fit):
    import matplotlib.pyplot as plt

    fig, (ax,) = new_figure(width=7, height=3.8)
    with plt.rc_context(STYLE):
        dates = pd.to_datetime(frame["release_date"])
        ax.scatter(dates, np.log(frame["density"].astype(float)), s=14, color="0.5", label="models")
        if fit is not None:
            t = pd.date_range(dates.min(), dates.max(), periods=50)
            days = (t - pd.Timestamp(fit.epoch)).days.to_numpy(dtype=float)
            ax.plot(t, fit.slope_per_day * days + fit.intercept, "C3-",
                    label=f"frontier fit: doubling {fit.doubling_months:.2f} months")
        ax.set(xlabel="release date", ylabel="ln(density)", title="Densing law: ln(rho) against release date")
        ax.legend(fontsize=7)
        fig.tight_layout()
    return fig


def density_losses_section(path: Path, frame: pd.DataFrame) -> Section:
    """Conditional loss per item (``ipw density model --out``) and its set-level means."""
    lines = [f"{len(frame)} items, loss per token: item mean {frame['loss_per_token'].mean():.4f} nats"]
    if {"nll_nats", "n_answer_tokens"} <= set(frame.columns) and frame["n_answer_tokens"].sum() > 0:
        lines.append(f"token mean {frame['nll_nats'].sum() / frame['n_answer_tokens'].sum():.4f} nats/token "
                     f"over {int(frame['n_answer_tokens'].sum())} answer tokens")
    return Section(
        "Densing law: conditional loss", key="density-loss", summary=tuple(lines),
        intro="Conditional loss -ln P(answer | prompt) per item, in nats per answer token. From " + str(path) + ".",
        tables=(Table("Per item", frame),),
    )
