"""``ipw density``: fit the Densing Law's laws, measure a model's conditional loss, fit the trend.

Thin commands over :mod:`ipw.density`; all arithmetic lives in the library.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click
import pandas as pd

from ipw.cli.face import group
from ipw.errors import IpwError


def _fail(error: Exception) -> IpwError:
    """A bad-input error of the science code that is not yet an IpwError, shown as one line."""
    return error if isinstance(error, IpwError) else IpwError(str(error))


@group(context_settings={"help_option_names": ["-h", "--help"]})
def density() -> None:
    """Densing Law of LLMs: capacity density and its growth over time.

    Density rho = N_hat / N: the parameters a reference model needs to match a model's score,
    divided by the parameters it has (Xiao et al., arXiv 2412.04315). Units: parameters and
    tokens are counts, loss is nats per answer token, scores are fractions (0.453).

    \b
    Examples:
      ipw density trend                              shipped open models, MMLU, Llama-1 ruler
      ipw density trend --select all --cutoff 2024-01-01 --plot trend.png
      ipw density model --limit 5                    conditional loss of the embedded model
      ipw density fit runs.csv --out laws.json --plot fit.png
      ipw density model --laws laws.json --score 0.62 --params 7e9
    """


def _parse_fixed(values: tuple[str, ...]) -> dict[str, float]:
    fixed = {}
    for text in values:
        name, _, value = text.partition("=")
        if not value:
            raise click.BadParameter(f"expected NAME=VALUE, got {text!r}", param_hint="--fix")
        fixed[name.strip()] = float(value)
    return fixed


@density.command("fit")
@click.argument("table", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--fix", multiple=True, metavar="NAME=VALUE",
              help="Pin a score-law parameter, e.g. --fix d=0.25 --fix c=0.75 for 4-way choice.")
@click.option("--d0", "tokens_d0", type=float, default=1e12, show_default=True,
              help="Training tokens D0 used when inverting the loss law.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write both fitted laws as JSON (input to `model --laws` and `trend --laws`).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG figure.")
def fit_command(table: Path, fix: tuple[str, ...], tokens_d0: float, out: Path | None, plot: Path | None) -> None:
    """Fit L(N, D) = a*N^-alpha + b*D^-beta and S = c/(1+exp(-gamma(L-l))) + d.

    TABLE is a CSV of reference-model runs with columns params, tokens, loss (nats/token) and,
    optionally, score (fraction). The score law is fitted only when a score column is present.

    \b
    Example TABLE:
      params,tokens,loss,score
      5247232,52472320,3.91,0.251
      31470080,629401600,3.02,0.262
      ...
    \b
      ipw density fit runs.csv --fix d=0.25 --out laws.json --plot fit.png
    """
    from ipw.density.data import read_table
    from ipw.density.laws import DensityLaws, fit_loss_law, fit_score_law
    from ipw.density.tables import fit_table

    try:
        frame = read_table(table, ("params", "tokens", "loss"))
        loss_fit = fit_loss_law(frame["params"], frame["tokens"], frame["loss"])
        score_fit = None
        if "score" in frame:
            score_fit = fit_score_law(frame["loss"], frame["score"], _parse_fixed(fix))
    except IpwError as e:
        raise _fail(e) from e
    shown = [fit_table(loss_fit)] + ([fit_table(score_fit)] if score_fit else [])
    click.echo(pd.concat(shown).to_string(index=False))
    click.echo(f"loss law R^2 = {loss_fit.r2:.5f}, rmse = {loss_fit.rmse:.4g} nats/token")
    if score_fit:
        click.echo(f"score law R^2 = {score_fit.r2:.5f}, rmse = {score_fit.rmse:.4g}")
    if out and score_fit:
        out.write_text(json.dumps(DensityLaws(loss_fit, score_fit, tokens_d0).to_dict(), indent=2))
        click.echo(f"wrote {out}")
    elif out:
        out.write_text(json.dumps({"loss_law": loss_fit.to_dict()}, indent=2))
        click.echo(f"wrote {out} (loss law only: no score column)")
    if plot:
        from ipw.density.plots import plot_fit

        click.echo(f"wrote {plot_fit(frame, loss_fit, score_fit, plot)}")


def _items(items_path: Path | None, task: Path | None, docs: Path | None, limit: int | None):
    from ipw.density.items import load_items, load_lmeval_task, shipped_items

    if task is not None:
        return load_lmeval_task(task, docs, limit)
    items = load_items(items_path) if items_path else shipped_items()
    return items[:limit] if limit else items


@density.command("model")
@click.option("--model", "model_path", type=click.Path(path_type=Path),
              help="GGUF file or local Hugging Face folder [default: embedded SmolLM2-135M].")
@click.option("--items", "items_path", type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL with prompt/answer per line [default: shipped bench_small.jsonl].")
@click.option("--lm-eval-task", "task", type=click.Path(dir_okay=False, path_type=Path),
              help="An lm-eval task YAML (template-based) instead of --items.")
@click.option("--docs", type=click.Path(dir_okay=False, path_type=Path),
              help="Local JSONL documents for --lm-eval-task.")
@click.option("--limit", type=int, help="Use only the first N items.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Per-item CSV.")
@click.option("--laws", type=click.Path(dir_okay=False, path_type=Path),
              help="Laws JSON from `ipw density fit`; with --score and --params gives density.")
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
    from ipw.density.loss import conditional_losses, load_model, summarize_losses

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
        frame.to_csv(out, index=False)
        click.echo(f"wrote {out}")


def _density_only(laws_path: Path, score: float | None, n_params: float | None) -> None:
    from ipw.density.laws import DensityLaws

    if score is None or n_params is None:
        raise click.UsageError("--laws needs both --score (a fraction) and --params (a count)")
    try:
        laws = DensityLaws.from_dict(json.loads(laws_path.read_text()))
        n_hat = laws.effective_params(score)
    except (IpwError, KeyError, json.JSONDecodeError) as e:
        raise _fail(e) from e
    click.echo(f"effective parameters N_hat = {n_hat:.4g}")
    click.echo(f"density rho = N_hat / N = {n_hat / n_params:.4g}")


@density.command("trend")
@click.argument("table", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--benchmark", default="MMLU", show_default=True, help="Rows of this benchmark.")
@click.option("--family", default="Llama-1", show_default=True,
              help="Family whose scores define the substitute ruler (see docs/density.md).")
@click.option("--chance", type=float, default=0.25, show_default=True,
              help="Benchmark's chance score (the ruler's floor d), a fraction.")
@click.option("--laws", type=click.Path(dir_okay=False, path_type=Path),
              help="Use fitted laws (from `fit --out`) as the ruler instead of --family.")
@click.option("--select", type=click.Choice(["frontier", "all"]), default="frontier",
              show_default=True, help="rho_max: running-record models only, or every model.")
@click.option("--cutoff", type=click.DateTime(["%Y-%m-%d"]),
              help="Also fit before and after this date (the paper used ChatGPT, 2022-11-30).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Per-model CSV.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG figure.")
def trend_command(table, benchmark, family, chance, laws, select, cutoff, out, plot) -> None:
    """Fit ln(rho_max) = A*t + B over release dates; print A and the doubling time.

    TABLE is a CSV with model, release_date (YYYY-MM-DD) and either a density column or
    params_b, benchmark, score_pct, family [default: the shipped open-model table].

    \b
    Examples:
      ipw density trend
      ipw density trend --select all --plot trend.png
      ipw density trend my_densities.csv --cutoff 2022-11-30
    """
    try:
        frame = _trend_frame(table, benchmark, family, chance, laws)
        fits = _trend_fits(frame, select, cutoff.date() if cutoff else None)
    except (IpwError, ValueError, KeyError) as e:
        raise _fail(e) from e
    from ipw.density.tables import trend_table

    shown = [c for c in ("model", "release_date", "params", "score", "n_hat", "density") if c in frame]
    click.echo(frame[shown].sort_values("release_date").to_string(index=False))
    click.echo(trend_table(fits).to_string(index=False))
    for label, fit in fits.items():
        click.echo(f"{label}: A = {fit.slope_per_day:.5f} +/- {fit.slope_stderr:.5f} per day, "
                   f"doubling every {fit.doubling_months:.2f} +/- {fit.doubling_months_stderr:.2f} "
                   f"months, R^2 = {fit.r2:.3f}, points: {', '.join(fit.models)}")
    if out:
        frame.to_csv(out, index=False)
        click.echo(f"wrote {out}")
    if plot:
        from ipw.density.plots import plot_trend

        click.echo(f"wrote {plot_trend(frame, fits, plot)}")


def _trend_frame(table, benchmark, family, chance, laws_path) -> pd.DataFrame:
    from ipw.density.data import load_density_table, load_open_models, read_table
    from ipw.density.tables import densities_by_family, densities_by_laws

    if table is not None and "density" in read_table(table, ()).columns:
        return load_density_table(table)
    frame = load_open_models(table, benchmark)
    if laws_path is not None:
        from ipw.density.laws import DensityLaws

        return densities_by_laws(frame, DensityLaws.from_dict(json.loads(Path(laws_path).read_text())))
    return densities_by_family(frame, family, chance)[0]


def _trend_fits(frame: pd.DataFrame, select: str, cutoff: date | None) -> dict:
    from ipw.density.trend import fit_trend, fit_trend_split

    fits = {"all dates": fit_trend(frame, select)}
    if cutoff is not None:
        before, after = fit_trend_split(frame, cutoff, select)
        fits[f"before {cutoff}"] = before
        fits[f"from {cutoff}"] = after
    return fits
