"""``ipw density``: fit the Densing Law's laws, measure a model's conditional loss, fit the trend.

Thin commands over :mod:`ipw.science.density`; all arithmetic lives in the library.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
import pandas as pd

from ipw.cli.face import group
from ipw.core.errors import IpwError


def _fail(error: Exception) -> IpwError:
    """A bad-input error of the science code that is not yet an IpwError, shown as one line."""
    return error if isinstance(error, IpwError) else IpwError(str(error))


@group(context_settings={"help_option_names": ["-h", "--help"]},
       short_help="Densing Law of LLMs: capacity density and its growth over time.")
def density() -> None:
    """Densing Law of LLMs: capacity density and its growth over time.

    Density rho = N_hat / N: the parameters a reference model needs to match a model's score,
    divided by the parameters it has (Xiao et al., arXiv 2412.04315). Units: parameters and
    tokens are counts, loss is nats per answer token, scores are fractions (0.453).

    \b
    Examples:
      ipw density trend                              published scores, 4 benchmarks, Llama-1 ruler
      ipw density trend --select all --cutoff 2024-01-01 --plot trend.png
      ipw density model --limit 5                    conditional loss of the embedded model
      ipw density fit --losses runs.csv --scores scores.csv --out laws.json
      ipw density model --laws laws.json --score 0.62 --params 7e9
    """


def _parse_fixed(values: tuple[str, ...]) -> dict[str, float]:
    fixed = {}
    for text in values:
        name, _, value = text.partition("=")
        if not value:
            raise click.BadParameter(f"expected NAME=VALUE, got {text!r}", param_hint="--fix")
        try:
            fixed[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a number", param_hint="--fix") from None
    return fixed


@density.command("fit", short_help="Fit the loss law L(N, D) and the score law S(L).")
@click.argument("table", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--losses", type=click.Path(dir_okay=False, path_type=Path),
              help="Reference-model runs for the loss law: params,tokens,loss (same as TABLE).")
@click.option("--scores", type=click.Path(dir_okay=False, path_type=Path),
              help="Fully trained models or checkpoints for the score law: loss,score.")
@click.option("--fix", multiple=True, metavar="NAME=VALUE",
              help="Pin a score-law parameter, e.g. --fix d=0.25 --fix c=0.75 for 4-way choice.")
@click.option("--d0", "tokens_d0", type=float, default=1e12, show_default=True,
              help="Training tokens D0 used when inverting the loss law.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Save the fitted laws (kind density.laws): a .json file (the points fitted beside it "
                   "as .csv) or a folder; input to `model --laws`, `trend --laws` and `ipw report --extra`.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG figure.")
def fit_command(table: Path | None, losses: Path | None, scores: Path | None, fix: tuple[str, ...],
                tokens_d0: float, out: Path | None, plot: Path | None) -> None:
    """Fit L(N, D) = a*N^-alpha + b*D^-beta and S = c/(1+exp(-gamma(L-l))) + d, each on its own data.

    The loss law (Sec. 2.2) is fitted on reference-model runs: TABLE or --losses, a CSV with
    params, tokens (counts) and loss (nats/token). The score law (Sec. 2.3) is fitted on --scores,
    a CSV with loss and score (a fraction) of fully trained models or checkpoints whose scores
    span the sigmoid: the paper's small reference models score at chance, so their scores cannot
    fit it. Without --scores only the loss law is fitted.

    \b
    Example tables:
      runs.csv: params,tokens,loss          scores.csv: loss,score
                5247232,52472320,3.91                   1.95,0.41
                31470080,629401600,3.02                 1.71,0.58
    \b
      ipw density fit --losses runs.csv --scores scores.csv --fix d=0.25 --out laws.json
    """
    from ipw.science.density.data import load_loss_runs, load_score_runs
    from ipw.science.density.laws import fit_loss_law, fit_score_law
    from ipw.science.density.tables import fit_table

    if (table is None) == (losses is None):
        raise click.UsageError("give the loss-law runs once: as TABLE or as --losses")
    frame = load_loss_runs(losses or table)
    if "score" in frame:
        click.echo("note: the score column of the loss-law runs is not used: the score law is "
                   "fitted on --scores (Sec. 2.3), models whose scores span the sigmoid")
    loss_fit = fit_loss_law(frame["params"], frame["tokens"], frame["loss"])
    score_fit = None
    if scores is not None:
        points = load_score_runs(scores)
        score_fit = fit_score_law(points["loss"], points["score"], _parse_fixed(fix))
    shown = [fit_table(loss_fit)] + ([fit_table(score_fit)] if score_fit else [])
    click.echo(pd.concat(shown).to_string(index=False))
    click.echo(f"loss law R^2 = {loss_fit.r2:.5f}, rmse = {loss_fit.rmse:.4g} nats/token, "
               f"{loss_fit.n_points} runs")
    if score_fit:
        click.echo(f"score law R^2 = {score_fit.r2:.5f}, rmse = {score_fit.rmse:.4g}, "
                   f"{score_fit.n_points} models")
    if out:
        from ipw.science.density.results import DensityLawsResult

        saved = DensityLawsResult(loss_fit, score_fit, tokens_d0, points=frame,
                                  score_points=points if score_fit else None)
        click.echo(f"wrote {saved.save(out)}" + ("" if score_fit else " (loss law only: no --scores)"))
    if plot:
        from ipw.reports.savefig import save_figure
        from ipw.reports.science_figures import density_fit_figure

        figure = density_fit_figure(frame, loss_fit, score_fit, points if score_fit else None)
        click.echo(f"wrote {save_figure(figure, plot)}")


def _items(items_path: Path | None, task: Path | None, docs: Path | None, limit: int | None):
    from ipw.science.density.items import load_items, load_lmeval_task, shipped_items

    if task is not None:
        return load_lmeval_task(task, docs, limit)
    items = load_items(items_path) if items_path else shipped_items()
    return items[:limit] if limit else items


@density.command("model", short_help="Conditional loss of a local model, and its density.")
@click.option("--model", "model_path", type=click.Path(path_type=Path),
              help="GGUF file or local Hugging Face folder [default: embedded SmolLM2-135M].")
@click.option("--items", "items_path", type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL with prompt/answer per line [default: shipped bench_small.jsonl].")
@click.option("--lm-eval-task", "task", type=click.Path(dir_okay=False, path_type=Path),
              help="An lm-eval task YAML (template-based) instead of --items.")
@click.option("--docs", type=click.Path(dir_okay=False, path_type=Path),
              help="Local JSONL documents for --lm-eval-task.")
@click.option("--limit", type=int, help="Use only the first N items.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Save the per-item losses (kind density.losses): x.csv writes x.csv and x.json; "
                   "or a folder.")
@click.option("--laws", type=click.Path(path_type=Path),
              help="Laws saved by `ipw density fit --out`; with --score and --params gives density.")
@click.option("--score", type=float, help="The model's benchmark score, a fraction.")
@click.option("--params", "n_params", type=float, help="The model's parameter count.")
def model_command(model_path, items_path, task, docs, limit, out, laws, score, n_params) -> None:
    """Conditional loss -ln P(answer | prompt) of a local model, and optionally its density.

    \b
    Examples:
      ipw density model --limit 5
      ipw density model --model ./my-model/ --items my_items.jsonl --out losses.csv
      ipw density model --lm-eval-task task.yaml --docs test.jsonl
      ipw density model --laws laws.json --score 0.62 --params 7e9   (no model is run)
    """
    if laws is not None:
        _density_only(laws, score, n_params)
        return
    from ipw.science.density.loss import conditional_losses, load_model, summarize_losses

    try:
        items = _items(items_path, task, docs, limit)
        model, tokenizer = load_model(model_path)
        frame = conditional_losses(model, tokenizer, items)
    except (IpwError, OSError, ValueError) as e:
        raise _fail(e) from e
    click.echo(frame.to_string(index=False))
    for key, value in summarize_losses(frame).items():
        click.echo(f"{key} = {value:.4f}" if isinstance(value, float) else f"{key} = {value}")
    if out:
        from ipw.science.density.results import DensityLossesResult

        click.echo(f"wrote {DensityLossesResult(frame, str(model_path or 'default')).save(_json_target(out))}")


def _json_target(out: Path) -> Path:
    """``x.csv`` -> ``x.json`` (its one table is then written as ``x.csv``); folders stay folders."""
    return out.with_suffix(".json") if out.suffix.lower() == ".csv" else out


def _density_only(laws_path: Path, score: float | None, n_params: float | None) -> None:
    if score is None or n_params is None:
        raise click.UsageError("--laws needs both --score (a fraction) and --params (a count)")
    try:
        n_hat = _read_laws(laws_path).effective_params(score)
    except (IpwError, ValueError) as e:
        raise _fail(e) from e
    click.echo(f"effective parameters N_hat = {n_hat:.4g}")
    click.echo(f"density rho = N_hat / N = {n_hat / n_params:.4g}")


@density.command("trend", short_help="Fit ln(rho_max) = A*t + B over release dates.")
@click.argument("table", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--benchmark", help="Only rows of this benchmark (e.g. MMLU) [default: MMLU for an "
              "open-model table; every ruler benchmark for published scores].")
@click.option("--family", default="Llama-1", show_default=True,
              help="Family whose published scores define the ruler; it is left out of the trend.")
@click.option("--chance", type=float, default=0.25, show_default=True,
              help="Chance score (the ruler's floor d) for a single-benchmark open-model table.")
@click.option("--laws", type=click.Path(path_type=Path),
              help="Use fitted laws (saved by `fit --out`) as the ruler instead of --family.")
@click.option("--select", type=click.Choice(["frontier", "all"]), default="frontier",
              show_default=True, help="rho_max: running-record models only, or every model.")
@click.option("--cutoff", type=click.DateTime(["%Y-%m-%d"]),
              help="Also fit before and after this date (the paper used ChatGPT, 2022-11-30).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Save densities and trend fits (kind density.trend): x.csv writes the per-model "
                   "x.csv and x.json with the fits; or a folder.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG figure.")
def trend_command(table, benchmark, family, chance, laws, select, cutoff, out, plot) -> None:
    """Fit ln(rho_max) = A*t + B over release dates (Sec. 3.3); print A and the doubling time.

    TABLE is a CSV with model, release_date (YYYY-MM-DD) and either a density column, or
    published scores (model, family, params_b, release_date, benchmark, score_pct, evaluator,
    source, verified), or an open-model table (params_b, benchmark, score_pct, family)
    [default: the shipped published scores of the paper's families, see docs/density.md].
    A trend whose density does not grow is an error (no doubling time).

    \b
    Examples:
      ipw density trend
      ipw density trend --select all --plot trend.png
      ipw density trend --family Llama-2 --benchmark MMLU
      ipw density trend my_densities.csv --cutoff 2022-11-30
    """
    from ipw.science.density.extrapolation import extrapolation_line
    from ipw.science.density.spread import trend_spread
    from ipw.science.density.tables import trend_table
    from ipw.science.density.trend import require_growth, seed_sensitivity

    frame, ruler, options = _trend_frame(table, benchmark, family, chance, laws)
    fits = _trend_fits(frame, select, cutoff.date() if cutoff else None)
    shown = [c for c in ("model", "release_date", "params", "score", "n_scores", "n_hat", "density", "extrapolated")
             if c in frame]
    for line in ruler.lines():
        click.echo(line)
    click.echo(frame[shown].sort_values("release_date").to_string(index=False))
    click.echo(trend_table(fits).to_string(index=False))
    for label, fit in fits.items():
        require_growth(fit, label)
        click.echo(f"{label}: A = {fit.slope_per_day:.5f} +/- {fit.slope_stderr:.5f} per day, "
                   f"doubling every {fit.doubling_months:.2f} +/- {fit.doubling_months_stderr:.2f} "
                   f"months, R^2 = {fit.r2:.3f}, points: {', '.join(fit.models)}")
    main = fits["all dates"]
    spread = trend_spread(frame, main, select, options)
    line = extrapolation_line(frame, ruler, main.models)
    if line:
        click.echo(line)
    if select == "frontier" and cutoff is None:
        seeds = seed_sensitivity(frame)
        if len(seeds) > 1:
            click.echo("seed sensitivity (the frontier started at each of its first records):")
            click.echo(seeds.to_string(index=False))
    click.echo("rulers and selections (each --family that holds a ruler, its benchmarks or --benchmark MMLU, "
               "--select frontier or all; docs/density.md):")
    click.echo(options.to_string(index=False))
    click.echo(f"spread: {spread.line()}")
    if out:
        from ipw.science.density.results import DensityTrendResult

        saved = DensityTrendResult(frame, fits, select, ruler, spread)
        click.echo(f"wrote {saved.save(_json_target(out))}")
    if plot:
        from ipw.reports.savefig import save_figure
        from ipw.reports.science_figures import density_trend_figure

        click.echo(f"wrote {save_figure(density_trend_figure(frame, fits), plot)}")


def _trend_frame(table, benchmark, family, chance, laws_path):
    """(densities with their ``extrapolated`` flags, the ruler and its range, the documented
    options this table allows: see :mod:`ipw.science.density.spread`)."""
    from ipw.science.density import extrapolation
    from ipw.science.density import spread
    from ipw.science.density.data import (
        load_density_table, load_open_models, load_published_scores, read_table,
    )
    from ipw.science.density.ruler import densities_by_benchmarks
    from ipw.science.density.tables import combine_per_model, densities_by_family, densities_by_laws

    columns = read_table(table, ()).columns if table is not None else ()
    if "density" in columns:
        frame = load_density_table(table)
        return frame, extrapolation.no_ruler(), spread.selection_options(frame, "densities given")
    if table is None or "evaluator" in columns:
        scores = load_published_scores(table)
        if laws_path is None:
            frame, ruler = densities_by_benchmarks(scores, family, benchmark=benchmark)
            ruler = extrapolation.of_benchmark_ruler(ruler, benchmark)
            return extrapolation.flag_extrapolated(frame, ruler), ruler, spread.published_options(scores)
        # fitted laws are one benchmark's ruler: MMLU rows unless --benchmark says otherwise
        frame = scores[scores["benchmark"].str.lower() == (benchmark or "MMLU").lower()]
    else:
        frame = load_open_models(table, benchmark or "MMLU")
    if laws_path is not None:
        saved = _read_laws_result(Path(laws_path))
        ruler = extrapolation.of_laws(saved.points, saved.tokens_d0)
        frame = extrapolation.flag_extrapolated(combine_per_model(densities_by_laws(frame, saved.laws)), ruler)
        return frame, ruler, spread.selection_options(frame, "fitted laws")
    densities, family_ruler = densities_by_family(frame, family, chance)
    ruler = extrapolation.of_family_ruler(family_ruler)
    return extrapolation.flag_extrapolated(densities, ruler), ruler, spread.family_options(frame, chance)


def _read_laws(path: Path):
    return _read_laws_result(path).laws


def _read_laws_result(path: Path):
    from ipw.science.density.results import DensityLawsResult
    from ipw.core.errors import InputFileError

    saved = DensityLawsResult.load(path)  # errors name the file: missing, malformed, another kind
    if saved.score is None:
        raise InputFileError(path, None, "these laws have no score law (fitted without --scores); "
                                         "an effective size needs both")
    return saved


def _trend_fits(frame: pd.DataFrame, select: str, cutoff: date | None) -> dict:
    from ipw.science.density.trend import fit_trend, fit_trend_split

    fits = {"all dates": fit_trend(frame, select)}
    if cutoff is not None:
        before, after = fit_trend_split(frame, cutoff, select)
        fits[f"before {cutoff}"] = before
        fits[f"from {cutoff}"] = after
    return fits
