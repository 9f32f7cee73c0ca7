"""Providers for the saved science results: one :class:`~ipw.reports.blocks.Section` per result.

``ipw report RUN --extra PATH`` takes what a science command's ``--out`` wrote: a result folder,
a result's JSON file, or one of its CSV tables. :func:`load_extra` reads the kind from the JSON
header (:mod:`ipw.science.results`) and dispatches on it, never on column names:

==================  ==============================================  =====================================
kind                written by                                      shown
==================  ==============================================  =====================================
``capacity``        ``ipw capacity --out DIR``                      IC per model and corpus, IC figure
``cmr.analysis``    ``ipw cmr fit --out DIR``                       CMR law, CMR, every table, fit figure
``density.laws``    ``ipw density fit --out laws.json``             law parameters, R^2, D0, fit figure
``density.trend``   ``ipw density trend --out trend.csv``           densities, the saved trend fits
``density.losses``  ``ipw density model --out losses.csv``          conditional loss per item
==================  ==============================================  =====================================

A path to one table of a result (``DIR/cmr_curve.csv``) shows that table alone (a CMR table) or
the whole result (the others). A result of an
unknown kind, or written by a newer ipw, is an error that names the file. The report refits
nothing: the density trend shown is the one saved with the densities.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ipw.reports import science_figures
from ipw.reports.blocks import Section, Table, plots
from ipw.reports.serving import serving_section
from ipw.science.results import RESULT_FILE, ResultFileError, read_header, result_file


class ExtraError(ResultFileError):
    """An --extra path that is not a result saved by the science commands."""

    def __init__(self, path: object, message: str, line: int | None = None) -> None:
        super().__init__(path, line, message)


KNOWN = ("what `ipw capacity --out`, `ipw cmr fit --out` or `ipw density fit/trend/model --out` wrote "
         "(a folder, its JSON file or one of its tables)")


def _owner(table: Path):
    """(header, table name) of the saved result that lists CSV ``table`` among its tables, or None."""
    for candidate in (table.with_suffix(".json"), *sorted(table.parent.glob("*.json"))):
        try:
            header = read_header(candidate)
        except ResultFileError:
            continue
        names = [name for name, file in header.tables.items() if file == table.name]
        if names:
            return header, names[0]
    return None


def _header_and_table(path: Path):
    """(header, table name or None) of a result folder, its JSON file, or one of its tables."""
    if path.is_dir():
        if not result_file(path).is_file():
            raise ExtraError(path, "no saved result here (no capacity, CMR or density result, no "
                                   f"{RESULT_FILE}); expected {KNOWN}")
        return read_header(path), None
    if not path.is_file():
        raise ExtraError(path, "no such file or folder")
    if path.suffix.lower() == ".json":
        try:
            return read_header(path), None
        except ResultFileError as e:
            raise ExtraError(path, e.message, e.line) from None
    owner = _owner(path)
    if owner is None:
        raise ExtraError(path, "no saved result lists this file (kind unknown), so it can match no known output; "
                               f"expected {KNOWN}")
    return owner


def load_extra(path: Path | str) -> Section:
    """The section for one saved science result; :class:`ExtraError` if it is none."""
    path = Path(path)
    header, only = _header_and_table(path)
    provider = PROVIDERS.get(header.kind)
    if provider is None:
        raise ExtraError(header.path, f"unknown result kind {header.kind!r} (this ipw knows: "
                                      f"{', '.join(sorted(PROVIDERS))}); a newer ipw may read it")
    return provider(header.folder, only)


def _from(path: Path) -> str:
    return f" From {path}."


# -- Information Capacity (Yuan et al., arXiv 2511.08066) ----------------------------------------

CAPACITY_COLUMNS = ["model", "corpus", "information_capacity", "text_size_bits_per_token", "nll_bits_per_token",
                    "bias_bits", "flops_per_token", "bytes_per_token", "bits_per_byte", "samples", "tokens_scored",
                    "truncated_samples"]


def capacity_section(path: Path, only: str | None = None) -> Section:
    """Information Capacity IC = (text size - NLL + b) / log2(FLOPs per token), per model x corpus."""
    from ipw.science.capacity.results import CapacityResults

    saved = CapacityResults.load(path)
    frame, settings = saved.results, saved.settings
    shown = frame[[c for c in CAPACITY_COLUMNS if c in frame]]
    per_model = frame.groupby("model", sort=False).agg(
        ic_mean=("information_capacity", "mean"), corpora=("corpus", "nunique"),
        bytes_per_token_mean=("bytes_per_token", "mean")).reset_index()
    lines = [f"{r.model}: IC {r.ic_mean:.4f} (mean over {r.corpora} corpora), {r.bytes_per_token_mean:.3g} bytes/token"
             for r in per_model.itertuples(index=False)]
    lines.append("bias b [bits/token]: " + ", ".join(f"{b:g}" for b in sorted(frame["bias_bits"].unique())))
    if settings:
        lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items() if k not in ("models", "corpora")))
    warnings = []
    if "truncated_samples" in frame and frame["truncated_samples"].sum() > 0:
        warnings.append(f"{int(frame['truncated_samples'].sum())} samples were truncated to max_tokens")
    if frame["bias_bits"].nunique() > 1:
        warnings.append("rows use different biases b: IC values across them are not comparable")
    return Section(
        "Information capacity", key="capacity", summary=tuple(lines), warnings=tuple(warnings),
        intro=("IC = (text size - NLL + b) / log2(F): bits per token saved over raw UTF-8, per doubling of decode "
               "FLOPs (Yuan et al., arXiv 2511.08066). Units: bits/token, FLOPs/token." + _from(path)),
        tables=(Table("Per model and corpus", shown), Table("Per model", per_model)),
        figures=plots(("IC per model and corpus", science_figures.capacity_figure(frame))),
    )


# -- CMR scaling law (Gu et al., arXiv 2407.17467) -------------------------------------------------

CMR_CAPTIONS = {"cmr_law": "CMR law R_CMR(T) = a4*T^s4 + b3 (Eq. 8) per model",
                "feasible": "Feasible region and CMR at the largest budget",
                "cmr_curve": "CMR per token budget", "predict": "CMR law extrapolated",
                "ratio_fits": "Loss over the mixture ratio, L(R) = a*R^s + b",
                "token_fits": "Loss change over tokens (Eq. 6) per ratio",
                "regions": "Feasible intervals of R at the largest budget",
                "changes": "The runs: loss changes against the loss before CPT"}


def _cmr_lines(tables: dict[str, pd.DataFrame], eps: float) -> tuple[list[str], list[str]]:
    lines, warnings = [], []
    law = tables.get("cmr_law")
    if law is not None:
        for r in law.itertuples(index=False):
            if not np.isfinite([r.a4, r.s4, r.b3]).all():
                warnings.append(f"{r.model}: no CMR law: {getattr(r, 'note', '')}".rstrip(": "))
                continue
            r2 = getattr(r, "r2", float("nan"))
            lines.append(f"{r.model}: R_CMR(T) = {r.a4:.4g} * T^{r.s4:.4g} + {r.b3:.4g}"
                         + (f" (R^2 {r2:.3f})" if np.isfinite(r2) else ""))
    feas = tables.get("feasible")
    if feas is not None:
        for r in feas.itertuples(index=False):
            lines.append(f"{r.model}: CMR {r.cmr:.1%} at T = {r.T:g} (eps {eps:g} nats/token)")
            if bool(r.extrapolated) or bool(r.saturated):
                warnings.append(f"{r.model}: the CMR at T = {r.T:g} is extrapolated or saturated; read it with care")
    return lines, warnings


def cmr_section(path: Path, only: str | None = None) -> Section:
    """Critical mixture ratio: the saved tables, the CMR law per model, and the fit figure."""
    from ipw.science.cmr.results import TABLES, CmrResults

    saved = CmrResults.load(path)
    names = [only] if only else [n for n in TABLES if n in saved.tables]
    tables = {n: saved.tables[n] for n in names}
    lines, warnings = _cmr_lines(tables, saved.config.eps)
    if only is None:
        figure = ("Loss changes with Eq. 6, feasible region, CMR against T (Eq. 8)",
                  science_figures.cmr_fit_figure(saved.tables, saved.config.eps))
    else:
        figure = ("CMR against training tokens", science_figures.cmr_curve_figure(tables.get("cmr_curve")))
    return Section(
        "Critical mixture ratio", key="cmr", summary=tuple(lines), warnings=tuple(warnings),
        intro=("CMR: the largest domain share R of a continual pre-training mixture whose general-loss rise stays "
               f"within eps (Gu et al., arXiv 2407.17467). T counts tokens in units of {saved.config.token_unit:g}."
               + _from(path)),
        tables=tuple(Table(CMR_CAPTIONS.get(n, n), tables[n]) for n in names), figures=plots(figure),
    )


# -- Densing Law (Xiao et al., arXiv 2412.04315) ---------------------------------------------------

def density_laws_section(path: Path, only: str | None = None) -> Section:
    """The fitted loss law and score law (``ipw density fit --out``), parameter by parameter."""
    from ipw.science.density.results import DensityLawsResult

    saved = DensityLawsResult.load(path)
    rows, lines = [], []
    for key, fit in (("loss_law", saved.loss), ("score_law", saved.score)):
        if fit is None:
            continue
        rows += [{"law": key, "param": n, "value": v, "stderr": e} for n, v, e in zip(fit.names, fit.values, fit.stderr)]
        lines.append(f"{key}: R^2 {fit.r2:.5f} over {fit.n_points} points")
    if saved.tokens_d0 is not None:
        lines.append(f"D0 (tokens used to invert the loss law): {saved.tokens_d0:.3g}")
    warnings = () if saved.score is not None else ("no score law in this result: no effective size can be computed",)
    figure = None
    if saved.points is not None and {"params", "tokens", "loss"} <= set(saved.points.columns):
        figure = science_figures.density_fit_figure(saved.points, saved.loss, saved.score, saved.score_points)
    return Section(
        "Densing law: fitted laws", key="density-laws", summary=tuple(lines), warnings=warnings,
        intro=("L(N, D) = a*N^-alpha + b*D^-beta [nats/token] and S = c/(1+exp(-gamma(L-l))) + d (Xiao et al., "
               "arXiv 2412.04315, section 2)." + _from(path)),
        tables=(Table("Parameters and standard errors", pd.DataFrame(rows, columns=["law", "param", "value", "stderr"])),),
        figures=plots(("Loss law and score law against the fitted points", figure)),
    )


def density_trend_section(path: Path, only: str | None = None) -> Section:
    """Density per model (with its ``extrapolated`` flag), the ruler and its fitted range, the saved
    trend fits ln(rho_max) = A*t + B with their doubling times, and their spread across rulers and
    selections, as ``ipw density trend`` computed them."""
    from ipw.science.density.extrapolation import extrapolation_line
    from ipw.science.density.results import DensityTrendResult

    saved = DensityTrendResult.load(path)
    lines = [f"{label}: density doubles every {fit.doubling_months:.2f} +/- {fit.doubling_months_stderr:.2f} months "
             f"(A = {fit.slope_per_day:.5f} per day, R^2 = {fit.r2:.3f}, {fit.n_points} {saved.select} models)"
             for label, fit in saved.fits.items()]
    warnings = [] if saved.fits else ["no trend fit was saved with these densities"]
    frame = saved.densities
    if saved.ruler is not None:
        lines += saved.ruler.lines()
        main = saved.fits.get("all dates")
        line = extrapolation_line(frame, saved.ruler, main.models if main else ())
        if line:
            warnings.append(line)
    if saved.spread is not None:
        lines.append(f"spread: {saved.spread.line()}")
    shown = frame[[c for c in ("model", "family", "release_date", "params", "score", "n_hat", "density", "extrapolated")
                   if c in frame]]
    tables = [Table("Density per model", shown.sort_values("release_date", kind="stable"))]
    if saved.spread is not None and len(saved.spread.options):
        tables.append(Table("Doubling time [months] under each ruler and selection", saved.spread.options))
    return Section(
        "Densing law: density trend", key="density-trend", summary=tuple(lines), warnings=tuple(warnings),
        intro=("Density rho = N_hat / N, N_hat the parameters a reference model needs for the same score; "
               "ln(rho_max) = A*t + B over release dates (Xiao et al., arXiv 2412.04315)." + _from(path)),
        tables=tuple(tables),
        figures=plots(("ln(density) against release date", science_figures.density_trend_figure(frame, saved.fits))),
    )


def density_losses_section(path: Path, only: str | None = None) -> Section:
    """Conditional loss per item (``ipw density model --out``) and its set-level means."""
    from ipw.science.density.results import DensityLossesResult

    frame = DensityLossesResult.load(path).items
    lines = [f"{len(frame)} items, loss per token: item mean {frame['loss_per_token'].mean():.4f} nats"]
    if {"nll_nats", "n_answer_tokens"} <= set(frame.columns) and frame["n_answer_tokens"].sum() > 0:
        lines.append(f"token mean {frame['nll_nats'].sum() / frame['n_answer_tokens'].sum():.4f} nats/token "
                     f"over {int(frame['n_answer_tokens'].sum())} answer tokens")
    return Section(
        "Densing law: conditional loss", key="density-loss", summary=tuple(lines),
        intro="Conditional loss -ln P(answer | prompt) per item, in nats per answer token." + _from(path),
        tables=(Table("Per item", frame),),
    )


PROVIDERS: dict[str, Callable[[Path, str | None], Section]] = {
    "capacity": capacity_section, "cmr.analysis": cmr_section, "density.laws": density_laws_section,
    "density.trend": density_trend_section, "density.losses": density_losses_section,
    "serving.sweep": serving_section,
}
